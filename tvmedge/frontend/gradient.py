"""Expand ONNX training-preview ``Gradient`` nodes into ordinary ONNX nodes.

``ai.onnx.preview.training::Gradient`` outputs dy/dx for each tensor x named in its ``xs``
attribute, where y (attribute ``y``) is computed by the rest of the graph from the independent
variables ``xs`` and ``zs``; its inputs are the values of xs, then zs, at which the gradients
are taken. TVM's importer has no converter for it, so each Gradient node is replaced here by the
reverse-mode derivative of the forward sub-graph from xs to y, in default-domain ONNX ops:

* the seed dy/dy is a tensor of ones shaped like y;
* each node on a path from xs to y hands its output's gradient to its inputs by a rule for its
  op (``_BINARY``, ``_UNARY``, MatMul), and gradients reaching a tensor by several paths are
  summed;
* where numpy broadcasting stretched an input, its gradient is summed back over the stretched
  axes (ReduceSum, keepdims) and reshaped to the input's shape;
* an x that y does not depend on gets zeros.

When the Gradient's inputs are the tensors named in xs and zs, the forward values already in the
graph are reused; otherwise the forward sub-graph is recomputed from the given inputs. Any other
op on a path from xs to y, or a broadcast that shape inference leaves ambiguous, is refused with
a :class:`GradientError` naming it. The input model is never modified.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tvmedge.errors import UnsupportedOpError

DOMAIN = "ai.onnx.preview.training"
_DEFAULT_DOMAINS = ("", "ai.onnx")
_SUBGRAPHS = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)

Dims = list[int | str | None]  # per axis: a size, a symbolic dim's name, or None if unknown


class GradientError(UnsupportedOpError):
    """A Gradient node tvmedge cannot expand. ``unsupported`` maps the op types refused to
    their nodes' names (an unnamed node's first output), else names the Gradient node."""

    def __init__(self, node: str, reason: str, unsupported: dict[str, list[str]] | None = None):
        super().__init__(unsupported or {f"{DOMAIN}::Gradient": [node]})
        # The base class's advice (rewrite the nodes, change the opset) does not fit: say why.
        self.args = (f"cannot expand Gradient node '{node}': {reason}",)


def expand_gradients(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with every top-level Gradient node replaced by nodes computing its
    outputs; ``model`` itself if it has none."""
    if not any(_is_gradient(node) for node in model.graph.node):
        return model
    expanded = onnx.ModelProto()
    expanded.CopyFrom(model)
    graph = expanded.graph
    # One at a time, shapes inferred afresh each time: a later Gradient may differentiate an
    # earlier one's outputs, which are ordinary tensors only once that one is expanded.
    while (index := _first_gradient(graph)) is not None:
        nodes, initializers = _Expansion(expanded, index).build()
        spliced = [*graph.node[:index], *nodes, *graph.node[index + 1 :]]
        del graph.node[:]
        graph.node.extend(_sorted(spliced))
        graph.initializer.extend(initializers)
    return expanded


def _is_gradient(node: onnx.NodeProto) -> bool:
    return node.domain == DOMAIN and node.op_type == "Gradient"


def _first_gradient(graph: onnx.GraphProto) -> int | None:
    return next((i for i, node in enumerate(graph.node) if _is_gradient(node)), None)


