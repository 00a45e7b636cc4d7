"""Fold ONNX shape sub-graphs into constants before TVM imports the model.

Exporters compute Reshape/Expand/Pad/Resize targets at run time from ``Shape`` of a tensor
(tf2onnx: ``Shape -> Cast -> Gather -> Concat -> Cast -> Reshape``; PyTorch: ``Shape -> Gather
-> Unsqueeze -> Concat``). TVM's importer follows some of these patterns symbolically and fails
on others ("Reshape requires the input new shape to be Shape"). Once input shapes are bound,
most of these values are plain constants, so this pass evaluates them here, with ONNX's own
reference evaluator, and stores them as initializers.

Where a dim stays symbolic (a batch left free), values are evaluated partially: each element is
a number or a :class:`Sym`. A Reshape target that is partly symbolic is pinned to a constant when
ONNX's ``0`` (copy the input's dim) and ``-1`` (infer one dim) can stand for the symbolic
elements, which keeps one artifact valid for every batch size.

Only values that cannot depend on input data are folded: initializers, ``Constant`` nodes and
``Shape``/``Size`` of tensors, through a fixed set of cheap ops, and nothing over
``max_elements``. The input model is never modified.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

MAX_ELEMENTS = 1 << 20
# Partly symbolic values are shape vectors, tracked element by element; bigger ones are not.
_PARTIAL_MAX_ELEMENTS = 64

_DEFAULT_DOMAINS = ("", "ai.onnx")
# Ops that only move elements: evaluable on partly symbolic data by moving element positions.
_MOVES = frozenset(
    {"Identity", "Cast", "Gather", "Slice", "Concat", "Squeeze", "Unsqueeze", "Reshape"}
    | {"Flatten", "Transpose", "Where"}
)
_ELEMENTWISE = frozenset(
    {"Add", "Sub", "Mul", "Div", "Mod", "Min", "Max", "Neg", "Abs", "Sqrt", "Reciprocal"}
    | {"Floor", "Ceil", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"}
    | {"Not", "And", "Or"}
)
# Ops whose output size is set by their inputs' values, checked against the cap before running.
_CREATES = frozenset({"ConstantOfShape", "Range", "Expand", "Tile"})
_FOLDABLE = _MOVES | _ELEMENTWISE | _CREATES | {"Shape", "Size", "Constant"}


@dataclass(frozen=True)
class Sym:
    """An element known only at run time. ``dim`` names it when it is exactly a symbolic dim;
    ``deps`` are the symbolic dims it is computed from."""

    dim: str | None
    deps: frozenset[str]


@dataclass(frozen=True)
class Partial:
    """A small tensor with some :class:`Sym` elements (an object array) and its ONNX dtype."""

    elems: np.ndarray
    dtype: np.dtype


Value = np.ndarray | Partial
Dims = tuple[int | str | None, ...]


def fold_shapes(model: onnx.ModelProto, *, max_elements: int = MAX_ELEMENTS) -> onnx.ModelProto:
    """A copy of ``model`` with its input-independent shape computations folded to
    initializers, partly symbolic Reshape targets pinned, and the nodes left unused removed."""
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    # Each round removes a node or pins a Reshape target, so this ends. Shapes are re-inferred
    # between rounds because a folded Reshape target makes its output (and Shape of it) static.
    while _fold_once(folded.graph, _opset(folded), max_elements):
        _drop_dead(folded.graph)
        folded = _infer(folded)
    return folded


def symbolic_dims_behind(model: onnx.ModelProto, node_name: str) -> set[str]:
    """The symbolic dims that ``node_name``'s shape-valued inputs (a Reshape target, Resize
    sizes, ...) are computed from: binding them lets this pass fold those inputs to constants."""
    node = next((n for n in model.graph.node if n.name == node_name), None)
    if node is None:
        return set()
    values = _evaluate(model.graph, _opset(model), MAX_ELEMENTS)
    partial = [values.get(name) for name in node.input if name]
    return {
        dim
        for value in partial
        if isinstance(value, Partial)
        for e in value.elems.ravel()
        if isinstance(e, Sym)
        for dim in e.deps
    }


def _opset(model: onnx.ModelProto) -> int:
    return next(
        (o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS),
        onnx.defs.onnx_opset_version(),
    )


def _fold_once(graph: onnx.GraphProto, opset: int, max_elements: int) -> bool:
    """Replace every node whose outputs are all constant by initializers, and pin partly
    symbolic Reshape targets; True if anything changed."""
    values = _evaluate(graph, opset, max_elements)
    dims = _dims(graph)
    taken = {t.name for t in [*graph.initializer, *graph.input, *graph.value_info]}
    taken |= {o for n in graph.node for o in n.output}
    kept, added = [], []
    for node in graph.node:
        outs = {o: values.get(o) for o in node.output if o}
        if (
            _foldable(node)
            and node.op_type != "Constant"  # already a constant; TVM reads it as one
            and outs
            and all(isinstance(v, np.ndarray) for v in outs.values())
        ):
            added += [numpy_helper.from_array(v, o) for o, v in outs.items()]
            continue
        if node.op_type == "Reshape" and isinstance(values.get(node.input[1]), Partial):
            target = _pinned_target(node, values[node.input[1]], dims.get(node.input[0]))
            if target is not None:
                name = _fresh(f"{node.output[0]}_target", taken)
                added.append(numpy_helper.from_array(target, name))
                node.input[1] = name
        kept.append(node)
    if not added:
        return False
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(added)
    return True


def _foldable(node: onnx.NodeProto) -> bool:
    return node.domain in _DEFAULT_DOMAINS and node.op_type in _FOLDABLE


class _Values(dict):
    """Tensor name -> Value; small initializers are read on first use."""

    def __init__(self, graph: onnx.GraphProto, max_elements: int):
        super().__init__()
        self._weights = {t.name: t for t in graph.initializer}
        self._max = max_elements

    def __missing__(self, name: str) -> Value:
        tensor = self._weights.get(name)
        if tensor is None or math.prod(tensor.dims) > self._max:
            raise KeyError(name)
        value = self[name] = numpy_helper.to_array(tensor)
        return value

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default


def _evaluate(graph: onnx.GraphProto, opset: int, max_elements: int) -> _Values:
    """Every value in ``graph`` that is known (an array) or partly known (a Partial) before run
    time, in one pass over the (topologically sorted) nodes."""
    values = _Values(graph, max_elements)
    dims = _dims(graph)
    for node in graph.node:
        if not _foldable(node):
            continue
        try:
            outs = _evaluate_node(node, values, dims, opset, max_elements)
        except Exception:  # the evaluator rejects the node (bad attributes, ...): TVM's turn
            continue
        for name, value in zip(node.output, outs or (), strict=False):
            if name:
                values[name] = value
    return values


def _evaluate_node(node, values, dims, opset, max_elements) -> list[Value] | None:
    if node.op_type in ("Shape", "Size"):
        known = values.get(node.input[0])
        shape = dims.get(node.input[0]) if known is None else _shape_of(known)
        return None if shape is None else [_shape_value(node, shape)]
    ins = {name: values.get(name) for name in node.input if name}
    if any(v is None for v in ins.values()):
        return None
    if all(isinstance(v, np.ndarray) for v in ins.values()):
        if _creates_over(node, [values[n] for n in node.input if n], max_elements):
            return None
        outs = _run(node, ins, opset)
        return None if any(o.size > max_elements for o in outs) else outs
    if any(_size(v) > _PARTIAL_MAX_ELEMENTS for v in ins.values()):
        return None
    if node.op_type in _MOVES:
        return [_move(node, ins, opset)]
    if node.op_type in _ELEMENTWISE:
        return [_elementwise(node, ins, opset)]
    return None


def _run(node: onnx.NodeProto, feeds: dict[str, np.ndarray], opset: int) -> list[np.ndarray]:
    """ONNX's reference implementation of ``node`` at ``opset`` (a bare NodeProto would be run
    at the newest opset, where e.g. Unsqueeze's axes are an input, not an attribute)."""
    untyped = helper.make_tensor_value_info
    graph = helper.make_graph(
        [node],
        "fold",
        [untyped(name, onnx.TensorProto.UNDEFINED, None) for name in feeds],
        [untyped(name, onnx.TensorProto.UNDEFINED, None) for name in node.output],
    )
    outs = ReferenceEvaluator(graph, opsets={"": opset}).run(None, feeds)
    return [np.asarray(o) for o in outs]


