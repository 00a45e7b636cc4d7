"""Element-wise ops against ONNX's own node test cases (tvmedge/frontend/converters/
elementwise.py): IsInf's sign attributes, Mish's and Softplus's precision for negative x, Mod's
infinities and zeros."""

import pytest
from onnx_graphs import assert_node_case

CASES = [
    "test_isinf",
    "test_isinf_positive",
    "test_isinf_negative",
    "test_mish",
    "test_mish_expanded",
    "test_softplus",
    "test_mod_float_edge_cases_fmod_0_float32",
    "test_mod_float_edge_cases_fmod_0_float64",
    "test_mod_mixed_sign_float32",
    "test_mod_float32_mixed_sign_fmod_0",
    "test_mod_mixed_sign_int32",
]


@pytest.mark.parametrize("name", CASES)
def test_elementwise_node_cases(name, tmp_path):
    assert_node_case(name, tmp_path)
