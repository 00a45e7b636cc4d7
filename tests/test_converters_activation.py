"""PRelu (tvmedge/frontend/converters/activation.py) against ONNX Runtime.

ONNX Runtime implements PRelu from opset 7 only, so an opset-6 per-channel slope [C] is checked
against the opset-7 model with the slope written out as [C, 1, ...], which is what it means.
"""

import numpy as np
import pytest
from onnx import helper, numpy_helper
from onnx_graphs import (
    assert_matches_onnxruntime,
    assert_outputs_match,
    io,
    model,
    onnxruntime_outputs,
    tvmedge_outputs,
)


def _prelu(x_dims, slope: np.ndarray, opset: int):
    return model(
        [helper.make_node("PRelu", ["x", "slope"], ["y"])],
        [io("x", x_dims)],
        [io("y", x_dims)],
        [numpy_helper.from_array(slope, "slope")],
        opset=opset,
    )


def _x(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("x_shape", [(2, 3, 4), (2, 3, 4, 5), (2, 3, 4, 5, 6)])
def test_opset6_slope_per_channel(x_shape, tmp_path):
    slope = np.array([0.1, 0.5, 2.0], np.float32)
    x = _x(*x_shape)
    got = tvmedge_outputs(_prelu(list(x_shape), slope, opset=6), {"x": x}, tmp_path)
    per_channel = slope.reshape(3, *[1] * (len(x_shape) - 2))
    want = onnxruntime_outputs(_prelu(list(x_shape), per_channel, opset=7), {"x": x})
    assert_outputs_match(got, want)


def test_opset6_symbolic_batch(tmp_path):
    slope = np.array([0.1, 0.5, 2.0], np.float32)
    x = _x(5, 3, 4)
    got = tvmedge_outputs(_prelu(["N", 3, 4], slope, opset=6), {"x": x}, tmp_path)
    want = onnxruntime_outputs(_prelu(["N", 3, 4], slope.reshape(3, 1), opset=7), {"x": x})
    assert_outputs_match(got, want)


@pytest.mark.parametrize(
    "slope_shape",
    [(1,), (4,), (3, 1), (2, 3, 4)],
    ids=["shared", "last-axis", "channel-column", "full"],
)
def test_numpy_broadcast_slopes_unchanged(slope_shape, tmp_path):
    slope = np.random.default_rng(1).uniform(0.1, 2.0, slope_shape).astype(np.float32)
    for opset in (6, 9):  # opset 6 keeps numpy broadcasting wherever it applies
        reference = _prelu([2, 3, 4], slope, opset=max(opset, 7))
        got = tvmedge_outputs(_prelu([2, 3, 4], slope, opset), {"x": _x(2, 3, 4)}, tmp_path)
        assert_outputs_match(got, onnxruntime_outputs(reference, {"x": _x(2, 3, 4)}))


def test_opset9_last_axis_slope_matches_onnxruntime(tmp_path):
    slope = np.array([0.1, 0.5, 2.0, 3.0], np.float32)
    assert_matches_onnxruntime(_prelu([2, 3, 4], slope, opset=9), {"x": _x(2, 3, 4)}, tmp_path)
