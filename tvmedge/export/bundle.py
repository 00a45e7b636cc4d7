"""Device bundles: what a device without Python needs next to model.so, in ``runtime/``.

    runtime/libtvm_runtime.so, libtvm_ffi.so   the device's TVM runtime (pinned wheels)
    runtime/libtvmedge_model.so                the C API (tvmedge_model.h)
    runtime/tvmedge_model.h                    to build your own program against
    runtime/tvmedge-run                        loads model.so, runs .npy inputs, times runs

All built with the target's (cross) toolchain and an $ORIGIN run path: copy the artifact to the
device and run ``runtime/tvmedge-run model.so --input NAME=x.npy``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from tvmedge.errors import BuildError
from tvmedge.export import native, runtime_libs
from tvmedge.export.toolchain import ResolvedToolchain
from tvmedge.targets import Target

RUNTIME_DIR = "runtime"
HEADER = "tvmedge_model.h"


def bundle_writer(
    target: Target, toolchain: ResolvedToolchain, runtime_dir: Path | None = None
) -> Callable[[Path], dict]:
    """An artifact extra that writes ``runtime/``; the libraries are located before any work."""
    if target.family == "cuda":
        raise BuildError(
            f"--bundle is not available for CUDA targets yet ('{target.name}'): the C runtime "
            "runs CPU artifacts"
        )
    libs = runtime_libs.locate(target, runtime_dir)

    def write(artifact_dir: Path) -> dict:
        folder = artifact_dir / RUNTIME_DIR
        folder.mkdir()
        for name, lib in libs.items():
            shutil.copyfile(lib.path, folder / name)
        commands = native.build_native(
            cxx=toolchain.cc, flags=list(toolchain.flags), runtime_lib_dir=folder, out_dir=folder
        )
        shutil.copyfile(native.SOURCE_DIR / HEADER, folder / HEADER)
        return {
            "bundle": {
                "runtime_dir": RUNTIME_DIR,
                "runner": f"{RUNTIME_DIR}/{native.PROGRAM}",
                "c_api": {
                    "header": f"{RUNTIME_DIR}/{HEADER}",
                    "library": f"{RUNTIME_DIR}/{native.LIBRARY}",
                },
                "runtime_libraries": {name: lib.to_json() for name, lib in libs.items()},
                "build_commands": commands,
            }
        }

    return write
