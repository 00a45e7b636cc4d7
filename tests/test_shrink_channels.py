"""shrink-channels: zeroed filters removed with what depends on them, outputs unchanged.

Each model is built with onnx.helper, its filters zeroed by hand; ONNX Runtime on that zeroed
model is the reference, and the shrunk Relax module is built and run by TVM."""

import numpy as np
import onnx
import onnxruntime as ort
import tvm
from onnx import TensorProto, helper, numpy_helper
from tvm import relax

from tvmedge import pipeline, rewrites

RTOL, ATOL = 1e-4, 1e-5


def _save(tmp_path, name, nodes, inits, inputs, outputs) -> str:
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_empty_tensor_value_info(n) for n in outputs],
        [
            numpy_helper.from_array(v if v.dtype == np.int64 else v.astype(np.float32), k)
            for k, v in inits.items()
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model)  # types the outputs
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    return str(path)


def _filters(rng, shape, zero=(), axis=0):
    """Random weights with the filters ``zero`` (along ``axis``) all zero."""
    w = rng.standard_normal(shape)
    np.moveaxis(w, axis, 0)[list(zero)] = 0.0
    return w


def _shrink(path, shapes=None, round_to=1):
    """(report, module before, module after) of fold-batchnorm, simplify, shrink-channels."""
    mod = pipeline.import_model(path, shapes).mod
    shrink = ("shrink-channels", {"round_to": round_to})
    chosen = rewrites.plan(("fold-batchnorm", "simplify", shrink), None)
    before = tvm.transform.Sequential(rewrites.passes(chosen[:2], None))(mod)
    text = before.script()
    after = tvm.transform.Sequential(rewrites.passes(chosen[2:], None))(before)
    assert before.script() == text  # the input module is left as it was
    return chosen[2].report, before, after


def _run(mod, feeds):
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    out = vm["main"](*[tvm.runtime.tensor(v) for v in feeds.values()])
    return [out.numpy()] if hasattr(out, "numpy") else [o.numpy() for o in out]


def _check(path, mod, feeds):
    ref = ort.InferenceSession(path).run(None, feeds)
    for ours, theirs in zip(_run(mod, feeds), ref, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)


def _layer(report, name):
    return report["layers"][f"main/{name}"]


