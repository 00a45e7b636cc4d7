"""LSTM / GRU / RNN converters against ONNX Runtime, compiled and run through the real library.

Every case compiles an ONNX model with ``api.compile`` and runs the artifact with ``api.run``;
outputs must match ONNX Runtime on the same inputs within rtol=1e-4, atol=1e-5. ONNX Runtime
rejects ``layout=1``, so those cases are checked against the same node with ``layout=0`` on
transposed inputs and outputs. Weights are seeded, the batch dim is symbolic everywhere.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper
from torch_models import BiGruClassifier, CnnLstm, export_torch

from tvmedge import api
from tvmedge.errors import BuildError
from tvmedge.frontend.ops import supported_ops

RTOL, ATOL = 1e-4, 1e-5
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
STEPS, BATCH, INPUT, HIDDEN = 5, 3, 3, 4


def _quiet(_msg: str) -> None:
    pass


def recurrent_model(
    op: str,
    *,
    direction: str = "forward",
    layout: int = 0,
    bias: bool = True,
    initial: bool = True,
    seq_lens: bool = False,
    peephole: bool = False,
    outputs: tuple[str, ...] = ("Y", "Y_h", "Y_c"),
    steps: int | str = STEPS,
    **attrs,
) -> onnx.ModelProto:
    """One recurrent node with seeded weights as initializers; X, initial states and
    sequence_lens are graph inputs with a symbolic batch 'N'. ``outputs`` names the node's
    outputs, '' for one left out."""
    rng = np.random.default_rng(1)
    dirs = 2 if direction == "bidirectional" else 1
    gh = GATES[op] * HIDDEN
    outputs = outputs[: 3 if op == "LSTM" else 2]

    def tensor_input(name, dims, dtype=TensorProto.FLOAT):
        return helper.make_tensor_value_info(name, dtype, dims)

    def weight(name, *shape):
        value = (rng.standard_normal(shape) * 0.5).astype(np.float32)
        return helper.make_tensor(name, TensorProto.FLOAT, shape, value.ravel())

    weights = [weight("W", dirs, gh, INPUT), weight("R", dirs, gh, HIDDEN)]
    state_dims = [dirs, "N", HIDDEN] if layout == 0 else ["N", dirs, HIDDEN]
    graph_inputs = [tensor_input("X", [steps, "N", INPUT] if layout == 0 else ["N", steps, INPUT])]
    names = ["X", "W", "R", "", "", "", "", ""]
    if bias:
        weights.append(weight("B", dirs, 2 * gh))
        names[3] = "B"
    if seq_lens:
        graph_inputs.append(tensor_input("sequence_lens", ["N"], TensorProto.INT32))
        names[4] = "sequence_lens"
    if initial:
        graph_inputs.append(tensor_input("initial_h", state_dims))
        names[5] = "initial_h"
        if op == "LSTM":
            graph_inputs.append(tensor_input("initial_c", state_dims))
            names[6] = "initial_c"
    if peephole:
        weights.append(weight("P", dirs, 3 * HIDDEN))
        names[7] = "P"
    while names[-1] == "":
        names.pop()
    node = helper.make_node(
        op, names, list(outputs), direction=direction, hidden_size=HIDDEN, layout=layout, **attrs
    )
    y_dims = [steps, dirs, "N", HIDDEN] if layout == 0 else ["N", steps, dirs, HIDDEN]
    dims = dict(zip(("Y", "Y_h", "Y_c"), (y_dims, state_dims, state_dims), strict=True))
    graph = helper.make_graph(
        [node],
        op.lower(),
        graph_inputs,
        [tensor_input(o, dims[o]) for o in outputs if o],
        initializer=weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)


def feeds_for(model: onnx.ModelProto, batch: int = BATCH, seed: int = 0) -> dict:
    """Seeded inputs; sequence lengths cover full, partial and empty sequences."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in model.graph.input:
        dims = [d.dim_value or batch for d in value.type.tensor_type.shape.dim]
        feeds[value.name] = rng.standard_normal(dims).astype(np.float32)
    if "sequence_lens" in feeds:
        steps = feeds["X"].shape[_layout(model)]
        lengths = np.resize(np.array([steps, 2, 0, 1, 4], np.int32), batch)
        feeds["sequence_lens"] = lengths.clip(max=steps)
    return feeds


def _layout(model: onnx.ModelProto) -> int:
    """The ``layout`` of a one-node model from :func:`recurrent_model`; 0 for other graphs."""
    return next((a.i for a in model.graph.node[0].attribute if a.name == "layout"), 0)


def onnxruntime_outputs(model: onnx.ModelProto, feeds: dict) -> dict:
    """The reference: ONNX Runtime's outputs by name."""
    if _layout(model):  # ORT rejects layout=1: run the time-major twin on transposed tensors
        twin = onnx.ModelProto()
        twin.CopyFrom(model)
        for attr in twin.graph.node[0].attribute:
            if attr.name == "layout":
                attr.i = 0
        for value in [*twin.graph.input, *twin.graph.output]:
            value.type.tensor_type.ClearField("shape")  # declared batch-major
        swapped = {k: v if v.ndim < 3 else v.swapaxes(0, 1) for k, v in feeds.items()}
        out = onnxruntime_outputs(twin, swapped)
        return {
            k: v.transpose(2, 0, 1, 3) if v.ndim == 4 else v.swapaxes(0, 1) for k, v in out.items()
        }
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    return dict(zip(names, session.run(names, feeds), strict=True))


def compile_model(model: onnx.ModelProto, tmp_path, name: str = "m", **kwargs):
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    return api.compile(path, output=tmp_path / f"{name}.tvmedge", log=_quiet, **kwargs).path


