"""The ONNX input gate: hand-written hostile models (tests/hostile_models.py) are refused through
the real CLI (exit 2, one line, nothing written) and the API (ModelFileError), and the caps can
be raised by the environment variable the message names."""

from __future__ import annotations

import pytest
from hostile_models import HOSTILE, relu
from test_bad_input import compile_fails

from tvmedge import api
from tvmedge.errors import ModelFileError, TvmedgeError
from tvmedge.frontend import load_onnx
from tvmedge.frontend.gate import Limits, human


@pytest.fixture
def folders(tmp_path):
    models, work = tmp_path / "models", tmp_path / "work"
    models.mkdir()
    work.mkdir()
    return models, work


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_model_is_refused_by_the_cli(folders, case):
    build, pattern = HOSTILE[case]
    models, work = folders
    compile_fails(build(models), cwd=work, pattern=pattern)


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_model_is_refused_by_the_api(folders, case):
    build, pattern = HOSTILE[case]
    models, work = folders
    with pytest.raises(ModelFileError, match=pattern):
        api.compile(build(models), output=work / "m.tvmedge", log=lambda _m: None)
    assert list(work.iterdir()) == []


def test_path_traversal_is_refused_when_external_data_is_allowed(folders):
    build, _ = HOSTILE["path-traversal"]
    with pytest.raises(ModelFileError, match=r"points outside the model's folder"):
        load_onnx(build(folders[0]), allow_external_data=True)


def test_the_tensor_cap_is_raised_by_its_variable(folders, monkeypatch):
    path = folders[0] / "wide.onnx"
    path.write_bytes(relu((1, 1 << 20)).SerializeToString())  # 4 MiB
    with pytest.raises(ModelFileError, match=r"TVMEDGE_MAX_TENSOR_BYTES=4194304$"):
        load_onnx(path, limits=Limits(tensor_bytes=1 << 20))
    monkeypatch.setenv("TVMEDGE_MAX_TENSOR_BYTES", "1048576")
    with pytest.raises(ModelFileError, match=r"over the 1\.0 MiB cap"):
        load_onnx(path)
    monkeypatch.setenv("TVMEDGE_MAX_TENSOR_BYTES", "4194304")
    assert load_onnx(path).checker == "full"


def test_the_model_file_cap(folders, monkeypatch):
    path = folders[0] / "relu.onnx"
    path.write_bytes(relu().SerializeToString())
    monkeypatch.setenv("TVMEDGE_MAX_MODEL_BYTES", "16")
    with pytest.raises(ModelFileError, match=r"over the 16 B cap on a model file; .*"):
        load_onnx(path)
    monkeypatch.setenv("TVMEDGE_MAX_MODEL_BYTES", "sixteen")
    with pytest.raises(TvmedgeError, match=r"TVMEDGE_MAX_MODEL_BYTES='sixteen' is not a pos"):
        load_onnx(path)


def test_an_input_shape_binding_is_capped_too(folders):
    path = folders[0] / "batch.onnx"
    path.write_bytes(relu(("batch", 1 << 20)).SerializeToString())
    with pytest.raises(ModelFileError, match=r"input 'x' .* declares 4096x1048576 float32: 16\.0"):
        api.compile(
            path,
            output=folders[1] / "m.tvmedge",
            input_shapes={"x": (4096, 1 << 20)},
            log=lambda _m: None,
        )


def test_what_is_compiled_is_a_private_copy_of_the_bytes_hashed(folders):
    import hashlib

    path = folders[0] / "relu.onnx"
    data = relu().SerializeToString()
    path.write_bytes(data)
    loaded = load_onnx(path)
    path.write_bytes(relu((2, 8)).SerializeToString())  # changed after the gate read it
    assert loaded.file != path and loaded.file.read_bytes() == data
    assert loaded.sha256 == hashlib.sha256(data).hexdigest() and loaded.size == len(data)


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1 << 31, "2.0 GiB"), (1 << 42, "4.0 TiB")],
)
def test_human_sizes(size, text):
    assert human(size) == text


def test_where_only_strict_inference_fails_the_plain_checker_decides_and_says_so(folders):
    """onnx 1.23's strict shape inference fails inside MeanVarianceNormalization's own function
    body (ONNX's node case test_mvn), on a valid model: the manifest records the weaker check."""
    from onnx import TensorProto, helper

    info = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3, 3, 3, 1]) for n in "xy"]
    graph = helper.make_graph(
        [helper.make_node("MeanVarianceNormalization", ["x"], ["y"])], "mvn", info[:1], info[1:]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    path = folders[0] / "mvn.onnx"
    path.write_bytes(model.SerializeToString())
    checker = load_onnx(path).checker
    assert checker.startswith("basic: strict shape inference failed: [ShapeInferenceError]")
