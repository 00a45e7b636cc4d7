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

import psutil

from tvmedge.errors import TargetError

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "targets"
FAMILIES = ("x86", "aarch64", "armv7", "cuda")
INT8_DOT = ("none", "vnni", "sdot", "dp4a")
_TOP_KEYS = {"name", "description", "family", "runtime_arch", "tvm", "capabilities"}
_TVM_KEYS = {"kind", "mtriple", "mcpu", "mattr", "num-cores", "keys", "arch"}
_CAP_KEYS = {"simd_width", "int8_dot", "fp16", "bf16"}


@dataclass(frozen=True)
class Capabilities:
    simd_width: int  # bits per vector register (128 NEON, 256 AVX2, 512 AVX-512)
    int8_dot: str  # none | vnni | sdot | dp4a
    fp16: bool
    bf16: bool


@dataclass(frozen=True)
class Target:
    """One device: what TVM compiles for, and what the device can do."""

    name: str
    description: str
    family: str
    runtime_arch: str  # the machine that runs the artifact, as platform.machine() names it
    tvm: MappingProxyType = field(repr=False)
    capabilities: Capabilities
    source: str  # the file it came from, or "resolved from this machine"

    def tvm_target(self):
        """The tvm.target.Target (built from a dict: TVM 0.27 rejects CLI strings)."""
        import tvm

        return tvm.target.Target(dict(self.tvm))

    def describe(self) -> str:
        """One line, e.g. ``host -> llvm mcpu=znver5 mtriple=x86_64-linux-gnu num-cores=2``."""
        settings = " ".join(f"{k}={v}" for k, v in self.tvm.items() if k != "kind")
        return f"{self.name} -> {self.tvm['kind']} {settings}"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "family": self.family,
            "runtime_arch": self.runtime_arch,
            "tvm": dict(self.tvm),
            "capabilities": self.capabilities.__dict__.copy(),
            "source": self.source,
        }


def _fail(path: Path, msg: str) -> TargetError:
    return TargetError(f"target file {path}: {msg}")


def _check_keys(path: Path, table: dict, allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise _fail(
                path, f"unknown key '{where}{key}'{hint}; valid: {', '.join(sorted(allowed))}"
            )


def _require(path: Path, table: dict, key: str, kind: type, where: str = ""):
    if key not in table:
        raise _fail(path, f"missing required key '{where}{key}'")
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _fail(path, f"'{where}{key}' must be a {kind.__name__}, got {value!r}")
    return value


def parse_target_file(path: Path) -> Target:
    """Parse and validate one target file."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise _fail(path, f"cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise _fail(path, f"not valid TOML: {e}") from None
    _check_keys(path, data, _TOP_KEYS, "")
    name = _require(path, data, "name", str)
    if name != path.stem:
        raise _fail(path, f"name '{name}' must match the file name '{path.stem}'")
    family = _require(path, data, "family", str)
    if family not in FAMILIES:
        raise _fail(path, f"family '{family}' is not one of {', '.join(FAMILIES)}")
    tvm_table = _require(path, data, "tvm", dict)
    _check_keys(path, tvm_table, _TVM_KEYS, "tvm.")
    kind = _require(path, tvm_table, "kind", str, "tvm.")
    expected_kind = "cuda" if family == "cuda" else "llvm"
    if kind != expected_kind:
        raise _fail(path, f"family '{family}' needs tvm.kind = '{expected_kind}', not '{kind}'")
    caps_table = _require(path, data, "capabilities", dict)
    _check_keys(path, caps_table, _CAP_KEYS, "capabilities.")
    caps = Capabilities(
        simd_width=_require(path, caps_table, "simd_width", int, "capabilities."),
        int8_dot=_require(path, caps_table, "int8_dot", str, "capabilities."),
        fp16=_require(path, caps_table, "fp16", bool, "capabilities."),
        bf16=_require(path, caps_table, "bf16", bool, "capabilities."),
    )
    if caps.int8_dot not in INT8_DOT:
        raise _fail(path, f"capabilities.int8_dot '{caps.int8_dot}' is not one of {INT8_DOT}")
    if caps.int8_dot == "dp4a" and family != "cuda":
        raise _fail(path, "capabilities.int8_dot = 'dp4a' exists only on the cuda family")
    return Target(
        name=name,
        description=_require(path, data, "description", str),
        family=family,
        runtime_arch=_require(path, data, "runtime_arch", str),
        tvm=MappingProxyType(dict(tvm_table)),
        capabilities=caps,
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


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@cache
def resolve_host() -> Target:
    """This machine's CPU as an LLVM target: mcpu from LLVM, cores, features from the kernel."""
    from tvm.target import codegen

    machine = platform.machine()
    flags = _cpu_flags()
    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
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
        capabilities=Capabilities(simd, int8, fp16, bf16),
        source="resolved from this machine",
    )
