"""Find every operator the importer cannot convert, before importing, with the node names.

Ops outside the default domain are unsupported but for those tvmedge converts (com.microsoft's
QGemm, ...); training-preview Gradient nodes never get here, as load_onnx expands them into
default-domain ops first (frontend/gradient.py)."""

from __future__ import annotations

from collections.abc import Iterator

import onnx
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.errors import UnsupportedOpError
from tvmedge.frontend import converters

_DEFAULT_DOMAINS = ("", "ai.onnx")
# Handled inside the importer's graph walk rather than through its converter map.
_BUILTIN_OPS = frozenset({"Constant", "If"})


def supported_ops() -> frozenset[str]:
    """ONNX op types (default domain) that TVM's importer or tvmedge's converters convert."""
    return (
        frozenset(onnx_frontend._get_convert_map())
        | frozenset(converters.converters())
        | _BUILTIN_OPS
    )


def _walk(graph: onnx.GraphProto, prefix: str = "") -> Iterator[tuple[onnx.NodeProto, str]]:
    for index, node in enumerate(graph.node):
        name = prefix + (node.name or f"{node.op_type}#{index}")
        yield node, name
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _walk(attr.g, name + "/")
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _walk(sub, name + "/")


def check_supported(model: onnx.ModelProto) -> None:
    """Raise one UnsupportedOpError listing every unsupported op type and its nodes."""
    known = supported_ops()
    extra = converters.domain_ops()  # com.microsoft's QGemm, ... (converters/qoperator.py)
    missing: dict[str, list[str]] = {}
    for node, name in _walk(model.graph):
        if node.domain in _DEFAULT_DOMAINS:
            if node.op_type in known:
                continue
            key = node.op_type
        elif (node.domain, node.op_type) in extra:
            continue
        else:
            key = f"{node.domain}::{node.op_type}"
        missing.setdefault(key, []).append(name)
    if missing:
        raise UnsupportedOpError(missing)