def assert_matches_onnxruntime(model: onnx.ModelProto, tmp_path, batches=(BATCH,)):
    artifact = compile_model(model, tmp_path)
    for batch in batches:
        feeds = feeds_for(model, batch)
        _, got = api.run(artifact, inputs=feeds)
        want = onnxruntime_outputs(model, feeds)
        assert got.keys() == want.keys()
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=RTOL, atol=ATOL, err_msg=name)


CASES = {
    # each op in each direction, with B and initial states, every output
    **{
        f"{op.lower()}-{direction}": dict(op=op, direction=direction)
        for op in GATES
        for direction in ("forward", "reverse", "bidirectional")
    },
    "lstm-one-step": dict(op="LSTM", steps=1, direction="bidirectional", seq_lens=True),
    # optional inputs absent
    "lstm-bare": dict(op="LSTM", bias=False, initial=False),
    "gru-bare": dict(op="GRU", bias=False, initial=False, linear_before_reset=1),
    "rnn-bare": dict(op="RNN", bias=False, initial=False, direction="bidirectional"),
    # sequence_lens with full, partial and empty sequences
    "lstm-seq-lens": dict(op="LSTM", direction="bidirectional", seq_lens=True),
    "gru-seq-lens": dict(op="GRU", direction="reverse", seq_lens=True, linear_before_reset=1),
    "rnn-seq-lens": dict(op="RNN", direction="bidirectional", seq_lens=True, initial=False),
    # batch-major layout
    "lstm-layout1": dict(op="LSTM", layout=1, direction="bidirectional", seq_lens=True),
    "gru-layout1": dict(op="GRU", layout=1, direction="reverse"),
    "rnn-layout1": dict(op="RNN", layout=1, initial=False),
    # some outputs left out
    "lstm-only-Y_h": dict(op="LSTM", outputs=("", "Y_h")),
    "lstm-only-Y_c": dict(op="LSTM", outputs=("", "", "Y_c"), direction="reverse"),
    "gru-only-Y": dict(op="GRU", outputs=("Y",)),
    # cell options
    "gru-linear-before-reset": dict(op="GRU", direction="bidirectional", linear_before_reset=1),
    "lstm-peephole": dict(op="LSTM", direction="bidirectional", peephole=True, seq_lens=True),
    "lstm-input-forget": dict(op="LSTM", input_forget=1, peephole=True),
    "lstm-clip": dict(op="LSTM", clip=0.3, peephole=True),
    "gru-clip": dict(op="GRU", clip=0.3, direction="bidirectional"),
    "rnn-clip": dict(op="RNN", clip=0.3),
    # activations; alpha/beta are consumed in order by the functions that take them
    "rnn-relu": dict(op="RNN", activations=["Relu"]),
    "rnn-per-direction": dict(op="RNN", direction="bidirectional", activations=["Relu", "Tanh"]),
    "rnn-affine-scaledtanh": dict(
        op="RNN",
        direction="bidirectional",
        activations=["Affine", "ScaledTanh"],
        activation_alpha=[0.5, 0.7],
        activation_beta=[0.2, 1.3],
    ),
    "rnn-thresholdedrelu": dict(op="RNN", activations=["ThresholdedRelu"], activation_alpha=[0.5]),
    "lstm-default-alphas": dict(op="LSTM", activations=["HardSigmoid", "Elu", "Softplus"]),
    "lstm-alphas-in-order": dict(
        op="LSTM",
        activations=["Tanh", "LeakyRelu", "HardSigmoid"],
        activation_alpha=[0.2, 0.3],
        activation_beta=[0.45],
    ),
    "gru-softsign-softplus": dict(op="GRU", activations=["Softsign", "Softplus"]),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_node_matches_onnxruntime(case, tmp_path):
    assert_matches_onnxruntime(recurrent_model(**case), tmp_path, batches=(BATCH, 1))


def test_symbolic_sequence_length_is_refused_until_bound(tmp_path):
    model = recurrent_model("LSTM", steps="T")
    with pytest.raises(BuildError, match=r"sequence length .* not a fixed number.*--input-shape"):
        compile_model(model, tmp_path, "unbound")
    shapes = {"X": (STEPS, 2, INPUT), "initial_h": (1, 2, HIDDEN), "initial_c": (1, 2, HIDDEN)}
    artifact = compile_model(model, tmp_path, "bound", input_shapes=shapes)
    feeds = feeds_for(recurrent_model("LSTM"), batch=2)
    _, got = api.run(artifact, inputs=feeds)
    want = onnxruntime_outputs(model, feeds)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize(
    "attrs, message",
    [
        (dict(activations=["Swish"]), "activation 'swish' is not supported"),
        (dict(activations=["Affine"]), "'affine' needs an explicit value in activation_alpha"),
        (dict(activations=["Tanh", "Tanh"]), "lists 2 functions, expected 1"),
    ],
    ids=["unknown", "no-default", "count"],
)
def test_unsupported_attributes_are_clear_errors(attrs, message, tmp_path):
    with pytest.raises(BuildError, match=message):
        compile_model(recurrent_model("RNN", **attrs), tmp_path)


@pytest.mark.parametrize(
    "module, sample_shape",
    [(CnnLstm, (2, 96)), (BiGruClassifier, (20, 12))],
    ids=["cnn-lstm", "bigru"],
)
def test_pytorch_export_runs_at_any_batch(module, sample_shape, tmp_path):
    torch.manual_seed(0)
    model = export_torch(module(), torch.randn(1, *sample_shape), tmp_path / "m.onnx")
    assert {n.op_type for n in model.graph.node} & {"LSTM", "GRU"}
    assert_matches_onnxruntime(model, tmp_path, batches=(1, 8))


def test_supported_ops_lists_recurrent_family():
    assert {"LSTM", "GRU", "RNN"} <= supported_ops()
