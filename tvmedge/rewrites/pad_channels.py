"""Pad output channels to whole vectors: a conv or matmul with constant weights whose output
width is not a multiple of the vector lanes (SqueezeNet's and MobileNetV2's 1000 classes on
AVX-512's 16 lanes) gets zero weight columns up to the next multiple, and a slice takes the
real channels back.

A vectorized kernel must tile its contiguous axis without a tail (a predicated tail
scalarizes the loop), so 1000 channels ran as 10-wide vectors, 62% of each register; padded
to 1024, SqueezeNet's classifier conv went from 556 to 363 us alone. The
slice is then moved past the channel-wise ops that follow (bias, activation, pooling), so
they fuse with the padded kernel and the slice lands on the smallest tensor. The padded
channels compute zeros plus a padded (zero) bias, or a divisor padded with ones, and are never
read.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax, tirx
from tvm.relax.expr_functor import PyExprMutator, mutator

from tvmedge.rewrites.mutate import channels_last_conv2d, rewrite_functions

MAX_WASTE = 1 / 16  # pad only when it adds at most this fraction of work

_UNARY = {"relax.nn.relu", "relax.clip", "relax.sigmoid", "relax.tanh", "relax.nn.silu"}
_BINARY = {
    "relax.add",
    "relax.subtract",
    "relax.multiply",
    "relax.divide",
    "relax.maximum",
    "relax.minimum",
}
_REDUCE = {"relax.mean", "relax.sum", "relax.max"}


def padded_width(n: int, lanes: int) -> int | None:
    """``n`` rounded up to whole pairs of vectors, or None when it already is or the padding
    would add more than MAX_WASTE of the work. Pairs: a register tile holds whole vectors of
    the width that divide it, and 1008 = 63 x 16 lanes left room for one vector per tile
    (SqueezeNet's classifier conv 391 us alone), 1024 for two (363 us, 2.4% more work)."""
    width = -(-n // (2 * lanes)) * (2 * lanes)
    if width == n or (width - n) > MAX_WASTE * n:
        return None
    return width


def _op(call) -> str:
    return getattr(call.op, "name", "") if isinstance(call, relax.Call) else ""


def _static_shape(expr) -> list[int] | None:
    shape = getattr(expr.ty, "shape", None)
    if shape is None or not all(isinstance(d, tirx.IntImm) for d in shape.values):
        return None
    return [int(d) for d in shape.values]


def _pad_last(array: np.ndarray, width: int, fill: float = 0.0) -> np.ndarray:
    pad = [(0, 0)] * (array.ndim - 1) + [(0, width - array.shape[-1])]
    return np.pad(array, pad, constant_values=fill)


@mutator
class _PadChannels(PyExprMutator):
    def __init__(self, mod: tvm.IRModule, lanes: int):
        super().__init__(mod)
        self.lanes = lanes

    def _slice(self, padded: relax.Expr, n: int) -> relax.Expr:
        var = self.builder_.emit(padded)
        rank = len(_static_shape(var))
        return relax.op.strided_slice(var, axes=[rank - 1], begin=[0], end=[n])

    def _sliced(self, arg):
        """(the sliced tensor, real width) when ``arg`` is a slice of its input's first
        channels along the last axis, without strides (this pass's slices are)."""
        if not isinstance(arg, relax.Var):
            return None
        bound = self.lookup_binding(arg)
        if _op(bound) != "relax.strided_slice" or len(bound.args) != 4:
            return None
        source = bound.args[0]
        shape = _static_shape(source)
        axes, begin, end = (_ints(a) for a in bound.args[1:4])
        if shape is None or axes != [len(shape) - 1] or begin != [0]:
            return None
        return source, end[0]

    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        name = _op(call)
        if name in ("relax.nn.conv2d", "relax.matmul"):
            return self._pad(call, name)
        if name in _UNARY or name in _BINARY or name in _REDUCE:
            return self._sink(call, name)
        return call

    def _pad(self, call, name):
        data, weight = call.args
        if not isinstance(weight, tvm.ir.GenericConst) or _static_shape(call) is None:
            return call
        if not str(weight.ty.dtype).startswith("float"):
            return call  # integer ops (rewrites.int8): their lanes are the int8 kernels' own
        if name == "relax.nn.conv2d":
            if not channels_last_conv2d(call) or int(call.attrs.groups) != 1:
                return call
        elif weight.value.numpy().ndim != 2:
            return call
        w = weight.value.numpy()
        n = w.shape[-1]
        width = padded_width(n, self.lanes)
        if width is None:
            return call
        padded = relax.Call(call.op, [data, relax.const(_pad_last(w, width))], call.attrs)
        return self._slice(padded, n)

    def _sink(self, call, name):
        """op(slice(x)) -> slice(op(x)) for a channel-wise op, its constants padded."""
        found = None
        args = []
        for arg in call.args:
            sliced = self._sliced(arg) if found is None else None
            if sliced is not None:
                found = sliced
                args.append(sliced[0])
            else:
                args.append(arg)
        if found is None:
            return call
        source, n = found
        width = _static_shape(source)[-1]
        if name in _REDUCE:
            rank = len(_static_shape(source))
            axes = [int(a) % rank for a in (call.attrs.axis or range(rank))]
            if rank - 1 in axes:
                return call
        for i, arg in enumerate(args):
            if arg is source:
                continue
            if isinstance(arg, tirx.FloatImm | tirx.IntImm):
                continue  # a scalar (clip's bounds)
            if not isinstance(arg, tvm.ir.GenericConst):
                return call  # a computed operand: leave the slice where it is
            value = arg.value.numpy()
            if value.ndim and value.shape[-1] == n:
                divisor = name == "relax.divide" and i == 1  # padded lanes stay finite
                args[i] = relax.const(_pad_last(value, width, 1.0 if divisor else 0.0))
            elif value.ndim and value.shape[-1] != 1:
                return call
        return self._slice(relax.Call(call.op, args, call.attrs), n)


def _ints(expr):
    if isinstance(expr, relax.ShapeExpr):
        return [int(v) for v in expr.values]
    if isinstance(expr, relax.Tuple):
        return [int(v.value) for v in expr.fields]
    return [int(v) for v in expr]


def pad_channels(lanes: int) -> tvm.transform.Pass:
    @tvm.transform.module_pass(opt_level=0, name="tvmedge.PadChannels")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return rewrite_functions(_PadChannels(mod, lanes), mod)

    return _pass
