"""SpaceToDepth with opset 28's ``mode``: TVM's converter ignored it and always used DCR.

DCR (the default) puts the block offset first in the output channel (``(by * b + bx) * C +
c``), CRD puts the channel first (``c * b * b + by * b + bx``), as DepthToSpace's modes do in
reverse.
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register


@register("SpaceToDepth")
class SpaceToDepth(onnx_frontend.SpaceToDepth):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        mode = attr.get("mode", b"DCR")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode == "DCR":
            return onnx_frontend.SpaceToDepth._impl_v1(bb, inputs, attr, params)
        if mode != "CRD":
            raise ValueError(f"SpaceToDepth mode '{mode}' is not DCR or CRD")
        size = int(attr["blocksize"])
        n, c, h, w = inputs[0].ty.shape
        x = relax.op.reshape(inputs[0], (n, c, h // size, size, w // size, size))
        x = relax.op.permute_dims(x, [0, 1, 3, 5, 2, 4])
        return relax.op.reshape(x, (n, c * size * size, h // size, w // size))
