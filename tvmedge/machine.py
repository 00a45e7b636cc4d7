"""This machine: physical cores, CPU model and the ISA features the kernel reports.

One place for what the compiler, the runtime, bench and tuning ask of the CPU they run on.
"""

from __future__ import annotations

import os
import platform
from functools import cache
from pathlib import Path

_ARCH_ALIASES = {"AMD64": "x86_64", "arm64": "aarch64"}

# LLVM target features that generated kernels can use, as Linux's /proc/cpuinfo names them
# ("flags" on x86, "Features" on aarch64). A feature LLVM enables for the artifact's CPU that
# this machine lacks means an illegal instruction at run time.
LLVM_TO_CPUINFO = {
    "sse3": "pni",
    "ssse3": "ssse3",
    "sse4.1": "sse4_1",
    "sse4.2": "sse4_2",
    "popcnt": "popcnt",
    "avx": "avx",
    "avx2": "avx2",
    "fma": "fma",
    "f16c": "f16c",
    "bmi": "bmi1",
    "bmi2": "bmi2",
    "lzcnt": "abm",
    "movbe": "movbe",
    "avx512f": "avx512f",
    "avx512cd": "avx512cd",
    "avx512bw": "avx512bw",
    "avx512dq": "avx512dq",
    "avx512vl": "avx512vl",
    "avx512vnni": "avx512_vnni",
    "avx512bf16": "avx512_bf16",
    "avx512fp16": "avx512fp16",
    "avx512vbmi": "avx512vbmi",
    "avxvnni": "avx_vnni",
    "amx-tile": "amx_tile",
    "amx-int8": "amx_int8",
    "amx-bf16": "amx_bf16",
    # aarch64
    "neon": "asimd",
    "dotprod": "asimddp",
    "fullfp16": "asimdhp",
    "i8mm": "i8mm",
    "bf16": "bf16",
    "sve": "sve",
}


def arch() -> str:
    """The machine as artifacts name it: x86_64, aarch64, armv7l."""
    return _ARCH_ALIASES.get(platform.machine(), platform.machine())


def physical_cores() -> int:
    """Physical cores (what bench, tuning and the runtime use by default, as ONNX Runtime)."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


@cache
def _cpuinfo() -> tuple[str, ...]:
    try:
        return tuple(Path("/proc/cpuinfo").read_text().splitlines())
    except OSError:
        return ()


def cpu_flags() -> frozenset[str]:
    """The ISA features of this CPU as /proc/cpuinfo lists them (empty if unreadable)."""
    for line in _cpuinfo():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_model() -> str:
    """The CPU's model name, e.g. 'AMD EPYC 9R45' (platform.processor() is often empty)."""
    for line in _cpuinfo():
        if line.startswith(("model name", "Model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def required_features(tvm_target) -> list[str]:
    """The /proc/cpuinfo features the code LLVM generates for ``tvm_target`` may use: LLVM's
    feature set of its mcpu and mattr, limited to the ones the table above knows."""
    from tvm.target import codegen

    try:
        enabled = {str(f) for f in codegen.llvm_get_cpu_features(tvm_target)}
    except Exception:  # a target LLVM cannot describe (no LLVM backend for it): unknown
        return []
    return sorted(LLVM_TO_CPUINFO[f] for f in enabled if f in LLVM_TO_CPUINFO)


def missing_features(required: list[str], flags: frozenset[str] | None = None) -> list[str]:
    """The required features this CPU (or ``flags``) lacks; none when the CPU reports none."""
    have = cpu_flags() if flags is None else flags
    if not have:  # no /proc/cpuinfo: nothing to compare with, the loader cannot tell
        return []
    return [f for f in required if f not in have]


def fingerprint() -> dict:
    """What tuning records measured here depend on: the CPU model, LLVM's name for its
    microarchitecture (mcpu) and the physical cores."""
    from tvmedge.targets import resolve_host

    return {"cpu": cpu_model(), "mcpu": resolve_host().tvm.get("mcpu"), "cores": physical_cores()}
