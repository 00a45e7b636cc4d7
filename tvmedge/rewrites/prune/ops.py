"""How each Relax operator moves channels through the channel graph (tvmedge.rewrites.prune.
graph): producers start tracked tensors, element-wise ops, pooling and depthwise convolutions
pass them on (computing the constant images of removed channels), adds couple them, concat,
split and flatten rearrange them. A rule returns False for a form it does not know: the
graph then keeps every channel that reaches it."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from tvmedge.rewrites.prune import numeric
from tvmedge.rewrites.prune.channels import (
    Channels,
    materialize,
    op_name,
    split_bounds,
    static_shape,
    uniform,
)


class OpRules:
    """The per-operator rules, mixed into ChannelGraph (which owns the slots they use)."""

    def _input(self, data, axis: int) -> Channels | None:
        """The tracked channels of ``data`` along ``axis``; a tensor tracked along another
        axis is frozen (its channels stay)."""
        ch = self.chans.get(data)
        if ch is not None and ch.axis != axis:
            self._freeze(data)
            return None
        return ch

    def conv2d(self, var, call) -> bool:
        """conv2d and conv1d, channels first."""
        data, weight = call.args
        attrs = call.attrs
        layouts = (attrs.data_layout, attrs.kernel_layout, attrs.out_layout)
        if layouts not in _CONV_LAYOUTS:
            return False
        if not isinstance(weight, tvm.ir.GenericConst):
            return False
        w = weight.value.numpy().astype(np.float64)
        o, groups = w.shape[0], int(attrs.groups)
        cin = w.shape[1] * groups
        zero = ~np.any(w.reshape(o, -1) != 0, axis=1)
        din = self._input(data, 1)
        self.weights[var], self.zero[var] = w, zero
        zeros = np.zeros((1, o, *[1] * (w.ndim - 2)))
        if groups == 1:
            if din is not None:
                self.consumers[var] = data
            return self._track(var, "conv", Channels(1, self._new(o), zero, zeros))
        if groups == cin == o and din is not None:  # depthwise: input channel c is output c
            mask, value = zero.copy(), zeros
            computed = self._depthwise_value(din, w, call)
            if computed is not None:
                mask, value = zero | din.mask, computed
            return self._track(var, "depthwise", Channels(1, din.slots, mask, value))
        self._freeze(data)  # grouped: input channels stay, outputs go a whole group pattern
        self.groups[var] = o // groups
        pinned = groups == cin == o  # depthwise of an untracked input: nothing to slice
        return self._track(var, "grouped", Channels(1, self._new(o, pinned), zero, zeros))

    def _depthwise_value(self, din: Channels, w, call) -> np.ndarray | None:
        if not din.mask.any():
            return np.zeros((1, w.shape[0], *[1] * (w.ndim - 2)))
        if uniform(din.value, 1) and not any(numeric.ints(call.attrs.padding)):
            total = w.sum(axis=tuple(range(1, w.ndim)))
            return din.value * total.reshape(1, -1, *[1] * (w.ndim - 2))
        x = materialize(din.value, static_shape(call.args[0]))
        return None if x is None else numeric.conv(x, w, call.attrs)

    def conv2d_transpose(self, var, call) -> bool:
        data, weight = call.args
        attrs = call.attrs
        if (attrs.data_layout, attrs.kernel_layout) != ("NCHW", "IOHW") or int(attrs.groups) != 1:
            return False
        if attrs.out_layout not in ("NCHW", "") or not isinstance(weight, tvm.ir.GenericConst):
            return False
        w = weight.value.numpy().astype(np.float64)
        o = w.shape[1]
        zero = ~np.any(np.moveaxis(w, 1, 0).reshape(o, -1) != 0, axis=1)
        if self._input(data, 1) is not None:
            self.consumers[var] = data
        self.weights[var], self.zero[var] = w, zero
        return self._track(
            var, "transpose", Channels(1, self._new(o), zero, np.zeros((1, o, 1, 1)))
        )

    def matmul(self, var, call) -> bool:
        data, weight = call.args
        shape = static_shape(data)
        if not isinstance(weight, tvm.ir.GenericConst) or shape is None or len(shape) < 2:
            return False
        w = weight.value.numpy().astype(np.float64)
        if w.ndim != 2:
            return False
        rank, n = len(shape), w.shape[1]
        if self._input(data, rank - 1) is not None:
            self.consumers[var] = data
        zero = ~np.any(w != 0, axis=0)
        self.weights[var], self.zero[var] = w, zero
        value = np.zeros([1] * (rank - 1) + [n])
        return self._track(var, "dense", Channels(rank - 1, self._new(n), zero, value))

    def unary(self, var, call) -> bool:
        ch = self.chans.get(call.args[0])
        if ch is None:
            return False
        name = op_name(call)
        if name == "relax.clip":
            low, high = (self.const(a) for a in call.args[1:3])
            value = np.clip(ch.value, low, high)
        else:
            value = numeric.UNARY[name](ch.value, call.attrs)
        return self._track(var, "channelwise", Channels(ch.axis, ch.slots, ch.mask, value))

    def binary(self, var, call) -> bool:
        a, b = call.args
        ca, cb = self.chans.get(a), self.chans.get(b)
        fn = numeric.BINARY[op_name(call)]
        out_rank = len(call.ty.shape.values) if call.ty.shape is not None else -1
        if ca is not None and cb is not None:
            if ca.axis != cb.axis or len(ca.slots) != len(cb.slots) or ca.value.ndim != out_rank:
                return False
            for sa, sb in zip(ca.slots, cb.slots, strict=True):
                self._union(sa, sb)
            ch = Channels(ca.axis, ca.slots, ca.mask & cb.mask, fn(ca.value, cb.value))
            return self._track(var, "channelwise", ch)
        ch, other = (ca, b) if ca is not None else (cb, a)
        k = self.const(other)
        if ch is None or k is None or ch.value.ndim != out_rank or k.ndim > out_rank:
            return False
        aligned = ch.axis - (out_rank - k.ndim)
        kdim = k.shape[aligned] if aligned >= 0 else 1
        if kdim not in (1, len(ch.slots)):
            return False
        if kdim > 1 and not isinstance(other, tvm.ir.GenericConst):
            return False  # a computed per-channel operand: the rewrite could not slice it
        k = k.astype(np.float64)
        value = fn(ch.value, k) if ca is not None else fn(k, ch.value)
        return self._track(var, "channelwise", Channels(ch.axis, ch.slots, ch.mask, value))

    def pool(self, var, call) -> bool:
        """max/avg pool1d and pool2d, adaptive (global) average pooling, channels first."""
        ch = self.chans.get(call.args[0])
        name, attrs = op_name(call), call.attrs
        if ch is None or ch.axis != 1 or getattr(attrs, "layout", "NCHW") not in ("NCHW", "NCW"):
            return False
        rank, n = ch.value.ndim, len(ch.slots)
        adaptive = name.startswith("relax.nn.adaptive_avg_pool")
        size = attrs.output_size if adaptive else None
        if size is not None and any(d != 1 for d in numeric.ints(size)):
            return False
        x = materialize(ch.value, static_shape(call.args[0])) if ch.mask.any() else None
        value = None
        if x is not None:
            spatial = tuple(range(2, rank))
            value = (
                x.mean(axis=spatial, keepdims=True) if adaptive else numeric.pool(name, x, attrs)
            )
        mask = ch.mask if value is not None else np.zeros(n, bool)
        if value is None:
            value = np.zeros((1, n, *[1] * (rank - 2)))
        return self._track(var, "channelwise", Channels(1, ch.slots, mask, value))

    def reduce(self, var, call) -> bool:
        ch = self.chans.get(call.args[0])
        if ch is None:
            return False
        rank = ch.value.ndim
        axes = [int(a) % rank for a in call.attrs.axis] if call.attrs.axis is not None else []
        if not axes or ch.axis in axes:
            return False
        x = materialize(ch.value, static_shape(call.args[0])) if ch.mask.any() else None
        keep = bool(call.attrs.keepdims)
        axis = ch.axis if keep else ch.axis - sum(a < ch.axis for a in axes)
        if x is None:
            shape = [1] * (rank if keep else rank - len(axes))
            shape[axis] = len(ch.slots)
            value, mask = np.zeros(shape), np.zeros(len(ch.slots), bool)
        else:
            fn = {"relax.mean": np.mean, "relax.max": np.max, "relax.sum": np.sum}[op_name(call)]
            value, mask = fn(x, axis=tuple(axes), keepdims=keep), ch.mask
        return self._track(var, "channelwise", Channels(axis, ch.slots, mask, value))

    def concat(self, var, call) -> bool:
        arg = call.args[0]
        fields = list(arg.fields) if isinstance(arg, relax.Tuple) else self.tuple_fields.get(arg)
        rank = len(call.ty.shape.values) if call.ty.shape is not None else None
        if fields is None or rank is None:
            return False
        axis = int(call.attrs.axis) % rank
        parts = []
        for field in fields:
            ch = self.chans.get(field)
            shape = static_shape(field)
            if ch is None:  # an untracked input: its channels stay
                if shape is None or shape[axis] is None:
                    return False
                value_shape = [1] * rank
                value_shape[axis] = shape[axis]
                ch = Channels(
                    axis,
                    self._new(shape[axis], True),
                    np.zeros(shape[axis], bool),
                    np.zeros(value_shape),
                )
            elif ch.axis != axis:
                return False
            parts.append(ch)
        dims = [max(p.value.shape[i] for p in parts) if i != axis else -1 for i in range(rank)]
        values = [
            np.broadcast_to(p.value, [d if d != -1 else p.value.shape[axis] for d in dims])
            for p in parts
        ]
        ch = Channels(
            axis,
            [s for p in parts for s in p.slots],
            np.concatenate([p.mask for p in parts]),
            np.concatenate(values, axis=axis),
        )
        return self._track(var, "concat", ch)

    def split(self, var, call) -> bool:
        ch = self.chans.get(call.args[0])
        if ch is None:
            return False
        rank = ch.value.ndim
        if int(call.attrs.axis) % rank != ch.axis:
            return False
        bounds = split_bounds(call.attrs.indices_or_sections, len(ch.slots))
        outs = []
        for lo, hi in zip([0, *bounds], [*bounds, len(ch.slots)], strict=True):
            value = ch.value
            if value.shape[ch.axis] > 1:
                value = np.take(value, range(lo, hi), axis=ch.axis)
            outs.append(Channels(ch.axis, ch.slots[lo:hi], ch.mask[lo:hi], value))
        self.tuples[var] = outs
        self.roles[var] = "split"
        return True

    def reshape(self, var, call) -> bool:
        data = call.args[0]
        ch, shape, out = self.chans.get(data), static_shape(data), static_shape(call)
        if ch is None or shape is None or out is None or ch.axis != 1 or len(out) != 2:
            return False
        if any(d is None for d in shape[1:]):
            return False
        hw = int(np.prod(shape[2:], dtype=np.int64))
        in_dims, out_dims = data.ty.shape.values, call.ty.shape.values
        if out[1] != shape[1] * hw or str(in_dims[0]) != str(out_dims[0]):
            return False
        value = np.broadcast_to(ch.value, (1, *shape[1:])).reshape(1, -1)
        flat = Channels(1, [s for s in ch.slots for _ in range(hw)], np.repeat(ch.mask, hw), value)
        return self._track(var, "flatten", flat)


_CONV_LAYOUTS = (
    ("NCHW", "OIHW", "NCHW"),
    ("NCHW", "OIHW", ""),
    ("NCW", "OIW", "NCW"),
    ("NCW", "OIW", ""),
)
HANDLERS = {
    "relax.nn.conv2d": OpRules.conv2d,
    "relax.nn.conv1d": OpRules.conv2d,
    "relax.nn.conv2d_transpose": OpRules.conv2d_transpose,
    "relax.matmul": OpRules.matmul,
    "relax.clip": OpRules.unary,
    **{name: OpRules.unary for name in numeric.UNARY},
    **{name: OpRules.binary for name in numeric.BINARY},
    "relax.nn.max_pool2d": OpRules.pool,
    "relax.nn.avg_pool2d": OpRules.pool,
    "relax.nn.adaptive_avg_pool2d": OpRules.pool,
    "relax.nn.max_pool1d": OpRules.pool,
    "relax.nn.avg_pool1d": OpRules.pool,
    "relax.nn.adaptive_avg_pool1d": OpRules.pool,
    "relax.mean": OpRules.reduce,
    "relax.max": OpRules.reduce,
    "relax.sum": OpRules.reduce,
    "relax.concat": OpRules.concat,
    "relax.split": OpRules.split,
    "relax.reshape": OpRules.reshape,
}
