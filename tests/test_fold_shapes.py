"""fold_shapes on small ONNX graphs: shape sub-graphs become constants, ONNX Runtime computes the
same outputs before and after, values that depend on input data or are too big stay, and a shape
TVM cannot take symbolically fails with the node's name and the binding that fixes it."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tvmedge.errors import BuildError
from tvmedge.frontend import graph_inputs, load_onnx
from tvmedge.frontend.fold_shapes import fold_shapes, symbolic_dims_behind
from tvmedge.frontend.importer import import_onnx, output_specs
from tvmedge.frontend.shapes import bind, with_input_shapes


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _const(name, values, dtype=np.int64):
    return numpy_helper.from_array(np.array(values, dtype), name)


def _io(name, dims, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, dims)


def _bound(model, **shapes):
    """The model as import_onnx hands it to fold_shapes: shape-inferred, ``shapes`` bound."""
    specs = bind(graph_inputs(model), shapes)
    return with_input_shapes(onnx.shape_inference.infer_shapes(model), specs)


def _ops(model):
    return [n.op_type for n in model.graph.node]


def _initializer(model, name):
    return next(numpy_helper.to_array(t) for t in model.graph.initializer if t.name == name)


def _assert_same_outputs(model, folded, feeds):
    run = [
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        for m in (model, folded)
    ]
    for want, got in zip(run[0].run(None, feeds), run[1].run(None, feeds), strict=True):
        np.testing.assert_array_equal(got, want)


def _x(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def tf2onnx_reshape(dims, target_from=(0,), tail=(-1,)):
    """x -> Relu -> Reshape, the target built the tf2onnx way: Shape -> Cast(int32) -> Gather
    -> Concat -> Cast(int64). ``target_from`` picks dims of x, ``tail`` constants follow."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["s"]),
        helper.make_node("Cast", ["s"], ["s32"], to=TensorProto.INT32),
        helper.make_node("Gather", ["s32", "picks"], ["kept"]),
        helper.make_node("Concat", ["kept", "tail"], ["target32"], axis=0),
        helper.make_node("Cast", ["target32"], ["target"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["r", "target"], ["y"]),
    ]
    inits = [_const("picks", target_from), _const("tail", tail, np.int32)]
    y = _io("y", [None] * (len(target_from) + len(tail)))
    return _model(nodes, [_io("x", dims)], [y], inits)


def test_static_shapes_fold_to_a_constant_target_without_touching_the_input():
    model = _bound(tf2onnx_reshape(["N", 4, 4, 3]), x=(2, 4, 4, 3))
    before = model.SerializeToString()
    folded = fold_shapes(model)
    assert model.SerializeToString() == before  # the input model is not mutated
    assert _ops(folded) == ["Relu", "Reshape"]  # the shape sub-graph and its constants are gone
    assert _initializer(folded, "target").tolist() == [2, -1]
    assert {t.name for t in folded.graph.initializer} == {"target"}
    _assert_same_outputs(model, folded, {"x": _x(2, 4, 4, 3)})


def test_symbolic_batch_is_pinned_with_copy_and_infer_dims():
    model = _bound(tf2onnx_reshape(["N", 4, 4, 3]))
    folded = fold_shapes(model)
    assert _ops(folded) == ["Relu", "Reshape"]
    target = folded.graph.node[1].input[1]
    assert _initializer(folded, target).tolist() == [0, -1]  # N stays N: one graph, any batch
    for batch in (1, 3):
        _assert_same_outputs(model, folded, {"x": _x(batch, 4, 4, 3)})


