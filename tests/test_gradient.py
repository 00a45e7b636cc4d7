"""ONNX training-preview Gradient nodes: expanded to ordinary ops, checked against autograd.

The expansion's math is checked on ONNX's reference evaluator against PyTorch autograd (fast,
many cases, both ReduceSum forms); a few models, the two the onnx wheel ships among them, are
also compiled and run by tvmedge to check that TVM takes the ops the expansion writes.
"""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from tvmedge import api
from tvmedge.errors import UnsupportedOpError
from tvmedge.frontend.gradient import DOMAIN, GradientError, expand_gradients

N = helper.make_node
SIMPLE = Path(onnx.__file__).parent / "backend" / "test" / "data" / "simple"

# PyTorch twins of the ONNX ops these tests build graphs from: the autograd oracle.
_TORCH = {
    "Add": torch.add,
    "Sub": torch.sub,
    "Mul": torch.mul,
    "Div": torch.div,
    "Neg": torch.neg,
    "Identity": lambda x: x,
    "Relu": torch.relu,
    "Sigmoid": torch.sigmoid,
    "Tanh": torch.tanh,
    "Exp": torch.exp,
    "MatMul": torch.matmul,
    "Softmax": lambda x: torch.softmax(x, -1),  # on 2-D inputs: the same at every opset
}

# name -> (forward nodes, input shapes, xs, zs); y is always "y".
CASES = {
    "broadcast_mul": ([N("Mul", ["a", "b"], ["y"])], {"a": [2, 3], "b": [3]}, ["a", "b"], []),
    "broadcast_both_ways": (
        [N("Sub", ["a", "b"], ["s"]), N("Exp", ["c"], ["e"]), N("Div", ["s", "e"], ["y"])],
        {"a": [2, 1], "b": [1, 3], "c": []},
        ["a", "b", "c"],
        [],
    ),
    "elementwise_chain": (
        [
            N("Neg", ["a"], ["n"]),
            N("Tanh", ["n"], ["t"]),
            N("Identity", ["t"], ["i"]),
            N("Add", ["i", "b"], ["s"]),
            N("Exp", ["s"], ["y"]),
        ],
        {"a": [2, 3], "b": [2, 3]},
        ["a", "b"],
        [],
    ),
    "relu_sigmoid": (
        [N("Relu", ["a"], ["r"]), N("Mul", ["r", "b"], ["m"]), N("Sigmoid", ["m"], ["y"])],
        {"a": [4, 3], "b": [4, 1]},
        ["a", "b"],
        [],
    ),
    "reused_tensor": (  # a reaches y three ways: the gradients are summed
        [N("Mul", ["a", "a"], ["sq"]), N("Add", ["sq", "a"], ["y"])],
        {"a": [3]},
        ["a"],
        [],
    ),
    "matmul": ([N("MatMul", ["a", "w"], ["y"])], {"a": [2, 3], "w": [3, 4]}, ["a", "w"], []),
    "matmul_batched": (
        [N("MatMul", ["a", "w"], ["m"]), N("Relu", ["m"], ["y"])],
        {"a": [5, 1, 2, 3], "w": [4, 3, 2]},
        ["a", "w"],
        [],
    ),
    "matmul_vectors": (
        [
            N("MatMul", ["v", "w"], ["vw"]),  # vector @ matrix
            N("MatMul", ["w", "u"], ["wu"]),  # matrix @ vector
            N("MatMul", ["vw", "u"], ["p"]),  # vector @ vector
            N("MatMul", ["v", "b"], ["vb"]),  # vector @ batch of matrices
            N("MatMul", ["vb", "u"], ["q"]),
            N("Add", ["p", "q"], ["pq"]),
            N("MatMul", ["wu", "v"], ["r"]),
            N("Mul", ["pq", "r"], ["y"]),
        ],
        {"v": [3], "w": [3, 4], "u": [4], "b": [2, 3, 4]},
        ["v", "w", "u", "b"],
        [],
    ),
    "zs_and_unused_x": (  # z goes through an op with no rule, but only x is differentiated
        [N("Softmax", ["z"], ["sz"]), N("Mul", ["x", "sz"], ["y"])],
        {"x": [2, 3], "z": [2, 3], "unused": [2, 2]},
        ["x", "unused"],
        ["z"],
    ),
    "symbolic_dims": (  # the same dim name on both sides: not a broadcast, no binding needed
        [N("Mul", ["a", "b"], ["m"]), N("Tanh", ["m"], ["y"])],
        {"a": ["n", 3], "b": ["n", 1]},
        ["a", "b"],
        [],
    ),
    "symbolic_batch": (
        [N("MatMul", ["a", "w"], ["m"]), N("Sigmoid", ["m"], ["y"])],
        {"a": ["batch", 2, 3], "w": [3, 4]},
        ["a", "w"],
        [],
    ),
    "y_is_an_x": ([N("Exp", ["a"], ["y"])], {"a": [2], "b": [2]}, ["y", "b"], ["a"]),
}


