"""Compile proves its artifact: loaded and run once in a child process and compared with ONNX
Runtime before it is moved into place; a failure names its step and leaves nothing behind."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import onnx
import pytest
from conftest import cli
from onnx import helper
from onnx_graphs import io
from onnx_graphs import model as _model

from tvmedge import api, machine, runtime, targets
from tvmedge.errors import ArtifactError, CheckError, InternalError
from tvmedge.export import check as _check
from tvmedge.export.artifact import write_artifact
from tvmedge.layout import MANIFEST


def _save(tmp_path, name: str, op: str) -> str:
    proto = _model([helper.make_node(op, ["x"], ["y"])], [io("x", [2, 8])], [io("y", [2, 8])])
    path = tmp_path / f"{name}.onnx"
    onnx.save(proto, path)
    return str(path)


def _quiet(_msg):
    pass


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_compile_records_its_check_in_the_manifest(tmp_path):
    model = _save(tmp_path, "relu", "Relu")
    manifest = api.compile(model, output=tmp_path / "a.tvmedge", log=_quiet).manifest
    check = manifest["check"]
    assert check["run"] and check["compared"], check
    assert check["outputs"][0]["ok"] and check["outputs"][0]["max_abs"] == 0.0
    on_disk = json.loads((tmp_path / "a.tvmedge" / MANIFEST).read_text())
    assert on_disk["check"] == check  # written before the rename, not patched afterwards


def test_no_check_is_recorded(tmp_path):
    model = _save(tmp_path, "relu", "Relu")
    proc = cli("compile", model, "-o", tmp_path / "a.tvmedge", "--no-check")
    assert proc.returncode == 0, proc.stderr
    check = json.loads((tmp_path / "a.tvmedge" / MANIFEST).read_text())["check"]
    assert check == {"run": False, "reason": "skipped with --no-check"}


def test_wrong_results_fail_the_compile_and_leave_nothing(tmp_path, monkeypatch):
    """The artifact computes Relu; its check is given a Neg model as the reference, as if the
    compiler had miscompiled it: the compare step fails and no artifact is written."""
    relu, neg = _save(tmp_path, "relu", "Relu"), _save(tmp_path, "neg", "Neg")
    real = _check.checker
    monkeypatch.setattr(_check, "checker", lambda target, _model, **kw: real(target, neg, **kw))
    out = tmp_path / "a.tvmedge"
    with pytest.raises(CheckError, match="failed at step 'compare': output 'y' differs from"):
        api.compile(relu, output=out, log=_quiet)
    assert not out.exists() and _leftovers(tmp_path) == []


def _not_a_tvm_library(folder) -> bytes:
    """A well-formed shared library that is no TVM module (built with the host's cc)."""
    source = folder / "unrelated.c"
    source.write_text("int tvmedge_unrelated(void) { return 1; }\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", folder / "unrelated.so", source], check=True)
    return (folder / "unrelated.so").read_bytes()


class _Executable:
    """Stands in for TVM's executable: exports the given bytes as model.so."""

    def __init__(self, data: bytes):
        self.data = data

    def export_library(self, path, fcompile=None):
        with open(path, "wb") as f:
            f.write(self.data)


@pytest.mark.parametrize("damage", ["not-tvm", "truncated"])
def test_a_library_that_cannot_load_fails_the_check_at_load(tmp_path, damage):
    """A model.so that passes its hash check (hashed as written) but that the TVM runtime
    cannot load: a shared library of something else (an error), or a real one cut short (it
    kills the process in dlopen, here the child's). The load step fails, nothing is left."""
    work = tmp_path / "work"
    work.mkdir()
    model = _save(work, "relu", "Relu")
    built = api.compile(model, output=work / "good.tvmedge", log=_quiet, check=False)
    manifest = {k: v for k, v in built.manifest.items() if k not in ("files", "check")}
    library = (built.path / "model.so").read_bytes()
    data = _not_a_tvm_library(work) if damage == "not-tvm" else library[:4096]
    out = tmp_path / "bad.tvmedge"
    check = _check.checker(targets.get("host"), model)
    cause = "cannot load it" if damage == "not-tvm" else "died with SIG"
    with pytest.raises(CheckError, match=f"failed at step 'load'.*{cause}") as err:
        write_artifact(
            out, executable=_Executable(data), manifest=manifest, force=False, check=check
        )
    assert "\n" not in str(err.value)
    assert not out.exists() and _leftovers(tmp_path) == []


