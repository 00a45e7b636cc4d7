"""Reductions over an empty set give ONNX's identity (0 for a sum, 1 for a product, -inf for a
max, ...), not whatever memory the output had.

A reduction over a zero-size axis has no elements to visit, and TVM's kernels for it leave the
output unwritten (test_reduce_max_empty_set gave garbage; ReduceMax over bool failed to build).
When a reduced axis has size 0 (static, or a graph input's dim of 0, which TVM's importer makes
symbolic: ``ZERO_DIMS``) and the other dims are static, the result is a constant: the op's
identity at the output shape. Every other reduction is TVM's converter.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
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


def _converter(op: str, identity) -> type:
    base = getattr(onnx_frontend, op)

    def impl(version: int):
        def convert(cls, bb, inputs, attr, params):
            empty = _empty_result(inputs, attr, identity)
            if empty is not None:
                return empty
            return getattr(base, f"_impl_v{version}")(bb, inputs, attr, params)

        return classmethod(convert)

    versions = [int(n.removeprefix("_impl_v")) for n in dir(base) if n.startswith("_impl_v")]
    body = {f"_impl_v{v}": impl(v) for v in versions}
    body["__doc__"] = f"{op}: its identity over an empty set, else TVM's converter."
    return register(op)(type(op, (base,), body))


for _op, _identity in _IDENTITIES.items():
    _converter(_op, _identity)
