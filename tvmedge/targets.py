"""Targets as data: ``targets/*.toml`` loaded into frozen records, plus the resolved ``host``.

A compiler engineer adds a device by adding one TOML file; every file is validated on load and
an error names the file and the key. ``TVMEDGE_TARGETS_PATH`` (os.pathsep-separated folders)
adds user target folders; a user file may not silently shadow a shipped one.
"""

from __future__ import annotations

import difflib
import os
import platform
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType

from tvmedge.errors import TargetError

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "targets"
FAMILIES = ("x86", "aarch64", "armv7", "cuda")
INT8_DOT = ("none", "vnni", "sdot", "dp4a")
# What each family's int8 dot product may be, the machine it runs on, and its triple prefix.
_FAMILY_RULES = {
    "x86": (("none", "vnni"), "x86_64", ("x86_64",)),
    "aarch64": (("none", "sdot"), "aarch64", ("aarch64",)),
    "armv7": (("none",), "armv7l", ("arm",)),
    "cuda": (("none", "dp4a"), None, ("x86_64", "aarch64")),
}
_SECTIONS = {
    "": {
        "name",
        "description",
        "family",
        "runtime_arch",
        "tvm",
        "host",
        "toolchain",
        "runtime",
        "capabilities",
        "tuning",
    },
    "tvm.": {"kind", "mtriple", "mcpu", "mattr", "mfloat-abi", "num-cores", "keys", "arch"},
    "host.": {"kind", "mtriple", "mcpu", "mattr"},
    "toolchain.": {"cc", "flags", "triple", "apt"},
    "runtime.": {"wheel_platform", "emulator", "sysroot"},
    "capabilities.": {"simd_width", "int8_dot", "fp16", "bf16"},
    "tuning.": {"trials_per_task", "max_trials"},
}


@dataclass(frozen=True)
class Capabilities:
    simd_width: int  # bits per vector register (128 NEON, 256 AVX2, 512 AVX-512; 0 on GPUs)
    int8_dot: str  # none | vnni | sdot | dp4a
    fp16: bool
    bf16: bool


@dataclass(frozen=True)
class Toolchain:
    """The C++ compiler that links model.so for the target (and builds bundle runners)."""

    cc: str
    triple: str  # what `cc -dumpmachine` must print
    apt: str  # the Debian package that provides cc
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeviceRuntime:
    """Where the device's libtvm_runtime comes from and how to emulate the device here."""

    wheel_platform: str | None = None  # PyPI platform tag of the apache-tvm wheels for it
    emulator: str | None = None  # e.g. qemu-aarch64
    sysroot: str | None = None  # the cross libc for the emulator (-L)


@dataclass(frozen=True)
class Tuning:
    trials_per_task: int
    max_trials: int


@dataclass(frozen=True)
class Target:
    """One device: what TVM compiles for, how to link it, and what the device can do."""

    name: str
    description: str
    family: str
    runtime_arch: str  # the machine that runs the artifact, as platform.machine() names it
    tvm: MappingProxyType = field(repr=False)
    host: MappingProxyType | None = field(repr=False)  # the CPU side of a GPU target
    toolchain: Toolchain
    runtime: DeviceRuntime
    capabilities: Capabilities
    tuning: Tuning
    source: str  # the file it came from, or "resolved from this machine"

    def tvm_target(self):
        """The tvm.target.Target (built from a dict: TVM 0.27 rejects CLI strings)."""
        import tvm

        spec = dict(self.tvm)
        if self.host is not None:
            spec["host"] = dict(self.host)
        return tvm.target.Target(spec)

    def describe(self) -> str:
        """One line, e.g. ``host -> llvm mcpu=znver5 mtriple=x86_64-linux-gnu num-cores=2``."""
        settings = " ".join(f"{k}={_show(v)}" for k, v in self.tvm.items() if k != "kind")
        host = f" (host {self.host['mcpu']})" if self.host else ""
        return f"{self.name} -> {self.tvm['kind']} {settings}{host}"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "family": self.family,
            "runtime_arch": self.runtime_arch,
            "tvm": dict(self.tvm),
            "host": dict(self.host) if self.host else None,
            "toolchain": self.toolchain.__dict__.copy() | {"flags": list(self.toolchain.flags)},
            "runtime": self.runtime.__dict__.copy(),
            "capabilities": self.capabilities.__dict__.copy(),
            "tuning": self.tuning.__dict__.copy(),
            "source": self.source,
        }


