"""One timer for both engines: the same loop, clock and statistics."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def time_runs(fn: Callable[[], object], *, warmup: int, repeat: int) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeat`` times; seconds per call."""
    for _ in range(warmup):
        fn()
    latencies = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        latencies.append((time.perf_counter_ns() - start) / 1e9)
    return latencies


def summarize(latencies: list[float]) -> dict:
    """Percentiles, mean and spread in milliseconds, and throughput at batch 1 per call."""
    ms = np.asarray(latencies) * 1e3
    mean = float(ms.mean())
    return {
        "runs": len(ms),
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": mean,
        "std_ms": float(ms.std()),
        "min_ms": float(ms.min()),
        "cv": float(ms.std() / mean) if mean > 0 else 0.0,
        "throughput_per_s": 1e3 / mean if mean > 0 else 0.0,
    }
