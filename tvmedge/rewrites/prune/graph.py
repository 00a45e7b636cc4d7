"""The channel dependency graph of a Relax function, as Torch-Pruning's DepGraph builds it.

Every channel of every tracked tensor is a *slot*; channels that must be removed together share
one (union-find): the channels an element-wise op passes through, the channels two tensors
added together meet in, a depthwise convolution's input and output channel. A slot is removed
when it is a constant image in every tensor that holds it (a zeroed filter, its bias, the
element-wise ops, pooling and depthwise convolutions after it: ``Channels.mask`` and
``value``) and no tensor that holds it leaves the tracked graph (a function output, an op this
graph does not know). Convolutions and dense layers start tracked tensors; as consumers they
drop removed input channels and add what those constants contributed (``contribution``).
Concatenations place their inputs' slots at offsets, splits take them apart, and a flatten into
a dense layer gives each channel its H*W columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax, tirx

from tvmedge.rewrites.prune import numeric

SCALAR_LIMIT = 4096  # constant sub-expressions larger than this are not evaluated here


@dataclass
class Channels:
    """The channel axis of one tensor: a slot per channel, which channels are constant images
    (independent of the inputs) and their values (float64, batch 1, broadcastable)."""

    axis: int
    slots: list[int]
    mask: np.ndarray
    value: np.ndarray

    def __post_init__(self):
        shape = [1] * self.value.ndim
        shape[self.axis] = len(self.slots)
        self.value = np.where(self.mask.reshape(shape), self.value, 0.0)


def op_name(expr) -> str:
    if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
        return expr.op.name
    return ""


def static_shape(expr) -> list[int | None] | None:
    """Dims of a tensor expression, None for a symbolic one; None when the rank is unknown."""
    shape = getattr(expr.ty, "shape", None)
    if shape is None or not isinstance(shape, relax.ShapeExpr):
        return None
    return [int(d) if isinstance(d, tirx.IntImm) else None for d in shape.values]


def _uniform(value: np.ndarray, axis: int) -> bool:
    return all(d == 1 for i, d in enumerate(value.shape) if i != axis)


def _materialize(value: np.ndarray, shape) -> np.ndarray | None:
    """``value`` at the full non-batch shape, or None when a dim it varies over is symbolic."""
    if shape is None or any(d is None for d in shape[1:]):
        return None
    return np.broadcast_to(value, (1, *shape[1:]))


class ChannelGraph:
    """Analysis of one Relax function; read by tvmedge.rewrites.prune.shrink."""

    def __init__(self, func: relax.Function, round_to: int = 1):
        self.round_to = round_to  # a producer keeps a multiple of this many channels
        self.parent: list[int] = []
        self.pinned: list[bool] = []
        self.chans: dict[relax.Var, Channels] = {}
        self.known: dict[relax.Var, np.ndarray] = {}
        self.tuples: dict[relax.Var, list[Channels]] = {}
        self.tuple_fields: dict[relax.Var, list] = {}
        self.roles: dict[relax.Var, str] = {}
        self.weights: dict[relax.Var, np.ndarray] = {}
        self.zero: dict[relax.Var, np.ndarray] = {}  # producer -> its all-zero filters
        self.consumers: dict[relax.Var, relax.Var] = {}  # consumer binding -> its data var
        self.groups: dict[relax.Var, int] = {}  # grouped conv -> output channels per group
        self.values: dict[relax.Var, relax.Expr] = {}
        for block in func.body.blocks:
            for binding in block.bindings:
                if isinstance(binding, relax.VarBinding):
                    self.values[binding.var] = binding.value
                    self._binding(binding.var, binding.value)
                else:
                    self._freeze_refs(binding.value)
        self._freeze_refs(func.body.body)
        self._decide()

    # -- slots -------------------------------------------------------------------------------
    def _new(self, n: int, pinned: bool = False) -> list[int]:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        self.pinned.extend([pinned] * n)
        return list(range(start, start + n))

    def find(self, s: int) -> int:
        while self.parent[s] != s:
            self.parent[s] = self.parent[self.parent[s]]
            s = self.parent[s]
        return s

    def _union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.pinned[ra] = self.pinned[ra] or self.pinned[rb]

    def _pin(self, slots) -> None:
        for s in slots:
            self.pinned[self.find(s)] = True

    def _freeze(self, var) -> None:
        if var in self.chans:
            self._pin(self.chans[var].slots)
        for ch in self.tuples.get(var, []):
            self._pin(ch.slots)
        for field in self.tuple_fields.get(var, []):
            self._freeze(field)

    def _freeze_refs(self, expr) -> None:
        found = []
        relax.analysis.post_order_visit(
            expr, lambda e: found.append(e) if isinstance(e, relax.Var) else None
        )
        for var in found:
            self._freeze(var)

    # -- constants ---------------------------------------------------------------------------
    def const(self, expr) -> np.ndarray | None:
        if isinstance(expr, tvm.ir.GenericConst):
            return expr.value.numpy()
        if isinstance(expr, relax.Var):
            return self.known.get(expr)
        if isinstance(expr, relax.PrimValue):
            expr = expr.value
        if isinstance(expr, tirx.FloatImm | tirx.IntImm):
            return np.array(expr.value)
        return None

    # -- bindings ----------------------------------------------------------------------------
    def _binding(self, var, value) -> None:
        if isinstance(value, relax.TupleGetItem) and value.tuple_value in self.tuples:
            self.chans[var] = self.tuples[value.tuple_value][value.index]
            self.roles[var] = "item"
            return
        if isinstance(value, relax.Tuple):
            self.tuple_fields[var] = list(value.fields)
            return
        name = op_name(value)
        if name in numeric.SCALAR and self._scalar(var, value, name):
            return
        handler = _HANDLERS.get(name)
        if handler is None or not handler(self, var, value):
            self._freeze_refs(value)

    def _scalar(self, var, call, name) -> bool:
        args = [self.const(a) for a in call.args]
        if any(a is None for a in args) or any(a.size > SCALAR_LIMIT for a in args):
            return False
        self.known[var] = np.asarray(numeric.SCALAR[name](*args))
        return True

    def _track(self, var, role: str, ch: Channels) -> bool:
        self.chans[var] = ch
        self.roles[var] = role
        return True

    def _input(self, data, axis: int) -> Channels | None:
        """The tracked channels of ``data`` along ``axis``; a tensor tracked along another
        axis is frozen (its channels stay)."""
        ch = self.chans.get(data)
        if ch is not None and ch.axis != axis:
            self._freeze(data)
            return None
        return ch

    def conv2d(self, var, call) -> bool:
        data, weight = call.args
        attrs = call.attrs
        layouts = (attrs.data_layout, attrs.kernel_layout, attrs.out_layout)
        if layouts not in (("NCHW", "OIHW", "NCHW"), ("NCHW", "OIHW", "")):
            return False
        if not isinstance(weight, tvm.ir.GenericConst):
            return False
        w = weight.value.numpy().astype(np.float64)
        o, groups = w.shape[0], int(attrs.groups)
        cin = w.shape[1] * groups
        zero = ~np.any(w.reshape(o, -1) != 0, axis=1)
        din = self._input(data, 1)
        self.weights[var], self.zero[var] = w, zero
        zeros = np.zeros((1, o, 1, 1))
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
            return np.zeros((1, w.shape[0], 1, 1))
        if _uniform(din.value, 1) and not any(numeric.ints(call.attrs.padding)):
            return din.value * w.sum(axis=(1, 2, 3)).reshape(1, -1, 1, 1)
        x = _materialize(din.value, static_shape(call.args[0]))
        return None if x is None else numeric.conv2d(x, w, call.attrs)

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
        ch = self.chans.get(call.args[0])
        name, attrs = op_name(call), call.attrs
        if ch is None or ch.axis != 1 or getattr(attrs, "layout", "NCHW") != "NCHW":
            return False
        if name == "relax.nn.adaptive_avg_pool2d":
            size = attrs.output_size
            if size is not None and numeric.ints(size) not in ([1], [1, 1]):
                return False
        x = _materialize(ch.value, static_shape(call.args[0])) if ch.mask.any() else None
        if x is None:
            value, mask = np.zeros((1, len(ch.slots), 1, 1)), np.zeros(len(ch.slots), bool)
        elif name == "relax.nn.adaptive_avg_pool2d":
            value, mask = x.mean(axis=(2, 3), keepdims=True), ch.mask
        else:
            value, mask = numeric.pool2d(name, x, attrs), ch.mask
            if value is None:
                value, mask = np.zeros((1, len(ch.slots), 1, 1)), np.zeros(len(ch.slots), bool)
        return self._track(var, "channelwise", Channels(1, ch.slots, mask, value))

    def reduce(self, var, call) -> bool:
        ch = self.chans.get(call.args[0])
        if ch is None:
            return False
        rank = ch.value.ndim
        axes = [int(a) % rank for a in call.attrs.axis] if call.attrs.axis is not None else []
        if not axes or ch.axis in axes:
            return False
        x = _materialize(ch.value, static_shape(call.args[0])) if ch.mask.any() else None
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

    # -- decisions ---------------------------------------------------------------------------
    def _decide(self) -> None:
        """Remove every slot constant everywhere it appears, then keep what the rewrite needs:
        one channel per tensor, whole-group patterns, whole vectors of channels per producer,
        contributions it can compute."""
        while True:
            busy = set()
            for ch in self._all_channels():
                for s, m in zip(ch.slots, ch.mask, strict=True):
                    if not m:
                        busy.add(self.find(s))
            self._busy = busy | {
                r for r in range(len(self.parent)) if self.find(r) == r and self.pinned[r]
            }
            if not self._constrain():
                return

    def _all_channels(self):
        yield from self.chans.values()
        for outs in self.tuples.values():
            yield from outs

    def removed(self, ch: Channels) -> np.ndarray:
        return np.array([self.find(s) not in self._busy for s in ch.slots], bool)

    def kept(self, var) -> np.ndarray:
        return np.flatnonzero(~self.removed(self.chans[var]))

    def _constrain(self) -> bool:
        changed = False
        for ch in self._all_channels():
            if self.removed(ch).all():
                self._pin(ch.slots[:1])
                changed = True
        for var, per_group in self.groups.items():  # as many removed from every group
            slots = np.array(self.chans[var].slots).reshape(-1, per_group)
            gone = self.removed(self.chans[var]).reshape(-1, per_group)
            fewest = gone.sum(axis=1).min()
            for group, row in zip(slots, gone, strict=True):
                extra = np.flatnonzero(row)[fewest:]
                if len(extra):
                    self._pin(group[extra].tolist())
                    changed = True
        for var in self.zero if self.round_to > 1 else ():  # whole vectors of channels
            gone = self.removed(self.chans[var])
            kept = int((~gone).sum())
            want = min(len(gone), -(-kept // self.round_to) * self.round_to)
            if want > kept:
                back = np.flatnonzero(gone)[: want - kept]
                self._pin([self.chans[var].slots[i] for i in back])
                changed = True
        for var, data in self.consumers.items():
            din = self.chans[data]
            gone = self.removed(din)
            if gone.any() and self.contribution(var) is False:  # keep the non-zero ones
                other = tuple(i for i in range(din.value.ndim) if i != din.axis)
                nonzero = np.broadcast_to(np.any(din.value != 0, axis=other), gone.shape)
                self._pin(
                    [s for s, g, nz in zip(din.slots, gone, nonzero, strict=True) if g and nz]
                )
                changed = True
        return changed

    def contribution(self, var) -> np.ndarray | bool | None:
        """What the removed input channels of consumer ``var`` added to its output (all its
        output channels), None when nothing, False when it cannot be computed here."""
        data = self.consumers.get(var)
        if data is None:
            return None
        din, w, call = self.chans[data], self.weights[var], self.values[var]
        gone = self.removed(din)
        if not gone.any():
            return None
        shape = [1] * din.value.ndim
        shape[din.axis] = len(gone)
        x = din.value * gone.reshape(shape)
        if not x.any():
            return None
        role = self.roles[var]
        if role == "dense":
            return np.matmul(x, w)
        pads = numeric.ints(call.attrs.padding)
        if role == "conv" and _uniform(x, 1) and not any(pads):
            return np.einsum("c,oc->o", x.reshape(-1), w.sum(axis=(2, 3))).reshape(1, -1, 1, 1)
        full = _materialize(x, static_shape(data))
        if full is None:
            return False
        out = (
            numeric.conv2d(full, w, call.attrs)
            if role == "conv"
            else numeric.conv2d_transpose(full, w, call.attrs)
        )
        if np.all(out == out[:, :, :1, :1]):
            out = out[:, :, :1, :1]
        return out


def split_bounds(indices_or_sections, n: int) -> list[int]:
    """The split points of relax.split along an axis of ``n``."""
    if isinstance(indices_or_sections, tirx.IntImm | int):
        sections = int(indices_or_sections)
        return [n // sections * i for i in range(1, sections)]
    return [int(i) for i in indices_or_sections]


_HANDLERS = {
    "relax.nn.conv2d": ChannelGraph.conv2d,
    "relax.nn.conv2d_transpose": ChannelGraph.conv2d_transpose,
    "relax.matmul": ChannelGraph.matmul,
    "relax.clip": ChannelGraph.unary,
    **{name: ChannelGraph.unary for name in numeric.UNARY},
    **{name: ChannelGraph.binary for name in numeric.BINARY},
    "relax.nn.max_pool2d": ChannelGraph.pool,
    "relax.nn.avg_pool2d": ChannelGraph.pool,
    "relax.nn.adaptive_avg_pool2d": ChannelGraph.pool,
    "relax.mean": ChannelGraph.reduce,
    "relax.max": ChannelGraph.reduce,
    "relax.sum": ChannelGraph.reduce,
    "relax.concat": ChannelGraph.concat,
    "relax.split": ChannelGraph.split,
    "relax.reshape": ChannelGraph.reshape,
}