def _creates_over(node: onnx.NodeProto, ins: list[np.ndarray], max_elements: int) -> bool:
    """Whether an op that builds a tensor from its inputs' values would build too big a one."""
    op = node.op_type
    if op not in _CREATES:
        return False
    if op == "ConstantOfShape":
        size = math.prod(int(d) for d in ins[0].ravel())
    elif op == "Expand":
        size = math.prod(np.broadcast_shapes(ins[0].shape, tuple(int(d) for d in ins[1])))
    elif op == "Tile":
        size = ins[0].size * math.prod(int(r) for r in ins[1].ravel())
    else:  # Range(start, limit, delta)
        start, limit, delta = (float(v) for v in ins)
        size = math.ceil((limit - start) / delta)
    return size > max_elements


def _shape_value(node: onnx.NodeProto, shape: Dims) -> Value:
    elems = [d if isinstance(d, int) else Sym(d, frozenset({d} if d else ())) for d in shape]
    if node.op_type == "Size":
        syms = [e for e in elems if isinstance(e, Sym)]
        if not syms:
            return np.array(math.prod(elems), np.int64)
        size = Sym(None, frozenset().union(*(s.deps for s in syms)))
        return Partial(_objects([size]).reshape(()), np.dtype(np.int64))
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    elems = elems[attrs.get("start", 0) : attrs.get("end")]  # clamped like ONNX's Shape-15
    return _settle(_objects(elems), np.dtype(np.int64))


