"""Verify an artifact's signature (OpenSSF model-signing format) before anything is loaded.

``model.sig`` in the artifact is a Sigstore bundle (JSON) whose DSSE envelope carries an in-toto
statement: ``predicate.resources`` lists every file of the artifact with its sha256, and
``predicate.serialization`` says how they were hashed (method ``files``, ``sha256``, ignoring
only ``model.sig``). ``tvmedge sign`` writes it with model-signing's own signer and an ECDSA
P-256 key, so model-signing's verifier (``model_signing verify key``) checks it too, offline.

This verifier is deliberately small, so that it can be read in one sitting and mirrored on a
device (only ``cryptography`` is needed, no network):
  1. parse the bundle; the envelope's payload type must be ``application/vnd.in-toto+json``;
  2. verify the envelope's one ECDSA-SHA256 signature over the DSSE pre-authentication encoding
     ``"DSSEv1 <len type> <type> <len payload> " + payload`` with the configured public key;
  3. only then read the statement: the predicate type, method and hash type must be the ones
     above and nothing but ``model.sig`` may be ignored;
  4. hash every regular file under the artifact (symbolic links are refused) and compare with
     the resources: a changed, missing or extra file is refused, naming the file.
Every refusal is one ArtifactError line.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path

from tvmedge.errors import ArtifactError, KeyFileError
from tvmedge.layout import sha256_file

SIGNATURE = "model.sig"
PUBLIC_KEY_ENV = "TVMEDGE_PUBLIC_KEY"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"


def configured_key(public_key: str | Path | None) -> Path | None:
    """The public key to verify with: the argument, else ``$TVMEDGE_PUBLIC_KEY``, else none."""
    if public_key is not None:
        return Path(public_key)
    value = os.environ.get(PUBLIC_KEY_ENV, "").strip()
    return Path(value) if value else None


def load_public_key(path: Path):
    """An ECDSA P-256 public key from a PEM file; anything else is a KeyFileError."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise KeyFileError(f"public key '{path}' does not exist") from None
    except (OSError, ValueError) as e:
        raise KeyFileError(
            f"'{path}' is not a PEM public key ({e}); pass the .pub file `tvmedge keygen` wrote"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise KeyFileError(
            f"public key '{path}' is not an ECDSA P-256 key; tvmedge signs with P-256"
        )
    return key


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature covers."""
    head = f"DSSEv1 {len(payload_type.encode())} {payload_type} {len(payload)} "
    return head.encode() + payload


def verify_signature(artifact: str | Path, public_key, *, signature: Path | None = None) -> dict:
    """Verify ``artifact``'s model.sig with ``public_key`` (a PEM file, or a loaded key) and
    every file against it; returns the verified in-toto statement. Raises ArtifactError naming
    the cause (KeyFileError for the key itself). ``signature``: read the bundle from there
    instead of the artifact's model.sig (a new signature, checked before it is moved in)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    artifact = Path(artifact)
    key = public_key if isinstance(public_key, ec.EllipticCurvePublicKey) else None
    key = key or load_public_key(Path(public_key))
    key_name = "the given key" if key is public_key else f"the key '{public_key}'"
    sig_path = signature or artifact / SIGNATURE
    if not sig_path.is_file() or sig_path.is_symlink():
        raise ArtifactError(
            f"'{artifact}' is not signed (no {SIGNATURE}) and a public key is configured; sign it "
            "with `tvmedge sign`, or load it without a key"
        )
    payload, signature = _envelope(sig_path)
    try:
        key.verify(signature, pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ArtifactError(
            f"the signature of '{artifact}' does not verify with {key_name}: it was "
            "signed with another key, or model.sig was altered; do not run it"
        ) from None
    statement = _statement(payload, sig_path)
    expected = {r["name"]: r["digest"] for r in statement["predicate"]["resources"]}
    _compare(artifact, expected)
    return statement


def _envelope(sig_path: Path) -> tuple[bytes, bytes]:
    try:
        bundle = json.loads(sig_path.read_bytes())
        envelope = bundle["dsseEnvelope"]
        if envelope["payloadType"] != PAYLOAD_TYPE or len(envelope["signatures"]) != 1:
            raise ValueError("not a single-signature in-toto envelope")
        payload = base64.b64decode(envelope["payload"], validate=True)
        signature = base64.b64decode(envelope["signatures"][0]["sig"], validate=True)
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error) as e:
        raise ArtifactError(
            f"{sig_path} is not a model-signing bundle ({type(e).__name__}: {e}); sign the "
            "artifact again with `tvmedge sign`"
        ) from None
    return payload, signature


def _statement(payload: bytes, sig_path: Path) -> dict:
    """The signed statement, checked to be the form this verifier understands."""
    try:
        statement = json.loads(payload)
        serialization = statement["predicate"]["serialization"]
        resources = statement["predicate"]["resources"]
        ok = (
            statement.get("predicateType") == PREDICATE_TYPE
            and serialization.get("method") == "files"
            and serialization.get("hash_type") == "sha256"
            and set(serialization.get("ignore_paths", [])) <= {SIGNATURE}
            and all(
                isinstance(r["name"], str) and r.get("algorithm") == "sha256" for r in resources
            )
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise ArtifactError(
            f"{sig_path} is signed, but its statement is not a model-signing v1.0 list of "
            "sha256 file digests that ignores only model.sig; sign it with `tvmedge sign`"
        )
    return statement


def artifact_files(artifact: Path) -> list[str]:
    """Every file under ``artifact`` but model.sig, as POSIX relative paths, sorted; a symbolic
    link anywhere is refused (a signed artifact holds plain files only)."""
    names = []
    for root, dirs, files in os.walk(artifact):
        for name in dirs + files:
            path = Path(root) / name
            if path.is_symlink():
                raise ArtifactError(
                    f"'{artifact}' holds the symbolic link {path.relative_to(artifact)}; a signed "
                    "artifact holds plain files only"
                )
        names += [(Path(root) / f).relative_to(artifact).as_posix() for f in files]
    return sorted(n for n in names if n != SIGNATURE)


def _compare(artifact: Path, expected: dict[str, str]) -> None:
    present = artifact_files(artifact)
    extra = [n for n in present if n not in expected]
    missing = sorted(n for n in expected if n not in set(present))
    if extra:
        raise ArtifactError(
            f"'{artifact}' holds {', '.join(extra)}, which the signature does not list: a file was "
            "added after signing; do not run it"
        )
    if missing:
        raise ArtifactError(
            f"'{artifact}' is missing {', '.join(missing)}, which the signature lists; do not "
            "run it"
        )
    for name in present:
        if sha256_file(artifact / name) != expected[name]:
            raise ArtifactError(
                f"{name} of '{artifact}' does not match its signed sha256: it was changed after "
                "signing; do not run it"
            )