def _damaged(tmp_path, artifact):
    """A copy of ``artifact`` whose model.so is another library, re-hashed into its manifest."""
    import shutil

    from tvmedge.layout import sha256_file

    copy = tmp_path / "damaged.tvmedge"
    shutil.copytree(artifact, copy)
    so = copy / "model.so"
    so.write_bytes(_not_a_tvm_library(tmp_path))
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["files"]["model.so"] = {"sha256": sha256_file(so), "size": so.stat().st_size}
    (copy / MANIFEST).write_text(json.dumps(manifest))
    return copy


def test_runtime_load_of_a_library_it_cannot_read_is_one_clear_error(tmp_path, tiny_artifact):
    copy = _damaged(tmp_path, tiny_artifact)
    with pytest.raises(InternalError, match="passes its hash check but the TVM runtime cannot"):
        runtime.load(copy)
    proc = cli("run", copy)
    assert proc.returncode == InternalError.exit_code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("tvmedge: error: ") and "model.so passes its hash check" in lines[0]


def test_loading_on_a_cpu_without_the_artifacts_features_names_them(tiny_artifact, monkeypatch):
    features = json.loads((tiny_artifact / MANIFEST).read_text())["cpu"]["features"]
    assert "avx2" in features and "fma" in features  # x86 host: LLVM's features of its mcpu
    lacking = machine.cpu_flags() - {"avx2", "fma"}
    monkeypatch.setattr(machine, "cpu_flags", lambda: lacking)
    with pytest.raises(ArtifactError, match=r"compiled for a CPU with avx2, fma .*lacks them"):
        runtime.load(tiny_artifact)


def test_portable_avx512_code_is_not_run_on_a_cpu_without_it(tmp_path, monkeypatch):
    """Compiled here for x86-64-avx512: the manifest lists avx512f; a CPU without it skips the
    check (saying why) and refuses to load the artifact."""
    model = _save(tmp_path, "relu", "Relu")
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx", "avx2", "fma", "sse4_2"}))
    built = api.compile(model, target="x86-64-avx512", output=tmp_path / "a.tvmedge", log=_quiet)
    assert "avx512f" in built.manifest["cpu"]["features"]
    assert built.manifest["check"]["run"] is False
    assert "this CPU lacks" in built.manifest["check"]["reason"]
    with pytest.raises(ArtifactError, match="avx512f"):
        runtime.load(built.path)


def test_cross_compiled_artifacts_point_to_verify_bundle(tmp_path):
    model = _save(tmp_path, "relu", "Relu")
    built = api.compile(model, target="cortex-a72", output=tmp_path / "a.tvmedge", log=_quiet)
    assert built.manifest["check"]["run"] is False
    assert "verify-bundle" in built.manifest["check"]["reason"]


def test_check_inputs_are_seeded_and_valid_indices():
    from tvmedge.layout import TensorSpec

    specs = [
        TensorSpec("x", "float32", ("batch", "n", 3)),
        TensorSpec("i", "int64", (4,)),
        TensorSpec("y", "float32", ("n", "batch")),  # a dim keeps its size by name
    ]
    a, b = _check.check_inputs(specs), _check.check_inputs(specs)
    assert a["x"].shape == (1, 64, 3) and np.array_equal(a["x"], b["x"])
    assert a["y"].shape == (64, 1)
    assert a["i"].dtype == np.int64 and not a["i"].any()


def test_compare_treats_matching_nan_and_inf_as_equal():
    a = np.array([np.nan, np.inf, 1.0], np.float32)
    assert _check.compare(["y"], [a], [a.copy()])[0]["ok"]
    b = np.array([np.nan, -np.inf, 1.0], np.float32)
    row = _check.compare(["y"], [a], [b])[0]
    assert not row["ok"] and "NaN or infinite" in row["error"]
    row = _check.compare(["y"], [np.zeros(2, np.int64)], [np.ones(2, np.int64)])[0]
    assert not row["ok"] and row["mismatches"] == 2


def test_an_internal_failure_says_so_with_its_own_exit_code(tmp_path, monkeypatch, capsys):
    """Not a user error: one line naming it a bug, exit 70 (not 2), no traceback."""
    from tvmedge.cli import main

    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("division by zero\n  deep inside")

    monkeypatch.setattr(api, "compile", broken)
    monkeypatch.delenv("TVMEDGE_DEBUG", raising=False)
    assert main.main(["compile", _save(tmp_path, "relu", "Relu")]) == InternalError.exit_code
    err = capsys.readouterr().err
    assert err == (
        "tvmedge: internal error: ZeroDivisionError: division by zero (a tvmedge bug: please "
        "report it; TVMEDGE_DEBUG=1 prints the trace)\n"
    )
