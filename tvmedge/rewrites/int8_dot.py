"""Integer convs and matmuls with their int8 weights packed for the target's dot-product
instruction (x86 ``vpdpbusd``, aarch64 ``sdot``, x86 ``vpmaddwd`` without VNNI: see
tvmedge.schedules.int8_intrin), so tvmedge.schedules.int8_dot can tensorize.

The instruction multiplies ``r`` (4, or 2 for vpmaddwd) consecutive activation bytes with ``r``
weight bytes of each of ``lanes`` output channels and adds the sums to ``lanes`` int32
accumulators. So the constant weights are repacked here, once, as ``(N / lanes, ..., K / r,
lanes, r)``: one vector load is the r reduction elements of ``lanes`` output channels. K and N
that are not multiples are padded
with zero weights (an activation channel padded with zeros too), and the padded output
channels are computed in the kernel's registers and never written.

It takes what the ``int8`` rewrite emits, after ``layout-nhwc``: ``R.matmul(x, W, out_dtype=
"int32")`` with a constant int8 ``W`` of shape (K, N), and ``R.nn.conv2d`` NHWC/HWIO, one group,
no padding of its own (the int8 rewrite pads explicitly, with the zero point), out_dtype
int32; the activation must be the instruction's (u8 for VNNI, s8 for sdot). Each becomes a
``call_tir`` whose reduction block is annotated with the instruction's name; the epilogue
(zero-point correction, bias, requantize) fuses with it as with the op it replaces. Other
integer convs (depthwise, grouped) keep the default schedules.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax, te, tirx
from tvm.relax.expr_functor import PyExprMutator, mutator

from tvmedge.rewrites.mutate import channels_last_conv2d, rewrite_functions
from tvmedge.schedules.int8_intrin import ANNOTATION, Dot

OUT_EWISE_FUSABLE = 4  # relay OpPatternKind: FuseOps fuses the element-wise ops that follow


def _up(n: int, m: int) -> int:
    return -(-n // m) * m


def pack_matmul_weight(w: np.ndarray, lanes: int, reduce: int = 4) -> np.ndarray:
    """(K, N) int8 -> (N/lanes, K/reduce, lanes, reduce), zero-padded to whole blocks."""
    k, n = w.shape
    kp, np_ = _up(k, reduce), _up(n, lanes)
    padded = np.zeros((kp, np_), w.dtype)
    padded[:k, :n] = w
    return np.ascontiguousarray(
        padded.reshape(kp // reduce, reduce, np_ // lanes, lanes).transpose(2, 0, 3, 1)
    )


def pack_conv_weight(w: np.ndarray, lanes: int, reduce: int = 4) -> np.ndarray:
    """HWIO int8 -> (O/lanes, H, W, I/reduce, lanes, reduce), zero-padded to whole blocks."""
    kh, kw, c, o = w.shape
    cp, op = _up(c, reduce), _up(o, lanes)
    padded = np.zeros((kh, kw, cp, op), w.dtype)
    padded[:, :, :c, :o] = w
    blocks = padded.reshape(kh, kw, cp // reduce, reduce, op // lanes, lanes)
    return np.ascontiguousarray(blocks.transpose(4, 0, 1, 2, 5, 3))


def _crop(acc: te.Tensor, n_out: int) -> te.Tensor:
    """The real output channels of ``acc``: the write-back of the kernel's register tile."""
    return te.compute((*acc.shape[:-1], n_out), lambda *i: acc[i], name="int8_dot_out")


