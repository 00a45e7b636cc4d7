"""Bad input through the real CLI: one line on stderr, no traceback, exit 2, nothing half-written.

The cases run `python -m tvmedge` in a fresh process (conftest.cli) and check that the folder it
could have written into holds exactly what it held before: no NAME.tvmedge, no .NAME.tmp-*. Only
a failure injected mid-write runs the CLI's main in-process; feed errors are also checked through
the Python API.
"""

from __future__ import annotations

import errno
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import LIGHT_DIR, cli
from onnx import TensorProto, helper

from tvmedge import api, runtime
from tvmedge.errors import FeedError

USER_ERROR = 2


def assert_user_error(proc, pattern: str) -> str:
    """Exit 2 and exactly one stderr line, ``tvmedge: error: ...``, matching ``pattern``."""
    stderr = proc.stderr
    assert "Traceback" not in stderr, stderr
    assert proc.returncode == USER_ERROR, (proc.returncode, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith("tvmedge: error: "), lines[0]
    assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
    return lines[0]


def listing(folder: Path) -> set[str]:
    """Every path under ``folder`` (hidden ones included), relative to it."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def workdir(tmp_path) -> Path:
    """An empty cwd for compile: the default output would land here as NAME.tvmedge."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def compile_fails(model: Path, *args: str | Path, cwd: Path, pattern: str) -> str:
    """Run `tvmedge compile` in ``cwd``; it must fail cleanly and write nothing there."""
    before = listing(cwd)
    line = assert_user_error(cli("compile", model, *args, cwd=cwd), pattern)
    assert listing(cwd) == before  # in particular no NAME.tvmedge and no .NAME.tmp-* folder
    assert not [p for p in cwd.iterdir() if re.search(r"\.(tmp|old)-", p.name)]
    return line


# ---- the model file ----------------------------------------------------------------------------


def test_missing_model_file(workdir):
    compile_fails(Path("nope.onnx"), cwd=workdir, pattern=r"'nope\.onnx' does not exist")


def test_not_an_onnx_file(workdir):
    (workdir / "notes.onnx").write_text("these are my notes, not a model\n" * 4)
    compile_fails(Path("notes.onnx"), cwd=workdir, pattern=r"'notes\.onnx' is not an ONNX model")


def test_truncated_onnx_file(workdir):
    data = (LIGHT_DIR / "light_squeezenet.onnx").read_bytes()
    (workdir / "half.onnx").write_bytes(data[: len(data) // 2])
    compile_fails(
        Path("half.onnx"),
        cwd=workdir,
        pattern=rf"'half\.onnx' is a truncated .*\({len(data) // 2} bytes\)",
    )


def unsupported_model() -> onnx.ModelProto:
    """Valid ONNX with two ops TVM lacks: default-domain Celu (twice) and com.example Frobnicate."""
    nodes = [
        helper.make_node("Celu", ["x"], ["a"], name="celu_1"),
        helper.make_node("Celu", ["a"], ["b"], name="celu_2"),
        helper.make_node("Frobnicate", ["b"], ["y"], name="frob_1", domain="com.example"),
    ]
    graph = helper.make_graph(
        nodes,
        "two_unsupported",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def test_unsupported_ops_are_all_named_at_once(workdir):
    from tvmedge.frontend.ops import supported_ops

    assert "Celu" not in supported_ops()  # if TVM learns Celu, pick another op here
    onnx.save(unsupported_model(), workdir / "exotic.onnx")
    line = compile_fails(Path("exotic.onnx"), cwd=workdir, pattern=r"2 unsupported ONNX operator")
    assert re.search(r"\bCelu \(nodes 'celu_1', 'celu_2'\)", line), line
    assert re.search(r"com\.example::Frobnicate \(nodes 'frob_1'\)", line), line


# ---- targets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "pattern"),
    [
        (
            "cortex-a27",
            r"unknown target 'cortex-a27'; did you mean 'cortex-a7' or .*known targets: host, "
            r"cortex-a53, .*x86-64-avx2",
        ),
        ("risc-v", r"unknown target 'risc-v'; known targets: host, cortex-a53,"),
        ("hots", r"unknown target 'hots'; did you mean 'host'\? known targets: host\b"),
    ],
    ids=["near-miss", "unknown", "typo"],
)
def test_unknown_target(tiny_cnn, workdir, target, pattern):
    compile_fails(tiny_cnn, "--target", target, cwd=workdir, pattern=pattern)


def test_target_file_with_a_typo_key(tmp_path):
    shipped = Path(__file__).resolve().parent.parent / "targets" / "x86-64-avx2.toml"
    text = shipped.read_text()
    assert re.search(r"(?m)^mcpu = ", text)
    path = tmp_path / shipped.name  # a target's name must match its file name
    path.write_text(re.sub(r"(?m)^mcpu = ", "mcpuu = ", text))
    line = assert_user_error(
        cli("targets", "validate", path), r"unknown key 'tvm\.mcpuu' \(did you mean 'mcpu'\?\)"
    )
    assert str(path) in line


# ---- --input-shape -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("binding", "pattern"),
    [
        ("pixels=1,3,32,32", r"unknown input\(s\) 'pixels'; the model's inputs are: 'image'"),
        ("image=1,3,32", r"image: model input has 4 dims \[batch,3,32,32\], binding has 3"),
        ("image=1,4,32,32", r"image: dim 1 is fixed at 3 in the model, cannot bind it to 4"),
    ],
    ids=["unknown-name", "wrong-rank", "static-dim-conflict"],
)
def test_input_shape_errors(tiny_cnn, workdir, binding, pattern):
    compile_fails(tiny_cnn, "--input-shape", binding, cwd=workdir, pattern=pattern)


# ---- the output path ---------------------------------------------------------------------------


def test_existing_output_needs_force(tiny_cnn, tiny_artifact, tmp_path):
    out = tmp_path / "tiny_cnn.tvmedge"
    shutil.copytree(tiny_artifact, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    compile_fails(tiny_cnn, "-o", out, cwd=tmp_path, pattern=r"already exists; pass --force")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_force_replaces_an_existing_artifact(tiny_cnn, tiny_artifact, tmp_path):
    out = tmp_path / "tiny_cnn.tvmedge"
    shutil.copytree(tiny_artifact, out)
    (out / "stale.txt").write_text("from the old artifact")
    proc = cli("compile", tiny_cnn, "-o", out, "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny_cnn.tvmedge"]  # no .old-/.tmp-
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "model.so",
        "sbom.cdx.json",
    ]  # replaced
    api.inspect(out)  # complete and consistent: every file matches its sha256


def test_force_never_replaces_a_user_directory(tiny_cnn, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    compile_fails(
        tiny_cnn, "-o", out, "--force", cwd=tmp_path, pattern=r"is not a tvmedge artifact; refusing"
    )
    assert listing(out) == {"notes.txt"}
    assert (out / "notes.txt").read_text() == "keep me"


def test_output_under_a_file(tiny_cnn, tmp_path):
    (tmp_path / "plain").write_text("a file")
    compile_fails(
        tiny_cnn, "-o", "plain/x.tvmedge", cwd=tmp_path, pattern=r"'plain' is a file, not a direct"
    )
    assert (tmp_path / "plain").read_text() == "a file"


@pytest.mark.parametrize(
    ("failure", "code", "pattern"),
    [
        (KeyboardInterrupt(), 130, r"^tvmedge: interrupted; nothing was written$"),
        (
            OSError(errno.ENOSPC, "No space left on device"),
            USER_ERROR,
            r"^tvmedge: error: could not write '.*tiny_cnn\.tvmedge' .*No space left.*; nothing",
        ),
    ],
    ids=["interrupted", "disk-full"],
)
def test_failure_while_writing_leaves_nothing(
    tiny_cnn, tmp_path, monkeypatch, capsys, failure, code, pattern
):
    """Fail after model.so is in the temporary folder: no artifact, no .NAME.tmp-* remains.

    In-process (the CLI's main), since the failure has to be injected mid-write."""
    from tvmedge.cli.main import main
    from tvmedge.export import artifact

    def fail(_path):
        raise failure

    monkeypatch.setattr(artifact, "sha256_file", fail)
    assert main(["compile", str(tiny_cnn), "-o", str(tmp_path / "tiny_cnn.tvmedge")]) == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert re.search(pattern, lines[-1]), lines[-1]
    assert list(tmp_path.iterdir()) == []


# ---- running an artifact -----------------------------------------------------------------------

BAD_FEEDS = {
    "wrong-name": (
        {"img": np.zeros((1, 3, 32, 32), np.float32)},
        r"unknown input\(s\) 'img'; missing input\(s\) 'image'; the model's inputs are: 'image'",
    ),
    "wrong-shape": (
        {"image": np.zeros((1, 4, 32, 32), np.float32)},
        r"'image' has shape \[1,4,32,32\], expected \[batch,3,32,32\]: dim 1 must be 3",
    ),
    "wrong-dtype": (
        {"image": np.zeros((1, 3, 32, 32), np.float64)},
        r"'image' has dtype float64, expected float32",
    ),
}


@pytest.mark.parametrize("case", BAD_FEEDS)
def test_run_with_bad_inputs(tiny_artifact, tmp_path, case):
    feeds, pattern = BAD_FEEDS[case]
    np.savez(tmp_path / "bad.npz", **feeds)
    out = tmp_path / "out.npz"
    proc = cli("run", tiny_artifact, "--inputs", "bad.npz", "--outputs", out, cwd=tmp_path)
    assert_user_error(proc, pattern)
    assert listing(tmp_path) == {"bad.npz"}  # no out.npz, no .out.npz.* temporary


@pytest.fixture(scope="module")
def loaded(tiny_artifact):
    return runtime.load(tiny_artifact)


@pytest.mark.parametrize("case", BAD_FEEDS)
def test_api_run_with_bad_feeds(loaded, case):
    feeds, pattern = BAD_FEEDS[case]
    assert issubclass(FeedError, ValueError)  # callers may catch ValueError, as with ORT
    with pytest.raises(FeedError, match=pattern):
        loaded.run(None, feeds)


@pytest.mark.parametrize("tamper", ["append", "flip"])
def test_tampered_library_is_refused(tiny_artifact, tmp_path, tamper):
    art = tmp_path / "tiny_cnn.tvmedge"
    shutil.copytree(tiny_artifact, art)
    lib = art / "model.so"
    data = bytearray(lib.read_bytes())
    if tamper == "append":
        data += b"\x00evil"
    else:  # same size: only the sha256 can tell
        data[len(data) // 2] ^= 0xFF
    lib.write_bytes(bytes(data))
    pattern = r"model\.so does not match its sha256 in the manifest: the artifact was modified"
    assert_user_error(cli("run", art, "--outputs", tmp_path / "out.npz"), pattern)
    assert_user_error(cli("inspect", art), pattern)
    assert not (tmp_path / "out.npz").exists()
