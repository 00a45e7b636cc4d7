"""CUDA kernels of a GPU artifact, compiled by nvcc for the target's SM architecture.

The pinned TVM wheel's compiler keeps CUDA kernels as CUDA C inside model.so and never invokes
nvcc itself (checked: no nvcc call during tvm.compile). tvmedge compiles that source with nvcc for
the target's SM, so a build proves the generated kernels compile for the device, and ships the
cubin with its hash in the artifact.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from tvmedge.errors import BuildError

KERNELS_DIR = "kernels"


def kernel_source(executable) -> str:
    """The CUDA C of every kernel in the executable's imported device module."""
    pending = [executable.mod]
    while pending:
        module = pending.pop()
        if module.kind == "cuda":
            return module.inspect_source("cuda")
        pending.extend(module.imports)
    raise BuildError("the CUDA build produced no CUDA kernel module; this is a tvmedge bug")


def kernels_writer(executable, nvcc: dict) -> Callable[[Path], dict]:
    """An artifact extra that writes kernels/kernels.cu and kernels/kernels.<sm>.cubin."""
    source = kernel_source(executable)

    def write(artifact_dir: Path) -> dict:
        folder = artifact_dir / KERNELS_DIR
        folder.mkdir()
        cu = folder / "kernels.cu"
        cu.write_text(source)
        cubin = folder / f"kernels.{nvcc['arch']}.cubin"
        cmd = [
            nvcc["nvcc"],
            "-cubin",
            f"-arch={nvcc['arch']}",
            "-O3",
            "-w",
            "-o",
            str(cubin),
            str(cu),
        ]
        with tempfile.TemporaryFile("w+") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
            if proc.returncode != 0:
                log.seek(0)
                errors = [ln for ln in log.read().splitlines() if "error" in ln]
                raise BuildError(
                    f"nvcc could not compile the kernels for {nvcc['arch']}: "
                    f"{(errors or ['no error text'])[0][:300]} (command: {' '.join(cmd)})"
                )
        return {
            "cuda": {
                "arch": nvcc["arch"],
                "nvcc": nvcc["version"],
                "kernels": source.count("__global__"),
                "source": f"{KERNELS_DIR}/{cu.name}",
                "cubin": f"{KERNELS_DIR}/{cubin.name}",
            }
        }

    return write