class _Expansion:
    """Builds the nodes and initializers that replace the Gradient node at ``index``."""

    def __init__(self, model: onnx.ModelProto, index: int):
        graph = model.graph
        self.gradient = graph.node[index]
        self.label = self.gradient.name or f"Gradient#{index}"
        self.forward = [n for i, n in enumerate(graph.node) if i != index]
        self.opset = next(o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS)
        self.shapes, self.types = _shapes_and_types(model)
        self.taken = {name for node in graph.node for name in [*node.input, *node.output]}
        self.taken |= {v.name for v in [*graph.input, *graph.output, *graph.initializer]}
        self.numbers = itertools.count()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def build(self) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
        attrs = {a.name: helper.get_attribute_value(a) for a in self.gradient.attribute}
        xs = [s.decode() for s in attrs["xs"]]
        zs = [s.decode() for s in attrs.get("zs", [])]
        y = attrs["y"].decode()
        if len(self.gradient.input) != len(xs) + len(zs):
            raise GradientError(
                self.label,
                f"it has {len(self.gradient.input)} inputs but xs and zs name "
                f"{len(xs) + len(zs)} tensors; pass one value for each",
            )
        if y not in self.taken:
            raise GradientError(self.label, f"y '{y}' is not a tensor of the graph")
        at = dict(zip(xs + zs, self.gradient.input, strict=True))
        path = self._path(self._forward(y, at), {at[x] for x in xs})
        grads = self._backward(path, at.get(y, y))
        for x, out in zip(xs, self.gradient.output, strict=False):
            if out:  # an empty name skips that gradient; pruning then drops what only it used
                self.op("Identity", grads.get(at[x]) or self.filled(at[x], 0), out=out)
        return _pruned(self.nodes, self.initializers, {o for o in self.gradient.output if o})

    def _forward(self, y: str, at: dict[str, str]) -> list[onnx.NodeProto]:
        """The nodes computing y from the values in ``at`` (independent variable -> value), in
        graph order. Where a value is not the variable itself, the nodes depending on it are
        copied to read the value, and ``at`` maps their outputs to the copies' outputs."""
        producer = {o: i for i, node in enumerate(self.forward) for o in node.output if o}
        wanted, stack = set(), [y]
        while stack:  # walk back from y, but not past xs and zs: they are independent
            name = stack.pop()
            if name in self.gradient.output:  # the checker allows it; expanding would loop
                raise GradientError(self.label, f"y '{y}' is computed from its output '{name}'")
            if name not in at and name in producer and producer[name] not in wanted:
                wanted.add(producer[name])
                stack.extend(_reads(self.forward[producer[name]]))
        nodes = [self.forward[i] for i in sorted(wanted)]
        if all(var == value for var, value in at.items()):
            return nodes
        varying, copies = set(at), []
        for node in nodes:
            if not varying.intersection(_reads(node)):
                copies.append(node)
                continue
            if any(a.type in _SUBGRAPHS for a in node.attribute):
                raise GradientError(
                    self.label,
                    f"evaluating y at other inputs than xs and zs would copy {_describe(node)} "
                    "and its sub-graphs; pass the tensors named in xs and zs as the inputs",
                )
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.input[:] = [at.get(name, name) for name in node.input]
            for i, out in enumerate(node.output):
                if out:
                    at[out] = copy.output[i] = self.fresh(out)
                    self.shapes[at[out]] = self.shapes.get(out)  # same op, same input shapes
                    self.types[at[out]] = self.types.get(out)
            varying.update(node.output)
            copies.append(copy)
            self.nodes.append(copy)
        return copies

    def _path(self, forward: list[onnx.NodeProto], xs: set[str]) -> list[onnx.NodeProto]:
        """The nodes of ``forward`` that depend on xs; all of them must be differentiable."""
        path, depends, refused = [], set(xs), {}
        for node in forward:
            if depends.intersection(_reads(node)):
                path.append(node)
                depends.update(node.output)
                if node.domain not in _DEFAULT_DOMAINS or node.op_type not in _DIFFERENTIABLE:
                    op = node.op_type
                    if node.domain not in _DEFAULT_DOMAINS:
                        op = f"{node.domain}::{op}"
                    refused.setdefault(op, []).append(node)
        if refused:
            ops = "; ".join(
                f"{op} ({', '.join(map(_describe, nodes))})"
                for op, nodes in sorted(refused.items())
            )
            raise GradientError(
                self.label,
                f"y depends on xs through ops tvmedge cannot differentiate: {ops}. "
                f"Differentiable ops: {', '.join(sorted(_DIFFERENTIABLE))}",
                {op: [n.name or n.output[0] for n in nodes] for op, nodes in refused.items()},
            )
        return path

    def _backward(self, path: list[onnx.NodeProto], y: str) -> dict[str, str]:
        """dy/dt for each tensor t that y depends on through ``path``, plus y itself."""
        parts: dict[str, list[str]] = {y: [self.filled(y, 1)]}
        for node in reversed(path):  # an output's gradient is complete once all readers ran
            out = node.output[0]  # every differentiable op has one output
            g = self.total(parts[out])
            if node.op_type == "MatMul":
                ins = self.matmul(node, g)
            elif node.op_type in _UNARY:
                ins = [_UNARY[node.op_type](self, g, out)]
            else:  # a broadcasting binary op: its rule gives gradients shaped like its output
                raw = _BINARY[node.op_type](self, g, *node.input, out)
                out_dims = self.dims(out)
                ins = [
                    self.unbroadcast(d, out_dims, x) for d, x in zip(raw, node.input, strict=True)
                ]
            for name, d in zip(node.input, ins, strict=True):
                parts.setdefault(name, []).append(d)
        return {name: self.total(p) for name, p in parts.items()}

    def matmul(self, node: onnx.NodeProto, g: str) -> list[str]:
        """dy/da and dy/db of out = MatMul(a, b), given g = dy/dout."""
        a, b = node.input
        a_dims, b_dims, out_dims = self.dims(a), self.dims(b), self.dims(node.output[0])
        a_vector, b_vector = len(a_dims) == 1, len(b_dims) == 1
        # MatMul takes a vector a as a one-row matrix, b as a one-column one, and drops that
        # axis from its output: differentiate the matrix product, with the axes put back.
        a2, b2, g2 = a, b, g
        if a_vector:
            a2, a_dims = self.op("Reshape", a, self.const([1, -1])), [1, *a_dims]
        if b_vector:
            b2, b_dims = self.op("Reshape", b, self.const([-1, 1])), [*b_dims, 1]
        batch = out_dims[: len(out_dims) - (not a_vector) - (not b_vector)]
        if a_vector or b_vector:  # g as [*batch, m or 1, n or 1]; Reshape's 0 keeps an axis
            target = [0] * len(batch) + [1 if a_vector else 0, 1 if b_vector else -1]
            g2 = self.op("Reshape", g, self.const(target))
        da = self.op("MatMul", g2, self.transposed(b2, len(b_dims)))
        db = self.op("MatMul", self.transposed(a2, len(a_dims)), g2)
        return [
            self.unbroadcast(da, [*batch, *a_dims[-2:]], a, a_dims),
            self.unbroadcast(db, [*batch, *b_dims[-2:]], b, b_dims),
        ]

    def unbroadcast(self, g: str, g_dims: Dims, like: str, like_dims: Dims | None = None) -> str:
        """``g`` summed over the axes along which broadcasting stretched ``like`` (of dims
        ``like_dims``, by default its own) and reshaped to ``like``'s shape."""
        like_dims = self.dims(like) if like_dims is None else like_dims
        lead = len(g_dims) - len(like_dims)
        axes = list(range(lead))  # axes broadcasting prepended
        for axis, want, got in zip(itertools.count(lead), like_dims, g_dims[lead:]):
            if (want is not None and want == got) or got == 1:
                continue
            if want == 1:
                axes.append(axis)  # even if got is unknown: summing a size-1 axis is a no-op
            elif not isinstance(want, int):  # 'n' or unknown under 'm' or 5: was n 1 or not?
                raise GradientError(
                    self.label,
                    f"cannot tell whether '{like}' (shape {_format(like_dims)}) is broadcast to "
                    f"{_format(g_dims)} along axis {axis}; give the model's inputs fixed sizes "
                    "or the same symbolic dim names",
                )
        if axes:
            g = self.reduce_sum(g, axes)
        if len(g_dims) != len(self.dims(like)):
            g = self.op("Reshape", g, self.op("Shape", like))
        return g

    def reduce_sum(self, g: str, axes: list[int]) -> str:
        if self.opset >= 13:  # ReduceSum-13 takes axes as an input, older ones as an attribute
            return self.op("ReduceSum", g, self.const(axes), keepdims=1)
        return self.op("ReduceSum", g, axes=axes, keepdims=1)

    def transposed(self, x: str, rank: int) -> str:
        """``x`` with its last two axes swapped."""
        return self.op("Transpose", x, perm=[*range(rank - 2), rank - 1, rank - 2])

    def filled(self, like: str, value: int) -> str:
        """A tensor of ``like``'s shape and element type with every element ``value``."""
        dtype = self.types.get(like)
        if not dtype:
            raise GradientError(self.label, f"the element type of '{like}' is unknown")
        fill = helper.make_tensor("value", dtype, [1], [value])
        return self.op("ConstantOfShape", self.op("Shape", like), value=fill)

    def total(self, parts: list[str]) -> str:
        return parts[0] if len(parts) == 1 else self.op("Sum", *parts)

    def dims(self, name: str) -> Dims:
        dims = self.shapes.get(name)
        if dims is None:
            raise GradientError(
                self.label,
                f"ONNX shape inference does not give the rank of '{name}'; give the model's "
                "inputs shapes",
            )
        return dims

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        """Add an ``op_type`` node; returns its (only) output's name."""
        out = out or self.fresh(op_type)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def const(self, values: list[int]) -> str:
        name = self.fresh("const")
        self.initializers.append(numpy_helper.from_array(np.array(values, np.int64), name))
        return name

    def fresh(self, base: str) -> str:
        """An unused tensor name, under the Gradient node's name."""
        while (name := f"{self.label}/{base}_{next(self.numbers)}") in self.taken:
            pass
        self.taken.add(name)
        return name