def _gradient_model(nodes, shapes, xs, zs, *, at=None, opset=17):
    """A float32 model computing y, then Gradient(xs, zs, y) with outputs d_<x>."""
    attrs = {"xs": xs, "y": "y"} | ({"zs": zs} if zs else {})
    gradient = N("Gradient", at or [*xs, *zs], [f"d_{x}" for x in xs], domain=DOMAIN, **attrs)
    gradient.name = "grad"
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in shapes.items()]
    # The checker wants graph outputs' shapes: y's as inferred, each d_<x>'s as its x's.
    forward = helper.make_model(helper.make_graph(nodes, "f", inputs, []))
    graph = onnx.shape_inference.infer_shapes(forward).graph
    known = {v.name: v for v in [*graph.input, *graph.value_info]}
    outputs = []
    for name, like in [("y", "y"), *((f"d_{x}", x) for x in xs)]:
        outputs.append(onnx.ValueInfoProto())
        outputs[-1].CopyFrom(known[like])
        outputs[-1].name = name
    graph = helper.make_graph([*nodes, gradient], "g", inputs, outputs)
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid(DOMAIN, 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    onnx.checker.check_model(model)
    return model


def _feeds(shapes, seed=0):
    """Random inputs; every symbolic dim is 4."""
    rng = np.random.default_rng(seed)
    concrete = {n: [4 if isinstance(d, str) else d for d in s] for n, s in shapes.items()}
    return {n: rng.standard_normal(s).astype(np.float32) for n, s in concrete.items()}


def _autograd(nodes, feeds, xs):
    """y and dy/dx for each x (seed: ones shaped like y) by PyTorch, in float64."""
    values = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in feeds.items()}
    for node in nodes:
        values[node.output[0]] = _TORCH[node.op_type](*(values[i] for i in node.input))
    y = values["y"]
    grads = torch.autograd.grad(y, [values[x] for x in xs], torch.ones_like(y), allow_unused=True)
    expected = {"y": y}
    for x, d in zip(xs, grads, strict=True):
        expected[f"d_{x}"] = torch.zeros_like(values[x]) if d is None else d
    return {n: v.detach().numpy() for n, v in expected.items()}


def _evaluate(model, feeds):
    """Run the expanded model with ONNX's reference evaluator: name -> array."""
    names = [o.name for o in model.graph.output]
    return dict(zip(names, ReferenceEvaluator(model).run(None, feeds), strict=True))


def _assert_match(got, expected):
    assert set(got) == set(expected)
    for name, want in expected.items():
        assert got[name].shape == want.shape, name
        np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("opset", [12, 17])  # ReduceSum's axes: an attribute, then an input
@pytest.mark.parametrize("case", CASES)
def test_expansion_matches_autograd(case, opset):
    nodes, shapes, xs, zs = CASES[case]
    model = _gradient_model(nodes, shapes, xs, zs, opset=opset)
    expanded = expand_gradients(model)
    onnx.checker.check_model(expanded)
    onnx.shape_inference.infer_shapes(expanded, strict_mode=True)  # the new nodes type-check
    assert all(n.domain == "" for n in expanded.graph.node)
    feeds = _feeds(shapes)
    _assert_match(_evaluate(expanded, feeds), _autograd(nodes, feeds, xs))


@pytest.mark.parametrize(
    ("model_dir", "opset"),
    [
        (SIMPLE / "test_gradient_of_add", None),
        (SIMPLE / "test_gradient_of_add_and_mul", None),
        ("broadcast_mul", 12),
        ("matmul_batched", 17),
        ("relu_sigmoid", 17),
        ("symbolic_batch", 17),  # compiled with the batch left symbolic, run at 4
    ],
    ids=lambda p: Path(str(p)).name,
)
def test_compiled_gradients_match(model_dir, opset, tmp_path):
    if opset is None:  # a model the onnx wheel ships, with its inputs and expected outputs
        path = model_dir / "model.onnx"
        data = model_dir / "test_data_set_0"
        read = [onnx.load_tensor(str(f)) for f in sorted(data.glob("input_*.pb"))]
        feeds = {t.name: numpy_helper.to_array(t) for t in read}
        outputs = [o.name for o in onnx.load(str(path)).graph.output]
        expected = {
            name: numpy_helper.to_array(onnx.load_tensor(str(data / f"output_{i}.pb")))
            for i, name in enumerate(outputs)
        }
    else:
        nodes, shapes, xs, zs = CASES[model_dir]
        path = tmp_path / "m.onnx"
        onnx.save(_gradient_model(nodes, shapes, xs, zs, opset=opset), str(path))
        feeds = _feeds(shapes)
        expected = _autograd(nodes, feeds, xs)
    artifact = api.compile(path, output=tmp_path / "g.tvmedge", log=lambda m: None).path
    _, got = api.run(artifact, inputs=feeds)
    _assert_match(got, expected)


