"""RMSNormalization (tvmedge/frontend/converters/normalization.py): ONNX's node cases, among
them the ones over every axis (which TVM's rms_norm failed to build), and float16 against
ONNX Runtime."""

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx_graphs import assert_node_case, const, io, model, onnxruntime_outputs, tvmedge_outputs


@pytest.mark.parametrize(
    "name",
    [
        "test_rms_normalization_4d_axis0",
        "test_rms_normalization_3d_axis_negative_3_epsilon",
        "test_rms_normalization_default_axis",
    ],
)
def test_node_cases(name, tmp_path):
    assert_node_case(name, tmp_path)


def test_float16_against_onnxruntime(tmp_path):
    rng = np.random.default_rng(0)
    node = helper.make_node("RMSNormalization", ["x", "w"], ["y"], axis=-1, epsilon=1e-6)
    proto = model(
        [node],
        [io("x", [2, 5, 64], TensorProto.FLOAT16)],
        [io("y", [2, 5, 64], TensorProto.FLOAT16)],
        [const("w", rng.uniform(0.5, 1.5, 64), np.float16)],
        opset=23,
    )
    x = rng.standard_normal((2, 5, 64)).astype(np.float16)
    (got,) = tvmedge_outputs(proto, {"x": x}, tmp_path)
    (want,) = onnxruntime_outputs(proto, {"x": x})
    assert got.dtype == np.float16
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)  # one float16 rounding step
