"""The ONNX input gate: what a model file must pass before anything else reads it.

onnx and TVM both say models must come from trusted sources; a compiler that deployers feed
models from elsewhere cannot assume that. The gate reads the file once, under a size cap, into
memory, hashes those bytes and parses them; every later stage (the checker, shape inference,
the importer, ONNX Runtime in the compile check) reads a private copy of exactly those bytes,
so a file changed while we compile changes nothing. External data is off unless asked for
(``allow_external_data``), and then copied the same way (frontend/external_data.py).

Before the ONNX checker, which reports a cycle as an unsorted graph and accepts any size:
no cycles, no negative dims, no tensor whose declared size exceeds the cap, no initializer
whose stored bytes disagree with its declared size. Every refusal is one ModelFileError line.

Caps (bytes), raised with environment variables when a model really is that large:
``TVMEDGE_MAX_MODEL_BYTES`` (the .onnx file, default 2 GiB: protobuf's own limit),
``TVMEDGE_MAX_TENSOR_BYTES`` (any one declared tensor, default 2 GiB) and
``TVMEDGE_MAX_DATA_BYTES`` (all external data files together, default 16 GiB).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import onnx

from tvmedge.errors import ModelFileError, TvmedgeError

GiB = 1 << 30
ENV = {
    "model_bytes": "TVMEDGE_MAX_MODEL_BYTES",
    "tensor_bytes": "TVMEDGE_MAX_TENSOR_BYTES",
    "data_bytes": "TVMEDGE_MAX_DATA_BYTES",
}


@dataclass(frozen=True)
class Limits:
    """The gate's caps in bytes; :meth:`from_env` reads the ``TVMEDGE_MAX_*_BYTES`` overrides."""

    model_bytes: int = 2 * GiB
    tensor_bytes: int = 2 * GiB
    data_bytes: int = 16 * GiB

    @classmethod
    def from_env(cls) -> Limits:
        values = {}
        for field, var in ENV.items():
            text = os.environ.get(var, "").strip()
            if not text:
                continue
            try:
                values[field] = int(text)
            except ValueError:
                values[field] = -1
            if values[field] < 1:
                raise TvmedgeError(
                    f"{var}={text!r} is not a positive number of bytes; fix or unset it"
                )
        return cls(**values)


def human(size: int) -> str:
    """``size`` bytes as B, KiB, ... TiB, PiB or EiB with one decimal."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} EiB"


def graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """``graph`` and every subgraph inside it (If, Loop, Scan bodies), outermost first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from graphs(attr.g)
            for g in attr.graphs:
                yield from graphs(g)


def check_graph(model: onnx.ModelProto, where: str, limits: Limits) -> None:
    """The structural checks the ONNX checker lacks or words poorly (see the module doc)."""
    for graph in graphs(model.graph):
        _check_acyclic(graph, where)
        for kind, infos in (
            ("input", graph.input),
            ("output", graph.output),
            ("tensor", graph.value_info),
        ):
            for info in infos:
                check_value_info(info, kind, where, limits)
        for tensor in graph_tensors(graph):
            _check_initializer(tensor, where, limits)


def graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """The tensors stored in ``graph`` itself: initializers and tensor attributes (not those of
    its subgraphs: walk them with :func:`graphs`)."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors


def check_value_info(info: onnx.ValueInfoProto, kind: str, where: str, limits: Limits) -> None:
    """A declared tensor type: no negative dim, a declared size (symbolic dims as 1) under the
    cap. Sequences, maps and optionals are checked by their element type."""
    tensor = _tensor_type(info.type)
    if tensor is None or not tensor.HasField("shape"):
        return
    dims = []
    for i, dim in enumerate(tensor.shape.dim):
        if dim.HasField("dim_value"):
            if dim.dim_value < 0:
                raise ModelFileError(
                    f"{kind} '{info.name}' of {where} has dim {i} = {dim.dim_value}; a dim is "
                    "a size >= 0 or a symbolic name: fix or re-export the model"
                )
            dims.append(dim.dim_value)
    check_size(
        kind, info.name, dims, _dtype(tensor.elem_type), itemsize(tensor.elem_type), where, limits
    )


def _tensor_type(t: onnx.TypeProto):
    for _ in range(64):  # nested sequence/optional types; deeper nesting is not a tensor we use
        field = t.WhichOneof("value")
        if field == "tensor_type":
            return t.tensor_type
        if field == "sequence_type":
            t = t.sequence_type.elem_type
        elif field == "optional_type":
            t = t.optional_type.elem_type
        elif field == "map_type":
            t = t.map_type.value_type
        else:
            return None
    return None


# element types whose raw bytes are not one itemsize per element (strings, sub-byte types)
_PACKED = {
    getattr(onnx.TensorProto, name)
    for name in ("STRING", "INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2", "UNDEFINED")
    if hasattr(onnx.TensorProto, name)
}


def _dtype(elem_type: int) -> str:
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name
    except (KeyError, ValueError, TypeError):
        return onnx.TensorProto.DataType.Name(elem_type).lower() if elem_type in _NAMES else "?"


_NAMES = set(onnx.TensorProto.DataType.values())


def itemsize(elem_type: int) -> int:
    """Bytes per element of an ONNX element type (1 for strings, sub-byte and unknown types)."""
    try:
        return max(1, onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize)
    except (KeyError, ValueError, TypeError):
        return 1


def check_size(
    kind: str, name: str, dims, dtype: str, item: int, where: str, limits: Limits
) -> int:
    """Refuse a tensor whose declared size exceeds ``limits.tensor_bytes``; returns its bytes."""
    nbytes = math.prod(dims) * item
    if nbytes > limits.tensor_bytes:
        shape = "x".join(map(str, dims)) or "scalar"
        raise ModelFileError(
            f"{kind} '{name}' of {where} declares {shape} {dtype}: {human(nbytes)}, over the "
            f"{human(limits.tensor_bytes)} cap on one tensor; if the model really needs it, "
            f"raise the cap with {ENV['tensor_bytes']}={nbytes}"
        )
    return nbytes


def _check_initializer(tensor: onnx.TensorProto, where: str, limits: Limits) -> None:
    for i, d in enumerate(tensor.dims):
        if d < 0:
            raise ModelFileError(
                f"initializer '{tensor.name}' of {where} has dim {i} = {d}; re-export the model"
            )
    nbytes = check_size(
        "initializer",
        tensor.name,
        tensor.dims,
        _dtype(tensor.data_type),
        itemsize(tensor.data_type),
        where,
        limits,
    )
    stored = len(tensor.raw_data)
    if tensor.HasField("raw_data") and stored != nbytes and tensor.data_type not in _PACKED:
        raise ModelFileError(
            f"initializer '{tensor.name}' of {where} declares {human(nbytes)} but holds "
            f"{human(stored)} of data; the file is damaged or crafted: re-export the model"
        )


def _check_acyclic(graph: onnx.GraphProto, where: str) -> None:
    """Kahn's algorithm over the edges between this graph's own nodes (names from outer scopes
    or duplicate producers are left to the checker): a cycle is named by some of its nodes."""
    producer: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for name in node.output:
            if name:
                producer.setdefault(name, i)
    users: list[list[int]] = [[] for _ in graph.node]
    waiting = [0] * len(graph.node)
    for i, node in enumerate(graph.node):
        for j in {producer[n] for n in node.input if n in producer}:
            users[j].append(i)
            waiting[i] += 1
    ready = [i for i, w in enumerate(waiting) if w == 0]
    done = 0
    while ready:
        i = ready.pop()
        done += 1
        for k in users[i]:
            waiting[k] -= 1
            if waiting[k] == 0:
                ready.append(k)
    if done == len(graph.node):
        return
    stuck = [graph.node[i] for i, w in enumerate(waiting) if w > 0]
    shown = ", ".join(f"'{n.name or n.op_type}' ({n.op_type})" for n in stuck[:5])
    more = f" and {len(stuck) - 5} more" if len(stuck) > 5 else ""
    raise ModelFileError(
        f"graph '{graph.name}' of {where} has a cycle: nodes {shown}{more} depend on each "
        "other's outputs; an ONNX graph must be acyclic: fix or re-export the model"
    )


def check_bound_sizes(inputs, where: str, limits: Limits | None = None) -> None:
    """The inputs' sizes once --input-shape bindings are applied (symbolic dims as 1)."""
    import numpy as np

    limits = limits or Limits.from_env()
    for spec in inputs:
        dims = [d for d in spec.shape if isinstance(d, int)]
        try:
            size = np.dtype(spec.dtype).itemsize
        except TypeError:  # ml_dtypes' names (bfloat16, float8...) numpy may not know
            size = 1
        check_size("input", spec.name, dims, spec.dtype, size, where, limits)
