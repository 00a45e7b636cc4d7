"""Resize (tvmedge/frontend/converters/resize.py): nearest mode at ONNX's exact source indices,
antialias refused. test_resize_upsample_sizes_nearest (2x2 -> 7x8) put a row on the wrong
source pixel; constant scales with each coordinate and nearest mode are checked against ONNX
Runtime."""

import numpy as np
import pytest
from onnx import helper
from onnx_graphs import assert_matches_onnxruntime, const, io, model

from tvmedge import conformance
from tvmedge.errors import TvmedgeError


def _frozen(name: str) -> conformance.Case:
    (case,) = conformance.node_cases(f"^{name}$")
    return conformance.freeze_small_int_inputs(case)


def test_upsample_sizes_nearest_node_case(tmp_path):
    case = _frozen("test_resize_upsample_sizes_nearest")
    ((inputs, expected),) = case.data_sets
    artifact = conformance.compile_model(case.model, tmp_path)
    checks = conformance.compare_all(
        conformance.tvmedge_outputs(artifact, inputs), expected, case.rtol, case.atol
    )
    assert all(c["ok"] for c in checks), conformance.mismatch_reason(checks)


def test_antialias_is_refused(tmp_path):
    case = _frozen("test_resize_downsample_sizes_linear_antialias")
    with pytest.raises(TvmedgeError, match=r"Resize with antialias=1 is not supported"):
        conformance.compile_model(case.model, tmp_path)


@pytest.mark.parametrize(
    ("coord", "rounding", "scales"),
    [
        ("half_pixel", "round_prefer_floor", [1, 1, 3.5, 0.6]),
        ("asymmetric", "floor", [1, 1, 2.5, 1.5]),
        ("align_corners", "round_prefer_ceil", [1, 1, 1.75, 0.5]),
        ("tf_half_pixel_for_nn", "ceil", [1, 1, 0.75, 3.0]),
        ("pytorch_half_pixel", "round_prefer_floor", [1, 1, 3.0, 1.25]),
        ("asymmetric", "floor", [1, 1, 2.0, 2.0]),  # exact in float32: TVM's resize
    ],
)
def test_nearest_with_constant_scales_matches_onnxruntime(coord, rounding, scales, tmp_path):
    node = helper.make_node(
        "Resize",
        ["x", "", "scales"],
        ["y"],
        mode="nearest",
        coordinate_transformation_mode=coord,
        nearest_mode=rounding,
    )
    out = [1, 2] + [int(np.floor(d * s)) for d, s in zip((4, 5), scales[2:], strict=True)]
    proto = model(
        [node], [io("x", [1, 2, 4, 5])], [io("y", out)], [const("scales", scales, np.float32)], 19
    )
    x = np.arange(40, dtype=np.float32).reshape(1, 2, 4, 5)
    assert_matches_onnxruntime(proto, {"x": x}, tmp_path)
