"""Parameters and multiply-accumulates of a Relax module, for the pruning reports."""

from __future__ import annotations

import math

import tvm
from tvm import relax, tirx


def _dims(expr) -> list[int] | None:
    """Static dims of a tensor, symbolic ones (a batch) counted as 1; None without a shape."""
    shape = getattr(expr.ty, "shape", None)
    if not isinstance(shape, relax.ShapeExpr):
        return None
    return [int(d) if isinstance(d, tirx.IntImm) else 1 for d in shape.values]


_COUNTED = ("relax.nn.conv2d", "relax.nn.conv1d", "relax.nn.conv2d_transpose", "relax.matmul")


def _macs(call: relax.Call) -> int:
    name = call.op.name
    if name not in _COUNTED:
        return 0
    out = _dims(call)
    weight = _dims(call.args[1])
    if out is None or weight is None:
        return 0
    if name in ("relax.nn.conv2d", "relax.nn.conv1d"):  # O, I/g, kernel...
        return math.prod(out) * math.prod(weight[1:])
    if name == "relax.nn.conv2d_transpose":  # I, O/g, kh, kw: every input pixel scatters
        data = _dims(call.args[0])
        return 0 if data is None else math.prod(data) * math.prod(weight[1:])
    if name == "relax.matmul":
        data = _dims(call.args[0])
        return 0 if data is None else math.prod(out) * data[-1]
    return 0


def cost(mod: tvm.IRModule) -> dict[str, int]:
    """``{"params", "macs", "constants"}`` over every Relax function of ``mod``: params are the
    elements of the convs' and matmuls' weights and of per-channel constants (biases, scales);
    constants are the elements of larger float constants (what shrinking folds in where zero
    padding made a removed channel's contribution differ at the borders); macs are the
    multiply-accumulates of the convs and matmuls per batch item."""
    consts, weights, macs = [], set(), 0

    def visit(expr):
        nonlocal macs
        if isinstance(expr, tvm.ir.GenericConst):
            consts.append(expr)
        elif isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
            macs += _macs(expr)
            if expr.op.name in _COUNTED and isinstance(expr.args[1], tvm.ir.GenericConst):
                weights.add(expr.args[1])

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func.body, visit)
    params, other = 0, 0
    for const in set(consts):
        shape = [int(d) for d in const.value.shape]
        if not shape or not str(const.value.dtype).startswith("float"):
            continue
        if const in weights or sum(d > 1 for d in shape) <= 1:
            params += math.prod(shape)
        else:
            other += math.prod(shape)
    return {"params": params, "macs": macs, "constants": other}
