"""Every architecture shipped in the onnx wheel, with seeded weights: compile for host through
the CLI, run through `tvmedge run`, and match ONNX Runtime on the same input.

Tolerance (tvmedge.bench.agreement): max|tvmedge - ort| <= 1e-5 + 1e-4 * max|ort| per output,
and the same top-1 class. SqueezeNet runs by default; the rest are `-m slow` (untuned TVM takes
seconds to minutes per run on 2 cores).
"""

import numpy as np
import onnxruntime as ort
import pytest
from conftest import cli

from tvmedge import zoo
from tvmedge.bench.agreement import compare

FAST = {"squeezenet"}
MODELS = [
    pytest.param(name, marks=() if name in FAST else pytest.mark.slow)
    for name in sorted(zoo.MODELS)
]


@pytest.mark.parametrize("name", MODELS)
def test_zoo_model_matches_onnxruntime(name, tmp_path):
    model = zoo.materialize(name, tmp_path / f"{name}.onnx", seed=1)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (spec,) = session.get_inputs()
    x = np.random.default_rng(7).standard_normal(spec.shape).astype(np.float32)
    np.savez(tmp_path / "in.npz", **{spec.name: x})

    artifact = tmp_path / f"{name}.tvmedge"
    proc = cli("compile", model, "--target", "host", "-o", artifact, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    proc = cli(
        "run",
        artifact,
        "--inputs",
        tmp_path / "in.npz",
        "--outputs",
        tmp_path / "out.npz",
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr

    names = [o.name for o in session.get_outputs()]
    ref = session.run(None, {spec.name: x})
    with np.load(tmp_path / "out.npz") as data:
        ours = [data[n] for n in names]
    rows = compare(names, ours, ref)
    assert all(r["ok"] for r in rows), rows
    assert all(r.get("top1_agreement", 1.0) == 1.0 for r in rows), rows
