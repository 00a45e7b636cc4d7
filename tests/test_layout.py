"""Channels-last convolutions (the layout-nhwc rewrite) and what it relies on: weights folded
to constants (tvmedge/rewrites/fold_weights.py), Dropout as the identity and Sum as adds
(tvmedge/frontend/converters/inference.py). Checked against ONNX Runtime and on the IR."""

import numpy as np
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper
from onnx_graphs import assert_matches_onnxruntime, io, model
from tvm import relax

from tvmedge import rewrites, targets
from tvmedge.frontend import load_onnx
from tvmedge.frontend.importer import import_onnx
from tvmedge.frontend.shapes import bind, graph_inputs
from tvmedge.rewrites import layout

RNG = np.random.default_rng(0)


def _w(name, *shape, low=-1.0, high=1.0):
    return numpy_helper.from_array(RNG.uniform(low, high, shape).astype(np.float32), name)


def _x(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _calls(mod) -> list[relax.Call]:
    found = []

    def visit(expr):
        if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
            found.append(expr)

    relax.analysis.post_order_visit(mod["main"].body, visit)
    return found


def _rewritten(proto, tmp_path, names=rewrites.DEFAULT, target="host"):
    path = tmp_path / "m.onnx"
    path.write_bytes(proto.SerializeToString())
    loaded = load_onnx(path)
    mod = import_onnx(loaded, bind(graph_inputs(loaded.proto), {}))
    return tvm.transform.Sequential(rewrites.passes(names, targets.get(target)))(mod)


def _resnet_block():
    """Conv-BN-Relu, a stride-2 conv, a Sum residual with a 1x1 projection, Dropout, Concat,
    global pooling and a Gemm head: the ops a CNN export has around its convolutions."""
    bn = [_w("s", 8, low=0.5, high=1.5), _w("b", 8), _w("m", 8), _w("v", 8, low=0.5, high=1.5)]
    inits = [_w("w1", 8, 3, 3, 3), _w("w2", 8, 8, 3, 3), _w("wp", 8, 3, 1, 1), _w("g", 5, 16)]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1] * 4),
        helper.make_node("BatchNormalization", ["c1", "s", "b", "m", "v"], ["n1"]),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1] * 4, strides=[2, 2]),
        helper.make_node("Conv", ["x", "wp"], ["p"], strides=[2, 2]),
        helper.make_node("Sum", ["c2", "p"], ["s1"]),
        helper.make_node("Dropout", ["s1"], ["d"]),
        helper.make_node("Concat", ["d", "p"], ["cat"], axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["gp"]),
        helper.make_node("Flatten", ["gp"], ["f"]),
        helper.make_node("Gemm", ["f", "g"], ["y"], transB=1),
    ]
    return model(nodes, [io("x", [1, 3, 15, 17])], [io("y", [1, 5])], [*bn, *inits])


def test_convolutions_become_channels_last_with_constant_weights(tmp_path):
    mod = _rewritten(_resnet_block(), tmp_path)
    convs = [c for c in _calls(mod) if c.op.name == "relax.nn.conv2d"]
    assert len(convs) == 3
    for conv in convs:
        assert (conv.attrs.data_layout, conv.attrs.kernel_layout) == ("NHWC", "HWIO")
    # BatchNorm's scale was folded into the weights by numpy: nothing computes them any more
    assert not {"relax.sqrt", "relax.divide", "relax.nn.dropout", "relax.stack"} & {
        c.op.name for c in _calls(mod)
    }


def test_channels_last_build_matches_onnxruntime(tmp_path):
    assert_matches_onnxruntime(_resnet_block(), {"x": _x(1, 3, 15, 17)}, tmp_path)


def test_cuda_targets_keep_nchw(tmp_path):
    mod = _rewritten(_resnet_block(), tmp_path, target="cuda-sm80")
    for conv in (c for c in _calls(mod) if c.op.name == "relax.nn.conv2d"):
        assert conv.attrs.data_layout == "NCHW"


