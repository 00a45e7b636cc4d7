"""Zero the lowest-norm filters of a trained ONNX model (``--prune``), coupled channels together.

This runs on the ONNX graph, before import, because users name layers by their ONNX nodes and
because the zeroed model is what the compile check runs ONNX Runtime on; shrink-channels then
removes what was zeroed. Channels are grouped as the shrinking graph couples them: through
element-wise ops, BatchNorm and pooling; an Add of two tensors joins their groups; a depthwise
conv passes its input's group on. A group is scored by the summed norms of its members' filters
(L1 or L2) and loses its lowest ``ratio``; weights are zeroed, biases kept (as
``torch.nn.utils.prune.ln_structured`` does: shrinking folds them). Groups whose channels reach
a graph output or an op not listed here are left alone.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from tvmedge.errors import PruneError
from tvmedge.rewrites.prune.options import PruneSpec

_PASS = {
    "Relu", "Clip", "Sigmoid", "Tanh", "LeakyRelu", "HardSigmoid", "HardSwish", "Elu",
    "Selu", "Gelu", "Erf", "Softplus", "Mish", "Dropout", "Identity", "BatchNormalization",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
}  # fmt: skip
_BINARY = {"Add", "Sub", "Mul", "Div", "Max", "Min"}
_ENDS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Flatten", "Concat", "Split"}


def node_names(graph: onnx.GraphProto) -> list[str]:
    """Every node's name, ``Op#index`` for unnamed ones (the names the importer gives)."""
    return [n.name or f"{n.op_type}#{i}" for i, n in enumerate(graph.node)]


class _Groups:
    def __init__(self):
        self.parent: list[int] = []
        self.size: list[int] = []
        self.frozen: list[bool] = []
        self.members: list[list] = []  # (node name, initializer, axis, zeroed or only scored)

    def new(self, size: int) -> int:
        self.parent.append(len(self.parent))
        self.size.append(size)
        self.frozen.append(False)
        self.members.append([])
        return len(self.parent) - 1

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            g = self.parent[g]
        return g

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[b] = a
            self.frozen[a] = self.frozen[a] or self.frozen[b]
            self.members[a] += self.members[b]


def _producer(node, inits) -> tuple[str, int] | None:
    """(weight initializer, its output-channel axis) of a prunable node, else None."""
    if len(node.input) < 2 or node.input[1] not in inits:
        return None
    w = inits[node.input[1]]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Conv" and attrs.get("group", 1) == 1:
        return node.input[1], 0
    if node.op_type == "ConvTranspose" and attrs.get("group", 1) == 1:
        return node.input[1], 1
    if node.op_type == "Gemm" and w.ndim == 2:
        return node.input[1], 0 if attrs.get("transB", 0) else 1
    if node.op_type == "MatMul" and w.ndim == 2:
        return node.input[1], 1
    return None


def prunable(proto: onnx.ModelProto) -> list[str]:
    """Names of the nodes ``--prune`` can name: Conv, ConvTranspose, Gemm and MatMul with
    constant weights."""
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    names = node_names(proto.graph)
    return [names[i] for i, n in enumerate(proto.graph.node) if _producer(n, inits)]


def _depthwise(node, inits, channels: int) -> bool:
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    w = inits.get(node.input[1]) if len(node.input) > 1 else None
    return (
        node.op_type == "Conv"
        and w is not None
        and attrs.get("group", 1) == channels == w.shape[0]
        and w.shape[1] == 1
    )


