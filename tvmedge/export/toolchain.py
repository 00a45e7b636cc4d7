"""The C++ toolchain that links a target's model.so: found, checked up front, recorded."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from tvmedge.errors import BuildError, TvmedgeError
from tvmedge.targets import Target


class ToolchainError(TvmedgeError, FileNotFoundError):
    """The target's compiler is missing or is not the compiler for that target."""


@dataclass(frozen=True)
class ResolvedToolchain:
    cc: str  # absolute path
    triple: str
    version: str  # first line of `cc --version`
    flags: tuple[str, ...]

    def to_json(self) -> dict:
        return {
            "cc": self.cc,
            "triple": self.triple,
            "version": self.version,
            "flags": list(self.flags),
        }

    def fcompile(self):
        """TVM's export_library compile function for this toolchain."""
        from tvm.support import cc

        return cc.cross_compiler(self.cc, options=list(self.flags))


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise BuildError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip()[:300]}")
    return proc.stdout.strip()


def resolve(target: Target) -> ResolvedToolchain:
    """Find the target's compiler and check it builds for the target's triple."""
    tc = target.toolchain
    path = shutil.which(tc.cc)
    if path is None:
        raise ToolchainError(
            f"compiler '{tc.cc}' for target '{target.name}' is not installed; install it with "
            f"`apt-get install {tc.apt}` (or put it on PATH)"
        )
    machine = _run([path, "-dumpmachine"])
    if machine != tc.triple:
        raise ToolchainError(
            f"'{tc.cc}' builds for {machine}, but target '{target.name}' needs {tc.triple}; "
            f"install `{tc.apt}` or fix toolchain.cc in {target.source}"
        )
    version = _run([path, "--version"]).splitlines()[0]
    return ResolvedToolchain(cc=path, triple=machine, version=version, flags=tc.flags)


def resolve_nvcc(target: Target) -> dict:
    """For CUDA targets: nvcc must exist and know the target's SM architecture."""
    path = shutil.which("nvcc")
    if path is None:
        raise ToolchainError(
            f"target '{target.name}' needs nvcc (the CUDA toolkit) on PATH to build its kernels"
        )
    arch = target.tvm["arch"]  # e.g. sm_87
    known = _run([path, "--list-gpu-arch"]).split()
    version = _run([path, "--version"]).splitlines()[-1]
    if f"compute_{arch.removeprefix('sm_')}" not in known:
        raise ToolchainError(
            f"this nvcc ({version}) cannot build {arch} for target '{target.name}'; it builds "
            f"{', '.join(k.replace('compute_', 'sm_') for k in known)}. Put a CUDA toolkit that "
            f"supports {arch} first on PATH"
        )
    return {"nvcc": path, "version": version, "arch": arch}
