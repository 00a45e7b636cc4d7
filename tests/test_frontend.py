"""Frontend: loading, shape bindings and the unsupported-op scan, on real ONNX graphs."""

import onnx
import pytest
from onnx import TensorProto, helper

from tvmedge.errors import ShapeError, UnsupportedOpError
from tvmedge.frontend import check_supported, graph_inputs, load_onnx, parse_bindings
from tvmedge.frontend.shapes import TensorSpec, bind, with_input_shapes


def _model(nodes, inputs, outputs, opset=17, domains=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    imports = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, 1) for d in domains)]
    return helper.make_model(graph, opset_imports=imports)


def test_parse_bindings():
    assert parse_bindings(["x=1,3,224,224", "a=b=2"]) == {"x": (1, 3, 224, 224), "a=b": (2,)}
    assert parse_bindings(["seq=batch,100,12"]) == {"seq": ("batch", 100, 12)}  # stays symbolic
    assert parse_bindings(None) == {}
    for bad in ("x", "x=0,3", "=1", "x=1,-2", "x=1,2.5", "x=1,"):
        with pytest.raises(ShapeError):
            parse_bindings([bad])
    with pytest.raises(ShapeError, match="twice"):
        parse_bindings(["x=1", "x=2"])


def test_bind_keeps_unbound_symbolic_dims():
    specs = [TensorSpec("x", "float32", ("batch", 3, 8)), TensorSpec("y", "int64", ("n",))]
    bound = bind(specs, {"x": (4, 3, 8)})
    assert bound == [TensorSpec("x", "float32", (4, 3, 8)), specs[1]]
    assert bound[0].is_static and not bound[1].is_static


def test_partial_binding_keeps_named_dims_symbolic(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [x], [y])
    bound = bind(graph_inputs(m), {"x": ("batch", 7, 4)})
    assert bound == [TensorSpec("x", "float32", ("batch", 7, 4))]
    rewritten = with_input_shapes(m, bound)
    dims = rewritten.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 7, 4]
    assert [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [
        "N",
        "T",
        4,
    ]  # the input model is untouched
    out_dims = rewritten.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in out_dims] == ["batch", 7, 4]  # re-inferred
    with pytest.raises(ShapeError, match="fixed at 4 in the model, it cannot become symbolic"):
        bind(graph_inputs(m), {"x": (1, 7, "c")})


def test_graph_inputs_skip_initializers_and_name_unknown_dims(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    z = helper.make_tensor_value_info("z", TensorProto.INT64, [None])
    m = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [x, w, z], [y])
    m.graph.initializer.append(helper.make_tensor("w", TensorProto.FLOAT, [4, 2], [0.0] * 8))
    assert graph_inputs(m) == [
        TensorSpec("x", "float32", ("batch", 4)),
        TensorSpec("z", "int64", ("z_dim0",)),
    ]


def test_load_onnx_records_hash_and_opset(tiny_cnn):
    loaded = load_onnx(tiny_cnn)
    assert len(loaded.sha256) == 64 and loaded.size == tiny_cnn.stat().st_size
    assert loaded.opset >= 13
    # shape inference ran: intermediate values carry types
    assert len(loaded.proto.graph.value_info) > 0


def test_unsupported_ops_are_all_listed_with_nodes_including_subgraphs():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    c = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    branch_out = helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])
    then = helper.make_graph(
        [helper.make_node("Celu", ["x"], ["b"], name="inner")], "t", [], [branch_out]
    )
    other = helper.make_graph([helper.make_node("Relu", ["x"], ["b"])], "e", [], [branch_out])
    nodes = [
        helper.make_node("Celu", ["x"], ["x1"], name="outer"),
        helper.make_node("Frob", ["x1"], ["x2"], domain="com.example", name="frob"),
        helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other, name="if"),
    ]
    m = _model(nodes, [x, c], [y], domains=["com.example"])
    with pytest.raises(UnsupportedOpError) as info:
        check_supported(m)
    assert info.value.unsupported == {"Celu": ["outer", "if/inner"], "com.example::Frob": ["frob"]}
    assert "2 unsupported ONNX operator(s)" in str(info.value)
    assert isinstance(info.value, NotImplementedError)


def test_supported_model_passes_the_scan(tiny_cnn):
    check_supported(onnx.load(str(tiny_cnn)))
