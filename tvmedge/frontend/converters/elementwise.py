"""Element-wise ops whose TVM conversion ignored an attribute or lost an edge of the domain.

- IsInf: TVM's converter ignored ``detect_positive``/``detect_negative`` (it always detected
  both signs).
- Softplus and Mish: TVM computed ``log(1 + exp(x))``, which loses the digits of a small
  ``exp(x)`` in float32 (Softplus at x = -9.98 off by 1.2e-3 relative, Mish there by 1.3e-3,
  beyond the onnx runner's rtol). Softplus uses TIR's ``log1p``; Mish needs no log at all.
- Mod with ``fmod=0`` (floats): TVM's ``floor_mod`` is ``a - floor(a / b) * b``, NaN for an
  infinite ``b``; numpy's rule, which ONNX follows, gives ``a`` or ``a + b`` there. Here the
  truncated remainder (C fmod), moved into the divisor's sign when the signs differ.
"""

from __future__ import annotations

from tvm import relax, te, tirx
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register

_op = relax.op


@register("IsInf")
class IsInf(onnx_frontend.OnnxOpConverter):
    """isinf(x), kept to the signs that detect_positive / detect_negative (default 1) ask for."""

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        x = inputs[0]
        positive = int(attr.get("detect_positive", 1))
        negative = int(attr.get("detect_negative", 1))
        inf = bb.normalize(_op.isinf(x))
        if positive and negative:
            return inf
        if not (positive or negative):
            return _op.zeros_like(inf)
        zero = relax.const(0, x.ty.dtype)
        sign = _op.greater(x, zero) if positive else _op.less(x, zero)
        return _op.logical_and(inf, sign)

    _impl_v20 = _impl_v10


def _log1p(bb, y: relax.Expr) -> relax.Expr:
    """log(1 + y) by TIR's log1p intrinsic (Relax has no log1p op)."""
    return bb.emit_te(lambda t: te.compute(t.shape, lambda *i: tirx.log1p(t(*i)), "log1p"), y)


def _softplus(bb, x: relax.Expr) -> relax.Expr:
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): no overflow, no lost digits."""
    dtype = x.ty.dtype
    tail = _log1p(bb, bb.normalize(_op.exp(_op.negative(_op.abs(x)))))
    return bb.normalize(_op.add(_op.maximum(x, relax.const(0, dtype)), tail))


@register("Softplus")
class Softplus(onnx_frontend.OnnxOpConverter):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        return _softplus(bb, inputs[0])

    _impl_v22 = _impl_v1


@register("Mish")
class Mish(onnx_frontend.OnnxOpConverter):
    """x * tanh(softplus(x)), with tanh(log(1 + e)) = n / (n + 2), n = e * (e + 2), e = exp(x):
    exact for small e, where TVM's tanh (a fast approximation, 2e-4 relative error near 0)
    and log lose digits; 1 from x = 15 on, where n / (n + 2) rounds to 1 and e would overflow
    further on."""

    @classmethod
    def _impl_v18(cls, bb, inputs, attr, params):
        x = inputs[0]
        dtype = x.ty.dtype
        e = bb.normalize(_op.exp(_op.minimum(x, relax.const(15, dtype))))
        n = bb.normalize(_op.multiply(e, _op.add(e, relax.const(2, dtype))))
        t = _op.divide(n, _op.add(n, relax.const(2, dtype)))
        return _op.multiply(
            x, _op.where(_op.greater(x, relax.const(15, dtype)), relax.const(1, dtype), t)
        )

    _impl_v22 = _impl_v18


@register("Mod")
class Mod(onnx_frontend.Mod):
    """Integers and fmod=1: TVM's converter. Floats with fmod=0: numpy's remainder."""

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        a, b = inputs
        if attr.get("fmod", 0) or not str(a.ty.dtype).startswith(("float", "bfloat")):
            return onnx_frontend.Mod._impl_v10(bb, inputs, attr, params)
        zero = relax.const(0, a.ty.dtype)
        r = bb.normalize(_op.mod(a, b))  # truncated: the sign of a
        move = _op.logical_and(
            _op.not_equal(r, zero), _op.logical_xor(_op.less(r, zero), _op.less(b, zero))
        )
        return _op.where(move, _op.add(r, b), r)

    _impl_v13 = _impl_v10
