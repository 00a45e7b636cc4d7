"""Read an artifact's manifest and prove its files are the ones that were compiled."""

from __future__ import annotations

import json
from pathlib import Path

from tvmedge import machine
from tvmedge.errors import ArtifactError
from tvmedge.layout import LIBRARY, MANIFEST, SCHEMA, SCHEMA_VERSION, sha256_file
from tvmedge.runtime.manifest_schema import check_manifest

MAX_MANIFEST_BYTES = 16 << 20


def read_manifest(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"artifact '{path}' does not exist; compile one with `tvmedge compile`")
    if not path.is_dir():
        raise ArtifactError(f"'{path}' is not an artifact directory (NAME.tvmedge/)")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"'{path}' has no {MANIFEST}; it is not a complete tvmedge artifact")
    if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ArtifactError(
            f"{manifest_path} has {manifest_path.stat().st_size} bytes, more than any manifest "
            f"tvmedge writes ({MAX_MANIFEST_BYTES}); it is not this artifact's: recompile it"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ArtifactError(f"{manifest_path} is damaged ({e}); recompile the artifact") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise ArtifactError(f"{manifest_path} is not a tvmedge manifest")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ArtifactError(
            f"{manifest_path} has schema version {version}; this tvmedge reads version "
            f"{SCHEMA_VERSION}: recompile the artifact with this tvmedge"
        )
    check_manifest(manifest, str(manifest_path))
    return manifest


def verify_files(path: str | Path, manifest: dict) -> None:
    """Check the sha256 and size of every file the manifest lists, before anything is loaded."""
    path = Path(path)
    files = manifest.get("files") or {}
    if LIBRARY not in files:
        raise ArtifactError(f"manifest of '{path}' lists no {LIBRARY}; recompile the artifact")
    for name, expected in sorted(files.items()):
        file = path / name
        if not file.is_file():
            raise ArtifactError(f"'{path}' is missing {name}; recompile the artifact")
        if file.stat().st_size != expected["size"] or sha256_file(file) != expected["sha256"]:
            raise ArtifactError(
                f"{file} does not match its sha256 in the manifest: the artifact was modified "
                "or damaged after compiling; recompile it, do not run it"
            )


def check_runs_here(path: str | Path, manifest: dict) -> None:
    """An artifact for another architecture must fail clearly, not crash in dlopen."""
    if manifest["runtime"]["device"] != "cpu":
        raise ArtifactError(
            f"'{path}' runs on a {manifest['runtime']['device']} device (target "
            f"'{manifest['target']['name']}'); this runtime runs CPU artifacts only"
        )
    wanted = manifest["target"]["runtime_arch"]
    here = machine.arch()
    if wanted != here:
        raise ArtifactError(
            f"'{path}' was compiled for {wanted} (target '{manifest['target']['name']}') and "
            f"cannot run on this {here} machine; run it on the device (its bundle's "
            "runtime/tvmedge-run), or check it here with `tvmedge verify-bundle`"
        )
    cpu = manifest.get("cpu") or {}
    missing = machine.missing_features(cpu.get("features", []))
    if missing:
        raise ArtifactError(
            f"'{path}' was compiled for a CPU with {', '.join(missing)} (target "
            f"'{manifest['target']['name']}', LLVM mcpu {cpu.get('mcpu') or 'generic'}) and "
            f"this CPU ({machine.cpu_model()}) lacks them: its code would stop with an illegal "
            "instruction. Compile it for this machine with --target host, or pick a target "
            "without those features"
        )
