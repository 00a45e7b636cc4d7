"""Constant's value_float(s)/value_int(s) attributes (tvmedge/frontend/converters/constant.py):
against ONNX Runtime, and ONNX's opset-18 expanded function bodies that use them."""

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx_graphs import assert_matches_onnxruntime, assert_node_case, io, model


@pytest.mark.parametrize(
    ("attr", "value", "dtype"),
    [
        ("value_float", 0.25, onnx.TensorProto.FLOAT),
        ("value_floats", [0.5, -1.5, 2.0], onnx.TensorProto.FLOAT),
        ("value_int", 3, onnx.TensorProto.INT64),
        ("value_ints", [1, -2, 7], onnx.TensorProto.INT64),
    ],
)
def test_attribute_forms(attr, value, dtype, tmp_path):
    """The constant is added to an input, so both its values and its dtype reach the output."""
    nodes = [
        helper.make_node("Constant", [], ["c"], **{attr: value}),
        helper.make_node("Add", ["x", "c"], ["y"]),
    ]
    proto = model(nodes, [io("x", [2, 3], dtype)], [io("y", [2, 3], dtype)], opset=18)
    np_dtype = np.float32 if dtype == onnx.TensorProto.FLOAT else np.int64
    x = np.arange(6).reshape(2, 3).astype(np_dtype)
    assert_matches_onnxruntime(proto, {"x": x}, tmp_path)


def test_ints_as_reshape_target(tmp_path):
    """value_ints as a shape input: TVM's Reshape needs it as a constant, which it is."""
    nodes = [
        helper.make_node("Constant", [], ["shape"], value_ints=[3, -1]),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    proto = model(nodes, [io("x", [2, 3])], [io("y", [3, 2])], opset=18)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert_matches_onnxruntime(proto, {"x": x}, tmp_path)


@pytest.mark.parametrize(
    "name",
    ["test_elu_expanded_ver18", "test_shrink_soft_expanded_ver18", "test_mvn_expanded_ver18"],
)
def test_expanded_node_cases(name, tmp_path):
    assert_node_case(name, tmp_path)
