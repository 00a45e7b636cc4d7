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

import numpy as np
import tvm
from tvm import relax, tirx

from tvmedge.rewrites.prune import numeric
from tvmedge.rewrites.prune.channels import Channels, materialize, op_name, static_shape, uniform
from tvmedge.rewrites.prune.ops import HANDLERS, OpRules

SCALAR_LIMIT = 4096  # constant sub-expressions larger than this are not evaluated here


class ChannelGraph(OpRules):
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
        self._contributions: dict = {}  # (consumer, removed inputs) -> contribution
        with np.errstate(all="ignore"):  # a constant channel may divide by zero: it stays
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
        handler = HANDLERS.get(name)
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
        din = self.chans[data]
        gone = self.removed(din)
        if not gone.any():
            return None
        key = (var, gone.tobytes())
        if key not in self._contributions:
            self._contributions[key] = self._contribution(var, din, gone)
        return self._contributions[key]

    def _contribution(self, var, din: Channels, gone: np.ndarray) -> np.ndarray | bool | None:
        """Only the removed channels are convolved, with their slice of the weights."""
        w, call = self.weights[var], self.values[var]
        index = np.flatnonzero(gone)
        x = np.take(din.value, index, axis=din.axis)  # values hold every channel
        if not x.any():
            return None
        role = self.roles[var]
        if role == "dense":
            return np.matmul(x, w[index])
        pads = numeric.ints(call.attrs.padding)
        ws = w[:, index] if role == "conv" else w[index]
        if role == "conv" and uniform(x, 1) and not any(pads):
            total = np.einsum("c,oc->o", x.reshape(-1), ws.sum(axis=tuple(range(2, ws.ndim))))
            return total.reshape(1, -1, *[1] * (ws.ndim - 2))
        shape = static_shape(self.consumers[var])
        full = materialize(x, None if shape is None else [shape[0], len(index), *shape[2:]])
        if full is None:
            return False
        out = numeric.conv(full, ws, call.attrs, transposed=role == "transpose")
        corner = out[(slice(None), slice(None), *[slice(0, 1)] * (out.ndim - 2))]
        if np.all(out == corner):
            out = corner
        return out
