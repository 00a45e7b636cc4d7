"""Hand-written hostile ONNX files for the input gate's tests (tests/test_gate.py).

Each builder writes one file into a folder and returns its path; HOSTILE maps a case name to
(builder, the pattern its one-line refusal must match). The files are written byte for byte
(``SerializeToString``): onnx.save would rewrite external-data references and check nothing.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

FLOAT = TensorProto.FLOAT


def _model(nodes, inputs, outputs, initializers=(), opsets=(("", 17),)) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "hostile", inputs, outputs, initializer=list(initializers))
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], ir_version=8
    )


def _vi(name, shape, elem=FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def _write(folder: Path, name: str, model: onnx.ModelProto | bytes) -> Path:
    path = folder / name
    path.write_bytes(model if isinstance(model, bytes) else model.SerializeToString())
    return path


def relu(shape=(1, 8)) -> onnx.ModelProto:
    return _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", shape)], [_vi("y", shape)])


def path_traversal(folder: Path) -> Path:
    """An initializer whose external data is '../../../../etc/passwd'."""
    w = TensorProto(name="W", data_type=FLOAT, dims=[8])
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../../../../etc/passwd"), ("offset", "0"), ("length", "32")):
        w.external_data.add(key=key, value=value)
    model = _model([helper.make_node("Add", ["x", "W"], ["y"])], [_vi("x", [8])], [_vi("y", [8])])
    model.graph.initializer.append(w)
    return _write(folder, "traversal.onnx", model)


def claimed_2gb(folder: Path) -> Path:
    """An initializer declaring 2^29 floats (2 GiB) that holds 4 bytes."""
    w = TensorProto(name="W", data_type=FLOAT, dims=[1 << 29], raw_data=b"\0" * 4)
    model = _model(
        [helper.make_node("Add", ["x", "W"], ["y"])], [_vi("x", [1 << 29])], [_vi("y", [1 << 29])]
    )
    model.graph.initializer.append(w)
    return _write(folder, "claimed_2gb.onnx", model)


def truncated(folder: Path) -> Path:
    """A valid model cut in the middle of its graph."""
    data = relu().SerializeToString()
    return _write(folder, "truncated.onnx", data[: len(data) - 7])


def cyclic(folder: Path) -> Path:
    """a = Relu(b), b = Relu(a): every node waits for another."""
    nodes = [
        helper.make_node("Add", ["x", "b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
        helper.make_node("Identity", ["b"], ["y"], name="out"),
    ]
    return _write(folder, "cyclic.onnx", _model(nodes, [_vi("x", [4])], [_vi("y", [4])]))


def input_4tb(folder: Path) -> Path:
    """A 1 x 2^40 float input: 4 TiB."""
    return _write(folder, "input_4tb.onnx", relu((1, 1 << 40)))


def negative_dim(folder: Path) -> Path:
    return _write(folder, "negative_dim.onnx", relu((-3, 8)))


def derived_4tb(folder: Path) -> Path:
    """Small declared tensors, but ConstantOfShape of [2^40]: shape inference derives 4 TiB."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [1, 1 << 40])
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["big"], name="fill"),
        helper.make_node("ReduceSum", ["big"], ["y"], keepdims=0, name="sum"),
    ]
    return _write(folder, "derived_4tb.onnx", _model(nodes, [], [_vi("y", [])], [shape]))


def undeclared_domain(folder: Path) -> Path:
    """A node of a domain the model does not import."""
    node = helper.make_node("Steal", ["x"], ["y"], domain="evil.example")
    return _write(folder, "domain.onnx", _model([node], [_vi("x", [4])], [_vi("y", [4])]))


def not_a_model(folder: Path) -> Path:
    """Bytes that parse as a protobuf, but hold no graph."""
    return _write(folder, "empty_graph.onnx", b"\x08\x08")


HOSTILE = {
    "path-traversal": (
        path_traversal,
        r"stores 1 tensor\(s\) in external data files \(first: 'W' in "
        r"'\.\./\.\./\.\./\.\./etc/passwd'\); external data is off by default",
    ),
    "claimed-2gb-tensor": (
        claimed_2gb,
        r"initializer 'W' of '.*claimed_2gb\.onnx' declares 2\.0 GiB but holds 4 B of data",
    ),
    "truncated-protobuf": (truncated, r"'.*truncated\.onnx' is a truncated or corrupt ONNX"),
    "cyclic-graph": (
        cyclic,
        r"graph 'hostile' of '.*cyclic\.onnx' has a cycle: nodes 'first' \(Add\), "
        r"'second' \(Relu\), 'out' \(Identity\)",
    ),
    "input-4tb": (
        input_4tb,
        r"input 'x' of '.*input_4tb\.onnx' declares 1x1099511627776 float32: 4\.0 TiB, over the "
        r"2\.0 GiB cap on one tensor; .* raise the cap with TVMEDGE_MAX_TENSOR_BYTES="
        r"4398046511104$",
    ),
    "negative-dim": (negative_dim, r"input 'x' of '.*negative_dim\.onnx' has dim 0 = -3"),
    "derived-4tb": (derived_4tb, r"tensor 'big' of .* declares 1x1099511627776 float32: 4\.0 TiB"),
    "undeclared-domain": (
        undeclared_domain,
        r"fails the ONNX checker: No opset import for domain 'evil\.example'",
    ),
    "no-graph": (not_a_model, r"parses, but holds no graph"),
}
