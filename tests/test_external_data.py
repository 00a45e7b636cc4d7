"""Models with external data: off by default; with --allow-external-data a good one compiles,
and references that leave the model's folder, go through a link or past the data file's end
are one-line errors, exit 2, before any byte of them is used."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_bad_input import compile_fails

from tvmedge import api, runtime

ALLOW = "--allow-external-data"
WEIGHT = np.arange(64, dtype=np.float32).reshape(8, 8) / 64


def _model(location: str, offset: int = 0, length: int | None = None) -> onnx.ModelProto:
    """y = x @ W with W stored externally at ``location``."""
    w = numpy_helper.from_array(WEIGHT, "W")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": str(offset)}
    entries["length"] = str(WEIGHT.nbytes if length is None else length)
    for key, value in entries.items():
        w.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        initializer=[w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.fixture
def folders(tmp_path):
    """(model folder, cwd) with the weights in ``models/w.bin`` and a secret outside."""
    models, work = tmp_path / "models", tmp_path / "work"
    models.mkdir()
    work.mkdir()
    (models / "w.bin").write_bytes(WEIGHT.tobytes())
    (tmp_path / "secret.bin").write_bytes(WEIGHT.tobytes())
    return models, work


def _save(folder, proto, name="m.onnx"):
    path = folder / name
    path.write_bytes(proto.SerializeToString())  # onnx.save would rewrite the references
    return path


def test_external_data_in_the_models_folder_compiles(folders):
    models, work = folders
    path = _save(models, _model("w.bin"))
    built = api.compile(
        path, output=work / "m.tvmedge", allow_external_data=True, log=lambda _m: None
    )
    x = np.ones((1, 8), np.float32)
    (y,) = runtime.load(built.path).run(None, {"x": x})
    np.testing.assert_allclose(y, x @ WEIGHT, rtol=1e-6)
    digest = hashlib.sha256(WEIGHT.tobytes()).hexdigest()
    assert built.manifest["source"]["data_files"] == {"w.bin": {"sha256": digest, "size": 256}}
    sbom = json.loads((built.path / "sbom.cdx.json").read_text())
    (data,) = [c for c in sbom["components"] if c["bom-ref"] == "source-data:w.bin"]
    assert data["hashes"] == [{"alg": "SHA-256", "content": digest}]


def test_external_data_is_off_by_default(folders):
    models, work = folders
    compile_fails(
        _save(models, _model("w.bin")),
        cwd=work,
        pattern=r"stores 1 tensor\(s\) in external data files \(first: 'W' in 'w\.bin'\); "
        r"external data is off by default: pass --allow-external-data",
    )


def test_the_data_file_is_read_once_into_a_private_copy(folders):
    """What compiles is what was hashed: changing w.bin after load changes nothing."""
    from tvmedge.frontend import load_onnx

    models, _work = folders
    loaded = load_onnx(_save(models, _model("w.bin")), allow_external_data=True)
    (models / "w.bin").write_bytes(bytes(256))
    copy = loaded.file.parent / "w.bin"
    assert copy.read_bytes() == WEIGHT.tobytes()
    private = loaded.file.parent
    del loaded
    import gc

    gc.collect()
    assert not private.exists()  # the private copy goes with the LoadedModel


@pytest.mark.parametrize(
    ("location", "pattern"),
    [
        ("../secret.bin", r"tensor 'W' .* points outside the model's folder \('\.\./secret\.bin'"),
        ("sub/../../secret.bin", r"points outside the model's folder"),
        ("/etc/passwd", r"points to the absolute path '/etc/passwd'"),
        ("missing.bin", r"names the data file 'missing\.bin', which does not exist"),
    ],
)
def test_bad_locations_are_one_line_errors(folders, location, pattern):
    models, work = folders
    compile_fails(_save(models, _model(location)), ALLOW, cwd=work, pattern=pattern)


@pytest.mark.parametrize("inside", [False, True], ids=["out-of-folder", "in-folder"])
def test_a_symlink_is_refused(folders, inside):
    models, work = folders
    os.symlink(models / "w.bin" if inside else models.parent / "secret.bin", models / "link.bin")
    compile_fails(
        _save(models, _model("link.bin")),
        ALLOW,
        cwd=work,
        pattern=r"names 'link\.bin', which is or goes through a symbolic link",
    )


def test_a_symlinked_folder_on_the_way_is_refused(folders):
    models, work = folders
    os.symlink(models.parent, models / "up")
    compile_fails(
        _save(models, _model("up/secret.bin")),
        ALLOW,
        cwd=work,
        pattern=r"names 'up/secret\.bin', which is or goes through a symbolic link",
    )


def test_a_hard_link_is_refused(folders):
    models, work = folders
    os.link(models.parent / "secret.bin", models / "hard.bin")
    compile_fails(
        _save(models, _model("hard.bin")),
        ALLOW,
        cwd=work,
        pattern=r"names 'hard\.bin', a hard link \(2 names for one file\)",
    )


def test_offsets_past_the_end_of_the_file_are_refused(folders):
    models, work = folders
    proto = _model("w.bin", offset=128, length=256)  # w.bin has 256 bytes
    compile_fails(
        _save(models, proto), ALLOW, cwd=work, pattern=r"claims bytes 128\.\.384 of 'w\.bin'"
    )
