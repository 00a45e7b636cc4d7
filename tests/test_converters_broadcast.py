"""Expand by a run-time shape (tvmedge/frontend/converters/broadcast.py) against ONNX Runtime.

The shape is a graph input, so its values are only known when the model runs.
"""

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx_graphs import assert_matches_onnxruntime, const, io, model


def _expand(x_dims, shape_len: int, out_dims):
    return model(
        [helper.make_node("Expand", ["x", "shape"], ["y"])],
        [io("x", x_dims), io("shape", [shape_len], TensorProto.INT64)],
        [io("y", out_dims)],
    )


def _x(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    "shape",
    [[3, 1], [1, 3], [3, 1, 3], [3, 3, 1, 3], [2, 1, 1, 1], [1], [1, 3, 1]],
    ids=["shorter-keeps", "shorter-grows", "both-ways", "higher-rank", "lead-only", "one", "same"],
)
def test_static_input_run_time_shape(shape, tmp_path):
    rank = max(len(shape), 3)
    proto = _expand([1, 3, 1], len(shape), [f"d{i}" for i in range(rank)])
    feeds = {"x": _x(1, 3, 1), "shape": np.array(shape, np.int64)}
    assert_matches_onnxruntime(proto, feeds, tmp_path)


@pytest.mark.parametrize("shape", [[1, 4], [5, 4], [5, 1]])
def test_symbolic_input_dim(shape, tmp_path):
    proto = _expand(["n", 1], 2, ["a", "b"])
    feeds = {"x": _x(5, 1), "shape": np.array(shape, np.int64)}
    assert_matches_onnxruntime(proto, feeds, tmp_path)


def test_constant_shape_unchanged(tmp_path):
    proto = model(
        [helper.make_node("Expand", ["x", "shape"], ["y"])],
        [io("x", [3, 1])],
        [io("y", [2, 3, 4])],
        [const("shape", [2, 1, 4])],
    )
    assert_matches_onnxruntime(proto, {"x": _x(3, 1)}, tmp_path)
