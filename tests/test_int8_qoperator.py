"""ONNX's QOperator format (QLinearConv, QLinearMatMul, QGemm, QLinearAdd,
QLinearGlobalAveragePool, ConvInteger, MatMulInteger) imported and lowered to the same integer
compute as QDQ models, compared with ONNX Runtime running the same model."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from int8_models import FEATURES, SHAPE, cnn, mlp, quantize
from onnx import TensorProto, helper, numpy_helper
from onnx_graphs import assert_node_case
from test_int8_qdq import assert_within_one_step, legalized

from tvmedge import api, runtime
from tvmedge.rewrites.int8 import integer_compute


def _quiet(_msg):
    pass


def _ops(path) -> set[str]:
    return {n.op_type for n in onnx.load(path).graph.node}


def test_qoperator_cnn(tmp_path):
    model = quantize(cnn(), tmp_path / "cnn.onnx", per_channel=True, qoperator=True)
    assert {"QLinearConv", "QGemm", "QLinearAdd", "QLinearGlobalAveragePool"} <= _ops(model)
    result = api.compile(model, target="host", output=tmp_path / "m.tvmedge", log=_quiet)
    report = next(r for r in result.manifest["rewrites"] if r["name"] == "int8")["report"]
    assert report["conv2d"] == 4 and report["matmul"] == 1 and report["per_channel"] == 5
    assert result.manifest["check"]["compared"]
    assert assert_within_one_step(model, result.path, "input", SHAPE) == 0


def test_qoperator_matmuls(tmp_path):
    model = quantize(
        mlp(),
        tmp_path / "mlp.onnx",
        per_channel=False,
        qoperator=True,
        input_name="x",
        shape=FEATURES,
    )
    assert "QLinearMatMul" in _ops(model)
    mod, _ = legalized(model)
    assert len(integer_compute(mod)) == 2
    result = api.compile(model, target="host", output=tmp_path / "m.tvmedge", log=_quiet)
    assert assert_within_one_step(model, result.path, "x", FEATURES) == 0


def _integer_model(op: str) -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    if op == "ConvInteger":
        x = helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4, 8, 8])
        y = helper.make_tensor_value_info("y", TensorProto.INT32, [1, 8, 8, 8])
        w = rng.integers(-128, 128, (8, 4, 3, 3), dtype=np.int8)
        node = helper.make_node("ConvInteger", ["x", "w", "zp"], ["y"], pads=[1, 1, 1, 1])
    else:
        x = helper.make_tensor_value_info("x", TensorProto.UINT8, [2, 16])
        y = helper.make_tensor_value_info("y", TensorProto.INT32, [2, 8])
        w = rng.integers(-128, 128, (16, 8), dtype=np.int8)
        node = helper.make_node("MatMulInteger", ["x", "w", "zp"], ["y"])
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.uint8(3), "zp")]
    graph = helper.make_graph([node], "g", [x], [y], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


@pytest.mark.parametrize("op", ["ConvInteger", "MatMulInteger"])
def test_integer_ops_are_exact(op, tmp_path):
    path = tmp_path / f"{op}.onnx"
    onnx.save(_integer_model(op), path)
    mod, _ = legalized(path)
    assert len(integer_compute(mod)) == 1
    result = api.compile(path, target="host", output=tmp_path / "m.tvmedge", log=_quiet)
    ours = runtime.load(result.path)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = ours.get_inputs()[0].shape
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_array_equal(ours.run(None, {"x": x})[0], ref.run(None, {"x": x})[0])


@pytest.mark.parametrize(
    "name",
    [
        "test_qlinearconv",
        "test_qlinearmatmul_3D_int8_float32",
        "test_convinteger_with_padding",  # uint8 weights, zero points as inputs: int32 path
        "test_matmulinteger",
    ],
)
def test_onnx_node_cases(name, tmp_path):
    assert_node_case(name, tmp_path)