def test_failed_conversion_keeps_the_module_and_warns(tmp_path, monkeypatch, capsys):
    mod = _rewritten(_resnet_block(), tmp_path, names=("fold-batchnorm", "simplify"))

    def broken(_desired):
        def run(_mod):
            raise IndexError("Index -1 out of bounds 4")

        return run

    monkeypatch.setattr(relax.transform, "ConvertLayout", broken)
    out = layout.channels_last(mod)
    assert out.same_as(mod) or tvm.ir.structural_equal(out, mod)
    err = capsys.readouterr().err
    assert "kept NCHW convolutions" in err and "Index -1 out of bounds 4" in err


@pytest.mark.parametrize(
    "shapes",
    [[[2, 3], [3], [1, 1]], [[4], [4]], [[1, 3, 1], [2, 1, 5]], [[2, 2]]],
    ids=["three-broadcast", "two", "both-ways", "one-input"],
)
def test_sum_is_a_chain_of_broadcasting_adds(shapes, tmp_path):
    names = [f"x{i}" for i in range(len(shapes))]
    proto = model(
        [helper.make_node("Sum", names, ["y"])],
        [io(n, s) for n, s in zip(names, shapes, strict=True)],
        [io("y", list(np.broadcast_shapes(*map(tuple, shapes))))],
    )
    assert_matches_onnxruntime(
        proto, {n: _x(*s) for n, s in zip(names, shapes, strict=True)}, tmp_path
    )


@pytest.mark.parametrize("opset", [7, 13])
def test_dropout_is_the_identity_and_its_mask_matches_onnxruntime(opset, tmp_path):
    outputs = ["y", "mask"]
    proto = model(
        [helper.make_node("Dropout", ["x"], outputs)],
        [io("x", [2, 5])],
        [
            io("y", [2, 5]),
            io("mask", [2, 5], TensorProto.BOOL if opset >= 10 else TensorProto.FLOAT),
        ],
        opset=opset,
    )
    assert_matches_onnxruntime(proto, {"x": _x(2, 5)}, tmp_path)


@pytest.mark.parametrize(
    ("opset", "bounds"),
    [(6, (0.0, 6.0)), (11, (0.0, 6.0)), (13, (None, 0.5)), (13, (-0.5, None)), (13, (np.nan, 1.0))],
    ids=["attrs", "relu6", "max-only", "min-only", "nan-bound"],
)
def test_clip_matches_onnxruntime(opset, bounds, tmp_path):
    lo, hi = bounds
    if opset < 11:
        node = helper.make_node("Clip", ["x"], ["y"], min=lo, max=hi)
        inits = []
    else:
        names = ["lo" if lo is not None else "", "hi" if hi is not None else ""]
        node = helper.make_node("Clip", ["x", *names], ["y"])
        inits = [
            numpy_helper.from_array(np.array(v, np.float32), n)
            for n, v in (("lo", lo), ("hi", hi))
            if v is not None
        ]
    proto = model([node], [io("x", [2, 7])], [io("y", [2, 7])], inits, opset=opset)
    x = _x(2, 7) * 4
    x[0, 0] = np.nan  # NaN data stays NaN
    assert_matches_onnxruntime(proto, {"x": x}, tmp_path)


def test_relu6_stays_channels_last(tmp_path):
    """Clip between two convs (MobileNet's ReLU6) must not send the activation back to NCHW."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1] * 4),
        helper.make_node("Clip", ["c1", "lo", "hi"], ["r"]),
        helper.make_node("Conv", ["r", "w2"], ["y"], group=8, pads=[1] * 4),
    ]
    inits = [
        _w("w1", 8, 3, 3, 3),
        _w("w2", 8, 1, 3, 3),
        numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
        numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
    ]
    proto = model(nodes, [io("x", [1, 3, 9, 9])], [io("y", [1, 8, 9, 9])], inits, opset=13)
    mod = _rewritten(proto, tmp_path)
    moved = [
        c
        for c in _calls(mod)
        if c.op.name == "relax.permute_dims" and not isinstance(c.args[0], tvm.ir.GenericConst)
    ]
    assert len(moved) == 2  # the graph input to NHWC and the output back, nothing between
    assert_matches_onnxruntime(proto, {"x": _x(1, 3, 9, 9)}, tmp_path)