def test_pytorch_pattern_at_opset_11_with_arithmetic_on_a_symbolic_dim():
    """[N, T, 8] -> [N * T, 8] with Unsqueeze's opset-11 axes attribute: N * 6 is not a dim
    of the data, so it becomes -1."""
    scalar = _const("zero", 0), _const("one", 1)
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Gather", ["s", "one"], ["t"], axis=0),
        helper.make_node("Mul", ["n", "t"], ["nt"]),
        helper.make_node("Unsqueeze", ["nt"], ["nt1"], axes=[0]),
        helper.make_node("Concat", ["nt1", "eight"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    inits = [*scalar, _const("eight", [8])]
    model = _bound(
        _model(nodes, [_io("x", ["N", "T", 8])], [_io("y", None)], inits, 11), x=("N", 6, 8)
    )
    folded = fold_shapes(model)
    assert _ops(folded) == ["Reshape"]
    assert _initializer(folded, folded.graph.node[0].input[1]).tolist() == [-1, 8]
    _assert_same_outputs(model, folded, {"x": _x(3, 6, 8)})


def test_values_from_input_data_or_over_the_cap_are_not_folded():
    nodes = [
        helper.make_node("Add", ["ids", "one"], ["ids1"]),  # input data: never folded
        helper.make_node("ConstantOfShape", ["big"], ["zeros"]),
        helper.make_node("Range", ["zero", "hundred", "one"], ["steps"]),
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Expand", ["one", "s"], ["ones"]),  # small: folded
    ]
    inits = [_const("one", 1), _const("zero", 0), _const("hundred", 100), _const("big", [4, 4])]
    outputs = [
        _io("ids1", [3], TensorProto.INT64),
        _io("zeros", None),
        _io("steps", None, TensorProto.INT64),
    ]
    model = _model(
        nodes,
        [_io("x", [2, 3]), _io("ids", [3], TensorProto.INT64)],
        [*outputs, _io("ones", None, TensorProto.INT64)],
        inits,
    )
    folded = fold_shapes(model, max_elements=10)
    assert _ops(folded) == ["Add", "ConstantOfShape", "Range"]
    assert _initializer(folded, "ones").tolist() == [[1, 1, 1], [1, 1, 1]]
    assert _ops(fold_shapes(model)) == ["Add"]  # under the default cap both fold
    feeds = {"x": _x(2, 3), "ids": np.arange(3)}
    _assert_same_outputs(model, folded, feeds)


def test_a_value_read_only_inside_a_subgraph_is_kept():
    then = helper.make_graph(
        [helper.make_node("Reshape", ["x", "target"], ["b"])], "then", [], [_io("b", None)]
    )
    other = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["b"])], "else", [], [_io("b", None)]
    )
    nodes = [
        helper.make_node("Concat", ["two", "minus1"], ["target"], axis=0),
        helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other),
    ]
    inits = [_const("two", [2]), _const("minus1", [-1])]
    model = _model(
        nodes, [_io("x", [2, 3, 4]), _io("c", [], TensorProto.BOOL)], [_io("y", None)], inits
    )
    folded = fold_shapes(model)
    assert _ops(folded) == ["If"]
    assert _initializer(folded, "target").tolist() == [2, -1]
    _assert_same_outputs(model, folded, {"x": _x(2, 3, 4), "c": np.array(True)})


def test_an_unpinnable_symbolic_target_names_the_node_and_the_binding(tmp_path):
    """[N, T, 8] -> [T, N, 8]: neither symbolic dim stays in place, so the target cannot be
    a constant and TVM's importer rejects the computed one."""
    model = tf2onnx_reshape(["N", "T", 8], target_from=(1, 0), tail=(8,))
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    loaded = load_onnx(path)
    named = _bound(model)
    named.graph.node[0].name, named.graph.node[-1].name = "relu", "flip"
    folded = fold_shapes(named)
    assert "Shape" in _ops(folded)  # left for TVM
    assert symbolic_dims_behind(folded, "flip") == {"N", "T"}
    assert symbolic_dims_behind(folded, "relu") == set()  # no shape argument
    with pytest.raises(BuildError) as info:
        import_onnx(loaded, graph_inputs(loaded.proto))
    message = str(info.value)
    assert "at node 'Reshape#6' (Reshape): Reshape requires the input new shape" in message
    assert (
        "computed from symbolic dims 'N' (input 'x' dim 0), 'T' (input 'x' dim 1): bind them"
        in message
    )
    assert "--input-shape x=1,1,8" in message
    # Binding only N is enough: T, the one symbolic element left, becomes -1.
    import_onnx(loaded, bind(graph_inputs(loaded.proto), {"x": (2, "T", 8)}))


def test_a_shape_output_is_a_constant_when_bound_and_a_clear_error_when_symbolic(tmp_path):
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Relu", ["x"], ["y"])]
    outputs = [_io("s", [2], TensorProto.INT64), _io("y", ["N", 3])]
    path = tmp_path / "m.onnx"
    onnx.save(_model(nodes, [_io("x", ["N", 3])], outputs), path)
    loaded = load_onnx(path)
    mod = import_onnx(loaded, bind(graph_inputs(loaded.proto), {"x": (2, 3)}))
    assert [s.shape for s in output_specs(mod, ["s", "y"])] == [(2,), (2, 3)]
    mod = import_onnx(loaded, graph_inputs(loaded.proto))
    with pytest.raises(BuildError, match=r"output 's' is a shape value .* --input-shape"):
        output_specs(mod, ["s", "y"])
