"""NonMaxSuppression, refused with its reason.

Its output has one row per selected box, a count known only once the boxes are seen. TVM's
converter failed to build ("Buffer T_gather is used before its definition": tvmedge's default
schedules inline a buffer that the kernel's hand-written search loop reads without declaring
it); with those kernels left unscheduled it builds, but gives an output of zero rows for every
node case, a silently wrong answer. Until a converter returns the data-dependent row count,
compile refuses the op.
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
