"""ArgMax/ArgMin/Hardmax through tvmedge's default CPU schedules: their reduction block writes
an index and a value (a SeqStmt body), which the contraction rules must pass over, not fail on
(tvmedge/schedules/contraction.py). Node cases, and larger shapes against ONNX Runtime."""

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx_graphs import assert_matches_onnxruntime, assert_node_case, io, model


@pytest.mark.parametrize(
    "name",
    [
        "test_argmax_default_axis_example",
        "test_argmin_negative_axis_keepdims_random_select_last_index",
        "test_hardmax_axis_1",
    ],
)
def test_node_cases(name, tmp_path):
    assert_node_case(name, tmp_path)


@pytest.mark.parametrize(
    ("op", "shape", "axis"),
    [("ArgMax", (4, 1000), 1), ("ArgMin", (2, 64, 14, 14), 1), ("ArgMax", (3, 5, 128), -1)],
)
def test_against_onnxruntime(op, shape, axis, tmp_path):
    out_shape = list(shape)
    out_shape[axis] = 1
    proto = model(
        [helper.make_node(op, ["x"], ["y"], axis=axis)],
        [io("x", list(shape))],
        [io("y", out_shape, TensorProto.INT64)],
    )
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    assert_matches_onnxruntime(proto, {"x": x}, tmp_path)
