"""Tuning progress from MetaSchedule logs: after each measured trial, the sum over the log's
kernels of the best time found so far (a kernel not yet reached counts at its first measured
time). A log that keeps one record per kernel (the lean logs tvmedge ships) has no history
and gives no curve; a cache that `tvmedge tune` wrote does."""

from __future__ import annotations

import json
from pathlib import Path

from tvmedge.tune import logs
from tvmedge.tune.cache import META, RECORDS, mean_ms, sanitize


def folders() -> list[Path]:
    """Every tuning-log folder (a target and key) shipped or in the user's cache."""
    found = []
    for root in (logs.SHIPPED, logs.user_cache()):
        found += sorted(p.parent for p in root.glob(f"*/*/{META}"))
    return found


def curve(folder: Path) -> dict | None:
    """``folder``'s progress curve, or None when no kernel in it has more than one trial."""
    if not any((folder / n).exists() for n in (RECORDS, f"{RECORDS}.gz")):
        return None
    trials = []  # (workload index, ms) in the order they were measured
    for line in sanitize(folder).records:
        index, record = json.loads(line)
        if len(record) > 1 and record[1]:
            trials.append((index, mean_ms(record[1])))
    counts: dict[int, int] = {}
    for index, _ in trials:
        counts[index] = counts.get(index, 0) + 1
    if not counts or max(counts.values()) < 2:
        return None
    current: dict[int, float] = {}
    for index, ms in trials:
        current.setdefault(index, ms)
    total = sum(current.values())
    points = []
    for trial, (index, ms) in enumerate(trials, start=1):
        if ms < current[index]:
            total -= current[index] - ms
            current[index] = ms
        points.append([trial, total])
    meta = json.loads((folder / META).read_text()) if (folder / META).exists() else {}
    return {
        "folder": str(folder),
        "target": meta.get("target_name", folder.parent.name),
        "measured_on": meta.get("measured_on"),
        "kernels": len(counts),
        "trials": len(trials),
        "points": _thin(points),
    }


def curves(paths: list[Path]) -> list[dict]:
    return [c for c in (curve(Path(p)) for p in paths) if c is not None]


def _thin(points: list[list], keep: int = 400) -> list[list]:
    """At most about ``keep`` points, always the first and the last (the plot's resolution)."""
    if len(points) <= keep:
        return points
    step = len(points) / keep
    picked = [points[int(i * step)] for i in range(keep)]
    return [*picked, points[-1]] if picked[-1] is not points[-1] else picked
