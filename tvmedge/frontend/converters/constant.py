"""ONNX Constant with its opset-12 attributes: ``value_float(s)``, ``value_int(s)``.

TVM's converter reads only ``value`` (a tensor) and fails with "no value in Constant" on the
others, which every opset-18 function body uses (Elu, Selu, HardSigmoid, LeakyRelu, CenterCropPad,
the window functions, GroupNormalization...: their ``_expanded`` node cases). A float is a
float32 scalar, floats a 1-D float32 tensor; an int is an int64 scalar, ints 1-D int64 (the
spec's types). String constants have no Relax dtype and are refused, by name.
"""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register

_DTYPES = {
    "value_float": np.float32,
    "value_floats": np.float32,
    "value_int": np.int64,
    "value_ints": np.int64,
}


@register("Constant")
class Constant(onnx_frontend.Constant):
    """``value`` through TVM's converter; the scalar and list attributes as constants here."""

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        for name, dtype in _DTYPES.items():
            if name in attr:
                value = np.asarray(attr[name], dtype)
                return relax.const(value, value.dtype.name)
        if "value_string" in attr or "value_strings" in attr:
            raise NotImplementedError(
                "Constant with value_string(s): Relax tensors have no string dtype"
            )
        return onnx_frontend.Constant._impl_v13(bb, inputs, attr, params)

    _impl_v9 = _impl_v11 = _impl_v12 = _impl_v13 = _impl_v1