def _group_graph(proto, inits) -> tuple[_Groups, dict[str, int]]:
    groups, of = _Groups(), {}
    constants = set(inits) | {
        o for n in proto.graph.node if n.op_type == "Constant" for o in n.output
    }
    for name, node in zip(node_names(proto.graph), proto.graph.node, strict=True):
        grouped = [of[t] for t in node.input if t in of]
        found = _producer(node, inits)
        channels = groups.size[groups.find(grouped[0])] if grouped else None
        if found is not None:
            weight, axis = found
            g = groups.new(inits[weight].shape[axis])
            groups.members[g].append((name, weight, axis, True))
            of[node.output[0]] = g
        elif grouped and _depthwise(node, inits, channels) and node.input[0] in of:
            g = groups.find(of[node.input[0]])
            # scored, not zeroed: its channel is constant once the producer's filter is zero
            groups.members[g].append((name, node.input[1], 0, False))
            of[node.output[0]] = g
            continue
        elif node.op_type in _PASS and node.input and node.input[0] in of:
            of[node.output[0]] = of[node.input[0]]
            continue
        elif node.op_type in _BINARY and grouped:
            rest = [t for t in node.input if t not in of and t not in constants]
            sizes = {groups.size[groups.find(g)] for g in grouped}
            if rest or len(sizes) > 1:
                for g in grouped:
                    groups.frozen[groups.find(g)] = True
                continue
            for g in grouped[1:]:
                groups.union(grouped[0], g)
            of[node.output[0]] = grouped[0]
            continue
        if node.op_type not in _ENDS or (node.op_type == "Conv" and found is None):
            for g in grouped:
                groups.frozen[groups.find(g)] = True
    for out in proto.graph.output:
        if out.name in of:
            groups.frozen[groups.find(of[out.name])] = True
    return groups, of


def _norms(w: np.ndarray, axis: int, criterion: str) -> np.ndarray:
    flat = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1).astype(np.float64)
    return np.abs(flat).sum(axis=1) if criterion == "l1" else np.sqrt((flat**2).sum(axis=1))


def check_names(spec: PruneSpec, proto: onnx.ModelProto) -> None:
    """Every node ``spec`` names must be a prunable node of the model."""
    valid = prunable(proto)
    for name in [*spec.layers, *spec.skip]:
        if name not in valid:
            shown = ", ".join(valid[:8]) + (", ..." if len(valid) > 8 else "")
            raise PruneError(
                f"--prune: '{name}' is no prunable node of this model (a Conv, ConvTranspose, "
                f"Gemm or MatMul with constant weights); its prunable nodes: {shown or 'none'}"
            )


def prune_model(
    proto: onnx.ModelProto, spec: PruneSpec, round_to: int = 1
) -> tuple[onnx.ModelProto, dict]:
    """A copy of ``proto`` with the chosen filters zeroed, and the report of what was.
    ``round_to``: each group keeps a multiple of this many channels (shrink-channels keeps
    whole vectors anyway: zeroing more would cost accuracy for nothing)."""
    check_names(spec, proto)
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    groups, _ = _group_graph(proto, inits)
    zeroed: dict[str, np.ndarray] = {}
    layers, left, coupled = {}, [], 0
    for g in range(len(groups.parent)):
        if groups.find(g) != g or not groups.members[g]:
            continue
        members = groups.members[g]
        names = [m[0] for m in members]
        ratios = [spec.layers[n] for n in names if n in spec.layers]
        ratio = max(ratios) if ratios else spec.channels
        if groups.frozen[g] or ratio is None or any(n in spec.skip for n in names):
            left += names
            continue
        size = groups.size[g]
        kept = -(-(size - int(ratio * size)) // round_to) * round_to
        count = size - min(max(kept, 1), size)
        if count == 0:
            continue
        score = sum(_norms(inits[w], axis, spec.criterion) for _, w, axis, _ in members)
        chosen = np.argsort(score, kind="stable")[:count]
        coupled += sum(zero for *_, zero in members) > 1
        for name, weight, axis, zero in members:
            layers[name] = [size, count]
            if not zero:
                continue
            w = zeroed.setdefault(weight, inits[weight].copy())
            index = [slice(None)] * w.ndim
            index[axis] = chosen
            w[tuple(index)] = 0
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    for init in out.graph.initializer:
        if init.name in zeroed:
            init.CopyFrom(numpy_helper.from_array(zeroed[init.name], init.name))
    report = {
        "layers": layers,
        "coupled_groups": coupled,
        "left": sorted(set(left)),
    }
    return out, report