# Gradients of broadcasting binary ops, shaped like the output: (e, g, a, b, out) -> (da, db).
_BINARY = {
    "Add": lambda e, g, a, b, out: (g, g),
    "Sub": lambda e, g, a, b, out: (g, e.op("Neg", g)),
    "Mul": lambda e, g, a, b, out: (e.op("Mul", g, b), e.op("Mul", g, a)),
    # d(a/b)/db = -a/b^2 = -out/b
    "Div": lambda e, g, a, b, out: (
        e.op("Div", g, b),
        e.op("Neg", e.op("Div", e.op("Mul", g, out), b)),
    ),
}
# Gradients of elementwise unary ops: (e, g, out) -> dx. All are written through the output and
# without constants, which would need the tensor's element type.
_UNARY = {
    "Identity": lambda e, g, out: g,
    "Neg": lambda e, g, out: e.op("Neg", g),
    "Exp": lambda e, g, out: e.op("Mul", g, out),
    # relu' is 1 where out > 0, else 0: Sign(out), since out >= 0
    "Relu": lambda e, g, out: e.op("Mul", g, e.op("Sign", out)),
    "Sigmoid": lambda e, g, out: _sigmoid(e, g, out),
    # tanh' = 1 - out^2, so g tanh' = g - g out out
    "Tanh": lambda e, g, out: e.op("Sub", g, e.op("Mul", e.op("Mul", g, out), out)),
}


