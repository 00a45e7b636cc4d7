"""The TVM runtime libraries a device bundle ships, taken from the pinned apache-tvm wheels.

For this machine's own architecture they come from the installed wheels. For another one they
come from the same versions' wheels for the device's platform on PyPI, downloaded once into
``$TVMEDGE_CACHE/wheels`` (default ``~/.cache/tvmedge``) and recorded with their hashes.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from tvmedge.errors import TvmedgeError
from tvmedge.layout import sha256_file
from tvmedge.targets import Target

# library file name -> (distribution, path inside its wheel)
LIBRARIES = {
    "libtvm_runtime.so": ("apache-tvm", "tvm/lib/libtvm_runtime.so"),
    "libtvm_ffi.so": ("apache-tvm-ffi", "tvm_ffi/lib/libtvm_ffi.so"),
}


class RuntimeLibsError(TvmedgeError, FileNotFoundError):
    """The device's TVM runtime libraries cannot be found or fetched."""


@dataclass(frozen=True)
class RuntimeLib:
    path: Path
    source: str  # where it came from, e.g. "apache-tvm 0.27.0.post1 wheel (manylinux_2_28_aarch64)"

    def to_json(self) -> dict:
        return {"source": self.source, "sha256": sha256_file(self.path)}


def cache_dir() -> Path:
    return Path(os.environ.get("TVMEDGE_CACHE", Path.home() / ".cache" / "tvmedge"))


def locate(target: Target, runtime_dir: Path | None = None) -> dict[str, RuntimeLib]:
    """The runtime libraries for ``target``'s device: given folder, installed wheels, or PyPI."""
    if runtime_dir is not None:
        return _from_folder(Path(runtime_dir))
    if target.runtime_arch == platform.machine():
        return _installed()
    platform_tag = target.runtime.wheel_platform
    if not platform_tag:
        raise RuntimeLibsError(
            f"no apache-tvm wheel exists for {target.runtime_arch} (target '{target.name}'), so "
            "tvmedge cannot take its runtime from PyPI; build libtvm_runtime.so and "
            "libtvm_ffi.so for the device and pass --runtime-dir DIR"
        )
    return _from_wheels(platform_tag)


def _from_folder(folder: Path) -> dict[str, RuntimeLib]:
    libs = {}
    for name in LIBRARIES:
        if not (folder / name).is_file():
            raise RuntimeLibsError(f"--runtime-dir {folder} has no {name}")
        libs[name] = RuntimeLib(folder / name, f"--runtime-dir {folder}")
    return libs


def _installed() -> dict[str, RuntimeLib]:
    libs = {}
    for name, (dist, inner) in LIBRARIES.items():
        package = inner.split("/")[0]
        spec = importlib.util.find_spec(package)  # without importing the compiler
        path = Path(spec.origin).parent.joinpath(*inner.split("/")[1:]) if spec else None
        if path is None or not path.is_file():
            raise RuntimeLibsError(f"{name} is missing from the installed {dist}; reinstall it")
        libs[name] = RuntimeLib(path, f"{dist} {metadata.version(dist)} (installed)")
    return libs


def _from_wheels(platform_tag: str) -> dict[str, RuntimeLib]:
    folder = cache_dir() / "wheels" / platform_tag
    libs = {}
    for name, (dist, inner) in LIBRARIES.items():
        version = metadata.version(dist)
        wheel = _wheel(folder, dist, version, platform_tag)
        out = folder / "extracted" / f"{dist}-{version}" / name
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(wheel) as zf:
                tmp = out.with_suffix(".part")
                tmp.write_bytes(zf.read(inner))
                tmp.replace(out)  # atomic: a reader never sees half a library
        libs[name] = RuntimeLib(out, f"{dist} {version} wheel ({platform_tag}), {wheel.name}")
    return libs


def _wheel(folder: Path, dist: str, version: str, platform_tag: str) -> Path:
    pattern = f"{dist.replace('-', '_')}-{version}-*.whl"
    found = sorted(folder.glob(pattern))
    if found:
        return found[0]
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--platform",
        platform_tag,
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        f"{dist}=={version}",
        "-d",
        str(folder),
    ]
    print(
        f"fetching the {platform_tag} runtime: {dist}=={version} from PyPI (once)", file=sys.stderr
    )
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(folder.glob(pattern))
    if proc.returncode != 0 or not found:
        raise RuntimeLibsError(
            f"could not fetch {dist}=={version} for {platform_tag}: "
            f"{(proc.stderr.strip().splitlines() or ['no wheel'])[-1][:200]}; run "
            f"`{' '.join(cmd)}` where PyPI is reachable, or pass --runtime-dir"
        )
    return found[0]
