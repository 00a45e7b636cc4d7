"""RotaryEmbedding (opset 23), which TVM's importer does not convert, after ONNX's reference
(onnx/reference/ops/op_rotary_embedding.py).

The input is (batch, heads, seq, head_size), or (batch, seq, heads * head_size) with
``num_heads``. The first ``rotary_embedding_dim`` values of each head (all by default) are
rotated: split into halves, or into even and odd elements when ``interleaved``, as pairs
(x1, x2) -> (cos x1 - sin x2, sin x1 + cos x2), with cos/sin taken from the caches at
``position_ids`` (or the caches already per (batch, seq) without them); the rest pass through.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register


def _static_dims(x: relax.Expr, what: str) -> list[int]:
    dims = x.ty.shape.values if x.ty.shape is not None else None
    if dims is None or not all(isinstance(d, tvm.tirx.IntImm) for d in dims):
        raise ValueError(f"RotaryEmbedding needs a static {what} shape; bind it with --input-shape")
    return [int(d) for d in dims]


def _last(x: relax.Expr, begin: int, end: int, step: int = 1) -> relax.Expr:
    return relax.op.strided_slice(x, [3], [begin], [end], [step])


@register("RotaryEmbedding")
class RotaryEmbedding(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v23(cls, bb, inputs, attr, params):
        x, cos, sin = inputs[:3]
        positions = inputs[3] if len(inputs) > 3 else None
        dims = _static_dims(x, "input")
        if len(dims) == 4:
            x = bb.emit(relax.op.permute_dims(x, [0, 2, 1, 3]))  # (batch, seq, heads, size)
        elif len(dims) == 3:
            heads = int(attr.get("num_heads", 0))
            if heads <= 0 or dims[2] % heads:
                raise ValueError("3-D RotaryEmbedding input needs num_heads dividing its width")
            x = bb.emit(relax.op.reshape(x, [dims[0], dims[1], heads, dims[2] // heads]))
        else:
            raise ValueError(f"RotaryEmbedding input must be 3-D or 4-D, got rank {len(dims)}")
        size = _static_dims(x, "input")[3]
        rot = int(attr.get("rotary_embedding_dim", 0)) or size
        if positions is not None:
            cos = relax.op.take(cos, positions, axis=0)
            sin = relax.op.take(sin, positions, axis=0)
        cos = bb.emit(relax.op.expand_dims(cos, 2))  # (batch, seq, 1, rot / 2)
        sin = bb.emit(relax.op.expand_dims(sin, 2))
        interleaved = bool(int(attr.get("interleaved", 0)))
        if interleaved:
            x1, x2 = _last(x, 0, rot, 2), _last(x, 1, rot, 2)
        else:
            x1, x2 = _last(x, 0, rot // 2), _last(x, rot // 2, rot)
        x1, x2 = bb.emit(x1), bb.emit(x2)
        real = relax.op.subtract(relax.op.multiply(cos, x1), relax.op.multiply(sin, x2))
        imag = relax.op.add(relax.op.multiply(sin, x1), relax.op.multiply(cos, x2))
        real, imag = bb.emit(real), bb.emit(imag)
        if interleaved:
            pairs = bb.emit(relax.op.stack([real, imag], axis=4))
            rotated = relax.op.reshape(pairs, [*_static_dims(x, "input")[:3], rot])
        else:
            rotated = relax.op.concat([real, imag], axis=3)
        out = bb.emit(rotated)
        if rot < size:
            out = bb.emit(relax.op.concat([out, bb.emit(_last(x, rot, size))], axis=3))
        if len(dims) == 4:
            return relax.op.permute_dims(out, [0, 2, 1, 3])
        return relax.op.reshape(out, dims)
