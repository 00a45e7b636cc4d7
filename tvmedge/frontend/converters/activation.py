"""ONNX PRelu with the per-channel slope of opsets 1-6.

PRelu gained numpy (unidirectional) broadcasting in opset 7. Before that the spec left the
slope's layout open and exporters (PyTorch, Caffe2) wrote a 1-D slope of one value per channel,
axis 1 of an NC... tensor: ``test_PReLU_*_multiparam`` in the onnx backend tests is such a model
(X [2, 3, 4], slope [3]). TVM's converter applies numpy broadcasting at every opset, lines the
slope up with the last axis, and fails to build. ONNX Runtime implements PRelu from opset 7 only.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register


def _dims(expr: relax.Expr) -> list[int | None]:
    """Static dims as ints, symbolic ones as None."""
    return [int(d) if isinstance(d, tvm.tirx.IntImm) else None for d in expr.ty.shape.values]


def _per_channel(x: relax.Expr, slope: relax.Expr) -> bool:
    """Is ``slope`` a legacy per-channel slope: 1-D, one value per channel (axis 1) of ``x``,
    and not numpy-broadcastable to ``x`` (whose last axis has another size)?"""
    if slope.ty.shape is None or x.ty.shape is None or len(slope.ty.shape.values) != 1:
        return False
    (size,), x_dims = _dims(slope), _dims(x)
    return (
        size is not None
        and size > 1
        and len(x_dims) >= 2
        and x_dims[1] == size
        and x_dims[-1] is not None
        and x_dims[-1] != size
    )


@register("PRelu")
class PRelu(onnx_frontend.PRelu):
    """Opset 1-6: a 1-D slope with one value per channel applies along axis 1;
    opset 7+: TVM's converter (numpy broadcasting)."""

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        x, slope = inputs
        if _per_channel(x, slope):  # [C] -> [C, 1, ...]: numpy then aligns it with axis 1
            ones = [1] * (len(x.ty.shape.values) - 2)
            slope = bb.normalize(relax.op.reshape(slope, [int(slope.ty.shape.values[0]), *ones]))
        return onnx_frontend.PRelu._impl_v1(bb, [x, slope], attr, params)

    _impl_v7 = onnx_frontend.PRelu._impl_v1
