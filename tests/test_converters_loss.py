"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (tvmedge/frontend/converters/loss.py):
ONNX's node cases (expected outputs) and ONNX Runtime on classifier-like shapes."""

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx_graphs import assert_matches_onnxruntime, assert_node_case, const, io, model


@pytest.mark.parametrize(
    "name",
    [
        "test_nllloss_NCd1d2_with_weight_reduction_mean",
        "test_nllloss_NCd1_mean_weight_negative_ii",
        "test_nllloss_NCd1d2d3_sum_weight_high_ii",  # ignore_index 10 with 5 classes
        "test_sce_mean_weight_ii_4d_log_prob",  # both outputs
        "test_sce_none",
        "test_sce_mean_no_weight_ii_3d_expanded",  # the function body: LogSoftmax + NLL
    ],
)
def test_node_cases(name, tmp_path):
    assert_node_case(name, tmp_path)


@pytest.mark.parametrize(
    ("reduction", "target_type"),
    [
        ("none", TensorProto.INT64),
        ("sum", TensorProto.INT64),
        ("mean", TensorProto.INT64),
        ("mean", TensorProto.INT32),
    ],
)
def test_sce_against_onnxruntime(reduction, target_type, tmp_path):
    """Batch 4 of 10 classes with weights and an ignored class, int32 or int64 targets."""
    rng = np.random.default_rng(0)
    weight = rng.uniform(0.5, 2.0, 10).astype(np.float32)
    node = helper.make_node(
        "SoftmaxCrossEntropyLoss",
        ["x", "t", "w"],
        ["loss", "log_prob"],
        reduction=reduction,
        ignore_index=3,
    )
    loss_dims = [4] if reduction == "none" else []
    proto = model(
        [node],
        [io("x", [4, 10]), io("t", [4], target_type)],
        [io("loss", loss_dims), io("log_prob", [4, 10])],
        [const("w", weight, np.float32)],
    )
    np_type = np.int64 if target_type == TensorProto.INT64 else np.int32
    feeds = {
        "x": rng.standard_normal((4, 10)).astype(np.float32),
        "t": np.array([1, 3, 9, 0], np_type),
    }
    assert_matches_onnxruntime(proto, feeds, tmp_path)
