"""Fold the arithmetic on constant weights (what BatchNorm folding leaves: ``W * (gamma /
sqrt(var + eps))``, a bias reshape) into plain constants, with numpy.

Relax's FoldConstant does this too, but it builds every constant sub-graph with the compiler and
leaves dangling shape functions in graphs with run-time Slice bounds, so the build only runs it
after lowering. Layout conversion needs the weights to be constants before that (it segfaults on
a conv whose weight is computed). This pass folds only pure element-wise and reshape ops whose
inputs are all constants, which cannot touch anything computed from the model's inputs.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax, tirx
from tvm.relax.expr_functor import PyExprMutator, mutator

_BINARY = {
    "relax.add": np.add,
    "relax.subtract": np.subtract,
    "relax.multiply": np.multiply,
    "relax.divide": np.divide,
}
# Integer weights (tvmedge.rewrites.int8's int8 weights, int32 offsets) are only moved.
_WEIGHT_INTS, _MOVES = ("int8", "uint8", "int32"), ("relax.reshape", "relax.permute_dims")
_UNARY = {"relax.sqrt": np.sqrt, "relax.rsqrt": lambda x: 1 / np.sqrt(x)}


def _value(expr, known: dict) -> np.ndarray | None:
    if isinstance(expr, tvm.ir.GenericConst):
        return expr.value.numpy()
    if isinstance(expr, relax.Var):
        return known.get(expr)
    if isinstance(expr, tirx.FloatImm | tirx.IntImm):  # a scalar operand (BatchNorm's eps)
        return np.array(expr.value, dtype=str(expr.ty.dtype))
    return None


def _fold(call: relax.Call, known: dict) -> np.ndarray | None:
    if not isinstance(call.op, tvm.ir.Op):
        return None
    name = call.op.name
    if not isinstance(call.ty, relax.TensorType):
        return None
    dtype = str(call.ty.dtype)
    if not dtype.startswith("float") and (dtype not in _WEIGHT_INTS or name not in _MOVES):
        return None  # weights only: integer index arithmetic stays with the shape passes
    if name in _BINARY or name in _UNARY:
        args = [_value(a, known) for a in call.args]
        if any(a is None for a in args):
            return None
        fn = _BINARY.get(name) or _UNARY[name]
        return np.asarray(fn(*args)).astype(str(call.ty.dtype))
    if name in _MOVES:
        data = _value(call.args[0], known)
        if data is None or call.ty.shape is None:
            return None
        if name == "relax.permute_dims":
            axes = call.attrs.axes
            return np.transpose(data, None if axes is None else [int(a) for a in axes])
        shape = [int(d) for d in call.ty.shape.values]
        return data.reshape(shape)
    return None


@mutator
class _WeightFolder(PyExprMutator):
    def __init__(self, mod=None):
        super().__init__(mod)
        self.known: dict = {}

    def visit_var_binding_(self, binding) -> None:
        value = binding.value
        if isinstance(value, relax.Call):
            try:
                folded = _fold(self.visit_expr(value), self.known)
            except (ValueError, TypeError):
                folded = None
            if folded is not None:
                self.known[binding.var] = folded
                return  # every use is replaced by the constant
        super().visit_var_binding_(binding)

    def visit_var_(self, var):
        if var in self.known:
            return relax.const(self.known[var])
        return super().visit_var_(var)

    def visit_dataflow_var_(self, var):
        if var in self.known:
            return relax.const(self.known[var])
        return super().visit_dataflow_var_(var)


@tvm.transform.module_pass(opt_level=0, name="tvmedge.FoldWeights")
def fold_weights(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
    for gvar, func in list(mod.functions.items()):
        if isinstance(func, relax.Function):
            folder = _WeightFolder(mod)
            mod[gvar] = folder.visit_expr(func)
    return mod
