"""The native runtime of a device bundle: the C API library and the ``tvmedge-run`` program.

The C++ sources ship with the package (tvmedge_model.h is the API's documentation) and are
compiled for the device here, with its (cross) compiler, against the device's TVM libraries:

    libtvm_ffi.so         TVM's object system, from the apache-tvm-ffi wheel
    libtvm_runtime.so     the Relax VM, from the apache-tvm wheel
    libtvmedge_model.so   tvmedge_model.h, over the two above
    tvmedge-run           runs a model.so on .npy files, over libtvmedge_model.so

Everything is linked with an ``$ORIGIN`` run path, so these four files in one folder need no
LD_LIBRARY_PATH. A model.so does not list libtvm_runtime.so as a dependency, but it needs the VM
that libtvm_runtime.so registers, so libtvmedge_model.so lists it (--no-as-needed: the C API
calls nothing in it directly, and the linker would drop it otherwise). Loading it as a
dependency, rather than dlopen()ing it by path at run time, keeps the dependency visible to
ldd and packagers and makes a missing library fail at program start.

Only tvm-ffi's C++ headers are used (TVM's runtime headers need files its wheel does not
ship). They are architecture-independent, so the host's copy serves every target.
"""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
from pathlib import Path

from tvmedge.errors import BuildError

SOURCE_DIR = Path(__file__).parent
LIBRARY = "libtvmedge_model.so"
PROGRAM = "tvmedge-run"
RUNTIME_LIBRARIES = ("libtvm_runtime.so", "libtvm_ffi.so")
_BASE_FLAGS = ["-std=c++17", "-O2", "-Wall", "-Wextra"]


def ffi_include_dir() -> Path:
    """tvm-ffi's headers (with dlpack), found without importing the package."""
    spec = importlib.util.find_spec("tvm_ffi")
    if spec is None or spec.origin is None:
        raise BuildError("apache-tvm-ffi is not installed: pip install apache-tvm-ffi")
    return Path(spec.origin).parent / "include"


def build_native(*, cxx: str, flags: list[str], runtime_lib_dir: Path, out_dir: Path) -> list[str]:
    """Compile libtvmedge_model.so and tvmedge-run into ``out_dir``; returns the commands run.

    ``cxx`` is the compiler (e.g. ``aarch64-linux-gnu-g++``), ``flags`` the target's extra
    flags for both (e.g. ``["-mcpu=cortex-a72"]``), ``runtime_lib_dir`` the folder holding the
    target's libtvm_runtime.so and libtvm_ffi.so. The commands come back shell-quoted, to log.
    """
    runtime_lib_dir, out_dir = Path(runtime_lib_dir), Path(out_dir)
    missing = [n for n in RUNTIME_LIBRARIES if not (runtime_lib_dir / n).is_file()]
    if missing:
        raise BuildError(f"{', '.join(missing)} not found in '{runtime_lib_dir}'")
    out_dir.mkdir(parents=True, exist_ok=True)
    common = [cxx, *_BASE_FLAGS, *flags]
    library = [
        *common,
        "-fPIC",
        "-shared",
        "-fvisibility=hidden",  # export the C API only
        "-isystem",  # tvm-ffi's headers warn under -Wextra; they are not ours to fix
        str(ffi_include_dir()),
        "-o",
        str(out_dir / LIBRARY),
        str(SOURCE_DIR / "tvmedge_model.cc"),
        f"-L{runtime_lib_dir}",
        "-Wl,--push-state,--no-as-needed",
        "-ltvm_runtime",
        "-Wl,--pop-state",
        "-ltvm_ffi",
        "-ldl",  # dlopen lives in libdl before glibc 2.34, which devices may still have
        "-Wl,-rpath,$ORIGIN",
    ]
    program = [
        *common,
        "-o",
        str(out_dir / PROGRAM),
        str(SOURCE_DIR / "tvmedge_run.cc"),
        f"-L{out_dir}",
        "-ltvmedge_model",
        "-Wl,-rpath,$ORIGIN",
        f"-Wl,-rpath-link,{runtime_lib_dir}",  # where the linker finds the library's own needs
    ]
    for command in (library, program):
        _compile(command)
    return [shlex.join(c) for c in (library, program)]


def _compile(command: list[str]) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except OSError as e:  # the compiler itself is missing or not executable
        raise BuildError(f"cannot run the compiler '{command[0]}': {e.strerror}") from None
    if done.returncode != 0:
        raise BuildError(
            f"compiler failed (exit {done.returncode}): {shlex.join(command)}\n"
            f"{done.stderr.strip()}"
        )