def _move(node: onnx.NodeProto, ins: dict[str, Value], opset: int) -> Value | None:
    """Run a data-movement op on element positions instead of values, then map positions back
    to the elements (numbers or Syms) they came from."""
    if node.op_type in ("Identity", "Cast"):
        (src,) = ins.values()
        dtype = src.dtype
        if node.op_type == "Cast":
            to = next(a.i for a in node.attribute if a.name == "to")
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(to))
        return _settle(_as_objects(src), dtype)
    data_slots = {"Concat": range(len(node.input)), "Where": (1, 2)}.get(node.op_type, (0,))
    pool: list = []
    feeds = {}
    for i, name in enumerate(node.input):
        if not name:
            continue
        if i not in data_slots:
            if isinstance(ins[name], Partial):
                return None  # symbolic indices/axes/condition: positions are unknown
            feeds[name] = ins[name]
            continue
        elems = _as_objects(ins[name])
        feeds[name] = np.arange(len(pool), len(pool) + elems.size).reshape(elems.shape)
        pool.extend(elems.ravel())
    (positions,) = _run(node, feeds, opset)
    elems = _objects([pool[p] for p in positions.ravel()]).reshape(positions.shape)
    return _settle(elems, ins[node.input[data_slots[0]]].dtype)


def _elementwise(node: onnx.NodeProto, ins: dict[str, Value], opset: int) -> Value:
    """Arithmetic on partly symbolic values: numbers where every operand is a number, a Sym
    depending on the operands' dims elsewhere."""
    placeholders = {}
    for name, value in ins.items():
        if isinstance(value, Partial):
            ones = [1 if isinstance(e, Sym) else e for e in value.elems.ravel()]
            value = np.array(ones, value.dtype).reshape(value.elems.shape)
        placeholders[name] = value
    (out,) = _run(node, placeholders, opset)
    operands = np.broadcast_arrays(*(_as_objects(ins[n]) for n in node.input if n))
    elems = out.astype(object)
    for index in np.ndindex(out.shape):
        syms = [a[index] for a in operands if isinstance(a[index], Sym)]
        if syms:
            elems[index] = Sym(None, frozenset().union(*(s.deps for s in syms)))
    return _settle(elems, out.dtype)


