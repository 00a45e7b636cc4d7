"""ONNX's QOperator format (what ``quantize_static(quant_format=QOperator)`` writes):
QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger and com.microsoft's QGemm, QLinearAdd
and QLinearGlobalAveragePool, none of which TVM imports but MatMulInteger.

The ops with a requantized output are imported as the QDQ form they stand for (dequantize,
the float op, quantize), which the ``int8`` rewrite (tvmedge.rewrites.int8) then lowers to
the same integer compute as a QDQ model's: int8 weights, int32 accumulation, the requantize
in the epilogue. What it does not lower (a 1-D or 3-D conv, a pooling) stays correct float
compute between fake-quant ops. ConvInteger and MatMulInteger have int32 outputs and no
requantize, so they become integer ops here: with a constant int8 weight of zero point 0,
``pad(x, zp_x)`` then conv2d (or matmul) with int32 accumulation minus ``zp_x * sum(W)``.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register


def _arg(inputs, i):
    return inputs[i] if len(inputs) > i else None


def _dq(x, scale, zp, axis: int = 0):
    """dequantize(x) with ONNX's defaults (zero point 0); ``axis`` for per-channel scales."""
    if zp is None:
        zp = relax.const(0, str(x.ty.dtype))
    per_channel = scale.ty.shape is not None and len(scale.ty.shape.values) == 1
    return relax.op.dequantize(x, scale, zp, axis=axis if per_channel else 0, out_dtype="float32")


def _q(bb, y, scale, zp):
    y = bb.normalize(y)
    dtype = "uint8" if zp is None else str(zp.ty.dtype)
    if zp is None:
        zp = relax.const(0, dtype)
    return relax.op.quantize(y, scale, zp, axis=0, out_dtype=dtype)


def _bias(b, x_scale, w_scale):
    """A QLinear op's int32 bias, dequantized with the scale x_scale * w_scale (a float32
    constant, as ONNX Runtime computes it, when both scales are constants)."""
    if isinstance(x_scale, tvm.ir.GenericConst) and isinstance(w_scale, tvm.ir.GenericConst):
        scale = relax.const(x_scale.value.numpy() * w_scale.value.numpy())
    else:
        scale = relax.op.multiply(x_scale, w_scale)
    return relax.op.dequantize(b, scale, relax.const(0, "int32"), axis=0, out_dtype="float32")


