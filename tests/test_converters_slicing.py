"""Slice before opset 10 (tvmedge/frontend/converters/slicing.py) against ONNX Runtime."""

import numpy as np
import pytest
from onnx import helper
from onnx_graphs import assert_matches_onnxruntime, const, io, model

INT_MAX = 2**63 - 1  # what exporters write for "to the end"


def _x():
    return np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)


@pytest.mark.parametrize(
    "attrs",
    [
        dict(starts=[0], ends=[1], axes=[0]),
        dict(starts=[1, 0], ends=[3, 2]),  # axes default to 0, 1, ...
        dict(starts=[-3], ends=[-1], axes=[2]),  # negative indices count from the end
        dict(starts=[1], ends=[INT_MAX], axes=[-1]),  # ends past the size are clamped
        dict(starts=[0, 2], ends=[2, 100], axes=[1, 2]),
    ],
    ids=["one-axis", "default-axes", "negative", "to-the-end", "two-axes"],
)
@pytest.mark.parametrize("opset", [1, 9])
def test_attribute_slice(attrs, opset, tmp_path):
    node = helper.make_node("Slice", ["x"], ["y"], **attrs)
    proto = model([node], [io("x", [2, 3, 4])], [io("y", ["a", "b", "c"])], opset=opset)
    assert_matches_onnxruntime(proto, {"x": _x()}, tmp_path)


def test_input_slice_unchanged(tmp_path):
    node = helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"])
    inits = [const("starts", [3, 0]), const("ends", [0, 2]), const("axes", [2, 0])]
    proto = model(
        [node],
        [io("x", [2, 3, 4])],
        [io("y", ["a", "b", "c"])],
        [*inits, const("steps", [-1, 1])],
    )
    assert_matches_onnxruntime(proto, {"x": _x()}, tmp_path)
