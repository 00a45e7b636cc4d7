"""ONNX Expand when the target shape is a run-time tensor (a graph input or computed).

TVM's converter broadcasts X straight to the run-time shape, which breaks ONNX's rule that
Expand broadcasts *both ways*: the result has rank max(rank X, len(shape)), and a 1 in the
shape keeps X's size (X [1, 3, 1] expanded by [3, 1, 3] is [3, 3, 3], not [3, 1, 3]). It also
fails to import when the shape is shorter than X's rank ("broadcast_to expects the input shape
to have the number of ndim at least as the input tensor's"). ``test_expand_shape_model1..4``.

Each output dim is decided statically where X's dim is known: a known size other than 1 is the
result (a valid shape has 1 or that size there), a known 1 takes the shape's value; only a
symbolic dim of X needs max(x, s), exact for every valid pair of sizes >= 1.

A constant shape goes to TVM's converter unless X has a symbolic dim, which that converter
reads as a number ("'Var' object has no attribute 'value'": a zero tensor made with
``x.new_zeros((x.shape[0], 1, 1)).expand(-1, -1, L)`` in a model with a symbolic batch). Then a
1 (or -1, which PyTorch exports and TVM reads as "keep") keeps X's dim and any other value is
the result: X's dim there must be 1 or that value.
"""

from __future__ import annotations

import tvm
from tvm import relax, tirx
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register


def _output_dim(x_dim: tirx.PrimExpr, s_dim: tirx.PrimExpr) -> tirx.PrimExpr:
    if isinstance(x_dim, tirx.IntImm):
        return s_dim if int(x_dim) == 1 else x_dim
    return tirx.max(x_dim, s_dim)


def _static(data: relax.Expr) -> bool:
    return all(isinstance(d, tirx.IntImm) for d in data.ty.shape.values)


def _expand_constant(data: relax.Expr, shape: list[int]) -> relax.Expr:
    x_dims = list(data.ty.shape.values)
    rank = max(len(shape), len(x_dims))
    one = tirx.IntImm("int64", 1)
    x_dims = [one] * (rank - len(x_dims)) + x_dims
    shape = [1] * (rank - len(shape)) + shape
    out = []
    for x, s in zip(x_dims, shape, strict=True):
        if s in (1, -1):
            out.append(x)
        elif isinstance(x, tirx.IntImm) and int(x) not in (1, s):
            raise ValueError(f"Expand: a dim of size {int(x)} cannot broadcast to {s}")
        else:
            out.append(tirx.IntImm("int64", s))
    if rank > len(data.ty.shape.values):
        data = relax.op.reshape(data, relax.ShapeExpr(x_dims))
    return relax.op.broadcast_to(data, relax.ShapeExpr(out))


@register("Expand")
class Expand(onnx_frontend.Expand):
    """Run-time shape tensors: bidirectional broadcasting; constant shapes: TVM's converter."""

    @classmethod
    def _impl_v8(cls, bb, inputs, attr, params):
        data, shape = inputs
        if isinstance(shape, tvm.ir.GenericConst) and not _static(data):
            return _expand_constant(data, shape.value.numpy().tolist())
        if isinstance(shape, relax.ShapeExpr | tvm.ir.GenericConst):
            return onnx_frontend.Expand._impl_v13(bb, inputs, attr, params)
        if shape.ty.shape is None or not isinstance(shape.ty.shape.values[0], tirx.IntImm):
            raise tvm.error.OpNotImplemented(
                "Expand: the shape input's length must be known to fix the output's rank"
            )
        length = int(shape.ty.shape.values[0])
        # The shape tensor's values become symbolic dims s0, s1, ... bound at run time.
        target = [tirx.Var(f"expand_s{i}", "int64") for i in range(length)]
        bb.match_cast(bb.emit(relax.op.tensor_to_shape(shape)), relax.ShapeType(target))
        x_dims = list(data.ty.shape.values)
        rank = max(length, len(x_dims))
        one = tirx.IntImm("int64", 1)
        x_dims = [one] * (rank - len(x_dims)) + x_dims
        target = [one] * (rank - length) + target
        if rank > len(data.ty.shape.values):  # broadcast_to needs X at the output's rank
            data = bb.emit(relax.op.reshape(data, relax.ShapeExpr(x_dims)))
        out = [_output_dim(x, s) for x, s in zip(x_dims, target, strict=True)]
        return relax.op.broadcast_to(data, relax.ShapeExpr(out))

    _impl_v13 = _impl_v8  # TVM's class defines v13: without this, it would win from opset 13
