"""SequenceInsert and SplitToSequence (tvmedge/frontend/converters/sequence.py) against ONNX
Runtime. Sequences cannot leave a model, so each graph ends in ConcatFromSequence (the whole
sequence, in order), SequenceLength or SequenceAt."""

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx_graphs import assert_matches_onnxruntime, const, io, model

OPSET = 12


def _x(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("position", [None, 0, 1, 2, 3, -1, -2, -3])
def test_insert_positions(position, tmp_path):
    """[a, b, c] with x inserted, stacked along a new axis so the order shows."""
    inputs = ["seq", "x"] + ([] if position is None else ["pos"])
    nodes = [
        helper.make_node("SequenceConstruct", ["a", "b", "c"], ["seq"]),
        helper.make_node("SequenceInsert", inputs, ["seq2"]),
        helper.make_node("ConcatFromSequence", ["seq2"], ["y"], axis=0, new_axis=1),
    ]
    proto = model(
        nodes,
        [io(n, [2, 3]) for n in ("a", "b", "c", "x")],
        [io("y", [4, 2, 3])],
        [] if position is None else [const("pos", position)],
        opset=OPSET,
    )
    feeds = {n: np.full((2, 3), i, np.float32) for i, n in enumerate(("a", "b", "c", "x"))}
    assert_matches_onnxruntime(proto, feeds, tmp_path)


def _split_model(tail: str, split=None, run_time_split: int | None = None, **attrs):
    """x [5, 6] -> SplitToSequence (``split`` a constant, or a graph input of length
    ``run_time_split``) -> SequenceLength ("length"), SequenceAt(-1) ("last") or all parts
    stacked ("all")."""
    graph_inputs, inits, inputs = [io("x", [5, 6])], [], ["x"]
    if run_time_split:
        graph_inputs.append(io("split", [run_time_split], TensorProto.INT64))
        inputs.append("split")
    elif split is not None:
        inits.append(const("split", split))
        inputs.append("split")
    squeezed = len(inputs) == 1 and not attrs.get("keepdims", 1)  # keepdims: only without split
    part_dims = ["p0"] if squeezed else ["p0", "p1"]
    nodes = [helper.make_node("SplitToSequence", inputs, ["seq"], **attrs)]
    if tail == "length":
        nodes.append(helper.make_node("SequenceLength", ["seq"], ["y"]))
        out = io("y", [], TensorProto.INT64)
    elif tail == "last":
        inits.append(const("pos", -1))
        nodes.append(helper.make_node("SequenceAt", ["seq", "pos"], ["y"]))
        out = io("y", part_dims)
    else:
        nodes.append(helper.make_node("ConcatFromSequence", ["seq"], ["y"], axis=0, new_axis=1))
        out = io("y", ["n", *part_dims])
    return model(nodes, graph_inputs, [out], inits, opset=OPSET)


@pytest.mark.parametrize("tail", ["length", "last", "all"])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_split_into_ones(tail, axis, keepdims, tmp_path):
    proto = _split_model(tail, axis=axis, keepdims=keepdims)
    assert_matches_onnxruntime(proto, {"x": _x(5, 6)}, tmp_path)


@pytest.mark.parametrize("chunk", [1, 2, 4, 6])
@pytest.mark.parametrize("tail", ["length", "last"])
def test_split_scalar_chunks_last_shorter(chunk, tail, tmp_path):
    proto = _split_model(tail, split=chunk, axis=1)
    assert_matches_onnxruntime(proto, {"x": _x(5, 6)}, tmp_path)


@pytest.mark.parametrize("tail", ["length", "last"])
def test_split_constant_sizes(tail, tmp_path):
    proto = _split_model(tail, split=[1, 3, 2], axis=1, keepdims=0)  # keepdims: ignored
    assert_matches_onnxruntime(proto, {"x": _x(5, 6)}, tmp_path)


@pytest.mark.parametrize("sizes", [[2, 2, 1], [0, 5, 0], [5, 0, 0]])
@pytest.mark.parametrize("tail", ["length", "last"])
def test_split_run_time_sizes(sizes, tail, tmp_path):
    proto = _split_model(tail, run_time_split=3, axis=0)
    feeds = {"x": _x(5, 6), "split": np.array(sizes, np.int64)}
    assert_matches_onnxruntime(proto, feeds, tmp_path)