def _pinned_target(node: onnx.NodeProto, target: Partial, data: Dims | None) -> np.ndarray | None:
    """A constant Reshape target equal to the partly symbolic ``target`` for every value of its
    Syms, or None: a Sym that is the data's own dim at that position becomes 0 (copy it), and
    one remaining Sym becomes -1 (inferred from the element count)."""
    allowzero = any(a.name == "allowzero" and a.i for a in node.attribute)
    data = data or ()
    pinned: list[int | None] = []
    for i, e in enumerate(target.elems.ravel()):
        if not isinstance(e, Sym):
            pinned.append(int(e))
        elif not allowzero and e.dim is not None and i < len(data) and data[i] == e.dim:
            pinned.append(0)
        else:
            pinned.append(None)
    unknown = [i for i, d in enumerate(pinned) if d is None]
    if len(unknown) == 1 and -1 not in pinned and not (allowzero and 0 in pinned):
        pinned[unknown[0]] = -1
    elif unknown:
        return None
    return np.array(pinned, np.int64)


def _settle(elems: np.ndarray, dtype: np.dtype) -> Value:
    """An array if no element is symbolic, else a Partial."""
    if any(isinstance(e, Sym) for e in elems.ravel()):
        return Partial(elems, dtype)
    return np.array(elems.tolist(), dtype).reshape(elems.shape)


def _objects(items) -> np.ndarray:
    """A 1-D object array (np.array would try to unpack Syms and nested values)."""
    items = list(items)
    array = np.empty(len(items), object)
    array[:] = items
    return array


def _size(value: Value) -> int:
    return value.elems.size if isinstance(value, Partial) else value.size


def _shape_of(value: Value) -> Dims:
    return value.elems.shape if isinstance(value, Partial) else value.shape


def _as_objects(value: Value) -> np.ndarray:
    return value.elems if isinstance(value, Partial) else value.astype(object)


def _dims(graph: onnx.GraphProto) -> dict[str, Dims]:
    """Known shapes by tensor name: ints, dim_param names, None for an unnamed unknown dim."""
    dims: dict[str, Dims] = {t.name: tuple(t.dims) for t in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        if value.type.HasField("tensor_type") and tensor.HasField("shape"):
            dims[value.name] = tuple(
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                for d in tensor.shape.dim
            )
    return dims


def _drop_dead(graph: onnx.GraphProto) -> None:
    """Remove foldable nodes whose outputs nobody reads any more, then unread initializers
    (those also listed as graph inputs stay: they are inputs with a default)."""
    read = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if _foldable(node) and not read.intersection(node.output):
            continue
        kept.append(node)
        read.update(_reads(node))
    del graph.node[:]
    graph.node.extend(reversed(kept))
    read |= {v.name for v in graph.input}
    unread = [i for i, t in enumerate(graph.initializer) if t.name not in read]
    for index in reversed(unread):  # by index: comparing weights to find them would be slow
        del graph.initializer[index]


def _reads(node: onnx.NodeProto) -> set[str]:
    """Names a node reads, including outer-scope names its sub-graphs read."""
    names = set(node.input)
    for attr in node.attribute:
        for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
            for inner in sub.node:
                names |= _reads(inner)
    return names


def _fresh(base: str, taken: set[str]) -> str:
    name, n = base, 0
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    """Re-run shape inference (with value propagation, so shapes computed from the folded
    constants are known); a model it rejects is kept as it is."""
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except onnx.shape_inference.InferenceError:
        return model
