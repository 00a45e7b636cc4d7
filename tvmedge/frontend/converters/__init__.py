"""tvmedge's own ONNX op converters, added to TVM's importer without forking it.

A converter is a ``tvm.relax.frontend.onnx.onnx_frontend.OnnxOpConverter`` subclass with
``_impl_vN(cls, bb, inputs, attr, params)`` class methods, registered here by ONNX op type:

    @register("LSTM")
    class LSTM(OnnxOpConverter): ...

TVM's importer looks converters up through the module-level ``_get_convert_map()``; that
function is its only extension point, so :func:`installed` extends it for the duration of one
import and restores it after. One module per op family (``recurrent.py``, ...); importing this
package registers them all.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

from tvm.relax.frontend.onnx import onnx_frontend

CONVERTERS: dict[str, type] = {}
DOMAINS: dict[str, str] = {}  # op type -> its domain, for ops outside the default one
# Symbolic dims that stand for a graph input's dim of 0, during one import (see importer.py).
ZERO_DIMS: set = set()
_FAMILIES: tuple[str, ...] = (
    "recurrent",
    "activation",
    "slicing",
    "broadcast",
    "sequence",
    "inference",
    "concat",
    "conv",
    "qoperator",
    "norm",
    "elementwise",
    "reduce",
    "rearrange",
    "detection",
    "precision",
    "resize",
    "constant",
    "loss",
    "attention",
    "normalization",
    "rotary",
    "detection",
)  # modules under this package, imported on first use


def register(op_type: str, domain: str = ""):
    """Class decorator: convert ONNX ``op_type`` with this class. TVM's importer looks ops up
    by type alone; ``domain`` (com.microsoft, ...) says which domain's op it is."""

    def wrap(cls: type) -> type:
        if op_type in CONVERTERS:
            raise ValueError(f"converter for {op_type} registered twice")
        CONVERTERS[op_type] = cls
        if domain:
            DOMAINS[op_type] = domain
        return cls

    return wrap


def converters() -> dict[str, type]:
    for family in _FAMILIES:
        importlib.import_module(f"{__name__}.{family}")
    return dict(CONVERTERS)


def domain_ops() -> frozenset[tuple[str, str]]:
    """(domain, op type) of the converters for ops outside the default domain."""
    converters()
    return frozenset((d, op) for op, d in DOMAINS.items())


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """TVM's importer sees tvmedge's converters (ours win over TVM's) inside this block."""
    original = onnx_frontend._get_convert_map
    ours = converters()
    onnx_frontend._get_convert_map = lambda: {**original(), **ours}
    try:
        yield
    finally:
        onnx_frontend._get_convert_map = original
