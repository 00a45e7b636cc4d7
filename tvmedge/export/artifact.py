"""Write NAME.tvmedge/ atomically: a temporary sibling, renamed into place only when complete."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from tvmedge.errors import ArtifactError, BuildError, OutputExistsError, TvmedgeError
from tvmedge.layout import LIBRARY, MANIFEST, sha256_file


def check_output_path(out: Path, *, force: bool) -> None:
    """Refuse an existing output unless forced, and never replace something not ours."""
    for parent in (out.parent, *out.parent.parents):  # the nearest existing folder above out
        if parent.exists():
            if not parent.is_dir():
                raise ArtifactError(
                    f"cannot write output '{out}': '{parent}' is a file, not a directory; "
                    "choose another -o path"
                )
            break
    if not out.exists() and not out.is_symlink():
        return
    if not force:
        raise OutputExistsError(f"output '{out}' already exists; pass --force to replace it")
    if not (out.is_dir() and (out / MANIFEST).is_file()):
        raise OutputExistsError(
            f"output '{out}' exists and is not a tvmedge artifact; refusing to replace it "
            "even with --force: choose another -o path"
        )


def write_artifact(
    out: Path,
    *,
    executable,
    manifest: dict,
    force: bool,
    fcompile=None,
    extras: tuple[Callable[[Path], dict], ...] = (),
    check: Callable[[Path, dict], dict] | None = None,
) -> dict:
    """Export ``executable`` and ``manifest`` into ``out``; on any failure nothing is left.

    Each of ``extras`` writes more files into the artifact directory (a device bundle, CUDA
    kernels) and returns what it adds to the manifest. Every file is hashed into the manifest.
    ``check(folder, manifest)`` then proves the complete artifact in its temporary folder
    (tvmedge.export.check) and returns the manifest's ``check`` record; it raises to refuse
    it. The manifest is returned as written.
    """
    out = Path(out)
    check_output_path(out, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; an artifact is shared like any dir
    try:
        _export_library(executable, tmp / LIBRARY, fcompile)
        for add in extras:
            manifest = {**manifest, **add(tmp)}
        files = {
            p.relative_to(tmp).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size}
            for p in sorted(tmp.rglob("*"))
            if p.is_file()
        }
        manifest = {**manifest, "files": files}
        _write_manifest(tmp, manifest)
        if check is not None:  # the manifest lists no hash of itself: it can take the record
            manifest = {**manifest, "check": check(tmp, manifest)}
            _write_manifest(tmp, manifest)
        _replace(tmp, out, force=force)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and not isinstance(e, TvmedgeError):  # e.g. disk full
            raise ArtifactError(f"could not write '{out}' ({e}); nothing was written") from e
        raise
    return manifest


def _write_manifest(folder: Path, manifest: dict) -> None:
    with open(folder / MANIFEST, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _export_library(executable, path: Path, fcompile) -> None:
    """Link model.so; a compiler or linker failure becomes one line naming its first error."""
    try:
        executable.export_library(str(path), fcompile=fcompile)
    except RuntimeError as e:
        text = str(e)
        if "Compilation error" not in text:
            raise
        lines = [ln.strip() for ln in text.splitlines()]
        first = next(
            (ln for ln in lines if "error" in ln.lower() and ln != "Compilation error:"),
            lines[-1] if lines else "unknown error",
        )
        raise BuildError(
            f"linking {path.name} failed: {first[:300]} (set TVMEDGE_DEBUG=1 for the full "
            "command and compiler output)"
        ) from e


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace(tmp: Path, out: Path, *, force: bool) -> None:
    if not out.exists():
        os.rename(tmp, out)
        return
    check_output_path(out, force=force)  # it may have appeared while we compiled
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rename(out, old / "artifact")
    try:
        os.rename(tmp, out)
    except OSError as e:
        os.rename(old / "artifact", out)
        raise ArtifactError(f"could not move the new artifact into '{out}': {e}") from None
    finally:
        shutil.rmtree(old, ignore_errors=True)
