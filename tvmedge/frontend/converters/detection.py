"""RoiAlign with ``mode="max"`` is refused: ONNX (its reference, and ONNX Runtime) takes, at
each sampling point, the largest of the four bilinear weights times their corner values, not
the max of the interpolated values that TVM's ``roi_align`` computes (test_roialign_mode_max:
71 of 75 values off by up to 0.4). ``mode="avg"`` is TVM's converter."""

from __future__ import annotations

from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register


@register("RoiAlign")
class RoiAlign(onnx_frontend.RoiAlign):
    @classmethod
    def _impl(cls, bb, inputs, attr, params, default_coordinate_transformation_mode):
        mode = attr.get("mode", b"avg")
        if (mode.decode() if isinstance(mode, bytes) else mode) == "max":
            raise NotImplementedError(
                "RoiAlign mode 'max' is not supported (ONNX's max of weighted corner values "
                "differs from TVM's roi_align); use mode 'avg'"
            )
        return onnx_frontend.RoiAlign._impl(
            bb, inputs, attr, params, default_coordinate_transformation_mode
        )
