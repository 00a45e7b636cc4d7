"""Sign an artifact in the OpenSSF model-signing format with an ECDSA P-256 key, offline.

model-signing's own signer hashes every file of the artifact (sha256, ``model.sig`` ignored,
git paths not ignored) into an in-toto statement and signs it into a DSSE envelope inside a
Sigstore bundle, written as ``model.sig``; no Sigstore service is contacted. The artifact must
be intact (every file matches the manifest) and hold plain files only; the new signature is
checked with tvmedge's own verifier (tvmedge/runtime/signature.py) before it replaces any old
one. ``keygen`` writes a key pair to sign with.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tvmedge.errors import KeyFileError, OutputExistsError
from tvmedge.runtime.artifact import read_manifest, verify_files
from tvmedge.runtime.signature import SIGNATURE, artifact_files, verify_signature


def keygen(key: str | Path, pub: str | Path, *, force: bool = False) -> None:
    """Write a new ECDSA P-256 private key (PKCS#8 PEM, mode 0600) and its public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key, pub = Path(key), Path(pub)
    for path in (key, pub):
        if path.exists() and not force:
            raise OutputExistsError(f"'{path}' already exists; pass --force to replace it")
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def load_private_key(path: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise KeyFileError(f"signing key '{path}' does not exist") from None
    except (OSError, ValueError, TypeError) as e:
        raise KeyFileError(
            f"'{path}' is not an unencrypted PEM private key ({e}); make one with `tvmedge keygen`"
        ) from None
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
        raise KeyFileError(f"signing key '{path}' is not an ECDSA P-256 key")
    return private


def sign(artifact: str | Path, key: str | Path) -> dict:
    """Sign ``artifact`` with the private key file ``key``; returns the signed statement."""
    import model_signing

    artifact, key = Path(artifact), Path(key)
    verify_files(artifact, read_manifest(artifact))  # never sign what was already altered
    artifact_files(artifact)  # refuses symbolic links
    private = load_private_key(key)
    hashing = model_signing.hashing.Config().set_ignored_paths(
        paths=[SIGNATURE], ignore_git_paths=False
    )
    config = model_signing.signing.Config().set_hashing_config(hashing)
    config.use_elliptic_key_signer(private_key=key)
    fd, tmp = tempfile.mkstemp(prefix=f".{artifact.name}.sig-", dir=artifact.parent)
    os.close(fd)
    try:
        config.sign(artifact, tmp)
        statement = verify_signature(artifact, private.public_key(), signature=Path(tmp))
        os.replace(tmp, artifact / SIGNATURE)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return statement
