"""Where the time goes: per-kernel times of one artifact on this CPU, against the machine's peak.

TVM 0.27's Relax VM has no profiler of its own, so this times kernels with the VM's instrument
hook: a callback before and after every call instruction. The time between the two is the
kernel plus a few microseconds of FFI crossing; VM builtins (allocation, shape checks) are timed
apart from the kernels, and an uninstrumented timed run is reported next to the sum to show
what the hook costs.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from pathlib import Path

import psutil

_BUILTIN = "vm.builtin."  # the VM's own helpers: not kernels, reported as one "vm builtins" row

# FMA pipes per core and the vector bits each pipe handles, per LLVM mcpu. Why a table: neither
# the target nor /proc/cpuinfo says how many FMA pipes a core has. Sources are the vendors'
# optimization manuals. Width matters where a core splits wide ops: Zen 4 runs AVX-512 on two
# 256-bit pipes, so it peaks at 2 x 256 bits per cycle despite simd_width 512.
FMA_PIPES: dict[str, tuple[int, int]] = {
    "znver3": (2, 256),
    "znver4": (2, 256),
    "znver5": (2, 512),  # server/desktop Zen 5; mobile Zen 5 parts have 256-bit pipes
    "haswell": (2, 256),
    "broadwell": (2, 256),
    "skylake": (2, 256),
    "alderlake": (2, 256),  # performance cores
    "skylake-avx512": (2, 512),  # Xeon Gold/Platinum; some Silver/Bronze parts have one
    "cascadelake": (2, 512),
    "icelake-server": (2, 512),
    "sapphirerapids": (2, 512),
    "cortex-a72": (2, 128),
    "cortex-a76": (2, 128),
    "cortex-a78": (2, 128),
    "neoverse-n1": (2, 128),
}
_ASSUMED_PIPES = 1  # an mcpu missing above: one pipe of simd_width bits, and the report says so


def cpu_mhz() -> float | None:
    """The mean 'cpu MHz' of /proc/cpuinfo: the clock the kernel reports now, not the boost clock
    (many ARM kernels do not report one: then there is no peak)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    mhz = [float(ln.split(":")[1]) for ln in text.splitlines() if ln.startswith("cpu MHz")]
    return sum(mhz) / len(mhz) if mhz else None


def machine_peak(target: dict, threads: int) -> dict:
    """fp32 peak of this machine as compiled for: cores x clock x FMA pipes x 2 x fp32 lanes.

    ``cores`` is the cores the run used: its threads, at most the physical cores (a portable
    target names no core count, and the profile runs on this machine, not the target's).
    """
    physical = psutil.cpu_count(logical=False) or threads
    cores = max(1, min(threads, physical))
    mcpu = target["tvm"].get("mcpu", "")
    simd = target["capabilities"]["simd_width"]
    pipes, pipe_bits = FMA_PIPES.get(mcpu, (_ASSUMED_PIPES, simd))
    lanes = min(simd, pipe_bits) // 32  # fp32 lanes one FMA pipe does per cycle
    mhz = cpu_mhz()
    peak = cores * mhz * 1e-3 * pipes * 2 * lanes if mhz else None
    return {
        "cores": cores,
        "clock_mhz": mhz,
        "clock_source": "/proc/cpuinfo 'cpu MHz' (reported clock, not boost)",
        "mcpu": mcpu,
        "fma_pipes": pipes,
        "fma_pipes_known": mcpu in FMA_PIPES,
        "fp32_lanes": lanes,
        "peak_gflops": peak,
        "formula": (
            f"{cores} cores x {mhz / 1e3:.3f} GHz x {pipes} FMA pipes x 2 FLOP/FMA x "
            f"{lanes} fp32 lanes = {peak:.1f} GFLOP/s"
            if mhz
            else "unknown: /proc/cpuinfo reports no 'cpu MHz'"
        ),
    }


def _timed(vm, arrays, repeat: int) -> float:
    """Mean seconds per run without the instrument hook."""
    start = time.perf_counter()
    for _ in range(repeat):
        vm(arrays)
    return (time.perf_counter() - start) / repeat


@contextlib.contextmanager
def _instrumented(vm, hook):
    """``hook`` called before and after every call instruction of ``vm`` inside the block."""
    vm.set_instrument(hook)
    try:
        yield
    finally:
        vm.set_instrument(None)


def time_kernels(vm, arrays, repeat: int) -> tuple[dict[str, list[int]], float]:
    """({symbol: [calls, nanoseconds]} summed over ``repeat`` runs, mean seconds per run)."""
    stats: dict[str, list[int]] = {}
    started = [0]

    def hook(_func, symbol, before, _ret, *_args):
        now = time.perf_counter_ns()
        if before:
            started[0] = now
            return None
        entry = stats.setdefault(str(symbol), [0, 0])
        entry[0] += 1
        entry[1] += now - started[0]
        return None

    with _instrumented(vm, hook):
        seconds = _timed(vm, arrays, repeat)
    return stats, seconds


