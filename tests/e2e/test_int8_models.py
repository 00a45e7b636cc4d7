"""Whole int8 models: ResNet-18 (benchmarks/models.py, seeded weights) quantized by ONNX
Runtime's quantize_static, compiled for the host (`-m slow`: about a minute per compile on 2
busy cores); a small QDQ CNN cross-compiled for a Cortex-A55 (aarch64, dot product) and run
under qemu by `tvmedge verify-bundle`, against ONNX Runtime within one quantization step."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import cli
from int8_models import cnn, quantize

from tvmedge import api

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _quiet(_msg):
    pass


def _report(manifest: dict) -> dict:
    return next(r for r in manifest["rewrites"] if r["name"] == "int8")["report"]


@pytest.mark.slow
def test_resnet18_qdq_compiles_to_int8_and_matches_onnxruntime(tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    import models

    fp32 = models.export("resnet18", tmp_path / "resnet18.onnx")
    int8 = quantize(
        onnx.load(fp32), tmp_path / "resnet18_int8.onnx", per_channel=True, shape=(1, 3, 224, 224)
    )
    built = {
        name: api.compile(path, target="host", output=tmp_path / f"{name}.tvmedge", log=_quiet)
        for name, path in (("fp32", fp32), ("int8", int8))
    }
    report = _report(built["int8"].manifest)
    assert report["conv2d"] == 20 and report["matmul"] == 1 and report["per_channel"] == 21
    check = built["int8"].manifest["check"]
    assert check["compared"] and all(r["ok"] for r in check["outputs"])
    assert set(check["quantization_steps"]) == {"logits"}
    sizes = {k: (v.path / "model.so").stat().st_size for k, v in built.items()}
    assert sizes["int8"] <= 0.3 * sizes["fp32"], sizes

    from tvmedge import runtime

    ours = runtime.load(built["int8"].path)
    ref = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(5).standard_normal((1, 3, 224, 224)).astype(np.float32)
    got, want = ours.run(None, {"input": x})[0], ref.run(None, {"input": x})[0]
    limit = check["quantization_steps"]["logits"] * (1 + 1e-4)  # and float32 rounding
    assert np.abs(got - want).max() <= limit
    assert got.argmax() == want.argmax()


@pytest.mark.skipif(
    shutil.which("aarch64-linux-gnu-g++") is None or shutil.which("qemu-aarch64") is None,
    reason="needs g++-aarch64-linux-gnu and qemu-user (make toolchains installs them)",
)
def test_int8_bundle_for_cortex_a55_runs_under_qemu_and_matches(tmp_path):
    model = quantize(cnn(), tmp_path / "cnn_int8.onnx", per_channel=True)  # u8 activations
    out = tmp_path / "a55.tvmedge"
    proc = cli("compile", model, "--target", "cortex-a55", "--bundle", "-o", out)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    report = _report(manifest)
    assert report["conv2d"] == 4 and report["matmul"] == 1
    proc = cli("verify-bundle", out, "--model", model)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "qemu-aarch64" in proc.stdout
    assert "verified: the bundle matches ONNX Runtime" in proc.stdout
