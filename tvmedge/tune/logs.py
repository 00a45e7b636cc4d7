"""Which tuning logs a compile uses: the user's cache and the shipped logs, for the target's key.

``host`` has no shipped logs of its own (every CPU is different); when it has none, it uses the
portable x86 target that its CPU can run (AVX-512 or AVX2), and says so. Logs made for another
definition of the target or another TVM version are reported, never applied.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tvmedge import targets
from tvmedge.targets import Target
from tvmedge.tune.cache import TuningCache, copy_records

SHIPPED = Path(__file__).resolve().parents[2] / "tuning-logs"


def user_cache() -> Path:
    base = Path(os.environ.get("TVMEDGE_CACHE", Path.home() / ".cache" / "tvmedge"))
    return base / "tuning-logs"


@dataclass
class FoundLogs:
    database: object | None = None  # a MetaSchedule MemoryDatabase
    folders: list[str] = field(default_factory=list)
    records: int = 0
    fallback: str | None = None  # the portable target whose logs host uses

    def to_json(self) -> dict:
        return {"folders": self.folders, "records": self.records, "fallback_from": self.fallback}


def portable_for_host(host: Target) -> str | None:
    if host.family != "x86":
        return None
    return "x86-64-avx512" if host.capabilities.simd_width >= 512 else "x86-64-avx2"


def find(target: Target, roots: list[Path], warn: Callable[[str], None]) -> FoundLogs:
    """Merge every matching cache under ``roots`` into one database."""
    found = _collect(target.name, target.tvm_target(), roots, warn)
    if found.database is None and target.name == "host":
        portable = portable_for_host(target)
        if portable is not None:
            other = targets.get(portable)
            found = _collect(portable, other.tvm_target(), roots, warn)
            if found.database is not None:
                found.fallback = portable
                warn(
                    f"host has no tuning logs of its own; using {portable}'s (tuned for "
                    f"mcpu={other.tvm.get('mcpu')}; this CPU is {target.tvm.get('mcpu')})"
                )
    return found


def _collect(name: str, tvm_target, roots: list[Path], warn) -> FoundLogs:
    from tvm.s_tir import meta_schedule as ms

    found = FoundLogs()
    for root in roots:
        cache = TuningCache(root, name, tvm_target)
        for meta in cache.foreign_keys():
            warn(
                f"not applying tuning logs in {meta['folder']}: made for TVM {meta.get('tvm')} "
                f"and target {_brief(meta.get('target', {}))}, not this target and TVM"
            )
        database = cache.load(warn)
        if database is None:
            continue
        if found.database is None:
            found.database = ms.database.MemoryDatabase()
        found.records += copy_records(database.get_all_tuning_records(), found.database)
        found.folders.append(str(cache.folder))
    return found


def _brief(target: dict) -> str:
    keys = ("mcpu", "mattr", "num-cores", "mtriple")
    return " ".join(f"{k}={target[k]}" for k in keys if k in target) or "?"
