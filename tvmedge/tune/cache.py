"""The tuning-log cache: MetaSchedule JSON databases, one per (target, TVM version) key.

    tuning-logs/<target>/<key>/meta.json                   what the key binds, for people
    tuning-logs/<target>/<key>/database_workload.json       MetaSchedule's JSONDatabase files
    tuning-logs/<target>/<key>/database_tuning_record.json

Records are found by the workload's structural hash, so one tuned workload serves every model
that contains it. The key binds the full TVM target (mcpu, mattr, cores, ...) and the TVM
version: logs under another key are reported and never applied silently. Writers hold an
exclusive lock and replace the files atomically; readers need no lock. A damaged or truncated
line is skipped with a warning (MetaSchedule itself would refuse the whole file).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

FORMAT = 1
WORKLOADS = "database_workload.json"
RECORDS = "database_tuning_record.json"
META = "meta.json"


def target_json(tvm_target) -> dict:
    """The full, canonical form of a TVM target (what a key binds)."""
    return _plain(tvm_target.export())


def _plain(value):
    """tvm_ffi Maps/Arrays (what Target.export() gives) as plain JSON values."""
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    try:
        return [_plain(v) for v in value]
    except TypeError:
        return str(value)


def cache_key(tvm_target) -> str:
    tvm_version = metadata.version("apache-tvm")
    blob = json.dumps(
        {"format": FORMAT, "target": target_json(tvm_target), "tvm": tvm_version}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Sanitized:
    """Valid lines of a database, with records re-indexed to the kept workloads."""

    workloads: list[str]
    records: list[str]
    skipped: list[str]  # one human-readable note per damaged line


def _valid_json(line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def _read_lines(folder: Path, name: str) -> tuple[Path, list[str]]:
    """The lines of database file ``name``, or of its gzip form (shipped logs are gzipped:
    a workload is a whole TIR module, tens of KiB of JSON that compresses ten-fold)."""
    path = folder / name
    if path.exists():
        return path, path.read_text(errors="replace").splitlines()
    packed = folder / f"{name}.gz"
    if packed.exists():
        try:
            text = gzip.decompress(packed.read_bytes()).decode(errors="replace")
            return packed, text.splitlines()
        except (OSError, EOFError):  # a truncated or damaged archive: no usable line in it
            return packed, ["<damaged gzip file>"]
    return path, []


def sanitize(folder: Path) -> Sanitized:
    skipped: list[str] = []
    kept: dict[int, int] = {}  # old workload index -> new index
    workloads: list[str] = []
    path, lines = _read_lines(folder, WORKLOADS)
    for i, line in enumerate(lines):
        value = _valid_json(line)
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
            kept[i] = len(workloads)
            workloads.append(line)
        elif line.strip():
            skipped.append(f"{path}:{i + 1}: damaged workload line skipped")
    records: list[str] = []
    path, lines = _read_lines(folder, RECORDS)
    for i, line in enumerate(lines):
        value = _valid_json(line)
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)):
            if line.strip():
                skipped.append(f"{path}:{i + 1}: damaged record line skipped")
            continue
        if value[0] not in kept:
            skipped.append(f"{path}:{i + 1}: record of a damaged workload skipped")
            continue
        records.append(json.dumps([kept[value[0]], value[1]], separators=(",", ":")))
    return Sanitized(workloads, records, skipped)


class TuningCache:
    """The tuning logs of one target under one root folder."""

    def __init__(self, root: Path, target_name: str, tvm_target, measured_on: dict | None = None):
        self.root = Path(root)
        self.target_name = target_name
        self.tvm_target = tvm_target
        self.measured_on = measured_on  # the machine that measures records written here
        self.key = cache_key(tvm_target)
        self.folder = self.root / target_name / self.key

    def exists(self) -> bool:
        return (self.folder / META).is_file()

    def meta(self) -> dict:
        """meta.json as written (empty when absent or unreadable)."""
        try:
            return json.loads((self.folder / META).read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def foreign_keys(self) -> list[dict]:
        """meta.json of this target's logs made for another target definition or TVM."""
        found = []
        for meta in sorted((self.root / self.target_name).glob(f"*/{META}")):
            if meta.parent.name != self.key:
                with contextlib.suppress(OSError, json.JSONDecodeError):
                    found.append(json.loads(meta.read_text()) | {"folder": str(meta.parent)})
        return found

    def load(self, warn: Callable[[str], None]):
        """A read-only MetaSchedule database of the valid records (None when there are none)."""
        from tvm.s_tir import meta_schedule as ms

        if not self.exists():
            return None
        clean = sanitize(self.folder)
        for note in clean.skipped:
            warn(note)
        with tempfile.TemporaryDirectory(prefix="tvmedge-logs-") as tmp:
            _write_lines(Path(tmp) / WORKLOADS, clean.workloads)
            _write_lines(Path(tmp) / RECORDS, clean.records)
            on_disk = ms.database.JSONDatabase(work_dir=tmp)
            memory = ms.database.MemoryDatabase()
            copy_records(on_disk.get_all_tuning_records(), memory)
        return memory

    @contextlib.contextmanager
    def writing(self) -> Iterator:
        """Exclusive access: yields a JSONDatabase on a private copy; on success the copy
        replaces the cache files atomically. Ctrl-C waits until the files are replaced."""
        from tvm.s_tir import meta_schedule as ms

        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for stale in self.folder.glob(".tmp-*"):  # left by a writer that was killed
                shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.folder))
            try:
                clean = sanitize(self.folder)
                _write_lines(tmp / WORKLOADS, clean.workloads)
                _write_lines(tmp / RECORDS, clean.records)
                yield ms.database.JSONDatabase(work_dir=str(tmp))
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
                try:
                    self._write_meta()
                    # workloads first: records only ever point at workloads that exist
                    os.replace(tmp / WORKLOADS, self.folder / WORKLOADS)
                    os.replace(tmp / RECORDS, self.folder / RECORDS)
                finally:
                    signal.signal(signal.SIGINT, previous)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

    def _write_meta(self) -> None:
        """meta.json, once: what the key binds and the machine its records were measured on
        (``measured_on``: CPU model, LLVM mcpu, cores), which decides where a portable
        target's logs may be applied (tvmedge.tune.logs)."""
        meta = {
            "format": FORMAT,
            "target_name": self.target_name,
            "target": target_json(self.tvm_target),
            "tvm": metadata.version("apache-tvm"),
            "measured_on": self.measured_on,
        }
        path = self.folder / META
        if not path.exists():
            tmp = path.with_suffix(".part")
            tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, path)


