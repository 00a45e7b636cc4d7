"""The parts of the quantization flow one by one: floors, the accuracy report, data, ORT's
activation types per target family, bench's --ort-model check. No TVM build here."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from test_quantize_bad_input import classifier

from tvmedge import accuracy
from tvmedge.bench.compare import check_reference
from tvmedge.errors import CalibrationError, ModelFileError, TvmedgeError
from tvmedge.layout import TensorSpec
from tvmedge.quantize import data, from_options
from tvmedge.quantize.floor import parse_floor
from tvmedge.quantize.static import StaticQuantizer

SPECS = [TensorSpec("x", "float32", ("batch", 8))]


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("0.99", (("auto", 0.99),)),
        (0.5, (("auto", 0.5),)),
        ("top1=0.98", (("top1", 0.98),)),
        ("accuracy=0.99, sqnr=25", (("accuracy", 0.99), ("sqnr", 25.0))),
    ],
)
def test_floor_forms(text, terms):
    assert parse_floor(text).terms == terms


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("top5=0.9", "is not METRIC=VALUE"),
        ("top1=abc", "is not METRIC=VALUE"),
        ("1.5", "a fraction must be in \\(0, 1\\]"),
        ("sqnr=-3", "must be > 0 dB"),
        ("", "is not a floor"),
    ],
)
def test_bad_floors(text, message):
    with pytest.raises(CalibrationError, match=message):
        parse_floor(text)


def test_bare_floor_means_accuracy_with_labels_else_top1():
    floor = parse_floor("0.9")
    assert floor.resolve(True).terms == (("accuracy", 0.9),)
    assert floor.resolve(False).terms == (("top1", 0.9),)
    with pytest.raises(CalibrationError, match="needs labels"):
        parse_floor("accuracy=0.9").resolve(False)


def test_accuracy_report_against_hand_computed_values():
    ref = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0], [1.0, 0.5, 0.0]])
    got = ref + np.array([[0.1, 0, 0], [0, 0, 0], [0, 0, 3.5], [0, 0, 0]])
    labels = np.array([0, 1, 2, 1])
    report = accuracy.compare(["p"], [ref], [got], labels=labels)
    row = report["outputs"][0]
    assert row["max_abs_error"] == pytest.approx(3.5)
    assert row["mean_abs_error"] == pytest.approx(3.6 / 12)
    # energy 1 + 4 + 9 + 1.25 = 15.25, noise 0.01 + 12.25
    assert row["sqnr_db"] == pytest.approx(10 * np.log10(15.25 / 12.26), abs=1e-3)
    assert row["top1_agreement"] == 1.0  # [3, 0, 0, 6.5]: still class 2
    assert row["accuracy"] == {"reference": 0.75, "candidate": 0.75, "retained": 1.0}
    assert parse_floor("sqnr=0.9").met(report) and not parse_floor("sqnr=1").met(report)  # 0.95
    same = accuracy.compare(["p"], [ref], [ref.copy()])["outputs"][0]
    assert same["sqnr_db"] is None and "accuracy" not in same


def test_floor_of_a_metric_the_outputs_lack_is_refused():
    report = accuracy.compare(["y"], [np.ones((4, 1))], [np.ones((4, 1))])
    with pytest.raises(CalibrationError, match=r"top1=\.\.\. does not apply to this model"):
        parse_floor("top1=0.9").values(report)


def test_samples_from_a_dict_a_reader_and_a_folder(tmp_path):
    x = np.arange(40, dtype=np.float32).reshape(5, 8)
    from_dict = data.load({"x": x, "labels": np.arange(5)}, SPECS)
    assert len(from_dict) == 5 and from_dict.feeds[2]["x"].shape == (1, 8)
    assert from_dict.all_labels().tolist() == [0, 1, 2, 3, 4]

    class Reader:
        rows = iter([{"x": x[:2]}, {"x": x[2:]}])

        def get_next(self):
            return next(self.rows, None)

    from_reader = data.load(Reader(), SPECS)
    assert [f["x"].shape for f in from_reader.feeds] == [(2, 8), (3, 8)]
    assert from_reader.labels is None
    np.savez(tmp_path / "a.npz", x=x[:3])
    np.savez(tmp_path / "b.npz", x=x[3:])
    folder = data.load(tmp_path, SPECS)
    assert np.array_equal(np.concatenate([f["x"] for f in folder.feeds]), x)
    calib, valid = data.split(from_dict)
    assert (len(calib), len(valid)) == (4, 1) and valid.all_labels().tolist() == [4]
    joined = data.batches(from_dict, SPECS, rows=2)
    assert [f["x"].shape[0] for f in joined] == [2, 2, 1]


def test_reader_feed_of_the_wrong_shape_names_the_input():
    class Reader:
        rows = iter([{"x": np.zeros((1, 9), np.float32)}])

        def get_next(self):
            return next(self.rows, None)

    with pytest.raises(CalibrationError, match=r"input 'x' .* is float32\[1,9\]; the model"):
        data.load(Reader(), SPECS)


def test_options_without_quantize_and_quantize_without_calibration():
    assert from_options(None) is None
    with pytest.raises(CalibrationError, match="--keep-float, --accuracy-floor only apply"):
        from_options(None, keep_float=("a",), accuracy_floor="0.9")
    with pytest.raises(CalibrationError, match="needs --calibration"):
        from_options("int8")


@pytest.mark.parametrize(("family", "dtype"), [("x86", np.uint8), ("aarch64", np.int8)])
def test_activation_type_follows_the_target_family(family, dtype, tmp_path):
    """ONNX Runtime's QDQ model: activations u8 on x86, s8 on ARM; weights s8 per channel."""
    model = tmp_path / "m.onnx"
    classifier(model)
    settings = from_options("int8", calibration="unused")
    work = tmp_path / family
    work.mkdir()
    quantizer = StaticQuantizer(model, work, settings, family, lambda _m: None)
    x = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    qdq = onnx.load(quantizer.quantize(data.load({"x": x}, SPECS)))
    init = {t.name: onnx.numpy_helper.to_array(t) for t in qdq.graph.initializer}
    q_x = next(n for n in qdq.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
    assert init[q_x.input[2]].dtype == dtype
    weights = [a for name, a in init.items() if name.endswith("_quantized") and a.ndim == 2]
    assert weights and all(w.dtype == np.int8 for w in weights)
    scales = [a for name, a in init.items() if name.startswith("w1_scale")]
    assert scales and scales[0].shape == (16,)  # one scale per output channel
    assert quantizer.layer_names() == ["fc1", "fc2"]


def test_ort_model_must_exist_and_take_the_same_inputs(tmp_path):
    model = tmp_path / "m.onnx"
    classifier(model)
    other = onnx.load(model)
    other.graph.input[0].name = "y"
    other.graph.node[0].input[0] = "y"
    onnx.save(other, tmp_path / "other.onnx")
    with pytest.raises(TvmedgeError, match=r"takes inputs y and '.*m\.onnx' takes x"):
        check_reference(tmp_path / "other.onnx", model)
    with pytest.raises(ModelFileError, match="does not exist"):
        check_reference(tmp_path / "missing.onnx", model)
    check_reference(model, model)