def packed_matmul(x: te.Tensor, w: te.Tensor, n_out: int, dot: str) -> te.Tensor:
    """``x (..., Kp) u8|s8`` times packed ``w`` -> int32 (..., n_out)."""
    *batch, kp = x.shape
    blocks, _, lanes, r = (int(d) for d in w.shape)
    k = te.reduce_axis((0, kp), name="k")

    def value(*i):
        *b, n = i
        a = x[(*b, k)].astype("int32")
        return te.sum(a * w[n // lanes, k // r, n % lanes, k % r].astype("int32"), axis=k)

    acc = te.compute((*batch, blocks * lanes), value, name="int8_dot", attrs={ANNOTATION: dot})
    return _crop(acc, n_out)


def packed_conv2d(x, w, n_out, strides, dilation, dot: str) -> te.Tensor:
    """NHWC ``x`` (already padded) convolved with packed ``w`` -> int32 NHWC (.., n_out)."""
    n, h, wd, cp = (int(d) for d in x.shape)
    blocks, kh, kw, _, lanes, r = (int(d) for d in w.shape)
    (sh, sw), (dh, dw) = strides, dilation
    out_h, out_w = (h - dh * (kh - 1) - 1) // sh + 1, (wd - dw * (kw - 1) - 1) // sw + 1
    rh = te.reduce_axis((0, kh), name="rh")
    rw = te.reduce_axis((0, kw), name="rw")
    rc = te.reduce_axis((0, cp), name="rc")

    def value(b, y, xx, o):
        a = x[b, y * sh + rh * dh, xx * sw + rw * dw, rc].astype("int32")
        wt = w[o // lanes, rh, rw, rc // r, o % lanes, rc % r].astype("int32")
        return te.sum(a * wt, axis=[rh, rw, rc])

    shape = (n, out_h, out_w, blocks * lanes)
    acc = te.compute(shape, value, name="int8_dot", attrs={ANNOTATION: dot})
    return _crop(acc, n_out)


def _static(expr) -> list[int] | None:
    shape = getattr(expr.ty, "shape", None)
    if shape is None or not all(isinstance(d, tirx.IntImm) for d in shape.values):
        return None
    return [int(d) for d in shape.values]


def _int8_weight(call, act_dtype: str) -> np.ndarray | None:
    """The constant int8 weight of an int32 ``call`` on ``act_dtype`` activations, or None."""
    if str(call.ty.dtype) != "int32":
        return None
    data, weight = call.args
    if not isinstance(weight, tvm.ir.GenericConst) or str(weight.ty.dtype) != "int8":
        return None
    if str(data.ty.dtype) != act_dtype:
        return None
    return weight.value.numpy()


def _operand(builder, x, width: int, dot: Dot):
    """``x`` as the kernel reads it: its last axis zero-padded to ``width``, widened when the
    instruction takes wider activations (fused into the kernel with the padding copy)."""
    shape = _static(x)
    if shape[-1] != width:
        pads = [0] * (2 * len(shape) - 1) + [width - shape[-1]]
        x = builder.emit(relax.op.nn.pad(x, pads, pad_value=0.0))
    return builder.emit(relax.op.astype(x, dot.widen)) if dot.widen else x


@mutator
class _PackInt8(PyExprMutator):
    def __init__(self, mod: tvm.IRModule, dot: Dot, report: dict):
        super().__init__(mod)
        self.dot = dot
        self.report = report

    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        op = getattr(call.op, "name", "")
        if op == "relax.matmul":
            return self._matmul(call)
        if op == "relax.nn.conv2d":
            return self._conv2d(call)
        return call

    def _count(self, key: str) -> None:
        self.report[key] = self.report.get(key, 0) + 1

    def _matmul(self, call):
        w = _int8_weight(call, self.dot.act_dtype)
        if w is None or w.ndim != 2 or _static(call.args[0]) is None:
            return call
        x = _operand(self.builder_, call.args[0], _up(w.shape[0], self.dot.reduce), self.dot)
        packed = relax.const(pack_matmul_weight(w, self.dot.lanes, self.dot.reduce))
        self._count("matmul")
        return self.builder_.call_te(
            packed_matmul,
            x,
            packed,
            w.shape[1],
            self.dot.name,
            primfunc_name_hint=f"int8_matmul_{self.dot.name}",
            primfunc_attrs={"op_pattern": OUT_EWISE_FUSABLE},
        )

    def _conv2d(self, call):
        if not channels_last_conv2d(call) or int(call.attrs.groups) != 1:
            return call
        if any(int(p) != 0 for p in call.attrs.padding):
            return call  # the int8 rewrite pads explicitly, with the activation's zero point
        w = _int8_weight(call, self.dot.act_dtype)
        if w is None or _static(call.args[0]) is None:
            return call
        x = _operand(self.builder_, call.args[0], _up(w.shape[2], self.dot.reduce), self.dot)
        packed = relax.const(pack_conv_weight(w, self.dot.lanes, self.dot.reduce))
        self._count("conv2d")
        return self.builder_.call_te(
            packed_conv2d,
            x,
            packed,
            w.shape[3],
            [int(s) for s in call.attrs.strides],
            [int(d) for d in call.attrs.dilation],
            self.dot.name,
            primfunc_name_hint=f"int8_conv2d_{self.dot.name}",
            primfunc_attrs={"op_pattern": OUT_EWISE_FUSABLE},
        )


def pack_int8(dot: Dot, report: dict) -> tvm.transform.Pass:
    """The pass that packs int8 convs and matmuls for ``dot``; counts them in ``report``."""

    @tvm.transform.module_pass(opt_level=0, name="tvmedge.PackInt8")
    def run(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return rewrite_functions(_PackInt8(mod, dot, report), mod)

    return run