def test_gradient_at_other_inputs_recomputes_the_forward_graph():
    # Gradient(xs=[a, b]) fed a_at for a: dy/da and dy/db where a = a_at, y untouched.
    nodes = [N("Mul", ["a", "b"], ["c"]), N("Exp", ["c"], ["y"])]
    shapes = {"a": [2, 3], "b": [2, 3], "a_at": [2, 3]}
    model = _gradient_model(nodes, shapes, ["a", "b"], [], at=["a_at", "b"])
    feeds = _feeds(shapes)
    got = _evaluate(expand_gradients(model), feeds)
    a, b, a_at = feeds["a"], feeds["b"], feeds["a_at"]
    _assert_match(
        got,
        {"y": np.exp(a * b), "d_a": b * np.exp(a_at * b), "d_b": a_at * np.exp(a_at * b)},
    )


def test_gradient_before_its_forward_nodes_and_a_skipped_output():
    # The checker allows a Gradient ahead of the nodes computing y, and its readers between:
    # the expansion reads those nodes, so the graph is re-sorted. d_a is not asked for.
    gradient = N("Gradient", ["a", "b"], ["", "d_b"], domain=DOMAIN, xs=["a", "b"], y="y")
    nodes = [gradient, N("Relu", ["d_b"], ["r"]), N("Mul", ["a", "b"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3]) for n in "ab"],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3]) for n in ["r", "y"]],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    onnx.checker.check_model(model)
    expanded = expand_gradients(model)
    onnx.checker.check_model(expanded)
    feeds = _feeds({"a": [3], "b": [3]})
    _assert_match(
        _evaluate(expanded, feeds),
        {"r": np.maximum(feeds["a"], 0), "y": feeds["a"] * feeds["b"]},
    )
    assert [n.op_type for n in expanded.graph.node].count("Mul") == 2  # y and d_b, not d_a


def test_a_model_without_gradient_is_returned_as_it_is_and_the_input_is_untouched():
    nodes, shapes, xs, zs = CASES["matmul"]
    plain = helper.make_model(
        helper.make_graph(
            nodes,
            "g",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in shapes.items()],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        )
    )
    assert expand_gradients(plain) is plain
    model = _gradient_model(nodes, shapes, xs, zs)
    before = model.SerializeToString()
    assert expand_gradients(model) is not model
    assert model.SerializeToString() == before


@pytest.mark.parametrize(
    ("nodes", "shapes", "message"),
    [
        (
            [
                N("Mul", ["a", "b"], ["m"]),
                N("Softmax", ["m"], ["s"], name="sm"),
                N("Sqrt", ["s"], ["y"]),
            ],
            {"a": [2, 3], "b": [3]},
            "y depends on xs through ops tvmedge cannot differentiate: "
            "Softmax (node 'sm'); Sqrt (the node computing 'y')",
        ),
        (
            [N("Mul", ["a", "b"], ["y"])],
            {"a": ["n", 3], "b": ["m", 3]},
            "cannot tell whether 'a' (shape [n, 3]) is broadcast to",
        ),
    ],
    ids=["unsupported_ops", "ambiguous_broadcast"],
)
def test_refusals_name_the_node_and_the_reason(nodes, shapes, message):
    with pytest.raises(GradientError) as info:
        expand_gradients(_gradient_model(nodes, shapes, ["a", "b"], []))
    assert str(info.value).startswith(f"cannot expand Gradient node 'grad': {message}")


def test_compile_refuses_an_op_on_the_path_before_building(tmp_path):
    nodes = [N("Mul", ["a", "b"], ["m"]), N("Softmax", ["m"], ["y"], name="sm")]
    path = tmp_path / "m.onnx"
    onnx.save(_gradient_model(nodes, {"a": [2, 3], "b": [3]}, ["a", "b"], []), str(path))
    with pytest.raises(UnsupportedOpError) as info:
        api.compile(path, output=tmp_path / "g.tvmedge", log=lambda m: None)
    assert isinstance(info.value, GradientError)
    assert info.value.unsupported == {"Softmax": ["sm"]}
    assert "cannot expand Gradient node 'grad'" in str(info.value)
    assert "Softmax (node 'sm')" in str(info.value)
    assert not (tmp_path / "g.tvmedge").exists()
