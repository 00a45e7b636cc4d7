"""ONNX Attention (opsets 23-25), the op every transformer export of opset 23+ carries.

TVM's converter for "Attention" is com.microsoft's (it reads ``num_heads``) and fails on the
default-domain op. This one follows ONNX's reference (onnx/reference/ops/op_attention.py), whose
values the node cases hold:

- Q, K, V are 4-D (batch, heads, seq, head_size), or 3-D (batch, seq, heads * head_size) with
  ``q_num_heads`` / ``kv_num_heads``; the output has Q's rank.
- ``past_key``/``past_value`` are concatenated before K/V along the sequence (``present_*``).
- The additive bias: a float mask, or a bool mask (True attends) as 0/-inf, padded with -inf to
  the keys' length; ``is_causal``: key j is masked for query i when j > i + offset (offset: the
  past length, or per batch ``nonpad_kv_seqlen - q_len``); opset 25's ``left_window_size`` /
  ``right_window_size`` bound j - (i + offset); ``nonpad_kv_seqlen`` masks the padded keys.
- Grouped-query attention repeats each K/V head (h0, h0, h1, h1, ...).
- Scores: (Q * sqrt(scale)) @ (K * sqrt(scale))^T, scale 1/sqrt(head_size) by default, then
  ``softcap * tanh(scores / softcap)`` when softcap > 0, then the bias, then a softmax (in
  ``softmax_precision``) in which a row whose bias is all -inf gives zeros, not NaN.
- ``qk_matmul_output``: the (softcapped) scores for modes 0 and 1, with the bias for mode 2,
  the probabilities for mode 3.
"""

from __future__ import annotations

import math

import numpy as np
import tvm
from onnx import helper
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register

_NEG_INF = float("-inf")


def _dims(x: relax.Expr) -> list:
    return list(x.ty.shape.values)


def _static(dim, what: str) -> int:
    if not isinstance(dim, tvm.tirx.IntImm):
        raise ValueError(f"Attention needs a static {what}, got {dim}; bind it with --input-shape")
    return int(dim)


def _heads_first(bb, x: relax.Expr, heads: int) -> relax.Expr:
    """(batch, seq, heads * size) -> (batch, heads, seq, size)."""
    batch, seq, hidden = _dims(x)
    size = _static(hidden, "hidden size") // heads
    x = bb.emit(relax.op.reshape(x, [batch, seq, heads, size]))
    return bb.emit(relax.op.permute_dims(x, [0, 2, 1, 3]))


def _const(value, dtype: str) -> relax.Expr:
    return relax.const(np.array(value, str(dtype)), str(dtype))


def _positions(q_len: int, kv_len: int, offset: relax.Expr | None) -> relax.Expr:
    """(i + offset) - j as int64: (q, kv), or (batch, 1, q, kv) for a per-batch offset."""
    diff = np.arange(q_len).reshape(q_len, 1) - np.arange(kv_len).reshape(1, kv_len)
    diff = relax.const(diff.astype(np.int64), "int64")
    if offset is None:
        return diff
    return relax.op.add(diff, relax.op.reshape(offset, [-1, 1, 1, 1]))


class _Bias:
    """The additive bias (None until something masks) and whether any of it can be -inf."""

    def __init__(self, dtype: str):
        self.dtype, self.value = dtype, None

    def add(self, bb, term: relax.Expr) -> None:
        self.value = term if self.value is None else bb.emit(relax.op.add(self.value, term))

    def allow(self, bb, allowed: relax.Expr) -> None:
        """Mask (-inf) where the bool ``allowed`` is false."""
        zero, neg = _const(0, self.dtype), _const(_NEG_INF, self.dtype)
        self.add(bb, bb.emit(relax.op.where(allowed, zero, neg)))


def _mask_bias(bb, mask: relax.Expr, kv_len: int, dtype: str) -> relax.Expr:
    if str(mask.ty.dtype) == "bool":
        mask = relax.op.where(mask, _const(0, dtype), _const(_NEG_INF, dtype))
    mask = bb.emit(mask)
    short = kv_len - _static(_dims(mask)[-1], "mask length")
    if short > 0:
        widths = [0, 0] * (len(_dims(mask)) - 1) + [0, short]
        mask = bb.emit(relax.op.nn.pad(mask, widths, pad_value=_NEG_INF))
    return mask


def _softmax(bb, x: relax.Expr) -> relax.Expr:
    """Softmax over the last axis; an all -inf row gives zeros (the reference's rule)."""
    dtype = str(x.ty.dtype)
    top = bb.emit(relax.op.max(x, axis=-1, keepdims=True))
    top = relax.op.where(relax.op.equal(top, _const(_NEG_INF, dtype)), _const(0, dtype), top)
    e = bb.emit(relax.op.exp(relax.op.subtract(x, top)))
    total = bb.emit(relax.op.sum(e, axis=-1, keepdims=True))
    zero = relax.op.equal(total, _const(0, dtype))
    total = relax.op.where(zero, _const(1, dtype), total)
    return bb.emit(relax.op.divide(e, total))


