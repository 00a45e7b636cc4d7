"""ONNX ConvTranspose with an explicit ``output_shape``.

TVM's converter ignores ``output_shape``: test_convtranspose_output_shape (3x3 input, strides
3 and 2, output_shape 10x8) came back 9x7, the size without it. The spec derives the pads from
it: ``total = stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1 - out``, split
begin/end as ``total - total // 2`` / ``total // 2`` (the larger half at the end for SAME_UPPER)
and replacing any ``pads``. A negative total asks for a larger output than the unpadded one:
ONNX Runtime and onnx's reference give the extra rows at the end and compute nothing there, so
they are zeros before the bias is added, which is what we emit (the conv, zero padding, bias).
"""

from __future__ import annotations

import tvm
from tvm import relax, tirx
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register


def _pads(attr: dict, in_sizes: list[int], kernel: list[int]) -> tuple[list[int], list[int]]:
    """(pads for the conv, begin then end; zeros appended at each axis's end)."""
    spatial = len(in_sizes)
    strides = attr.get("strides", [1] * spatial)
    dilations = attr.get("dilations", [1] * spatial)
    output_padding = attr.get("output_padding", [0] * spatial)
    out_sizes = list(attr["output_shape"])[-spatial:]  # some exporters write N and C too
    auto_pad = attr.get("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    begin, end, extra = [], [], []
    for i in range(spatial):
        total = (
            strides[i] * (in_sizes[i] - 1)
            + output_padding[i]
            + (kernel[i] - 1) * dilations[i]
            + 1
            - out_sizes[i]
        )
        extra.append(max(-total, 0))
        total = max(total, 0)
        small, large = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else large)
        end.append(large if auto_pad == "SAME_UPPER" else small)
    return begin + end, extra


@register("ConvTranspose")
class ConvTranspose(onnx_frontend.ConvTranspose):
    """``output_shape`` given: pads derived from it (spec above); otherwise TVM's converter."""

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        if "output_shape" not in attr:
            return onnx_frontend.ConvTranspose._impl_v1(bb, inputs, attr, params)
        data, weight = inputs[0], inputs[1]
        bias = inputs[2] if len(inputs) > 2 else None
        dims = list(data.ty.shape.values) if data.ty.shape is not None else None
        if dims is None or not all(isinstance(d, tirx.IntImm) for d in dims[2:]):
            raise tvm.error.OpNotImplemented(
                "ConvTranspose with output_shape needs static spatial input dims: bind the "
                "input's shape with --input-shape"
            )
        in_sizes = [int(d) for d in dims[2:]]
        kernel = list(attr.get("kernel_shape", [int(d) for d in weight.ty.shape.values[2:]]))
        pads, extra = _pads(attr, in_sizes, kernel)
        conv_attr = {k: v for k, v in attr.items() if k not in ("output_shape", "auto_pad")}
        conv_attr["pads"] = pads
        out = bb.normalize(
            onnx_frontend.ConvTranspose._impl_v1(bb, [data, weight, None], conv_attr, params)
        )
        if any(extra):
            widths = [0, 0, 0, 0] + [w for e in extra for w in (0, e)]
            out = bb.normalize(relax.op.nn.pad(out, widths))
        if bias is not None:
            shape = [1, -1] + [1] * len(in_sizes)
            out = relax.op.add(out, bb.normalize(relax.op.reshape(bias, shape)))
        return out
