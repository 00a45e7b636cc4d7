"""Fuzzing the trust boundary with hypothesis: the ONNX gate (mutated and random model bytes),
the manifest parser (mutated manifests) and the signature verifier (mutated model.sig). Every
input must end in success or a TvmedgeError: no other exception, no crash, no hang.

The default run tries TVMEDGE_FUZZ_EXAMPLES inputs per target (default 40); the 10,000-input
run recorded in docs/trust.md is `TVMEDGE_FUZZ_EXAMPLES=2500 pytest tests/test_fuzz.py`
(4 targets x 2,500).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil

import pytest
from hostile_models import HOSTILE, relu
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tvmedge import api
from tvmedge.errors import TvmedgeError
from tvmedge.frontend import load_onnx
from tvmedge.layout import TensorSpec
from tvmedge.runtime import read_manifest, verify_files
from tvmedge.runtime.artifact import check_runs_here
from tvmedge.runtime.signature import verify_signature

EXAMPLES = int(os.environ.get("TVMEDGE_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a shared 2-core machine; a hang is caught by the suite's timeout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """Valid and hostile model files as byte strings to mutate."""
    folder = tmp_path_factory.mktemp("seeds")
    found = [relu().SerializeToString(), relu(("batch", 3, 8)).SerializeToString()]
    found += [build(folder).read_bytes() for build, _ in HOSTILE.values()]
    return found


def mutate(data: bytes, edits) -> bytes:
    """Apply (kind, position, bytes) edits: flip, overwrite, insert, delete, truncate."""
    buf = bytearray(data)
    for kind, pos, blob in edits:
        if not buf:
            break
        pos %= len(buf)
        if kind == "flip":
            buf[pos] ^= 1 << (blob[0] % 8) if blob else 0xFF
        elif kind == "overwrite":
            buf[pos : pos + len(blob)] = blob
        elif kind == "insert":
            buf[pos:pos] = blob
        elif kind == "delete":
            del buf[pos : pos + 1 + len(blob)]
        else:
            del buf[pos:]
    return bytes(buf)


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate"]),
        st.integers(0, 1 << 16),
        st.binary(max_size=8),
    ),
    min_size=1,
    max_size=6,
)


def _gate(path, data: bytes) -> None:
    path.write_bytes(data)
    with contextlib.suppress(TvmedgeError):
        load_onnx(path)


@FUZZ
@given(seed=st.integers(0, 1 << 8), edits=EDITS)
def test_gate_on_mutated_models(seeds, tmp_path, seed, edits):
    _gate(tmp_path / "m.onnx", mutate(seeds[seed % len(seeds)], edits))


@FUZZ
@given(data=st.binary(min_size=1, max_size=512))
def test_gate_on_random_bytes(tmp_path, data):
    _gate(tmp_path / "m.onnx", data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def _replace_at(value, path: list[int], new):
    """Replace the node reached by indexing ``value``'s containers with ``path`` (mod size)."""
    if not path or not isinstance(value, dict | list) or not value:
        return new
    keys = list(value) if isinstance(value, dict) else list(range(len(value)))
    key = keys[path[0] % len(keys)]
    out = dict(value) if isinstance(value, dict) else list(value)
    out[key] = _replace_at(value[key], path[1:], new)
    return out


@pytest.fixture(scope="module")
def artifact(tiny_artifact, tmp_path_factory):
    """A signed copy of the tiny artifact, and its public key."""
    art = tmp_path_factory.mktemp("fuzz") / "tiny.tvmedge"
    shutil.copytree(tiny_artifact, art)
    api.keygen(key=art.parent / "k.key", pub=art.parent / "k.pub")
    api.sign(art, key=art.parent / "k.key")
    return art


def _read_like_the_runtime(folder) -> None:
    with contextlib.suppress(TvmedgeError):
        manifest = read_manifest(folder)
        verify_files(folder, manifest)
        check_runs_here(folder, manifest)
        [TensorSpec.from_json(d) for d in manifest["inputs"] + manifest["outputs"]]


@FUZZ
@given(paths=st.lists(st.lists(st.integers(0, 64), max_size=5), min_size=1, max_size=3),
       values=st.lists(JSON, min_size=3, max_size=3))  # fmt: skip
def test_manifest_parser_on_mutated_manifests(artifact, tmp_path, paths, values):
    folder = tmp_path / "a.tvmedge"
    folder.mkdir(exist_ok=True)
    manifest = json.loads((artifact / "manifest.json").read_text())
    for path, value in zip(paths, values, strict=False):
        manifest = _replace_at(manifest, path, value)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    shutil.copyfile(artifact / "model.so", folder / "model.so")
    _read_like_the_runtime(folder)


@FUZZ
@given(edits=EDITS, text=st.booleans())
def test_signature_verifier_on_mutated_signatures(artifact, edits, text):
    sig = artifact / "model.sig"
    original = sig.read_bytes()
    data = mutate(original, edits)
    if text:  # keep it JSON, mutate inside the envelope's payload or signature instead
        bundle = json.loads(original)
        env = bundle["dsseEnvelope"]
        field = env["signatures"][0] if edits[0][1] % 2 else env
        key = "sig" if field is not env else "payload"
        field[key] = mutate(field[key].encode(), edits).decode("latin-1")
        data = json.dumps(bundle).encode()
    sig.write_bytes(data)
    try:
        with contextlib.suppress(TvmedgeError):
            verify_signature(artifact, artifact.parent / "k.pub")
    finally:
        sig.write_bytes(original)
