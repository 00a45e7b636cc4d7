"""Graph rewrites: before/after on Relax modules; passes never mutate their input."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper
from tvm import relax

from tvmedge import api, rewrites
from tvmedge.errors import TvmedgeError
from tvmedge.frontend import load_onnx
from tvmedge.frontend.importer import import_onnx
from tvmedge.frontend.shapes import graph_inputs


def _ops(mod: tvm.IRModule) -> set[str]:
    found = set()

    def visit(expr):
        if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
            found.add(expr.op.name)

    relax.analysis.post_order_visit(mod["main"].body, visit)
    return found


def _apply(names, mod):
    return tvm.transform.Sequential(rewrites.passes(names, None))(mod)


@pytest.fixture(scope="module")
def conv_bn_model(tmp_path_factory):
    """Conv -> BatchNorm -> Relu, then a BatchNorm that follows no conv."""
    rng = np.random.default_rng(0)

    def const(name, shape, low=-1.0, high=1.0):
        return numpy_helper.from_array(rng.uniform(low, high, shape).astype(np.float32), name)

    inits = [const("w", (8, 3, 3, 3)), const("b", (8,))]
    for prefix in ("bn1", "bn2"):
        inits += [
            const(f"{prefix}_s", (8,), 0.5, 1.5),
            const(f"{prefix}_b", (8,)),
            const(f"{prefix}_m", (8,)),
            const(f"{prefix}_v", (8,), 0.5, 2.0),
        ]
    bn = [f"{{}}_{k}" for k in "sbmv"]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", *(n.format("bn1") for n in bn)], ["n"]),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("BatchNormalization", ["r", *(n.format("bn2") for n in bn)], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])],
        inits,
    )
    path = tmp_path_factory.mktemp("rewrites") / "conv_bn.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], ir_version=8)
    onnx.save(model, str(path))
    return path


def test_fold_batchnorm_removes_batch_norm_and_keeps_input(conv_bn_model):
    loaded = load_onnx(conv_bn_model)
    before = import_onnx(loaded, graph_inputs(loaded.proto))
    snapshot = before.script()
    assert "relax.nn.batch_norm" in _ops(before)

    after = _apply(("fold-batchnorm", "simplify"), before)

    assert "relax.nn.batch_norm" not in _ops(after)
    assert "relax.nn.conv2d" in _ops(after)
    assert before.script() == snapshot  # the input module is untouched


def test_folded_build_matches_onnxruntime(conv_bn_model, tmp_path):
    artifact = api.compile(conv_bn_model, output=tmp_path / "a.tvmedge", log=lambda _m: None)
    assert [r["name"] for r in artifact.manifest["rewrites"]] == list(rewrites.DEFAULT)
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)
    _, ours = api.run(artifact.path, inputs={"x": x})
    (ref,) = ort.InferenceSession(str(conv_bn_model)).run(None, {"x": x})
    np.testing.assert_allclose(ours["y"], ref, rtol=1e-4, atol=1e-5)


def test_constant_subgraphs_fold_in_the_legalize_step():
    from tvmedge import targets
    from tvmedge.pipeline import TUNING_STEPS, steps

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((2,), "float32"))
    a = relax.const(np.array([1.0, 2.0], dtype="float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            c = bb.emit(relax.op.add(a, a))  # constant: must be evaluated at compile time
            unused = bb.emit(relax.op.multiply(x, x))  # dead: must go
            out = bb.emit_output(relax.op.multiply(x, c))
        bb.emit_func_output(out)
    before = bb.get()
    assert unused is not None and _ops(before) == {"relax.add", "relax.multiply"}
    host = targets.get("host")
    mod = before
    with host.tvm_target():
        for name, passes in steps(host, rewrites.plan(rewrites.DEFAULT, host)):
            if name in TUNING_STEPS:
                mod = tvm.transform.Sequential(passes)(mod)
    kernels = [gv.name_hint for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)]
    assert len(kernels) == 1 and kernels[0].startswith("multiply")  # no add, no dead multiply


def test_unknown_rewrite_lists_valid_names():
    with pytest.raises(
        TvmedgeError, match="unknown rewrite 'fold-everything'; valid: fold-batchnorm"
    ):
        rewrites.passes(("fold-everything",), None)


def test_slice_with_runtime_bounds_still_builds(tmp_path):
    """Relax's FoldConstant fails on it ("no definition of shape_func"); folding is optional."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [6, 3])
    start = helper.make_tensor_value_info("start", TensorProto.INT64, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    ends = numpy_helper.from_array(np.array([5], dtype=np.int64), "ends")
    axes = numpy_helper.from_array(np.array([0], dtype=np.int64), "axes")
    node = helper.make_node("Slice", ["x", "start", "ends", "axes"], ["y"])
    graph = helper.make_graph([node], "slice", [x, start], [y], [ends, axes])
    path = tmp_path / "slice.onnx"
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8),
        str(path),
    )
    artifact = api.compile(path, output=tmp_path / "s.tvmedge", log=lambda _m: None)
    feeds = {
        "x": np.arange(18, dtype=np.float32).reshape(6, 3),
        "start": np.array([2], dtype=np.int64),
    }
    _, ours = api.run(artifact.path, inputs=feeds)
    np.testing.assert_array_equal(ours["y"], feeds["x"][2:5])
