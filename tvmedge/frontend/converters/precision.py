"""float16 MatMul and Softmax computed in float32 and rounded once, as ONNX Runtime does.

TVM's converters keep a float16 model's MatMul and Softmax in float16 throughout: the dot
products accumulate in float16 and Softmax's exponentials are summed in float16, each step
rounding to 11 bits. The float16 Attention function bodies then came out up to 1.5e-3 off
(test_attention_4d_fp16_expanded: 13 of 192 values beyond the onnx runner's rtol 1e-3).
Here MatMul accumulates in float32 (``out_dtype``) and Softmax runs on float32 values; each
result is cast back to float16. Other dtypes are TVM's converters.
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register


def _is_half(expr: relax.Expr) -> bool:
    return str(expr.ty.dtype) == "float16"


@register("MatMul")
class MatMul(onnx_frontend.MatMul):
    @classmethod
    def _impl_v13(cls, bb, inputs, attr, params):
        a, b = inputs
        if not (_is_half(a) and _is_half(b)):
            return onnx_frontend.MatMul._impl_v13(bb, inputs, attr, params)
        wide = bb.normalize(relax.op.matmul(a, b, out_dtype="float32"))
        return relax.op.astype(wide, "float16")

    _impl_v1 = _impl_v9 = _impl_v13


@register("Softmax")
class Softmax(onnx_frontend.Softmax):
    @classmethod
    def _wide(cls, version: int, bb, inputs, attr, params):
        convert = getattr(onnx_frontend.Softmax, f"_impl_v{version}")
        if not _is_half(inputs[0]):
            return convert(bb, inputs, attr, params)
        wide = bb.normalize(relax.op.astype(inputs[0], "float32"))
        out = bb.normalize(convert(bb, [wide, *inputs[1:]], attr, params))
        return relax.op.astype(out, "float16")

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        return cls._wide(1, bb, inputs, attr, params)

    @classmethod
    def _impl_v13(cls, bb, inputs, attr, params):
        return cls._wide(13, bb, inputs, attr, params)

    _impl_v11 = _impl_v1
