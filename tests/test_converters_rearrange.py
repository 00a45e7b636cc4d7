"""SpaceToDepth's opset-28 modes against ONNX's own node cases (converters/rearrange.py): CRD
came back in DCR order (36 of 48 values off)."""

import pytest
from onnx_graphs import assert_node_case


@pytest.mark.parametrize(
    "name", ["test_spacetodepth_crd_mode_example", "test_spacetodepth_dcr_mode_example"]
)
def test_space_to_depth_modes(name, tmp_path):
    assert_node_case(name, tmp_path)