def _sigmoid(e: _Expansion, g: str, out: str) -> str:
    # sigmoid' = out (1 - out), so g sigmoid' = g out - g out out
    g_out = e.op("Mul", g, out)
    return e.op("Sub", g_out, e.op("Mul", g_out, out))


_DIFFERENTIABLE = frozenset(_BINARY) | frozenset(_UNARY) | {"MatMul"}


def _reads(node: onnx.NodeProto) -> set[str]:
    """Names a node reads, including outer-scope names its sub-graphs read."""
    names = set(node.input) - {""}
    for attr in node.attribute:
        for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
            for inner in sub.node:
                names |= _reads(inner)
    return names


def _pruned(
    nodes: list[onnx.NodeProto], initializers: list[onnx.TensorProto], outputs: set[str]
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Only the nodes and initializers that ``outputs`` are computed from. The rules build
    every input's gradient; this drops those of inputs that do not depend on xs."""
    live, kept = set(outputs), []
    for node in reversed(nodes):
        if live.intersection(node.output):
            kept.append(node)
            live |= _reads(node)
    return kept[::-1], [t for t in initializers if t.name in live]


def _sorted(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """``nodes``, each after the nodes producing what it reads, otherwise in the given order.
    Needed because a Gradient node may come before the forward nodes its expansion reads."""
    producer = {o: i for i, node in enumerate(nodes) for o in node.output if o}
    readers: list[list[int]] = [[] for _ in nodes]
    waiting = []
    for i, node in enumerate(nodes):
        deps = {producer[name] for name in _reads(node) if name in producer} - {i}
        waiting.append(len(deps))
        for dep in deps:
            readers[dep].append(i)
    ready = [i for i, count in enumerate(waiting) if count == 0]
    order = []
    while ready:  # Kahn's algorithm, lowest index first
        i = heapq.heappop(ready)
        order.append(nodes[i])
        for reader in readers[i]:
            waiting[reader] -= 1
            if waiting[reader] == 0:
                heapq.heappush(ready, reader)
    assert len(order) == len(nodes), "the expanded graph has a cycle"
    return order


def _shapes_and_types(model: onnx.ModelProto) -> tuple[dict[str, Dims], dict[str, int]]:
    """Each tensor's dims and element type, as far as ONNX shape inference knows them."""
    try:
        graph = onnx.shape_inference.infer_shapes(model).graph
    except onnx.shape_inference.InferenceError:
        graph = model.graph  # load_onnx reports the failure when it infers shapes itself
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    types = {t.name: t.data_type for t in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        if not value.type.HasField("tensor_type"):
            continue
        if tensor.elem_type:
            types[value.name] = tensor.elem_type
        if tensor.HasField("shape"):
            shapes[value.name] = [
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                for d in tensor.shape.dim
            ]
    return shapes, types


def _describe(node: onnx.NodeProto) -> str:
    return f"node '{node.name}'" if node.name else f"the node computing '{node.output[0]}'"


def _format(dims: Dims) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
