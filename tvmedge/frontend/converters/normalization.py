"""RMSNormalization (opset 23) as plain Relax ops.

TVM's converter emits ``relax.nn.rms_norm``, whose legalization fails to build when the
normalized axes are all of the input's (``axis=0``: "Tensor dimension mismatch", six node
cases). Here it is ``X / sqrt(mean(X^2 over axis..last) + epsilon) * W``, as ONNX's reference
writes it, computed in float32 (``stash_type`` 1, the only one the spec's reference defines)
and rounded back to the input's dtype.
"""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register


@register("RMSNormalization")
class RMSNormalization(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v23(cls, bb, inputs, attr, params):
        x, scale = inputs[:2]
        rank = len(x.ty.shape.values) if x.ty.shape is not None else -1
        if rank < 1:
            raise ValueError("RMSNormalization needs an input of known rank")
        axis = int(attr.get("axis", -1))
        axis = axis + rank if axis < 0 else axis
        if not 0 <= axis < rank:
            raise ValueError(f"RMSNormalization axis {attr.get('axis')} is out of range")
        if int(attr.get("stash_type", 1)) != 1:
            raise ValueError("RMSNormalization supports stash_type 1 (float32) only")
        dtype = str(x.ty.dtype)
        if dtype != "float32":
            x = bb.emit(relax.op.astype(x, "float32"))
            scale = bb.emit(relax.op.astype(scale, "float32"))
        mean = relax.op.mean(relax.op.multiply(x, x), list(range(axis, rank)), keepdims=True)
        eps = relax.const(np.float32(attr.get("epsilon", 1e-5)), "float32")
        rms = bb.emit(relax.op.sqrt(relax.op.add(mean, eps)))
        y = bb.emit(relax.op.multiply(relax.op.divide(x, rms), scale))
        return relax.op.astype(y, dtype) if dtype != "float32" else y