def test_residual_add_couples_channels_and_bias_folds_at_borders(tmp_path):
    """Two convs added: a channel goes only where both zeroed it (4 of them), the 2 zeroed in
    one only stay and are reported; the removed channels' biases, through the relu, reach a
    zero-padded 3x3 conv, which gets a per-position constant (its borders differ)."""
    rng = np.random.default_rng(0)
    inits = {
        "wa": _filters(rng, (8, 3, 3, 3), zero=(0, 1, 2, 3, 4)),
        "ba": rng.standard_normal(8),
        "wb": _filters(rng, (8, 3, 1, 1), zero=(1, 2, 3, 4, 5)),
        "bb": rng.standard_normal(8),
        "wc": rng.standard_normal((6, 8, 3, 3)),
        "bc": rng.standard_normal(6),
    }
    nodes = [
        helper.make_node("Conv", ["x", "wa", "ba"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "wb", "bb"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["s"]),
        helper.make_node("Relu", ["s"], ["r"]),
        helper.make_node("Conv", ["r", "wc", "bc"], ["y"], pads=[1, 1, 1, 1]),
    ]
    path = _save(tmp_path, "residual", nodes, inits, [("x", [1, 3, 10, 10])], ["y"])
    report, _, after = _shrink(path)
    assert _layer(report, "conv2d#0")["channels"] == [8, 4]
    assert _layer(report, "conv2d#0")["zero_kept"] == 1
    assert _layer(report, "conv2d#1")["channels"] == [8, 4]
    assert _layer(report, "conv2d#1")["zero_kept"] == 1
    assert report["constants_folded"] == 1
    assert report["constants"] == [0, 6 * 10 * 10]  # the per-position constant
    assert report["macs"][1] < report["macs"][0]
    _check(path, after, {"x": rng.standard_normal((1, 3, 10, 10)).astype(np.float32)})


def test_depthwise_chain_concat_split_and_flatten_into_gemm(tmp_path):
    """1x1 conv (zeroed filters, biases) -> depthwise 3x3 -> clip, concatenated with another
    conv, split at other points than the concat's, the parts joined again, flattened into a
    dense layer: each removed channel's 4 columns go, and their constants fold into its bias."""
    rng = np.random.default_rng(1)
    inits = {
        "w1": _filters(rng, (6, 3, 1, 1), zero=(1, 4)),
        "b1": rng.standard_normal(6),
        "wd": rng.standard_normal((6, 1, 3, 3)),
        "bd": rng.standard_normal(6),
        "w2": _filters(rng, (4, 3, 3, 3), zero=(0,)),
        "b2": rng.standard_normal(4),
        "lo": np.array(0.0),
        "hi": np.array(6.0),
        "wf": rng.standard_normal((5, 10 * 2 * 2)),
        "bf": rng.standard_normal(5),
        "parts": np.array([3, 7], np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["p"]),
        helper.make_node("Conv", ["p", "wd", "bd"], ["d"], group=6, pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["d", "lo", "hi"], ["c"]),
        helper.make_node("Conv", ["x", "w2", "b2"], ["q"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["c", "q"], ["cat"], axis=1),
        helper.make_node("Split", ["cat", "parts"], ["s0", "s1"], axis=1),
        helper.make_node("Sigmoid", ["s1"], ["g"]),
        helper.make_node("Concat", ["g", "s0"], ["cat2"], axis=1),
        helper.make_node("Flatten", ["cat2"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1),
    ]
    graph_inputs = [("x", [1, 3, 2, 2])]
    path = _save(tmp_path, "depthwise", nodes, inits, graph_inputs, ["y"])
    report, _, after = _shrink(path)
    assert _layer(report, "conv2d#0")["channels"] == [6, 4]
    assert _layer(report, "conv2d#1")["channels"] == [6, 4]  # the depthwise conv, 2 groups less
    assert _layer(report, "conv2d#2")["channels"] == [4, 3]
    assert report["params"][1] < report["params"][0]
    assert report["constants"] == [0, 0]  # the dense layer took them as a bias
    _check(path, after, {"x": rng.standard_normal((1, 3, 2, 2)).astype(np.float32)})


def test_transposed_conv_and_matmul_on_a_3d_tensor(tmp_path):
    """A ConvTranspose's zeroed output channel goes (its bias folds into the 1x1 conv after
    it); that conv's zeroed filters stay, since a reshape that is no flatten follows; a
    MatMul on the 3-D result loses its zeroed column and the next MatMul that row."""
    rng = np.random.default_rng(2)
    inits = {
        "wt": _filters(rng, (3, 4, 2, 2), zero=(2,), axis=1),
        "bt": rng.standard_normal(4),
        "wg": _filters(rng, (4, 4, 1, 1), zero=(0, 3)),
        "bg": rng.standard_normal(4),
        "wm": _filters(rng, (6, 5), zero=(1,), axis=1),
        "wn": rng.standard_normal((5, 3)),
        "shape": np.array([1, 16, 6], np.int64),
    }
    nodes = [
        helper.make_node("ConvTranspose", ["x", "wt", "bt"], ["t"], strides=[2, 2]),
        helper.make_node("Conv", ["t", "wg", "bg"], ["g"]),
        helper.make_node("Reshape", ["g", "shape"], ["r"]),
        helper.make_node("Tanh", ["r"], ["h"]),
        helper.make_node("MatMul", ["h", "wm"], ["m"]),
        helper.make_node("Relu", ["m"], ["a"]),
        helper.make_node("MatMul", ["a", "wn"], ["y"]),
    ]
    path = _save(tmp_path, "transposed", nodes, inits, [("x", [1, 3, 2, 3])], ["y"])
    report, _, after = _shrink(path)
    assert _layer(report, "conv2d_transpose#0")["channels"] == [4, 3]
    assert _layer(report, "conv2d#0")["channels"] == [4, 4]  # reshaped: not a flatten
    assert _layer(report, "conv2d#0")["zero_kept"] == 2
    assert _layer(report, "matmul#0")["channels"] == [5, 4]
    _check(path, after, {"x": rng.standard_normal((1, 3, 2, 3)).astype(np.float32)})


def test_grouped_conv_removes_whole_group_patterns(tmp_path):
    """groups=2: filters 0 and 3 zeroed, one per group, so both go; filter 1 alone would
    leave the groups unequal, so it stays and is reported."""
    rng = np.random.default_rng(3)
    for zero, kept, stays in (((0, 3), 2, 0), ((0, 1, 3), 2, 1)):
        inits = {
            "wg": _filters(rng, (4, 2, 3, 3), zero=zero),
            "bg": rng.standard_normal(4),
            "wc": rng.standard_normal((2, 4, 1, 1)),
        }
        nodes = [
            helper.make_node("Conv", ["x", "wg", "bg"], ["g"], group=2, pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["g"], ["r"]),
            helper.make_node("Conv", ["r", "wc"], ["y"]),
        ]
        path = _save(tmp_path, f"grouped{len(zero)}", nodes, inits, [("x", [1, 4, 5, 5])], ["y"])
        report, _, after = _shrink(path)
        assert _layer(report, "conv2d#0")["channels"] == [4, kept]
        assert _layer(report, "conv2d#0")["zero_kept"] == stays
        _check(path, after, {"x": rng.standard_normal((1, 4, 5, 5)).astype(np.float32)})


def test_channels_leaving_the_graph_or_on_symbolic_borders_stay(tmp_path):
    """A zeroed channel that is a graph output stays; one whose non-zero constant reaches a
    zero-padded conv over symbolic spatial dims stays too (no per-position constant can be
    computed), while a zero-bias one is removed there (it contributes nothing)."""
    rng = np.random.default_rng(4)
    inits = {
        "wa": _filters(rng, (4, 3, 1, 1), zero=(0, 1)),
        "ba": np.array([0.0, 0.5, -1.0, 2.0]),
        "wc": rng.standard_normal((2, 4, 3, 3)),
        "wo": _filters(rng, (3, 3, 1, 1), zero=(2,)),
    }
    nodes = [
        helper.make_node("Conv", ["x", "wa", "ba"], ["a"]),
        helper.make_node("Conv", ["a", "wc"], ["y"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "wo"], ["z"]),
    ]
    path = _save(tmp_path, "symbolic", nodes, inits, [("x", [1, 3, "h", "w"])], ["y", "z"])
    report, _, after = _shrink(path)
    assert _layer(report, "conv2d#0")["channels"] == [4, 3]  # channel 0: bias 0, removed
    assert _layer(report, "conv2d#0")["zero_kept"] == 1  # channel 1: bias 0.5, kept
    assert _layer(report, "conv2d#2")["zero_kept"] == 1  # a graph output
    _check(path, after, {"x": rng.standard_normal((1, 3, 6, 7)).astype(np.float32)})


def test_layers_keep_whole_vectors_of_channels(tmp_path):
    """round_to=4: 3 of 8 filters zeroed would leave 5 channels, so all 8 stay; 5 zeroed leave
    3, rounded up to 4 (one zeroed filter kept)."""
    rng = np.random.default_rng(7)
    for zero, kept in (((0, 1, 2), 8), ((0, 1, 2, 3, 4), 4)):
        inits = {
            "w": _filters(rng, (8, 3, 1, 1), zero=zero),
            "b": rng.standard_normal(8),
            "v": rng.standard_normal((2, 8, 1, 1)),
        }
        nodes = [
            helper.make_node("Conv", ["x", "w", "b"], ["a"]),
            helper.make_node("Conv", ["a", "v"], ["y"]),
        ]
        path = _save(tmp_path, f"round{len(zero)}", nodes, inits, [("x", [1, 3, 4, 4])], ["y"])
        report, _, after = _shrink(path, round_to=4)
        assert report["round_to"] == 4
        assert report["layers"].get("main/conv2d#0", {"channels": [8, 8]})["channels"] == [8, kept]
        _check(path, after, {"x": rng.standard_normal((1, 3, 4, 4)).astype(np.float32)})


def test_in_the_default_rewrites_between_simplify_and_layout():
    order = list(rewrites.DEFAULT)
    assert order.index("simplify") < order.index("shrink-channels") < order.index("layout-nhwc")


def test_nothing_zeroed_leaves_the_module_as_it_was(tmp_path):
    rng = np.random.default_rng(6)
    inits = {"w": rng.standard_normal((4, 3, 1, 1)), "v": rng.standard_normal((2, 4, 1, 1))}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"]),
        helper.make_node("Conv", ["a", "v"], ["y"]),
    ]
    path = _save(tmp_path, "dense", nodes, inits, [("x", [1, 3, 4, 4])], ["y"])
    report, before, after = _shrink(path)
    assert report["params"] == [20, 20] and report["layers"] == {}
    tvm.ir.assert_structural_equal(before, after)


def test_conv1d_chain_with_pooling_as_in_signal_models(tmp_path):
    """EEG/ECG-style: Conv1d (zeroed filters, biases) -> relu -> MaxPool1d -> depthwise Conv1d
    (zero padding: per-position constants) -> Conv1d -> flatten -> Gemm."""
    rng = np.random.default_rng(8)
    inits = {
        "w1": _filters(rng, (8, 2, 5), zero=(0, 3, 5, 6)),
        "b1": rng.standard_normal(8),
        "wd": rng.standard_normal((8, 1, 3)),
        "w2": rng.standard_normal((6, 8, 3)),
        "b2": rng.standard_normal(6),
        "wf": rng.standard_normal((4, 6 * 12)),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c"], pads=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2], strides=[2]),
        helper.make_node("Conv", ["p", "wd"], ["d"], group=8, pads=[1, 1]),
        helper.make_node("Conv", ["d", "w2", "b2"], ["e"], pads=[1, 1]),
        helper.make_node("Flatten", ["e"], ["f"]),
        helper.make_node("Gemm", ["f", "wf"], ["y"], transB=1),
    ]
    path = _save(tmp_path, "signal", nodes, inits, [("x", [1, 2, 24])], ["y"])
    report, _, after = _shrink(path)
    assert _layer(report, "conv1d#0")["channels"] == [8, 4]
    assert _layer(report, "conv1d#1")["channels"] == [8, 4]  # the depthwise one
    assert report["macs"][1] < report["macs"][0]
    _check(path, after, {"x": rng.standard_normal((1, 2, 24)).astype(np.float32)})
