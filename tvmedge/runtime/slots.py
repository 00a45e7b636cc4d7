"""Verified updates with rollback on a device: ``tvmedge.runtime.Slots(dir)``.

    slots = Slots("/var/lib/app/models", public_key="vendor.pub")  # or $TVMEDGE_PUBLIC_KEY
    slots.install("resnet-r7.tvmedge")     # verified, then switched to atomically
    model = slots.load()                   # the active slot, verified again as it loads
    slots.rollback()                       # back to the slot that was active before

Two slots: the active one and the previous one, each a complete artifact in its own folder
under ``dir``; ``state.json`` names them and the highest release ever installed. ``install``
copies the new artifact into a staging folder, then checks, in order: its signature and every
file (runtime/signature.py), that it runs on this CPU, that its manifest's ``release`` is higher
than any installed before (rollback protection: an old, validly signed artifact cannot come
back as an update), and its golden inputs against its golden outputs in a child process
(export/golden.py). Only then is the staging folder renamed into a slot and ``state.json``
replaced with ``os.replace``, the one atomic step that switches. A crash or kill at any point
before it leaves the old state, whose active slot was never touched; after it, the new one.
``rollback`` swaps the two slots (after verifying the previous one); the release counter stays,
so the rolled-back-from release or any older one cannot be installed again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from tvmedge.errors import ArtifactError
from tvmedge.runtime.artifact import check_runs_here, read_manifest, verify_files
from tvmedge.runtime.signature import configured_key, verify_signature

STATE = "state.json"
STEPS = ("copy", "signature", "target", "release", "golden", "switch", "commit", "cleanup")
GOLDEN_TIMEOUT_S = 600.0


class Slots:
    """Two artifact slots under ``folder`` with an atomic switch between them."""

    def __init__(self, folder: str | Path, *, public_key: str | Path | None = None):
        self.folder = Path(folder)
        key = configured_key(public_key)
        if key is None:
            raise ArtifactError(
                "update slots verify every artifact's signature: pass public_key= or set "
                "TVMEDGE_PUBLIC_KEY to the signer's public key"
            )
        self.public_key = key
        self.folder.mkdir(parents=True, exist_ok=True)

    # ---- state ---------------------------------------------------------------------------

    def state(self) -> dict:
        """``{"active", "previous", "release"}``: slot folder names (or None), highest release."""
        path = self.folder / STATE
        if not path.exists():
            return {"active": None, "previous": None, "release": -1}
        try:
            state = json.loads(path.read_text())
            if not (
                isinstance(state, dict)
                and isinstance(state.get("release"), int)
                and all(
                    state.get(k) is None or _slot_name(state[k]) for k in ("active", "previous")
                )
            ):
                raise ValueError("unexpected fields")
        except (ValueError, OSError) as e:
            raise ArtifactError(f"{path} is damaged ({e}); reinstall an artifact") from None
        return state

    @property
    def active(self) -> Path | None:
        name = self.state()["active"]
        return self.folder / name if name else None

    def load(self, **kwargs):
        """The active slot's Model (``runtime.load``, signature verified)."""
        from tvmedge.runtime.model import load

        active = self.active
        if active is None:
            raise ArtifactError(f"no artifact is installed in '{self.folder}'; install one first")
        return load(active, public_key=self.public_key, **kwargs)

    # ---- install and rollback -------------------------------------------------------------

    def install(self, artifact: str | Path, *, on_step: Callable[[str], None] | None = None):
        """Verify ``artifact`` in a staging copy and switch to it; returns its slot folder.
        ``on_step(name)`` is called before each of :data:`STEPS`."""
        step = on_step or (lambda _name: None)
        state = self.state()
        self._remove_leftovers(state)
        step("copy")
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.folder))
        try:
            _copy_synced(Path(artifact), staging)
            step("signature")
            verify_signature(staging, self.public_key)
            step("target")
            manifest = read_manifest(staging)
            verify_files(staging, manifest)
            check_runs_here(artifact, manifest)
            step("release")
            release = manifest.get("release")
            if isinstance(release, bool) or not isinstance(release, int):
                raise ArtifactError(
                    f"'{artifact}' has no release counter; compile it with --release N"
                )
            if release <= state["release"]:
                raise ArtifactError(
                    f"'{artifact}' is release {release}, and release {state['release']} was "
                    "already installed here: an update must raise the release counter "
                    "(rollback protection); compile with a higher --release"
                )
            step("golden")
            self._golden(staging, artifact, manifest)
            step("switch")
            slot = self.folder / f"slot-{release}-{uuid.uuid4().hex[:8]}"
            os.rename(staging, slot)
            _fsync_dir(self.folder)
            step("commit")
            self._write_state(
                {"active": slot.name, "previous": state["active"], "release": release}
            )
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if "slot" in locals() and self.state()["active"] != slot.name:
                shutil.rmtree(slot, ignore_errors=True)
            raise
        step("cleanup")
        self._remove_leftovers(self.state())
        return slot

    def rollback(self) -> Path:
        """Switch back to the previous slot (verified first); returns it."""
        state = self.state()
        if state["previous"] is None or not (self.folder / state["previous"]).is_dir():
            raise ArtifactError(f"'{self.folder}' has no previous slot to roll back to")
        previous = self.folder / state["previous"]
        verify_signature(previous, self.public_key)
        self._write_state(
            {"active": state["previous"], "previous": state["active"], "release": state["release"]}
        )
        return previous

    # ---- internals ------------------------------------------------------------------------

    def _golden(self, staging: Path, artifact: str | Path, manifest: dict) -> None:
        if not (manifest.get("golden") or {}).get("file"):
            raise ArtifactError(f"'{artifact}' bundles no golden vectors; compile it with --golden")
        cmd = [sys.executable, "-m", "tvmedge.runtime.golden_check", str(staging)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=GOLDEN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ArtifactError(
                f"'{artifact}' did not finish its golden check in {GOLDEN_TIMEOUT_S:.0f} s; "
                "not installed"
            ) from None
        lines = proc.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
        if proc.returncode == 0 and result and result.get("ok"):
            return
        cause = result["error"] if result else f"the check process exited {proc.returncode}"
        raise ArtifactError(
            f"'{artifact}' fails its golden check ({cause}); not installed, the active slot "
            "is unchanged"
        )

    def _write_state(self, state: dict) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=self.folder)
        with os.fdopen(fd, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / STATE)  # the switch
        _fsync_dir(self.folder)

    def _remove_leftovers(self, state: dict) -> None:
        """Staging folders of interrupted installs and slots no longer active or previous."""
        keep = {state["active"], state["previous"], STATE}
        for entry in self.folder.iterdir():
            if entry.name in keep:
                continue
            if entry.name.startswith((".staging-", ".state-")) or _slot_name(entry.name):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def _slot_name(name) -> bool:
    return isinstance(name, str) and name.startswith("slot-") and "/" not in name


def _copy_synced(source: Path, target: Path) -> None:
    """Copy the artifact's regular files (links refused by the signature check) and fsync."""
    if not source.is_dir():
        raise ArtifactError(f"'{source}' is not an artifact directory (NAME.tvmedge/)")
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_symlink():
            raise ArtifactError(f"'{source}' holds the symbolic link {rel}; refusing it")
        if path.is_dir():
            (target / rel).mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / rel)
            with open(target / rel, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(target)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
