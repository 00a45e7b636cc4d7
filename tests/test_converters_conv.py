"""Convolutions against ONNX's own node test cases (expected outputs shipped with onnx).

test_convtranspose_group_2_image_3 (a batch of 3) was off by up to 162: the default CPU
schedule tiled the fused (batch, channel, row) axes in tiles that were not boxes of them, and
each tile's write-back covered pixels of other tiles (tvmedge/schedules/common.py, is_box).
"""

import pytest
from onnx_graphs import assert_node_case

CONV_TRANSPOSE = [
    "test_convtranspose",
    "test_convtranspose_1d",
    "test_convtranspose_3d",
    "test_convtranspose_autopad_same",
    "test_convtranspose_dilations",
    "test_convtranspose_group_2",
    "test_convtranspose_group_2_image_3",
    "test_convtranspose_kernel_shape",
    "test_convtranspose_pad",
    "test_convtranspose_pads",
]


@pytest.mark.parametrize("name", CONV_TRANSPOSE)
def test_conv_transpose_node_cases(name, tmp_path):
    assert_node_case(name, tmp_path)
