"""Signed artifacts: `tvmedge keygen`, `sign` and `verify` through the real CLI; the signature is
model-signing's format (its own verifier accepts it, offline); runtime.load verifies before
loading when a key is configured; tampering is refused with the cause named."""

from __future__ import annotations

import base64
import json
import shutil

import model_signing
import numpy as np
import pytest
from conftest import cli
from test_bad_input import assert_user_error

from tvmedge import api, runtime
from tvmedge.errors import ArtifactError, KeyFileError
from tvmedge.layout import sha256_file


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    api.keygen(key=folder / "a.key", pub=folder / "a.pub")
    api.keygen(key=folder / "b.key", pub=folder / "b.pub")
    return folder


@pytest.fixture(scope="module")
def signed(tiny_artifact, keys, tmp_path_factory):
    """tiny_cnn.tvmedge signed with key a, by the CLI."""
    art = tmp_path_factory.mktemp("signed") / "tiny_cnn.tvmedge"
    shutil.copytree(tiny_artifact, art)
    proc = cli("sign", art, "--key", keys / "a.key")
    assert proc.returncode == 0, proc.stderr
    assert (art / "model.sig").is_file()
    return art


@pytest.fixture
def copy(signed, tmp_path):
    art = tmp_path / "tiny_cnn.tvmedge"
    shutil.copytree(signed, art)
    return art


def test_the_cli_verifies_what_it_signed(signed, keys):
    proc = cli("verify", signed, "--pub", keys / "a.pub")
    assert proc.returncode == 0, proc.stderr
    assert "manifest.json" in proc.stdout and "model.so" in proc.stdout
    assert (keys / "a.key").stat().st_mode & 0o077 == 0  # the private key is the owner's only
    shown = cli("inspect", signed).stdout
    assert "signature  model.sig (check it with `tvmedge verify" in shown
    assert "sbom       sbom.cdx.json (CycloneDX 1.6)" in shown


def test_model_signings_own_verifier_accepts_it(signed, keys):
    config = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=keys / "a.pub")
    config.verify(signed, signed / "model.sig")
    statement = json.loads(
        base64.b64decode(json.loads((signed / "model.sig").read_text())["dsseEnvelope"]["payload"])
    )
    listed = {r["name"]: r["digest"] for r in statement["predicate"]["resources"]}
    assert listed == {
        n: sha256_file(signed / n) for n in ("manifest.json", "model.so", "sbom.cdx.json")
    }


def test_runtime_loads_a_verified_artifact(signed, keys, monkeypatch):
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    (want,) = runtime.load(signed).run(None, {"image": x})
    (got,) = runtime.load(signed, public_key=keys / "a.pub").run(None, {"image": x})
    np.testing.assert_array_equal(got, want)
    monkeypatch.setenv("TVMEDGE_PUBLIC_KEY", str(keys / "b.pub"))  # the variable is honoured
    with pytest.raises(ArtifactError, match="does not verify with the key"):
        runtime.load(signed)


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _replace_manifest(art):
    """A different manifest, self-consistent: its file hashes still match, only the signature
    can tell."""
    manifest = json.loads((art / "manifest.json").read_text())
    manifest["inputs"][0]["shape"] = ["batch", 3, 64, 64]
    (art / "manifest.json").write_text(json.dumps(manifest, indent=2))


TAMPER = {
    "flipped-byte": (lambda art: _flip(art / "model.so"), r"model\.so of '.*' does not match its "),
    "extra-file": (
        lambda art: (art / "evil.py").write_text("import os\n"),
        r"holds evil\.py, which the signature does not list",
    ),
    "replaced-manifest": (_replace_manifest, r"manifest\.json of '.*' does not match its signed"),
    "missing-file": (
        lambda art: (art / "manifest.json").unlink(),
        r"is missing manifest\.json, which the signature lists",
    ),
    "unsigned": (lambda art: (art / "model.sig").unlink(), r"is not signed \(no model\.sig\)"),
    "altered-signature": (
        lambda art: (art / "model.sig").write_text(
            (art / "model.sig").read_text().replace('"payload":"', '"payload":"AAAA', 1)
        ),
        r"does not verify with the key",
    ),
}


@pytest.mark.parametrize("case", TAMPER)
def test_tampering_is_refused_naming_the_cause(copy, keys, case):
    tamper, pattern = TAMPER[case]
    tamper(copy)
    with pytest.raises(ArtifactError, match=pattern):
        runtime.load(copy, public_key=keys / "a.pub")
    with pytest.raises(ArtifactError, match=pattern):
        api.verify(copy, public_key=keys / "a.pub")


def test_model_signing_refuses_the_replaced_manifest_too(copy, keys):
    _replace_manifest(copy)
    config = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=keys / "a.pub")
    with pytest.raises(ValueError, match=r"Hash mismatch for 'manifest\.json'"):
        config.verify(copy, copy / "model.sig")


def test_a_wrong_key_is_refused(signed, keys):
    with pytest.raises(ArtifactError, match=r"does not verify with the key '.*b\.pub': it was sig"):
        runtime.load(signed, public_key=keys / "b.pub")


def test_the_cli_refuses_a_tampered_artifact_in_one_line(copy, keys, tmp_path):
    _flip(copy / "model.so")
    proc = cli("verify", copy, "--pub", keys / "a.pub")
    assert_user_error(proc, r"model\.so of '.*' does not match its signed sha256")
    proc = cli("run", copy, "--pub", keys / "a.pub", "--outputs", tmp_path / "out.npz")
    assert_user_error(proc, r"model\.so of '.*' does not match its signed sha256")
    assert not (tmp_path / "out.npz").exists()


def test_signing_refuses_an_altered_artifact(copy, keys):
    _flip(copy / "model.so")
    with pytest.raises(ArtifactError, match=r"does not match its sha256 in the manifest"):
        api.sign(copy, key=keys / "a.key")


def test_keys_must_be_p256(tmp_path, signed):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    (tmp_path / "p384.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(KeyFileError, match=r"is not an ECDSA P-256 key"):
        api.verify(signed, public_key=tmp_path / "p384.pub")
    (tmp_path / "junk.key").write_text("not a key")
    with pytest.raises(KeyFileError, match=r"is not an unencrypted PEM private key"):
        api.sign(signed, key=tmp_path / "junk.key")


def test_verifying_needs_neither_model_signing_nor_the_compiler(signed, keys):
    """A device verifies with the runtime and `cryptography` only."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from tvmedge import runtime\n"
        f"runtime.load({str(signed)!r}, public_key={str(keys / 'a.pub')!r})\n"
        "heavy = sorted(n for n in ('tvm', 'onnx', 'model_signing', 'sigstore') if n in "
        "sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
