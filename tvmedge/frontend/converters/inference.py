"""Ops whose TVM conversion is right but shaped badly for inference builds.

- Dropout: TVM emits ``relax.nn.dropout``, a (output, mask) tuple op that legalizes to a copy
  and that Relax's layout conversion cannot see through. At inference Dropout is the identity
  and its optional mask is all true, so that is what we emit.
- Sum: TVM broadcasts every input to the output shape, stacks them and reduces the new axis (a
  copy of every input, then a reduction kernel). The pairwise ``add`` chain it falls back to for
  dynamic shapes is exact for ONNX's multidirectional broadcasting and fuses as an epilogue
  (ResNet's residual adds are Sum nodes in the Caffe2 exports).
"""

from __future__ import annotations

import functools

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

    _impl_v12 = _impl_v13 = _impl_v10


@register("Sum")
class Sum(onnx_frontend.OnnxOpConverter):
    """Element-wise sum of any number of inputs, as a chain of broadcasting adds."""

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        return functools.reduce(lambda a, b: bb.normalize(relax.op.add(a, b)), inputs)

    _impl_v6 = _impl_v8 = _impl_v13 = _impl_v1
