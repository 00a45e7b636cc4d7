"""Normalizations against ONNX's own node test cases (tvmedge/frontend/converters/norm.py).

LayerNormalization's optional Mean and InvStdDev came back as scalars (TVM's placeholders);
BatchNormalization with training_mode=1 gave Y off by up to 6 and wrong running statistics.
Each case runs in a few seconds; one per rank and axis kind is enough to pin the shapes.
"""

import pytest
from onnx_graphs import assert_node_case

CASES = [
    "test_layer_normalization_2d_axis0",
    "test_layer_normalization_3d_axis1_epsilon",
    "test_layer_normalization_4d_axis_negative_1",
    "test_layer_normalization_default_axis",
    "test_batchnorm_example_training_mode",
    "test_batchnorm_epsilon_training_mode",
    "test_batchnorm_example",
]


@pytest.mark.parametrize("name", CASES)
def test_norm_node_cases(name, tmp_path):
    assert_node_case(name, tmp_path)