def attention(bb, inputs: list, attr: dict) -> relax.Tuple:
    """(Y, present_key, present_value, qk_matmul_output) of ONNX Attention."""
    q, k, v = inputs[:3]
    mask, past_k, past_v, nonpad = (list(inputs[3:]) + [None] * 4)[:4]
    dtype = str(q.ty.dtype)
    rank = len(_dims(q))
    if rank == 3:
        if "q_num_heads" not in attr or "kv_num_heads" not in attr:
            raise ValueError("3-D Attention inputs need q_num_heads and kv_num_heads")
        q = _heads_first(bb, q, int(attr["q_num_heads"]))
        k = _heads_first(bb, k, int(attr["kv_num_heads"]))
        v = _heads_first(bb, v, int(attr["kv_num_heads"]))
    elif rank != 4:
        raise ValueError(f"Attention inputs must be 3-D or 4-D, got rank {rank}")
    scale = attr.get("scale")
    scale = 1 / math.sqrt(_static(_dims(q)[3], "head size")) if scale is None else float(scale)
    if past_k is not None:
        k = bb.emit(relax.op.concat([past_k, k], axis=2))
        v = bb.emit(relax.op.concat([past_v, v], axis=2))
    present_k, present_v = k, v
    # Half-precision inputs are computed in float32 (float16 scores and sums lose digits the
    # reference keeps) and the outputs rounded back.
    work = "float32" if dtype in ("float16", "bfloat16") else dtype
    if work != dtype:
        q, k, v = (bb.emit(relax.op.astype(t, work)) for t in (q, k, v))
        if mask is not None and str(mask.ty.dtype) != "bool":
            mask = bb.emit(relax.op.astype(mask, work))
    root = _const(math.sqrt(scale), work)
    q_len = _static(_dims(q)[2], "query length")
    kv_len = _static(_dims(k)[2], "key length")
    past_len = 0 if past_k is None else _static(_dims(past_k)[2], "past length")

    bias = _Bias(work)
    if mask is not None:
        bias.add(bb, _mask_bias(bb, mask, kv_len, work))
    offset = None  # per-batch frontier: the external cache's valid length minus q_len
    if nonpad is not None and past_k is None:
        offset = bb.emit(relax.op.subtract(nonpad, _const(q_len, nonpad.ty.dtype)))
        offset = bb.emit(relax.op.astype(offset, "int64"))
    causal = bool(int(attr.get("is_causal", 0)))
    left, right = int(attr.get("left_window_size", -1)), int(attr.get("right_window_size", -1))
    if causal or left >= 0 or right >= 0:
        diff = _positions(q_len, kv_len, offset)
        if past_len:
            diff = relax.op.add(diff, _const(past_len, "int64"))
        diff = bb.emit(diff)  # (i + offset) - j, offset the past length without one
    if causal:
        bias.allow(bb, relax.op.greater_equal(diff, _const(0, "int64")))
    if left >= 0:
        bias.allow(bb, relax.op.less_equal(diff, _const(left, "int64")))
    if right >= 0:
        bias.allow(bb, relax.op.less_equal(relax.op.negative(diff), _const(right, "int64")))
    if nonpad is not None:
        keys = relax.const(np.arange(kv_len, dtype=np.int64).reshape(1, kv_len))
        lengths = bb.emit(relax.op.astype(nonpad, "int64"))
        lengths = bb.emit(relax.op.reshape(lengths, [-1, 1]))
        valid = bb.emit(relax.op.less(keys, lengths))
        bias.allow(bb, bb.emit(relax.op.reshape(valid, [-1, 1, 1, kv_len])))

    heads, kv_heads = _static(_dims(q)[1], "head count"), _static(_dims(k)[1], "head count")
    if heads != kv_heads:
        if heads % kv_heads:
            raise ValueError(f"{heads} query heads are not a multiple of {kv_heads} KV heads")
        k = bb.emit(relax.op.repeat(k, heads // kv_heads, axis=1))
        v = bb.emit(relax.op.repeat(v, heads // kv_heads, axis=1))

    kt = bb.emit(relax.op.permute_dims(relax.op.multiply(k, root), [0, 1, 3, 2]))
    scores = bb.emit(relax.op.matmul(bb.emit(relax.op.multiply(q, root)), kt))
    softcap = float(attr.get("softcap", 0.0))
    if softcap > 0:
        cap = _const(softcap, work)
        scores = bb.emit(relax.op.multiply(relax.op.tanh(relax.op.divide(scores, cap)), cap))
    biased = scores if bias.value is None else bb.emit(relax.op.add(scores, bias.value))
    precision = attr.get("softmax_precision")
    logits = biased
    if precision is not None:
        wide = str(helper.tensor_dtype_to_np_dtype(int(precision)))
        logits = bb.emit(relax.op.astype(biased, wide)) if wide != work else biased
    probs = _softmax(bb, logits)
    if bias.value is not None:  # rows with no key to attend: zeros, decided on the bias
        top = relax.op.max(bias.value, axis=-1, keepdims=True)
        empty = bb.emit(relax.op.equal(top, _const(_NEG_INF, work)))
        probs = bb.emit(relax.op.where(empty, relax.op.zeros_like(probs), probs))
    probs = bb.emit(relax.op.astype(probs, work)) if str(probs.ty.dtype) != work else probs
    mode = int(attr.get("qk_matmul_output_mode", 0))
    qk_out = {2: biased, 3: probs}.get(mode, scores)

    y = bb.emit(relax.op.matmul(probs, v))
    if rank == 3:
        y = bb.emit(relax.op.permute_dims(y, [0, 2, 1, 3]))
        batch, seq, h, size = _dims(y)
        y = bb.emit(relax.op.reshape(y, [batch, seq, h * size]))
    if work != dtype:
        y, qk_out = (bb.emit(relax.op.astype(t, dtype)) for t in (y, qk_out))
    return relax.Tuple([y, present_k, present_v, qk_out])


@register("Attention")
class Attention(onnx_frontend.OnnxOpConverter):
    """Default-domain Attention: opset 23, 24 (``nonpad_kv_seqlen``), 25 (sliding window)."""

    @classmethod
    def _impl_v23(cls, bb, inputs, attr, params):
        return attention(bb, list(inputs), attr)

    _impl_v24 = _impl_v25 = _impl_v23
