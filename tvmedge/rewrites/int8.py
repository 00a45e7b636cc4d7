"""Integer compute for quantized (QDQ) models: ``dq -> Conv|MatMul|Gemm -> q`` as an int8 op.

ONNX Runtime's ``quantize_static`` and QAT exporters write int8 models as float compute
between fake-quant ops; TVM imports them that way (dequantize, float conv, quantize), which
gains neither size nor speed. This rewrite takes every

    quantize(act(dequantize(x_q) (*) dequantize(W_q) + dequantize(b_q)), s_y, zp_y)

where (*) is a conv2d (NCHW/OIHW) or a matmul with a constant (K, N) weight (a Gemm's
transposed weight included), W_q int8 with zero point 0 (per tensor or per output channel),
x_q per tensor, the bias and ``act`` (ReLU, Clip) optional, and computes it as:

    x   = x_q as the target's activation dtype (uint8 on x86, int8 on ARM: a shift by 128
          with the zero point shifted alike, exact)
    x   = pad(x, pad_value=zp_x)                    when the conv pads (zp_x reads as 0)
    acc = conv2d|matmul(x, W_q, out_dtype=int32)
    acc = acc + (b_int32 - zp_x * sum(W_q))          one int32 constant per output channel
    y   = clip(round(float32(acc) * (s_x * s_w / s_y)) + zp_y, the dtype's or act's range)

in that order, as ONNX Runtime requantizes (float32 scale, round half to even), so results
agree with its int8 kernels but for ties of the rounding. The int8 kernels (tvmedge's
schedules) match these forms. The output is the quantize's own dtype, so consecutive integer
layers pass int8 to each other and the q -> dq pairs between them disappear. Anything else
(pooling, a residual Add, Concat, per-channel activation scales, nonzero weight zero points)
keeps TVM's fake-quant float form, which is correct, only not faster.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax, tirx
from tvm.relax.expr_functor import PyExprMutator, mutator

from tvmedge.rewrites.mutate import rewrite_functions

_RANGES = {"uint8": (0, 255), "int8": (-128, 127)}


def _op(expr) -> str:
    return getattr(expr.op, "name", "") if isinstance(expr, relax.Call) else ""


def _scalar(expr):
    """The value of a constant scalar operand (a PrimValue or IntImm/FloatImm), else None."""
    if isinstance(expr, relax.PrimValue):
        expr = expr.value
    if isinstance(expr, tirx.IntImm | tirx.FloatImm):
        return float(expr.value)
    return None


@mutator
class _Integer(PyExprMutator):
    def __init__(self, mod: tvm.IRModule, activation: str, report: dict):
        super().__init__(mod)
        self.activation = activation  # the dtype integer ops read: uint8 (x86), int8 (ARM)
        self.report = report

    # -- reading the float graph ---------------------------------------------------------
    def _bound(self, expr):
        """What ``expr`` is: the value bound to a variable, or the expression itself."""
        while isinstance(expr, relax.Var):
            value = self.lookup_binding(expr)
            if value is None:
                return expr
            expr = value
        return expr

    def _const(self, expr) -> np.ndarray | None:
        """``expr`` as a numpy array when it is a constant, a dequantized constant, or one
        reshaped; else None."""
        expr = self._bound(expr)
        if isinstance(expr, tvm.ir.GenericConst):
            return expr.value.numpy()
        if _op(expr) == "relax.reshape":
            value = self._const(expr.args[0])
            shape = getattr(expr.ty, "shape", None)
            if value is None or shape is None:
                return None
            return value.reshape([int(d) for d in shape.values])
        dq = self._dequantized(expr)
        if dq is not None and isinstance(dq[0], np.ndarray):
            data, scale, zp, axis = dq
            shape = [1] * data.ndim
            if scale.ndim:
                shape[axis] = -1
            return (data.astype("float64") - zp.reshape(shape)) * scale.reshape(shape)
        return None

    def _dequantized(self, expr):
        """(data, scale, zero point, axis) of a dequantize with constant scale and zero point;
        data is a numpy array when it is a constant, else the (integer) expression."""
        expr = self._bound(expr)
        if _op(expr) != "relax.dequantize":
            return None
        data, scale, zp = expr.args
        scale, zp = self._const(scale), self._const(zp)
        if scale is None or zp is None:
            return None
        inner = self._bound(data)
        value = inner.value.numpy() if isinstance(inner, tvm.ir.GenericConst) else data
        axis = int(expr.attrs.axis)
        if isinstance(value, np.ndarray):
            axis %= max(value.ndim, 1)
        return value, scale.astype("float32"), zp.astype("int64"), axis

    def _activation(self, expr):
        """(data, scale, zero point) of a per-tensor dequantized activation, else None."""
        dq = self._dequantized(expr)
        if dq is None or isinstance(dq[0], np.ndarray):
            return None
        data, scale, zp, _ = dq
        if scale.size != 1 or zp.size != 1 or str(data.ty.dtype) not in _RANGES:
            return None
        return data, np.float32(scale.reshape(())), int(zp.reshape(()))

    def _weight(self, expr, permute: list[int] | None = None):
        """(int8 weight, its float32 scales broadcast to the weight, whether they are per
        channel) of a constant dequantized with zero point 0, permuted by ``permute``."""
        dq = self._dequantized(expr)
        if dq is None or not isinstance(dq[0], np.ndarray):
            return None
        data, scale, zp, axis = dq
        if data.dtype != np.int8 or np.any(zp != 0):
            return None
        shape = [1] * data.ndim
        if scale.ndim:
            shape[axis] = -1
        scales = np.broadcast_to(scale.reshape(shape), data.shape)
        if permute is not None:
            data, scales = np.transpose(data, permute), np.transpose(scales, permute)
        return data, scales, scale.size > 1

    def _core(self, expr):
        """(kind, call, activation, int8 weight, per-output-channel weight scales, reduction
        axes of the weight, whether it was quantized per channel) of a float conv2d or matmul
        of a dequantized activation and weight, else None."""
        call = self._bound(expr)
        name = _op(call)
        if name == "relax.nn.conv2d":
            attrs = call.attrs
            if (attrs.data_layout, attrs.kernel_layout) != ("NCHW", "OIHW"):
                return None
            if attrs.out_layout not in ("NCHW", ""):
                return None
            weight = self._weight(call.args[1])
            out_axis, reduce_axes = 0, (1, 2, 3)
        elif name == "relax.matmul":
            w = self._bound(call.args[1])
            if _op(w) == "relax.permute_dims" and [int(a) for a in w.attrs.axes] == [1, 0]:
                weight = self._weight(w.args[0], [1, 0])
            else:
                weight = self._weight(w)
            out_axis, reduce_axes = 1, (0,)
        else:
            return None
        x = self._activation(call.args[0])
        if weight is None or x is None or weight[0].ndim != (4 if out_axis == 0 else 2):
            return None
        data, scales, by_channel = weight
        per_channel = np.moveaxis(scales, out_axis, 0).reshape(scales.shape[out_axis], -1)
        if not np.all(per_channel == per_channel[:, :1]):
            return None  # the scale varies along the reduction: no integer accumulation
        kind = "conv2d" if out_axis == 0 else "matmul"
        return kind, call, x, data, per_channel[:, 0], reduce_axes, by_channel

    # -- the rewrite ---------------------------------------------------------------------
    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        if _op(call) != "relax.quantize":
            return call
        lowered = self._lower(call)
        return call if lowered is None else lowered

    def _lower(self, quantize):
        out_dtype = str(quantize.attrs.out_dtype)
        s_y, zp_y = self._const(quantize.args[1]), self._const(quantize.args[2])
        if out_dtype not in _RANGES or s_y is None or zp_y is None or s_y.size != 1:
            return None
        s_y, zp_y = np.float32(s_y.reshape(())), int(zp_y.reshape(()))
        lo, hi = _RANGES[out_dtype]
        node = self._bound(quantize.args[0])
        if _op(node) == "relax.nn.relu":
            lo, node = max(lo, zp_y), self._bound(node.args[0])
        elif _op(node) == "relax.clip":
            bounds = [_scalar(b) for b in node.args[1:]]
            if None in bounds:
                return None
            lo = max(lo, int(np.round(bounds[0] / s_y)) + zp_y)
            hi = min(hi, int(np.round(bounds[1] / s_y)) + zp_y)
            node = self._bound(node.args[0])
        bias = None
        core = self._core(node)
        if core is None and _op(node) == "relax.add":
            for i in (0, 1):
                core = self._core(node.args[i])
                if core is not None:
                    bias = self._const(node.args[1 - i])
                    break
            if bias is None:
                return None  # a computed addend: not a bias
        if core is None or lo > hi:
            return None
        kind, call, (x, s_x, zp_x), w, s_w, reduce_axes, by_channel = core
        channels = w.shape[0] if kind == "conv2d" else w.shape[1]
        acc_scale = s_x * s_w  # float32, as ONNX Runtime scales the bias
        if bias is None:
            b_int = np.zeros(channels, "int64")
        else:
            if not _per_channel(bias.shape, channels, 4 if kind == "conv2d" else None):
                return None  # an addend that broadcasts along another axis: not a bias
            b_int = np.round(bias.reshape(-1) / acc_scale.astype("float64")).astype("int64")
        x, zp_x = self._as_activation(x, zp_x)
        offset = b_int - zp_x * w.astype("int64").sum(axis=reduce_axes)
        if np.abs(offset).max(initial=0) >= 2**31:
            return None
        if kind == "conv2d":
            acc = self._conv2d(call, x, zp_x, w)
            shape = [1, channels, 1, 1]
        else:
            acc = self.builder_.emit(relax.op.matmul(x, relax.const(w), out_dtype="int32"))
            shape = [channels]
        multiplier = (acc_scale / s_y).astype("float32")  # (s_x * s_w) / s_y in float32
        v = relax.op.add(acc, relax.const(offset.astype("int32").reshape(shape)))
        v = relax.op.multiply(relax.op.astype(v, "float32"), relax.const(multiplier.reshape(shape)))
        v = relax.op.add(relax.op.round(v), relax.const(np.float32(zp_y)))
        # maximum/minimum rather than clip: layout conversion moves them with the conv
        v = relax.op.minimum(
            relax.op.maximum(v, relax.const(np.float32(lo))), relax.const(np.float32(hi))
        )
        v = relax.op.astype(v, out_dtype)
        self._count(kind, w, by_channel)
        return v

    def _as_activation(self, x, zp: int):
        """``x`` in the activation dtype integer ops read, its zero point shifted alike."""
        dtype = str(x.ty.dtype)
        if dtype == self.activation:
            return x, zp
        shift = 128 if self.activation == "uint8" else -128
        wide = relax.op.add(relax.op.astype(x, "int16"), relax.const(shift, "int16"))
        return self.builder_.emit(relax.op.astype(wide, self.activation)), zp + shift

    def _conv2d(self, call, x, zp_x: int, w: np.ndarray):
        attrs = call.attrs
        top, left, bottom, right = (int(p) for p in attrs.padding)
        if top or left or bottom or right:
            widths = [0, 0, 0, 0, top, bottom, left, right]
            x = self.builder_.emit(relax.op.nn.pad(x, widths, pad_value=float(zp_x)))
        return self.builder_.emit(
            relax.op.nn.conv2d(
                x,
                relax.const(w),
                strides=[int(s) for s in attrs.strides],
                padding=[0, 0, 0, 0],
                dilation=[int(d) for d in attrs.dilation],
                groups=int(attrs.groups),
                data_layout="NCHW",
                kernel_layout="OIHW",
                out_dtype="int32",
            )
        )

    def _count(self, kind: str, w: np.ndarray, by_channel: bool) -> None:
        r = self.report
        r[kind] = r.get(kind, 0) + 1
        key = "per_channel" if by_channel else "per_tensor"
        r[key] = r.get(key, 0) + 1
        before, after = r.get("weight_bytes", [0, 0])
        r["weight_bytes"] = [before + 4 * w.size, after + w.size]  # fp32 folded vs int8


def _per_channel(shape, channels: int, rank: int | None) -> bool:
    """Whether an addend of ``shape`` holds one value per output channel: (1, C, 1, 1) or
    (C, 1, 1) for an NCHW conv (``rank`` 4), (..., C) with ones before it for a matmul."""
    shape = tuple(shape)
    if rank is not None:
        shape = (1,) * (rank - len(shape)) + shape
        return len(shape) == rank and shape[1] == channels and np.prod(shape) == channels
    return len(shape) >= 1 and shape[-1] == channels and np.prod(shape) == channels


def lower_to_integer(report: dict, activation: str = "uint8") -> tvm.transform.Pass:
    """The rewrite's pass: integer ops reading ``activation`` (uint8 on x86, int8 on ARM);
    ``report`` gets the counts (conv2d, matmul, per_channel, per_tensor, weight_bytes)."""

    @tvm.transform.module_pass(opt_level=0, name="tvmedge.Int8")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return rewrite_functions(_Integer(mod, activation, report), mod)

    return _pass


def activation_dtype(target) -> str:
    """What integer ops read on ``target``: int8 on ARM (sdot), uint8 elsewhere (VNNI's
    vpdpbusd multiplies unsigned by signed bytes)."""
    return "int8" if getattr(target, "family", None) in ("aarch64", "armv7") else "uint8"


def integer_compute(mod: tvm.IRModule) -> list[str]:
    """The TIR kernels of ``mod`` (legalized or later) that accumulate 8-bit integers into
    int32: a reduction block writing int32 from int8/uint8 buffers."""
    from tvmedge.schedules.common import blocks_of

    found = []
    for gv, func in mod.functions.items():
        blocks = blocks_of(func) if isinstance(func, tirx.PrimFunc) else None
        for info in (blocks or (None, []))[1]:
            block = blocks[0].get(info.block_rv)
            reads = {str(r.source.dtype) for r in block.reads}
            writes = {str(w.source.dtype) for w in block.writes}
            if info.is_reduction() and writes == {"int32"} and reads & set(_RANGES):
                found.append(gv.name_hint)
                break
    return sorted(found)
