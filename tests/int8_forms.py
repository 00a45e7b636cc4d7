"""The integer forms the ``int8`` rewrite emits (the agreed interface), built directly in Relax
with seeded weights, and a numpy reference of what they compute.

conv: ``R.nn.pad(x, zero point)`` when it pads, ``R.nn.conv2d(NCHW, OIHW, out_dtype=int32)``;
matmul: ``R.matmul(x, W (K, N), out_dtype=int32)``; then the int32 epilogue ``acc - zp_x *
sum(w) + bias``, requantized in float32 (per-channel scale, round half to even, ``+ zp_y``,
clip, cast to the activation dtype).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import relax

RANGES = {"uint8": (0, 255), "int8": (-128, 127)}


@dataclass(frozen=True)
class Quant:
    """An activation dtype with its input and output zero points."""

    dtype: str = "uint8"
    zp_x: int = 3
    zp_y: int = 5


def _epilogue(bb, acc, w_sums, bias, scale, q: Quant, channel_shape, relu: bool):
    lo, hi = RANGES[q.dtype]
    lo = max(lo, q.zp_y) if relu else lo
    corr = relax.const((bias - q.zp_x * w_sums).astype("int32").reshape(channel_shape))
    acc = bb.emit(relax.op.add(acc, corr))
    f = bb.emit(relax.op.astype(acc, "float32"))
    f = bb.emit(relax.op.multiply(f, relax.const(scale.astype("float32").reshape(channel_shape))))
    f = bb.emit(relax.op.round(f))
    f = bb.emit(relax.op.add(f, relax.const(np.float32(q.zp_y))))
    f = bb.emit(relax.op.clip(f, lo, hi))
    return bb.emit(relax.op.astype(f, q.dtype))


def _requantize(acc, w_sums, bias, scale, q: Quant, relu: bool) -> np.ndarray:
    lo, hi = RANGES[q.dtype]
    lo = max(lo, q.zp_y) if relu else lo
    corrected = acc - q.zp_x * w_sums + bias
    f = np.round(corrected.astype(np.float32) * scale.astype(np.float32)) + np.float32(q.zp_y)
    return np.clip(f, lo, hi).astype(q.dtype)


def _params(rng, k: int, n: int):
    bias = rng.integers(-2000, 2000, n).astype(np.int32)
    scale = (rng.uniform(0.5, 1.5, n) / (k * 40)).astype(np.float32)
    return bias, scale


def activation(rng, shape, q: Quant) -> np.ndarray:
    lo, hi = RANGES[q.dtype]
    return rng.integers(lo, hi + 1, shape).astype(q.dtype)


def conv(
    rng, n, c, hw, o, k, *, stride=1, pad=0, groups=1, q=Quant(), relu=True, nhwc=False
) -> tuple:
    """(Relax module, reference function x -> y) of an int8 NCHW conv with its epilogue
    (``nhwc``: the NHWC/HWIO form that layout-nhwc makes of it, for timing kernels alone)."""
    w = rng.integers(-127, 128, (o, c // groups, k, k)).astype(np.int8)
    bias, scale = _params(rng, c // groups * k * k, o)
    sums = w.astype(np.int64).sum(axis=(1, 2, 3))
    shape, pads = (
        ((n, *hw, c), [0, 0, pad, pad, pad, pad, 0, 0])
        if nhwc
        else ((n, c, *hw), [0, 0, 0, 0, pad, pad, pad, pad])
    )
    x = relax.Var("x", relax.TensorType(shape, q.dtype))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            data = x
            if pad:
                data = bb.emit(relax.op.nn.pad(x, pads, pad_value=q.zp_x))
            acc = bb.emit(
                relax.op.nn.conv2d(
                    data,
                    relax.const(w.transpose(2, 3, 1, 0).copy() if nhwc else w),
                    strides=stride,
                    padding=0,
                    groups=groups,
                    data_layout="NHWC" if nhwc else "NCHW",
                    kernel_layout="HWIO" if nhwc else "OIHW",
                    out_dtype="int32",
                )
            )
            per_o = (1, 1, 1, o) if nhwc else (1, o, 1, 1)
            y = _epilogue(bb, acc, sums, bias, scale, q, per_o, relu)
            out = bb.emit_output(y)
        bb.emit_func_output(out)

    def reference(xa: np.ndarray) -> np.ndarray:
        xa = xa.transpose(0, 3, 1, 2) if nhwc else xa
        xp = np.pad(xa, [(0, 0), (0, 0), (pad, pad), (pad, pad)], constant_values=q.zp_x)
        acc = _conv_int(xp.astype(np.int64), w.astype(np.int64), stride, groups)
        per = (1, o, 1, 1)
        y = _requantize(acc, sums.reshape(per), bias.reshape(per), scale.reshape(per), q, relu)
        return y.transpose(0, 2, 3, 1) if nhwc else y

    return bb.get(), reference


def _conv_int(x, w, stride, groups):
    n, _, h, wd = x.shape
    o, cg, k, _ = w.shape
    oh, ow = (h - k) // stride + 1, (wd - k) // stride + 1
    out = np.zeros((n, o, oh, ow), np.int64)
    og = o // groups
    for g in range(groups):
        xs = x[:, g * cg : (g + 1) * cg]
        for i in range(k):
            for j in range(k):
                patch = xs[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
                out[:, g * og : (g + 1) * og] += np.einsum(
                    "nchw,oc->nohw", patch, w[g * og : (g + 1) * og, :, i, j]
                )
    return out


def matmul(rng, m, k, n, *, q=Quant(), relu=False) -> tuple:
    """(Relax module, reference function x -> y) of an int8 (M, K) x (K, N) matmul."""
    w = rng.integers(-127, 128, (k, n)).astype(np.int8)
    bias, scale = _params(rng, k, n)
    sums = w.astype(np.int64).sum(axis=0)
    x = relax.Var("x", relax.TensorType((m, k), q.dtype))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            acc = bb.emit(relax.op.matmul(x, relax.const(w), out_dtype="int32"))
            y = _epilogue(bb, acc, sums, bias, scale, q, (n,), relu)
            out = bb.emit_output(y)
        bb.emit_func_output(out)

    def reference(xa: np.ndarray) -> np.ndarray:
        acc = xa.astype(np.int64) @ w.astype(np.int64)
        return _requantize(acc, sums, bias, scale, q, relu)

    return bb.get(), reference