def time_calls(vm, arrays, repeat: int) -> list[tuple[str, float]]:
    """(symbol, median seconds) of every kernel call of one run, in execution order: a kernel
    called at several places of the model gets a row for each."""
    runs: list[list[tuple[str, int]]] = []
    started = [0]

    def hook(_func, symbol, before, _ret, *_args):
        now = time.perf_counter_ns()
        if before:
            started[0] = now
        elif not str(symbol).startswith(_BUILTIN):
            runs[-1].append((str(symbol), now - started[0]))
        return None

    with _instrumented(vm, hook):
        for _ in range(repeat):
            runs.append([])
            vm(arrays)
    return [
        (name, statistics.median(run[i][1] for run in runs) / 1e9)
        for i, (name, _) in enumerate(runs[0])
    ]


def _copy(value):
    """A fresh copy of a tensor argument (the VM reuses its storage between kernels)."""
    import tvm

    if not isinstance(value, tvm.runtime.Tensor):
        return value  # a shape or scalar argument of a symbolic-shape kernel
    copy = tvm.runtime.empty(value.shape, value.dtype, value.device)
    value.copyto(copy)
    return copy


def time_alone(vm, arrays, repeat: int) -> dict[str, float]:
    """{symbol: seconds per call} of each kernel run by itself, ``repeat`` times back to back, on
    copies of the arguments of its first call in the model. Its inputs and weights stay in the
    caches, so the in-model time over this one is what the model's memory traffic costs it: a
    kernel whose input was evicted by the weights and activations of the kernels before it
    waits for memory; one re-run alone does not."""
    captured: dict[str, tuple] = {}

    def hook(func, symbol, before, _ret, *args):
        name = str(symbol)
        if before and not name.startswith(_BUILTIN) and name not in captured:
            captured[name] = (func, [_copy(a) for a in args])
        return None

    with _instrumented(vm, hook):
        vm(arrays)
    alone = {}
    for name, (func, args) in captured.items():
        func(*args)  # brings its data into the caches
        start = time.perf_counter()
        for _ in range(repeat):
            func(*args)
        alone[name] = (time.perf_counter() - start) / repeat
    return alone


def report(
    vm,
    arrays,
    *,
    repeat: int,
    flops: dict[str, float],
    peak: float | None,
    alone: bool = False,
) -> dict:
    """Kernel rows sorted by time (per run), totals, and the uninstrumented run to compare.
    ``alone``: also time each kernel run by itself with its data in the caches."""
    vm(arrays)  # warm up: the first run fills the memory pool and pages in the code
    plain = _timed(vm, arrays, repeat)
    stats, instrumented = time_kernels(vm, arrays, repeat)
    alone_s = time_alone(vm, arrays, max(repeat, 20)) if alone else {}
    builtins = [0, 0]
    rows = []
    for symbol, (calls, ns) in stats.items():
        if symbol.startswith(_BUILTIN):
            builtins = [builtins[0] + calls, builtins[1] + ns]
            continue
        row = _row(symbol, calls / repeat, ns / repeat / 1e9, flops.get(symbol), peak)
        if alone:  # every kernel that ran has an alone time
            row["alone_us"] = alone_s[symbol] * 1e6
        rows.append(row)
    kernel_s = sum(r["ms_per_run"] for r in rows) / 1e3
    for row in rows:
        row["percent"] = 100 * row["ms_per_run"] / 1e3 / kernel_s if kernel_s else 0.0
    rows.sort(key=lambda r: -r["ms_per_run"])
    counted = [r for r in rows if r["flops_per_call"] is not None]
    total_flops = sum(r["flops_per_call"] * r["calls_per_run"] for r in counted)
    return {
        "repeat": repeat,
        "kernels": rows,
        "totals": {
            "kernels": len(rows),
            "kernel_ms_per_run": kernel_s * 1e3,
            "builtin_calls_per_run": builtins[0] / repeat,
            "builtin_ms_per_run": builtins[1] / repeat / 1e6,
            "instrumented_run_ms": instrumented * 1e3,
            "uninstrumented_run_ms": plain * 1e3,
            # what the kernels would take if each found its data in the caches
            "alone_ms_per_run": sum(r["alone_us"] * r["calls_per_run"] for r in rows) / 1e3
            if alone
            else None,
            "flops_per_run": total_flops if counted else None,
            "kernels_without_flops": [r["name"] for r in rows if r["flops_per_call"] is None],
            # achieved over the plain run: what the model as a whole gets out of the machine
            "gflops": total_flops / plain / 1e9 if counted and plain else None,
            "peak_fraction": total_flops / plain / 1e9 / peak
            if counted and plain and peak
            else None,
        },
    }


def _row(name: str, calls: float, seconds: float, flops: float | None, peak: float | None) -> dict:
    gflops = flops * calls / seconds / 1e9 if flops is not None and seconds else None
    return {
        "name": name,
        "calls_per_run": calls,
        "ms_per_run": seconds * 1e3,
        "mean_us": seconds / calls * 1e6 if calls else 0.0,
        "flops_per_call": flops,
        "gflops": gflops,
        "peak_fraction": gflops / peak if gflops is not None and peak else None,
    }
