"""Reductions over an empty set give ONNX's identity (0 for a sum, 1 for a product, -inf for a
max, ...), not whatever memory the output had.

A reduction over a zero-size axis has no elements to visit, and TVM's kernels for it leave the
output unwritten (test_reduce_max_empty_set gave garbage; ReduceMax over bool failed to build).
When a reduced axis has size 0 (static, or a graph input's dim of 0, which TVM's importer makes
symbolic: ``ZERO_DIMS``) and the other dims are static, the result is a constant: the op's
identity at the output shape. Every other reduction is TVM's converter, except that a float
ReduceMax / ReduceMin starts from -inf / +inf: TVM's starts from the dtype's lowest / highest
finite value, so the max of a row of -inf came back as -3.4e38 (the Attention function bodies
test ``ReduceMax(bias) == -inf`` to zero a fully masked row, and got NaN rows instead); and a
bool ReduceMax / ReduceMin runs on uint8 (TVM failed to build one).
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax, te
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import ZERO_DIMS, register


def _extreme(low: bool):
    """-inf / +inf for floats; the dtype's min / max for integers; False / True for bool."""

    def value(dtype: np.dtype):
        if dtype == np.bool_:
            return not low
        if dtype.kind == "f":
            return -np.inf if low else np.inf
        info = np.iinfo(dtype)
        return info.min if low else info.max

    return value


_IDENTITIES = {
    "ReduceSum": lambda _d: 0,
    "ReduceSumSquare": lambda _d: 0,
    "ReduceL1": lambda _d: 0,
    "ReduceL2": lambda _d: 0,
    "ReduceProd": lambda _d: 1,
    "ReduceMax": _extreme(low=True),
    "ReduceMin": _extreme(low=False),
    "ReduceLogSum": lambda _d: -np.inf,  # log(0)
    "ReduceLogSumExp": lambda _d: -np.inf,
    "ReduceMean": lambda _d: np.nan,  # 0 / 0
}


def _axes(inputs, attr) -> list[int] | None:
    """The reduced axes as given (None: absent or empty), or False when they are not constant."""
    if "axes" in attr:
        return list(attr["axes"]) or None
    if len(inputs) > 1 and inputs[1] is not None:
        if not isinstance(inputs[1], tvm.ir.GenericConst):
            return False
        return inputs[1].value.numpy().astype(int).tolist() or None
    return None


def _size(dim) -> int | None:
    """A dim's size: its value, 0 for a graph input's dim of 0, None when symbolic."""
    if isinstance(dim, tvm.tirx.IntImm):
        return int(dim)
    return 0 if any(dim.same_as(z) for z in ZERO_DIMS) else None


def _empty_result(inputs, attr, identity) -> relax.Expr | None:
    """The identity at the output shape if the data is static and a reduced axis has size 0."""
    data = inputs[0]
    if data.ty.shape is None:
        return None
    dims = [_size(d) for d in data.ty.shape.values]
    axes = _axes(inputs, attr)
    if axes is False:
        return None
    if axes is None:
        if attr.get("noop_with_empty_axes", 0):
            return None  # the data itself
        axes = list(range(len(dims)))
    axes = sorted(a % len(dims) for a in axes)
    if 0 not in [dims[a] for a in axes]:
        return None
    if any(d is None for i, d in enumerate(dims) if i not in axes):
        return None  # an output dim is symbolic: no constant has that shape
    keep = attr.get("keepdims", 1)
    shape = [1 if i in axes else d for i, d in enumerate(dims) if keep or i not in axes]
    dtype = np.dtype(str(data.ty.dtype))
    return relax.const(np.full(shape, identity(dtype), dtype))


def _float_extreme(bb, inputs, attr, low: bool) -> relax.Expr | None:
    """Max (``low``: the reduction starts at -inf) or min over constant axes of float data, as
    a TE reduction whose identity is the infinity; None where TVM's converter is right."""
    data = inputs[0]
    axes = _axes(inputs, attr)
    if axes is False or not str(data.ty.dtype).startswith(("float", "bfloat")):
        return None
    rank = int(data.ty.ndim)
    if axes is None:
        if attr.get("noop_with_empty_axes", 0):
            return None
        axes = list(range(rank))
    axes = sorted({a % rank for a in axes})
    keep = bool(attr.get("keepdims", 1))
    inf = float("-inf") if low else float("inf")
    reducer = te.comm_reducer(
        (lambda a, b: tvm.tirx.Max(a, b)) if low else (lambda a, b: tvm.tirx.Min(a, b)),
        lambda t: tvm.tirx.const(inf, t),
        name="max" if low else "min",
    )

    def compute(x):
        k = {a: te.reduce_axis((0, x.shape[a]), name=f"k{a}") for a in axes}
        out = [1 if i in axes else d for i, d in enumerate(x.shape) if keep or i not in axes]

        def element(*index):
            rest = iter(index)
            full = []
            for i in range(rank):
                if i in axes:
                    full.append(k[i])
                    if keep:
                        next(rest)
                else:
                    full.append(next(rest))
            return reducer(x(*full), axis=list(k.values()))

        return te.compute(out, element, name="max" if low else "min")

    return bb.emit_te(compute, data)


def _converter(op: str, identity) -> type:
    base = getattr(onnx_frontend, op)

    def impl(version: int):
        def convert(cls, bb, inputs, attr, params):
            empty = _empty_result(inputs, attr, identity)
            if empty is not None:
                return empty
            if op in ("ReduceMax", "ReduceMin"):
                exact = _float_extreme(bb, inputs, attr, low=op == "ReduceMax")
                if exact is not None:
                    return exact
                if str(inputs[0].ty.dtype) == "bool":  # TVM has no bool min/max: via uint8
                    as_int = [bb.normalize(relax.op.astype(inputs[0], "uint8")), *inputs[1:]]
                    out = getattr(base, f"_impl_v{version}")(bb, as_int, attr, params)
                    return relax.op.astype(bb.normalize(out), "bool")
            return getattr(base, f"_impl_v{version}")(bb, inputs, attr, params)

        return classmethod(convert)

    versions = [int(n.removeprefix("_impl_v")) for n in dir(base) if n.startswith("_impl_v")]
    body = {f"_impl_v{v}": impl(v) for v in versions}
    body["__doc__"] = f"{op}: its identity over an empty set, else TVM's converter."
    return register(op)(type(op, (base,), body))


for _op, _identity in _IDENTITIES.items():
    _converter(_op, _identity)
