"""ONNX Concat of tensors whose symbolic dims TVM cannot prove equal.

A 1-D U-Net with a symbolic signal length concatenates a ConvTranspose output of length
``len // 4 * 2`` with a skip connection of length ``len // 2``. ONNX requires the two to be
equal (and they are, for every length the model accepts), but TVM's ``concat`` cannot prove it,
gives its result an unknown shape (``R.Tensor(ndim=3)``), and the next convolution then fails to
build ("emit_te now only supports Tensor that has ShapeExpr shape"). Each input whose non-axis
dims differ structurally from the first input's is ``match_cast`` to them: a check at run time
that ONNX's rule holds (a clear VM error if not), after which every shape downstream is known.
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend
from tvm.sym.analyzer import Analyzer

from tvmedge.frontend.converters import register


def _dims(x: relax.Expr) -> list | None:
    shape = getattr(x.ty, "shape", None)
    return list(shape.values) if isinstance(shape, relax.ShapeExpr) else None


@register("Concat")
class Concat(onnx_frontend.Concat):
    """TVM's converter, with inputs cast to the first input's non-axis dims where TVM cannot
    prove them equal."""

    @classmethod
    def _impl_v13(cls, bb, inputs, attr, params):
        tensors = [isinstance(x.ty, relax.TensorType) for x in inputs]
        dims = [_dims(x) for x in inputs]
        if not all(tensors) or any(d is None for d in dims) or len({len(d) for d in dims}) != 1:
            return onnx_frontend.Concat._impl_v13(bb, inputs, attr, params)
        rank = len(dims[0])
        axis = attr.get("axis", 0) % rank if rank else 0
        analyzer = Analyzer()
        cast = list(inputs)
        for i, d in enumerate(dims[1:], start=1):
            want = [d[k] if k == axis else dims[0][k] for k in range(rank)]
            if all(analyzer.can_prove_equal(a, b) for a, b in zip(d, want, strict=True)):
                continue
            ty = relax.TensorType(relax.ShapeExpr(want), inputs[i].ty.dtype)
            cast[i] = bb.match_cast(inputs[i], ty)
        return onnx_frontend.Concat._impl_v13(bb, cast, attr, params)
