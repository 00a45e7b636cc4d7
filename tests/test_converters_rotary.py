"""RotaryEmbedding (tvmedge/frontend/converters/rotary.py) against ONNX's node cases, and its
expanded function body, whose Split leaves an empty part (no rotary_embedding_dim): the default
CPU schedules leave zero-size kernels alone instead of fusing their empty loops (which divided
by zero, tvmedge/schedules/common.blocks_of)."""

import numpy as np
import pytest
from onnx import helper
from onnx_graphs import assert_matches_onnxruntime, assert_node_case, const, io, model


@pytest.mark.parametrize(
    "name",
    [
        "test_rotary_embedding",
        "test_rotary_embedding_3d_input",
        "test_rotary_embedding_with_interleaved_rotary_dim",
        "test_rotary_embedding_no_position_ids",
        "test_rotary_embedding_expanded",
    ],
)
def test_node_cases(name, tmp_path):
    assert_node_case(name, tmp_path)


def test_empty_split_part_against_onnxruntime(tmp_path):
    """Split into 8 and 0 columns, each part scaled, concatenated back."""
    nodes = [
        helper.make_node("Split", ["x", "sizes"], ["a", "b"], axis=1),
        helper.make_node("Mul", ["a", "two"], ["a2"]),
        helper.make_node("Mul", ["b", "two"], ["b2"]),
        helper.make_node("Concat", ["a2", "b2"], ["y"], axis=1),
    ]
    proto = model(
        nodes,
        [io("x", [4, 8])],
        [io("y", [4, 8])],
        [const("sizes", [8, 0]), const("two", 2.0, np.float32)],
    )
    x = np.arange(32, dtype=np.float32).reshape(4, 8)
    assert_matches_onnxruntime(proto, {"x": x}, tmp_path)