def lean(folder: Path, keep: int = 1, only: set[str] | None = None) -> Sanitized:
    """The ``keep`` fastest records of each workload in ``folder`` (what tvmedge ships): every
    other trial is search history, useless to a compile, which applies only the best.
    ``only``: keep just the workloads with these structural hashes (``workload_hash``)."""
    clean = sanitize(folder)
    wanted = None
    if only is not None:
        wanted = {i for i, w in enumerate(clean.workloads) if json.loads(w)[0] in only}
    best: dict[int, list[tuple[float, str]]] = {}
    for line in clean.records:
        index, record = json.loads(line)
        if wanted is not None and index not in wanted:
            continue
        secs = [float(v) for v in record[1]] if len(record) > 1 and record[1] else []
        if secs:
            best.setdefault(index, []).append((sum(secs) / len(secs), json.dumps(record)))
    workloads, records = [], []
    for index in sorted(best):
        new = len(workloads)
        workloads.append(clean.workloads[index])
        for _, record in sorted(best[index])[:keep]:
            records.append(f"[{new},{record}]")
    return Sanitized(workloads, records, clean.skipped)


def mean_ms(run_secs) -> float:
    """Mean of a record's measured seconds, in ms."""
    values = [float(v) for v in run_secs]
    return 1e3 * sum(values) / len(values)


def workload_hash(mod) -> str:
    """The structural hash MetaSchedule keys a workload (a kernel's TIR module) by."""
    from tvm.s_tir import meta_schedule as ms

    return str(ms.database.Workload(mod).as_json()[0])


def write_lean(cache: TuningCache, dest_root: Path, keep: int = 1) -> tuple[int, int]:
    """Write ``cache``'s lean logs under ``dest_root`` (same target and key folders), replacing
    what is there atomically; returns (records, bytes)."""
    return write_records(cache, dest_root, lean(cache.folder, keep))


def write_records(cache: TuningCache, dest_root: Path, kept: Sanitized) -> tuple[int, int]:
    """Write ``kept`` (workload and record lines) as ``cache``'s target and key folder under
    ``dest_root``, replacing what is there atomically; returns (records, bytes)."""
    measured_on = cache.meta().get("measured_on", cache.measured_on)
    dest = TuningCache(dest_root, cache.target_name, cache.tvm_target, measured_on)
    dest.folder.mkdir(parents=True, exist_ok=True)
    with open(dest.folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        dest._write_meta()
        for name, lines in ((WORKLOADS, kept.workloads), (RECORDS, kept.records)):
            part = dest.folder / f".{name}.part"
            part.write_bytes(gzip.compress("".join(ln + "\n" for ln in lines).encode(), mtime=0))
            os.replace(part, dest.folder / f"{name}.gz")
            (dest.folder / name).unlink(missing_ok=True)  # a plain file would shadow the new one
    files = (f"{WORKLOADS}.gz", f"{RECORDS}.gz", META)
    size = sum((dest.folder / n).stat().st_size for n in files)
    return len(kept.records), size


def copy_records(records, database) -> int:
    """Commit tuning records (with their workloads) into another database."""
    from tvm.s_tir import meta_schedule as ms

    for record in records:
        workload = database.commit_workload(record.workload.mod)
        database.commit_tuning_record(
            ms.database.TuningRecord(
                record.trace, workload, record.run_secs, record.target, record.args_info
            )
        )
    return len(records)


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))
