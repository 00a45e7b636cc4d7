"""Verified A/B updates (runtime.Slots): install checks signature, CPU, a rising release counter
and golden outputs, then switches atomically; rollback; and the process killed (SIGKILL, in a
subprocess) before each step of an install leaves an active slot that loads and gives its
golden outputs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tvmedge import api
from tvmedge.errors import ArtifactError
from tvmedge.layout import sha256_file
from tvmedge.runtime import Slots
from tvmedge.runtime.slots import STEPS

OPS = {1: "Relu", 2: "Neg", 3: "Abs"}  # release -> what its model computes


def _model(op: str) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"])],
        op.lower(),
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """{release: signed artifact} for releases 1..3 (with golden vectors), and the public key."""
    folder = tmp_path_factory.mktemp("releases")
    api.keygen(key=folder / "k.key", pub=folder / "k.pub")
    built = {}
    for release, op in OPS.items():
        onnx.save(_model(op), folder / f"{op}.onnx")
        art = api.compile(
            folder / f"{op}.onnx",
            output=folder / f"r{release}.tvmedge",
            release=release,
            golden=True,
            use_tuning_logs=False,
            log=lambda _m: None,
        ).path
        api.sign(art, key=folder / "k.key")
        built[release] = art
    return built, folder / "k.pub"


def _golden(art):
    with np.load(art / "golden.npz") as data:
        return data["input/x"], data["output/y"]


def assert_serves(slots: Slots, art) -> None:
    """The active slot loads (verified) and gives ``art``'s golden outputs."""
    x, want = _golden(art)
    (got,) = slots.load().run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_install_switch_and_rollback(releases, tmp_path):
    arts, pub = releases
    slots = Slots(tmp_path / "slots", public_key=pub)
    slots.install(arts[1])
    assert_serves(slots, arts[1])
    slots.install(arts[2])
    assert_serves(slots, arts[2])
    assert sorted(p.name.split("-")[1] for p in slots.folder.glob("slot-*")) == ["1", "2"]
    slots.rollback()
    assert_serves(slots, arts[1])
    with pytest.raises(ArtifactError, match=r"is release 2, and release 2 was already installed"):
        slots.install(arts[2])  # the release it rolled back from cannot come back
    slots.install(arts[3])
    assert_serves(slots, arts[3])
    assert slots.state()["release"] == 3


def test_a_rolled_back_release_counter_is_refused(releases, tmp_path):
    arts, pub = releases
    slots = Slots(tmp_path / "slots", public_key=pub)
    slots.install(arts[2])
    with pytest.raises(ArtifactError, match=r"'.*r1\.tvmedge' is release 1, and release 2 was"):
        slots.install(arts[1])  # validly signed, but older
    assert_serves(slots, arts[2])


def _resigned(art, tmp_path, pub, change):
    """A copy of ``art``, changed by ``change(copy)``, its manifest's hashes redone and signed
    again with the real key: only the install's own checks can refuse it."""
    copy = tmp_path / art.name
    shutil.copytree(art, copy)
    change(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    for name in manifest["files"]:
        manifest["files"][name] = {
            "sha256": sha256_file(copy / name),
            "size": (copy / name).stat().st_size,
        }
    (copy / "manifest.json").write_text(json.dumps(manifest))
    api.sign(copy, key=pub.with_suffix(".key"))
    return copy


def test_wrong_golden_outputs_are_refused(releases, tmp_path):
    arts, pub = releases

    def wrong(copy):
        x, y = _golden(copy)
        np.savez(copy / "golden.npz", **{"input/x": x, "output/y": y + 1.0})

    bad = _resigned(arts[2], tmp_path, pub, wrong)
    slots = Slots(tmp_path / "slots", public_key=pub)
    slots.install(arts[1])
    with pytest.raises(ArtifactError, match=r"fails its golden check \(output 'y' differs"):
        slots.install(bad)
    assert_serves(slots, arts[1])
    assert [p.name for p in slots.folder.iterdir() if p.name.startswith(".staging")] == []


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ("unsigned", r"is not signed"),
        ("tampered", r"model\.so of '.*' does not match its signed sha256"),
    ],
)
def test_unverified_artifacts_are_refused(releases, tmp_path, change, pattern):
    arts, pub = releases
    copy = tmp_path / "r2.tvmedge"
    shutil.copytree(arts[2], copy)
    if change == "unsigned":
        (copy / "model.sig").unlink()
    else:
        data = bytearray((copy / "model.so").read_bytes())
        data[100] ^= 0x10
        (copy / "model.so").write_bytes(bytes(data))
    slots = Slots(tmp_path / "slots", public_key=pub)
    slots.install(arts[1])
    with pytest.raises(ArtifactError, match=pattern):
        slots.install(copy)
    assert_serves(slots, arts[1])


def test_slots_need_a_key(tmp_path, monkeypatch):
    monkeypatch.delenv("TVMEDGE_PUBLIC_KEY", raising=False)
    with pytest.raises(ArtifactError, match=r"verify every artifact's signature: pass public_key"):
        Slots(tmp_path / "slots")


KILLED_INSTALL = textwrap.dedent(
    """
    import os, signal, sys
    from tvmedge.runtime import Slots

    folder, artifact, key, at = sys.argv[1:]

    def on_step(name):
        if name == at:
            os.kill(os.getpid(), signal.SIGKILL)

    Slots(folder, public_key=key).install(artifact, on_step=on_step)
    print("finished")
    """
)


@pytest.fixture(scope="module")
def installed(releases, tmp_path_factory):
    """A slots folder with release 1 active, to copy for each kill."""
    arts, pub = releases
    folder = tmp_path_factory.mktemp("installed") / "slots"
    Slots(folder, public_key=pub).install(arts[1])
    return folder


@pytest.mark.parametrize("step", STEPS)
def test_killed_at_each_step_the_active_slot_still_serves(releases, installed, tmp_path, step):
    arts, pub = releases
    folder = tmp_path / "slots"
    shutil.copytree(installed, folder)
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_INSTALL, folder, arts[2], pub, step],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, (proc.returncode, proc.stderr[-2000:])
    slots = Slots(folder, public_key=pub)
    switched = STEPS.index(step) > STEPS.index("commit")
    assert_serves(slots, arts[2] if switched else arts[1])
    if step in ("golden", "commit"):  # a staging folder, then a renamed slot, left behind:
        slots.install(arts[3])  # the next install works and removes them
        assert_serves(slots, arts[3])
        left = sorted(p.name.split("-")[1] for p in folder.iterdir() if p.name != "state.json")
        assert left == ["1", "3"]
