"""Golden vectors: ``golden.npz`` in the artifact, inputs and ONNX Runtime's outputs on them.

With ``compile --golden`` the artifact carries the compile check's seeded inputs
(export/check.check_inputs) as ``input/NAME`` and ONNX Runtime's outputs of the source model on
them as ``output/NAME``, so a device can prove, without the ONNX model, that what it is about to
switch to computes what the model computes (runtime/slots.py, within the check's tolerance).
Like every file, it is hashed into the manifest and covered by the signature.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from tvmedge.errors import BuildError
from tvmedge.export.check import ATOL, RTOL, check_inputs
from tvmedge.layout import TensorSpec

GOLDEN = "golden.npz"


def golden_writer(model: Path, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> Callable:
    """An artifact extra that runs ``model`` (the gate's private copy) in ONNX Runtime."""

    def write(folder: Path) -> dict:
        import onnxruntime as ort

        feeds = check_inputs(inputs)
        names = [s.name for s in outputs]
        try:
            session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
            values = session.run(names, feeds)
        except Exception as e:  # ORT cannot run every model tvmedge compiles
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise BuildError(
                f"--golden needs ONNX Runtime to run the model, and it cannot: {first}"
            ) from None
        arrays = {f"input/{k}": v for k, v in feeds.items()}
        arrays |= {f"output/{n}": np.asarray(v) for n, v in zip(names, values, strict=True)}
        np.savez(folder / GOLDEN, **arrays)
        return {
            "golden": {
                "file": GOLDEN,
                "reference": f"onnxruntime {ort.__version__}",
                "rtol": RTOL,
                "atol": ATOL,
            }
        }

    return write
