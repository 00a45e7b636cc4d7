"""float16 MatMul and Softmax accumulate in float32 (tvmedge/frontend/converters/precision.py):
against ONNX's float16 Attention function bodies and against ONNX Runtime on a long dot product,
where float16 accumulation drifts far beyond rtol 1e-3."""

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx_graphs import assert_node_case, io, model, onnxruntime_outputs, tvmedge_outputs

HALF = onnx.TensorProto.FLOAT16


@pytest.mark.parametrize(
    "name",
    ["test_attention_4d_fp16_expanded", "test_attention_4d_gqa_causal_nonpad_decode_fp16_expanded"],
)
def test_float16_attention_node_cases(name, tmp_path):
    assert_node_case(name, tmp_path)


def _run(op: str, inputs: dict, out_shape: list, tmp_path, **attrs) -> np.ndarray:
    node = helper.make_node(op, list(inputs), ["y"], **attrs)
    specs = [io(n, list(v.shape), HALF) for n, v in inputs.items()]
    proto = model([node], specs, [io("y", out_shape, HALF)])
    (got,) = tvmedge_outputs(proto, inputs, tmp_path)
    (want,) = onnxruntime_outputs(proto, inputs)
    assert got.dtype == want.dtype == np.float16
    return got, want


def test_float16_matmul_accumulates_in_float32(tmp_path):
    """A 2048-long dot product: float16 accumulation rounds each partial sum (ulp 4e-3 at 5)."""
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (4, 2048)).astype(np.float16)
    b = rng.uniform(0, 0.01, (2048, 8)).astype(np.float16)
    got, want = _run("MatMul", {"a": a, "b": b}, [4, 8], tmp_path)
    exact = (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float16)
    np.testing.assert_allclose(got.astype(np.float32), exact.astype(np.float32), rtol=1e-3)
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=1e-3)


def test_float16_softmax_sums_in_float32(tmp_path):
    x = np.random.default_rng(1).uniform(-4, 4, (3, 1000)).astype(np.float16)
    got, want = _run("Softmax", {"x": x}, [3, 1000], tmp_path, axis=-1)
    e = np.exp(x.astype(np.float64) - x.max(axis=-1, keepdims=True))
    exact = (e / e.sum(axis=-1, keepdims=True)).astype(np.float16)
    np.testing.assert_allclose(
        got.astype(np.float32), exact.astype(np.float32), rtol=1e-3, atol=1e-7
    )
    np.testing.assert_allclose(
        got.astype(np.float32), want.astype(np.float32), rtol=1e-3, atol=1e-7
    )
