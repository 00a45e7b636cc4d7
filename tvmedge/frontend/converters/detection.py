"""Detection ops tvmedge refuses rather than answer wrongly.

NonMaxSuppression: its output has one row per selected box, a count known only once the boxes
are seen. TVM's converter failed to build ("Buffer T_gather is used before its definition":
tvmedge's default schedules inline a buffer that the kernel's hand-written search loop reads
without declaring it); with those kernels left unscheduled it builds, but gives an output of
zero rows for every node case, a silently wrong answer. Until a converter returns the
data-dependent row count, compile refuses the op.

RoiAlign with ``mode="max"``: ONNX (its reference, and ONNX Runtime) takes, at each sampling
point, the largest of the four bilinear weights times their corner values, not the max of the
interpolated values that TVM's ``roi_align`` computes (test_roialign_mode_max: 71 of 75 values
off by up to 0.4). ``mode="avg"`` is TVM's converter.
"""

from __future__ import annotations

from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register


@register("NonMaxSuppression")
class NonMaxSuppression(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        raise NotImplementedError(
            "NonMaxSuppression is not supported: its output's row count depends on the boxes, "
            "and tvmedge's build of it returns no rows; run the model's post-processing (NMS) "
            "outside the compiled model"
        )

    _impl_v11 = _impl_v10


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
