"""Ops whose TVM conversion is right but shaped badly for inference builds (Dropout, Sum, Clip).

- Dropout: TVM emits ``relax.nn.dropout``, a (output, mask) tuple op that legalizes to a copy
  and that Relax's layout conversion cannot see through. At inference Dropout is the identity
  and its optional mask is all true, so that is what we emit. Training mode (opset 12's
  ``training_mode`` input true, or a run-time input) drops at random: refused at import.
- Sum: TVM broadcasts every input to the output shape, stacks them and reduces the new axis (a
  copy of every input, then a reduction kernel). The pairwise ``add`` chain it falls back to for
  dynamic shapes is exact for ONNX's multidirectional broadcasting and fuses as an epilogue
  (ResNet's residual adds are Sum nodes in the Caffe2 exports).
"""

from __future__ import annotations

import functools

import numpy as np
import tvm
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register


@register("Dropout")
class Dropout(onnx_frontend.OnnxOpConverter):
    """Identity, with an all-true bool mask for the optional second output from opset 10.
    Before opset 10 the mask has the input's type and ONNX Runtime returns zeros for it at
    inference, which is what we return too."""

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        data = inputs[0]
        return relax.Tuple([data, relax.op.zeros_like(data)])

    @classmethod
    def _impl_v10(cls, bb, inputs, attr, params):
        data = inputs[0]
        return relax.Tuple([data, relax.op.ones_like(data, "bool")])

    @classmethod
    def _impl_v12(cls, bb, inputs, attr, params):
        """Inference mode only: ``training_mode`` absent or a false constant, or a constant
        ratio of 0 (nothing is dropped either way)."""
        ratio, training = [*inputs[1:3], None, None][:2]
        if training is not None and _constant(training) is not False and _constant(ratio) != 0:
            raise NotImplementedError(
                "Dropout in training mode is not supported: its training_mode input is "
                f"{'true' if _constant(training) else 'given at run time'}, and training-mode "
                "Dropout drops at random; tvmedge compiles for inference (make training_mode "
                "a false initializer, or remove it)"
            )
        return cls._impl_v10(bb, inputs, attr, params)

    _impl_v13 = _impl_v12


def _constant(expr):
    """The Python value of a scalar Relax constant; None for anything else (absent, run time)."""
    if isinstance(expr, tvm.ir.GenericConst) and expr.value.numpy().size == 1:
        return expr.value.numpy().item()
    return None


@register("Sum")
class Sum(onnx_frontend.OnnxOpConverter):
    """Element-wise sum of any number of inputs, as a chain of broadcasting adds."""

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        return functools.reduce(lambda a, b: bb.normalize(relax.op.add(a, b)), inputs)

    _impl_v6 = _impl_v8 = _impl_v13 = _impl_v1


@register("Clip")
class Clip(onnx_frontend.Clip):
    """Clip (ReLU6 in every MobileNet) as Relax maximum/minimum ops. TVM emits them as opaque
    ``call_tir`` calls, which Relax's layout conversion cannot see through: every ReLU6 of a
    channels-last MobileNetV2 sat between two transposes. NaN bounds mean unbounded (TVM's
    handling). NaN data stays NaN, as in ONNX Runtime: the bound is the first operand, and TVM
    lowers max(a, b) to ``a > b ? a : b``, so a comparison with NaN keeps the data, not the
    bound. (TVM's converter put the data first and returned the bound for NaN.)"""

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        data = inputs[0]
        dtype = data.ty.dtype
        lo, hi = float(attr.get("min", -np.inf)), float(attr.get("max", np.inf))
        out = bb.emit(relax.op.maximum(relax.const(lo, dtype), data))
        return relax.op.minimum(relax.const(hi, dtype), out)

    @classmethod
    def _impl_v13(cls, bb, inputs, attr, params):
        out = inputs[0]
        if len(inputs) > 1 and inputs[1] is not None:
            lo = cls._sanitize_nan_clip_bound(bb, inputs[1], for_min=True)
            out = bb.emit(relax.op.maximum(lo, out))
        if len(inputs) > 2 and inputs[2] is not None:
            hi = cls._sanitize_nan_clip_bound(bb, inputs[2], for_min=False)
            out = bb.emit(relax.op.minimum(hi, out))
        return out

    _impl_v6 = _impl_v1
    _impl_v11 = _impl_v12 = _impl_v13
