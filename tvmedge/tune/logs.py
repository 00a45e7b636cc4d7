"""Which tuning logs a compile uses: the user's cache and the shipped logs, for the target's key.

``host`` has no shipped logs of its own (its key binds this CPU's core count). When it has
none, it may use the logs of another target of its family, but only logs measured on the same
microarchitecture (LLVM mcpu) as this CPU, as their meta.json records: schedules tuned on one
CPU ran slower than the default schedules on another (the AVX-512 logs measured on an AMD Zen 5
made MobileNetV2 slower on an Intel Rocket Lake than no logs). First a target whose mcpu is
this CPU's (x86-64-zen2 on a Zen 2), then the portable one its CPU can run (AVX-512 or AVX2).
Logs it passes over are named with the reason. Logs made for another definition of the target
or another TVM version are reported, never applied.
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
    fallback: str | None = None  # the target whose logs host uses
    measured_on: list[dict | None] = field(default_factory=list)  # per folder, from meta.json

    def to_json(self) -> dict:
        return {
            "folders": self.folders,
            "records": self.records,
            "fallback_from": self.fallback,
            "measured_on": self.measured_on,
        }


def portable_for_host(host: Target) -> str | None:
    if host.family != "x86":
        return None
    return "x86-64-avx512" if host.capabilities.simd_width >= 512 else "x86-64-avx2"


def host_fallbacks(host: Target) -> list[str]:
    """Targets whose logs ``host`` may use when it has none: those whose mcpu is this CPU's,
    then the portable one it can run."""
    mcpu = host.tvm.get("mcpu")
    same = [
        t.name
        for t in targets.registry().values()
        if t.family == host.family
        and t.runtime_arch == host.runtime_arch
        and t.tvm.get("mcpu") == mcpu
    ]
    portable = portable_for_host(host)
    return same + ([portable] if portable and portable not in same else [])


def _describe(measured: list[dict | None]) -> str:
    known = sorted({f"{m.get('cpu', '?')} ({m.get('mcpu', '?')})" for m in measured if m})
    return ", ".join(known) + (" and unrecorded machines" if None in measured else "") or "?"


def find(target: Target, roots: list[Path], warn: Callable[[str], None]) -> FoundLogs:
    """Merge every matching cache under ``roots`` into one database."""
    found = _collect(target.name, target.tvm_target(), roots, warn)
    if found.database is not None or target.name != "host":
        return found
    mcpu = target.tvm.get("mcpu")
    for name in host_fallbacks(target):
        other = _collect(name, targets.get(name).tvm_target(), roots, warn)
        if other.database is None:
            continue
        where = _describe(other.measured_on)
        if all(m and m.get("mcpu") == mcpu for m in other.measured_on):
            other.fallback = name
            warn(f"host has no tuning logs of its own; using {name}'s, measured on {where}")
            return other
        warn(
            f"not applying {name}'s tuning logs to host: measured on {where}, and this CPU is "
            f"{mcpu} (schedules tuned on another microarchitecture can be slower than the "
            "defaults); tune for this CPU with `tvmedge tune MODEL --target host`"
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
        found.measured_on.append(cache.meta().get("measured_on"))
    return found


def _brief(target: dict) -> str:
    keys = ("mcpu", "mattr", "num-cores", "mtriple")
    return " ".join(f"{k}={target[k]}" for k in keys if k in target) or "?"
