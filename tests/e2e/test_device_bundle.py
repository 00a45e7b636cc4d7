"""Deployers' path: compile for a Cortex-A72 with --bundle, then prove the bundle works by running
its own tvmedge-run under qemu-aarch64 (`tvmedge verify-bundle`) against ONNX Runtime on x86.
Tolerance: max|bundle - ort| <= 1e-5 + 1e-4 * max|ort| per output (tvmedge.bench.agreement)."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import cli
from torch_models import CnnLstm, export_torch

from tvmedge import zoo

pytestmark = pytest.mark.skipif(
    shutil.which("aarch64-linux-gnu-g++") is None or shutil.which("qemu-aarch64") is None,
    reason="needs g++-aarch64-linux-gnu and qemu-user (make toolchains installs them)",
)


@pytest.fixture(scope="module")
def cnn_lstm(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "cnn_lstm.onnx"
    export_torch(CnnLstm(), torch.randn(1, 2, 96), path)
    return path


def _bundle(model: Path, out: Path, *extra) -> dict:
    proc = cli("compile", model, "--target", "cortex-a72", "--bundle", "-o", out, *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "manifest.json").read_text())


def test_squeezenet_bundle_runs_under_qemu_and_matches(tmp_path):
    model = zoo.materialize("squeezenet", tmp_path / "squeezenet.onnx")
    manifest = _bundle(model, tmp_path / "sq.tvmedge")

    proc = cli("verify-bundle", tmp_path / "sq.tvmedge", "--model", model)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "qemu-aarch64 -L /usr/aarch64-linux-gnu" in proc.stdout
    assert "verified: the bundle matches ONNX Runtime" in proc.stdout

    # The manifest names the target, toolchain, versions and runtime libraries with hashes.
    assert manifest["target"]["name"] == "cortex-a72"
    assert manifest["build"]["toolchain"]["triple"] == "aarch64-linux-gnu"
    assert "aarch64-linux-gnu-g++" in manifest["build"]["toolchain"]["version"]
    libs = manifest["bundle"]["runtime_libraries"]
    assert set(libs) == {"libtvm_runtime.so", "libtvm_ffi.so"}
    assert (
        "apache-tvm 0.27.0.post1 wheel (manylinux_2_28_aarch64)"
        in libs["libtvm_runtime.so"]["source"]
    )
    for name, lib in libs.items():
        assert manifest["files"][f"runtime/{name}"]["sha256"] == lib["sha256"]
    # The SBOM lists every shipped runtime file with its hash, and the cross compiler.
    sbom = json.loads((tmp_path / "sq.tvmedge" / "sbom.cdx.json").read_text())
    hashes = {c["name"]: c.get("hashes", [{}])[0].get("content") for c in sbom["components"]}
    for name, entry in manifest["files"].items():
        if name.startswith("runtime/"):
            assert hashes[name] == entry["sha256"], name
    assert hashes["runtime/libtvm_runtime.so"] == libs["libtvm_runtime.so"]["sha256"]
    assert manifest["build"]["toolchain"]["cc"] in hashes
    shown = cli("inspect", tmp_path / "sq.tvmedge").stdout
    assert "toolchain  /usr/bin/aarch64-linux-gnu-g++" in shown
    assert f"libtvm_runtime.so: {libs['libtvm_runtime.so']['source']}" in shown

    # The Python runtime of this x86 machine refuses it clearly instead of crashing.
    proc = cli("run", tmp_path / "sq.tvmedge")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "compiled for aarch64 (target 'cortex-a72') and cannot run on this x86_64" in proc.stderr


def test_cnn_lstm_bundle_at_two_batch_sizes(cnn_lstm, tmp_path):
    _bundle(cnn_lstm, tmp_path / "lstm.tvmedge")
    for batch in ("1", "8"):
        proc = cli(
            "verify-bundle",
            tmp_path / "lstm.tvmedge",
            "--model",
            cnn_lstm,
            "--dim",
            f"batch={batch}",
            "--seed",
            batch,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"{batch}x5" in proc.stdout  # the logits' shape


def test_tampered_bundle_runner_is_refused(cnn_lstm, tmp_path):
    art = tmp_path / "lstm.tvmedge"
    _bundle(cnn_lstm, art)
    runner = art / "runtime" / "tvmedge-run"
    runner.write_bytes(runner.read_bytes() + b"\0")
    proc = cli("verify-bundle", art, "--model", cnn_lstm)
    assert proc.returncode == 2
    assert "runtime/tvmedge-run does not match its sha256" in proc.stderr


def _compile_for_board_with(cc: str, model: Path, tmp_path: Path, monkeypatch):
    """Compile for 'my-board': the Cortex-A72 target file with another compiler."""
    text = (Path(__file__).parents[2] / "targets" / "cortex-a72.toml").read_text()
    text = text.replace('name = "cortex-a72"', 'name = "my-board"').replace(
        'cc = "aarch64-linux-gnu-g++"', f'cc = "{cc}"'
    )
    (tmp_path / "my-board.toml").write_text(text)
    monkeypatch.setenv("TVMEDGE_TARGETS_PATH", str(tmp_path))
    proc = cli("compile", model, "--target", "my-board", "-o", tmp_path / "x.tvmedge")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.tvmedge").exists()
    return proc


def test_missing_cross_compiler_names_the_apt_package(cnn_lstm, tmp_path, monkeypatch):
    proc = _compile_for_board_with("aarch64-linux-gnu-g++-99", cnn_lstm, tmp_path, monkeypatch)
    assert (
        "compiler 'aarch64-linux-gnu-g++-99' for target 'my-board' is not installed; "
        "install it with `apt-get install g++-aarch64-linux-gnu`" in proc.stderr
    )


def test_wrong_compiler_for_the_triple_is_caught_up_front(cnn_lstm, tmp_path, monkeypatch):
    proc = _compile_for_board_with("g++", cnn_lstm, tmp_path, monkeypatch)
    assert "'g++' builds for x86_64-linux-gnu, but target 'my-board' needs aarch64" in proc.stderr


def test_armv7_bundle_without_a_runtime_is_a_clear_error(cnn_lstm, tmp_path):
    proc = cli("compile", cnn_lstm, "--target", "cortex-a7", "--bundle", "-o", tmp_path / "a7")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no apache-tvm wheel exists for armv7l" in proc.stderr
    assert "--runtime-dir" in proc.stderr