def _show(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def _arch(triple: str) -> str:
    """The architecture of a triple, with Arm's 32-bit spellings (armv7a, armv7l) as 'arm'."""
    arch = triple.split("-")[0]
    return "arm" if arch.startswith("arm") else arch


def _fail(path: Path, msg: str) -> TargetError:
    return TargetError(f"target file {path}: {msg}")


def _check_keys(path: Path, table: dict, where: str) -> None:
    allowed = _SECTIONS[where]
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise _fail(
                path, f"unknown key '{where}{key}'{hint}; valid: {', '.join(sorted(allowed))}"
            )


def _get(path: Path, table: dict, key: str, kind: type, where: str = "", default=...):
    if key not in table:
        if default is not ...:
            return default
        raise _fail(path, f"missing required key '{where}{key}'")
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _fail(path, f"'{where}{key}' must be a {kind.__name__}, got {value!r}")
    if kind is list and not all(isinstance(v, str) for v in value):
        raise _fail(path, f"'{where}{key}' must be a list of strings, got {value!r}")
    return value


def _section(path: Path, data: dict, name: str, required: bool = True) -> dict | None:
    if name not in data and not required:
        return None
    table = _get(path, data, name, dict)
    _check_keys(path, table, f"{name}.")
    return table


def parse_target_file(path: Path) -> Target:
    """Parse and validate one target file; every error names the file and the key."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise _fail(path, f"cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise _fail(path, f"not valid TOML: {e}") from None
    _check_keys(path, data, "")
    name = _get(path, data, "name", str)
    if name != path.stem:
        raise _fail(path, f"name '{name}' must match the file name '{path.stem}'")
    family = _get(path, data, "family", str)
    if family not in FAMILIES:
        raise _fail(path, f"family '{family}' is not one of {', '.join(FAMILIES)}")
    dots, runs_on, triples = _FAMILY_RULES[family]
    tvm_table = _section(path, data, "tvm")
    kind = _get(path, tvm_table, "kind", str, "tvm.")
    if kind != ("cuda" if family == "cuda" else "llvm"):
        raise _fail(
            path,
            f"family '{family}' needs tvm.kind = "
            f"'{'cuda' if family == 'cuda' else 'llvm'}', not '{kind}'",
        )
    host = _section(path, data, "host", required=family == "cuda")
    if family == "cuda":
        _get(path, tvm_table, "arch", str, "tvm.")
        _get(path, host, "mtriple", str, "host.")
    elif "host" in data:
        raise _fail(path, "only cuda targets have a [host] section")
    cpu_triple = (host or tvm_table).get("mtriple", "")
    if cpu_triple and not cpu_triple.startswith(triples):
        raise _fail(path, f"mtriple '{cpu_triple}' does not fit family '{family}'")
    runtime_arch = _get(path, data, "runtime_arch", str)
    if runs_on and runtime_arch != runs_on:
        raise _fail(path, f"runtime_arch must be '{runs_on}' for family '{family}'")
    tc = _section(path, data, "toolchain")
    toolchain = Toolchain(
        cc=_get(path, tc, "cc", str, "toolchain."),
        triple=_get(path, tc, "triple", str, "toolchain."),
        apt=_get(path, tc, "apt", str, "toolchain."),
        flags=tuple(_get(path, tc, "flags", list, "toolchain.", default=[])),
    )
    if cpu_triple and _arch(toolchain.triple) != _arch(cpu_triple):
        raise _fail(
            path,
            f"toolchain.triple '{toolchain.triple}' does not match the target triple "
            f"'{cpu_triple}'",
        )
    if toolchain.triple.endswith("hf") and tvm_table.get("mfloat-abi") != "hard":
        raise _fail(
            path,
            f"toolchain '{toolchain.triple}' is hard-float: set tvm.mfloat-abi = \"hard\" so "
            "TVM's objects link with it",
        )
    rt = _section(path, data, "runtime", required=False) or {}
    caps_table = _section(path, data, "capabilities")
    caps = Capabilities(
        simd_width=_get(path, caps_table, "simd_width", int, "capabilities."),
        int8_dot=_get(path, caps_table, "int8_dot", str, "capabilities."),
        fp16=_get(path, caps_table, "fp16", bool, "capabilities."),
        bf16=_get(path, caps_table, "bf16", bool, "capabilities."),
    )
    if caps.int8_dot not in INT8_DOT:
        raise _fail(path, f"capabilities.int8_dot '{caps.int8_dot}' is not one of {INT8_DOT}")
    if caps.int8_dot not in dots:
        raise _fail(
            path,
            f"capabilities.int8_dot = '{caps.int8_dot}' does not exist on the "
            f"{family} family (valid: {', '.join(dots)})",
        )
    tuning_table = _section(path, data, "tuning")
    return Target(
        name=name,
        description=_get(path, data, "description", str),
        family=family,
        runtime_arch=runtime_arch,
        tvm=MappingProxyType(dict(tvm_table)),
        host=MappingProxyType(dict(host)) if host else None,
        toolchain=toolchain,
        runtime=DeviceRuntime(**{k: _get(path, rt, k, str, "runtime.") for k in rt}),
        capabilities=caps,
        tuning=Tuning(
            trials_per_task=_get(path, tuning_table, "trials_per_task", int, "tuning."),
            max_trials=_get(path, tuning_table, "max_trials", int, "tuning."),
        ),
        source=str(path),
    )


def _target_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("TVMEDGE_TARGETS_PATH", "").split(os.pathsep) if p]
    return [SHIPPED_DIR, *extra]


def _registry(dirs: tuple[Path, ...]) -> MappingProxyType:
    # Not cached: a few small TOML files parse in milliseconds, and edits show up at once.
    found: dict[str, Target] = {}
    for folder in dirs:
        for path in sorted(folder.glob("*.toml")):
            target = parse_target_file(path)
            if target.name in found or target.name == "host":
                raise _fail(
                    path,
                    f"target '{target.name}' is already defined by "
                    f"{found[target.name].source if target.name in found else 'tvmedge'}",
                )
            found[target.name] = target
    return MappingProxyType(found)


def registry() -> MappingProxyType:
    """Every file target by name (host is resolved separately)."""
    return _registry(tuple(_target_dirs()))


def names() -> list[str]:
    return ["host", *sorted(registry())]


def get(name: str) -> Target:
    """Look a target up by name; ``host`` resolves this machine's CPU."""
    if name == "host":
        return resolve_host()
    targets = registry()
    if name in targets:
        return targets[name]
    close = difflib.get_close_matches(name, names(), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise TargetError(
        f"unknown target '{name}'; {hint}known targets: {', '.join(names())} "
        "(`tvmedge targets list` describes them)"
    )


@cache
def resolve_host() -> Target:
    """This machine's CPU as an LLVM target: mcpu from LLVM, cores, features from the kernel."""
    from tvm.target import codegen

    from tvmedge.machine import cpu_flags, physical_cores

    machine = platform.machine()
    flags = cpu_flags()
    cores = physical_cores()
    if machine in ("x86_64", "AMD64"):
        family, triple = "x86", "x86_64-linux-gnu"
        simd = 512 if "avx512f" in flags else 256 if "avx2" in flags else 128
        int8 = "vnni" if {"avx512_vnni", "avx_vnni"} & flags else "none"
        fp16, bf16 = "avx512fp16" in flags, "avx512_bf16" in flags
    elif machine in ("aarch64", "arm64"):
        family, triple = "aarch64", "aarch64-linux-gnu"
        simd, int8 = 128, "sdot" if "asimddp" in flags else "none"
        fp16, bf16 = "asimdhp" in flags, "bf16" in flags
    else:
        raise TargetError(f"--target host is not supported on a {machine} machine; name a target")
    return Target(
        name="host",
        description=f"this machine ({machine}, {cores} cores)",
        family=family,
        runtime_arch="x86_64" if family == "x86" else machine,
        tvm=MappingProxyType(
            {
                "kind": "llvm",
                "mtriple": triple,
                "mcpu": codegen.llvm_get_system_cpu(),
                "num-cores": cores,
            }
        ),
        host=None,
        toolchain=Toolchain(cc="g++", triple=triple, apt="g++"),
        runtime=DeviceRuntime(),
        capabilities=Capabilities(simd, int8, fp16, bf16),
        tuning=Tuning(trials_per_task=64, max_trials=2000),
        source="resolved from this machine",
    )
