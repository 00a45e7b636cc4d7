"""ONNX node cases that tvmedge cannot answer right are refused at compile, with a one-line
error naming what is unsupported, and leave no artifact (they used to run and answer wrong):

- training-mode Dropout (random; ONNX Runtime's answer differs from the case's too);
- a sequence graph output (test_if_seq: TVM's importer returns a sequence's tensors as if they
  were the model's outputs, so a sequence of one came back as a bare tensor).
"""

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from onnx_graphs import assert_matches_onnxruntime, io, model, node_case

from tvmedge import conformance
from tvmedge.errors import TvmedgeError

REFUSED = [
    ("test_training_dropout", r"Dropout in training mode is not supported: its training_mode "),
    ("test_training_dropout_mask", r"input is given at run time"),
    ("test_training_dropout_zero_ratio", r"make training_mode a false initializer"),
    ("test_if_seq", r"output 'res' is not a tensor \(sequences.*this one is a sequence\)"),
    ("test_split_to_sequence_1", r"output '\w+' is not a tensor"),
]


@pytest.mark.parametrize(("name", "pattern"), REFUSED)
def test_node_case_is_refused(name, pattern, tmp_path):
    with pytest.raises(TvmedgeError, match=pattern) as e:
        conformance.compile_model(node_case(name).model, tmp_path)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "model.tvmedge").exists()


def _dropout(training: bool, ratio: float) -> onnx.ModelProto:
    consts = [
        numpy_helper.from_array(np.array(ratio, np.float32), "r"),
        numpy_helper.from_array(np.array(training), "t"),
    ]
    node = helper.make_node("Dropout", ["x", "r", "t"], ["y", "mask"])
    return model(
        [node],
        [io("x", [3, 4])],
        [io("y", [3, 4]), io("mask", [3, 4], onnx.TensorProto.BOOL)],
        consts,
        opset=13,
    )


@pytest.mark.parametrize(("training", "ratio"), [(False, 0.5), (True, 0.0)])
def test_dropout_that_drops_nothing_compiles(training, ratio, tmp_path):
    """training_mode a false constant, or a ratio of 0: the identity and an all-true mask."""
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    assert_matches_onnxruntime(_dropout(training, ratio), {"x": x}, tmp_path)


def test_dropout_training_constant_true_is_refused(tmp_path):
    with pytest.raises(TvmedgeError, match=r"training_mode input is true"):
        conformance.compile_model(_dropout(True, 0.5), tmp_path)


def test_roialign_max_is_refused(tmp_path):
    with pytest.raises(TvmedgeError, match=r"RoiAlign mode 'max' is not supported"):
        conformance.compile_model(node_case("test_roialign_mode_max").model, tmp_path)