@register("QLinearConv")
class QLinearConv(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        x, xs, xz, w, ws, wz, ys, yz = (_arg(inputs, i) for i in range(8))
        b = _arg(inputs, 8)
        fx, fw = bb.normalize(_dq(x, xs, xz)), bb.normalize(_dq(w, ws, wz, axis=0))
        fb = bb.normalize(_bias(b, xs, ws)) if b is not None else None
        y = onnx_frontend.Conv._impl_v11(bb, [fx, fw, fb], dict(attr), params)
        return _q(bb, y, ys, yz)


@register("QLinearMatMul")
class QLinearMatMul(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        a, as_, az, b, bs, bz, ys, yz = (_arg(inputs, i) for i in range(8))
        axis = max(len(b.ty.shape.values) - 1, 0) if b.ty.shape is not None else 0
        y = relax.op.matmul(bb.normalize(_dq(a, as_, az)), bb.normalize(_dq(b, bs, bz, axis)))
        return _q(bb, y, ys, yz)


@register("QGemm", domain="com.microsoft")
class QGemm(onnx_frontend.OnnxOpConverter):
    """Y = quantize(alpha * A' B' + C): A', B' the dequantized (transposed) inputs, C int32
    at the scale a_scale * b_scale; without y_scale the output stays float."""

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        a, as_, az, b, bs, bz, c, ys, yz = (_arg(inputs, i) for i in range(9))
        trans_b = bool(attr.get("transB", 0))
        fa = bb.normalize(_dq(a, as_, az))
        fb = bb.normalize(_dq(b, bs, bz, axis=0 if trans_b else 1))
        fc = bb.normalize(_bias(c, as_, bs)) if c is not None else None
        gemm = {k: v for k, v in attr.items() if k in ("alpha", "transA", "transB")}
        y = onnx_frontend.Gemm._impl_v13(bb, [fa, fb, fc], gemm, params)
        return y if ys is None else _q(bb, y, ys, yz)


@register("QLinearAdd", domain="com.microsoft")
class QLinearAdd(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        a, as_, az, b, bs, bz, ys, yz = (_arg(inputs, i) for i in range(8))
        y = relax.op.add(bb.normalize(_dq(a, as_, az)), bb.normalize(_dq(b, bs, bz)))
        return _q(bb, y, ys, yz)


@register("QLinearGlobalAveragePool", domain="com.microsoft")
class QLinearGlobalAveragePool(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        x, xs, xz, ys, yz = (_arg(inputs, i) for i in range(5))
        rank = len(x.ty.shape.values)
        axes = list(range(1, rank - 1)) if attr.get("channels_last", 0) else list(range(2, rank))
        y = relax.op.mean(bb.normalize(_dq(x, xs, xz)), axis=axes, keepdims=True)
        return _q(bb, y, ys, yz)


def _integer_weight(w, zp) -> np.ndarray | None:
    """A constant int8 weight with zero point 0 (or none), as numpy; else None."""
    if not isinstance(w, tvm.ir.GenericConst) or str(w.ty.dtype) != "int8":
        return None
    if zp is not None and (
        not isinstance(zp, tvm.ir.GenericConst) or np.any(zp.value.numpy() != 0)
    ):
        return None
    return w.value.numpy()


def _scalar_zero_point(zp) -> int | None:
    if zp is None:
        return 0
    if isinstance(zp, tvm.ir.GenericConst) and zp.value.numpy().size == 1:
        return int(zp.value.numpy().reshape(()))
    return None


@register("ConvInteger")
class ConvInteger(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        x, w, xz, wz = (_arg(inputs, i) for i in range(4))
        weight, zp = _integer_weight(w, wz), _scalar_zero_point(xz)
        if weight is None or zp is None or weight.ndim != 4 or "auto_pad" in attr:
            # general case: the zero points subtracted in int32, then an int32 conv
            xi = relax.op.astype(x, "int32")
            wi = relax.op.astype(w, "int32")
            if xz is not None:
                xi = relax.op.subtract(xi, relax.op.astype(xz, "int32"))
            if wz is not None:
                shape = [-1] + [1] * (len(w.ty.shape.values) - 1)
                wz32 = relax.op.reshape(bb.normalize(relax.op.astype(wz, "int32")), shape)
                wi = relax.op.subtract(wi, wz32)
            conv = {k: v for k, v in attr.items()}
            return onnx_frontend.Conv._impl_v11(
                bb, [bb.normalize(xi), bb.normalize(wi), None], conv, params
            )
        pads = list(attr.get("pads", [0, 0, 0, 0]))
        if any(pads):
            x = bb.normalize(
                relax.op.nn.pad(
                    x, [0, 0, 0, 0, pads[0], pads[2], pads[1], pads[3]], pad_value=float(zp)
                )
            )
        acc = relax.op.nn.conv2d(
            x,
            w,
            strides=list(attr.get("strides", [1, 1])),
            dilation=list(attr.get("dilations", [1, 1])),
            groups=int(attr.get("group", 1)),
            out_dtype="int32",
        )
        if zp == 0:
            return acc
        offset = -zp * weight.astype("int64").sum(axis=(1, 2, 3))
        return relax.op.add(acc, relax.const(offset.astype("int32").reshape(1, -1, 1, 1)))


@register("MatMulInteger")
class MatMulInteger(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        a, b, az, bz = (_arg(inputs, i) for i in range(4))
        weight, zp = _integer_weight(b, bz), _scalar_zero_point(az)
        if weight is None or zp is None or weight.ndim != 2:
            return onnx_frontend.MatMulInteger._impl_v10(bb, inputs, attr, params)
        acc = relax.op.matmul(a, b, out_dtype="int32")
        if zp == 0:
            return acc
        offset = -zp * weight.astype("int64").sum(axis=0)
        return relax.op.add(acc, relax.const(offset.astype("int32")))
