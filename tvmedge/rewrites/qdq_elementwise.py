"""Per-tensor quantize/dequantize of activations as plain elementwise ops.

What the int8 rewrite leaves in fake-quant form (a residual Add, pooling, Concat between
integer layers) keeps ``relax.quantize`` / ``relax.dequantize``, which have no layout rule:
layout conversion then wraps each in NHWC <-> NCHW transposes of whole activations. Written as
the ops TVM legalizes them into, the same values come out and layouts pass through:

    dequantize(x, s, zp) = float32(int32(x) - zp) * s
    quantize(y, s, zp)   = dtype(min(max(round(y / s) + zp, lo), hi))

Only scalar scales and zero points of non-constant tensors are rewritten (a constant's
dequantize folds away at compile time anyway).
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from tvmedge.rewrites.mutate import rewrite_functions

_RANGES = {"uint8": (0, 255), "int8": (-128, 127)}


def _scalar(expr) -> np.ndarray | None:
    if isinstance(expr, tvm.ir.GenericConst) and expr.value.numpy().size == 1:
        return expr.value.numpy().reshape(())
    return None


@mutator
class _Elementwise(PyExprMutator):
    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        name = getattr(call.op, "name", "")
        if name not in ("relax.quantize", "relax.dequantize"):
            return call
        data = call.args[0]
        scale, zp = _scalar(call.args[1]), _scalar(call.args[2])
        if scale is None or zp is None or isinstance(data, tvm.ir.GenericConst):
            return call
        scale = relax.const(np.float32(scale))
        if name == "relax.dequantize":
            if str(call.attrs.out_dtype) != "float32" or str(data.ty.dtype) not in _RANGES:
                return call
            shifted = relax.op.subtract(relax.op.astype(data, "int32"), relax.const(np.int32(zp)))
            return relax.op.multiply(relax.op.astype(shifted, "float32"), scale)
        out_dtype = str(call.attrs.out_dtype)
        if out_dtype not in _RANGES or str(data.ty.dtype) != "float32":
            return call
        lo, hi = _RANGES[out_dtype]
        v = relax.op.add(relax.op.round(relax.op.divide(data, scale)), relax.const(np.float32(zp)))
        v = relax.op.minimum(
            relax.op.maximum(v, relax.const(np.float32(lo))), relax.const(np.float32(hi))
        )
        return relax.op.astype(v, out_dtype)


@tvm.transform.module_pass(opt_level=0, name="tvmedge.QdqElementwise")
def qdq_elementwise(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
    return rewrite_functions(_Elementwise(mod), mod)
