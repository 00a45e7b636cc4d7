"""ONNX Slice before opset 10, when starts / ends / axes were attributes.

TVM's converter implements only the input form (opset 10+) and reads ``None`` inputs for an
older model, failing with "Cannot cast <class 'NoneType'> to list of Expr"
(``test_operator_index``, opset 6). The attributes are turned into the constant inputs of the
newer form, whose semantics they share (clamped ends, negative indices, default axes), and
TVM's converter does the rest.
"""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register


def _const(values) -> relax.Expr:
    return relax.const(np.asarray(values), "int64")  # without the dtype: int32


@register("Slice")
class Slice(onnx_frontend.Slice):
    """Opset 1-9: attributes ``starts``, ``ends``, optional ``axes``; opset 10+: TVM's."""

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        axes = attr.get("axes")
        as_inputs = [
            inputs[0],
            _const(attr["starts"]),
            _const(attr["ends"]),
            None if axes is None else _const(axes),
            None,  # steps arrived with opset 10
        ]
        return onnx_frontend.Slice._impl_v13(bb, as_inputs, attr, params)

    _impl_v10 = onnx_frontend.Slice._impl_v13
