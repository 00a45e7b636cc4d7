"""Bad quantization input through the real CLI: one line, exit 2, nothing written.

The model is a small Gemm classifier built with onnx.helper; every case fails before any
TVM build.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import cli
from onnx import TensorProto, helper, numpy_helper
from test_bad_input import assert_user_error, listing


def classifier(path) -> None:
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 16)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((16, 4)).astype(np.float32), "w2")
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w1"], ["h"], name="fc1"),
            helper.make_node("Relu", ["h"], ["r"], name="relu"),
            helper.make_node("Gemm", ["r", "w2"], ["scores"], name="fc2"),
        ],
        "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 4])],
        [w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, path)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("q") / "classifier.onnx"
    classifier(path)
    return path


def data(folder, name="calib.npz", **arrays):
    path = folder / name
    np.savez(path, **arrays)
    return path


def good(n=10, dtype=np.float32, cols=8):
    return np.random.default_rng(1).standard_normal((n, cols)).astype(dtype)


CASES = {
    "no calibration": (lambda f: ["--quantize", "int8"], r"--quantize int8 needs --calibration"),
    "calibration without quantize": (
        lambda f: ["--calibration", data(f, x=good())],
        r"--calibration only applies with --quantize int8",
    ),
    "wrong name": (
        lambda f: ["--quantize", "int8", "--calibration", data(f, image=good())],
        r"calibration key 'image' in '.*calib.npz' is not an input of the model; its inputs: x",
    ),
    "missing input": (
        lambda f: ["--quantize", "int8", "--calibration", data(f, labels=np.arange(10))],
        r"has no input 'x' \(expected float32\[N,batch,8\]",
    ),
    "wrong shape": (
        lambda f: ["--quantize", "int8", "--calibration", data(f, x=good(cols=7))],
        r"calibration input 'x' \(sample 0 of .*\) is float32\[1,7\]; the model expects "
        r"float32\[batch,8\]",
    ),
    "wrong dtype": (
        lambda f: ["--quantize", "int8", "--calibration", data(f, x=good(dtype=np.float64))],
        r"calibration input 'x' .* is float64\[1,8\]; the model expects float32\[batch,8\]",
    ),
    "empty set": (
        lambda f: ["--quantize", "int8", "--calibration", data(f, x=good(n=0))],
        r"the calibration set from .*calib.npz is empty",
    ),
    "empty folder": (
        lambda f: ["--quantize", "int8", "--calibration", f],
        r"calibration folder '.*' holds no .npz files; the set is empty",
    ),
    "unreadable file": (
        lambda f: ["--quantize", "int8", "--calibration", _garbage(f)],
        r"calibration file '.*bad.npz' is not a readable .npz archive",
    ),
    "one sample, nothing to hold back": (
        lambda f: ["--quantize", "int8", "--calibration", data(f, x=good(n=1))],
        r"has 1 sample: too few to hold back a validation part",
    ),
    "unknown keep-float node": (
        lambda f: ["--quantize", "int8", "--calibration", data(f, x=good()), "--keep-float", "fc9"],
        r"--keep-float 'fc9' is not a node of the model .*nodes with weights: fc1, fc2",
    ),
    "accuracy floor without labels": (
        lambda f: [
            "--quantize",
            "int8",
            "--calibration",
            data(f, x=good()),
            "--accuracy-floor",
            "accuracy=0.9",
        ],
        r"--accuracy-floor accuracy=... needs labels",
    ),
    "bad floor": (
        lambda f: [
            "--quantize",
            "int8",
            "--calibration",
            data(f, x=good()),
            "--accuracy-floor",
            "top5=1",
        ],
        r"--accuracy-floor term 'top5=1' is not METRIC=VALUE",
    ),
    "labels of another length": (
        lambda f: [
            "--quantize",
            "int8",
            "--calibration",
            data(f, x=good(), labels=np.arange(9)),
        ],
        r"'labels' in .* is int64\[9\]: give one integer class index per sample \(10\)",
    ),
}


def _garbage(folder):
    path = folder / "bad.npz"
    path.write_bytes(b"not a zip archive")
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_quantization_input(case, model, tmp_path):
    make_args, pattern = CASES[case]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    args = make_args(inputs)
    work = tmp_path / "work"
    work.mkdir()
    proc = cli("compile", model, "-o", work / "out.tvmedge", *args, cwd=work)
    assert_user_error(proc, pattern)
    assert listing(work) == set()
