"""Every shipped target compiles SqueezeNet: CPU targets to a model.so for their architecture,
CUDA targets with kernels compiled by nvcc for their SM. The installed nvcc (CUDA 13) cannot build
sm_53 or sm_72, so jetson-nano and jetson-xavier must fail with a clear toolchain error."""

import json
import shutil

import pytest

from tvmedge import api, targets, zoo
from tvmedge.export.toolchain import ToolchainError

ELF_MACHINE = {"x86_64": 0x3E, "aarch64": 0xB7, "armv7l": 0x28}
NVCC_TOO_NEW = {"jetson-nano": "sm_53", "jetson-xavier": "sm_72"}


@pytest.fixture(scope="module")
def squeezenet(tmp_path_factory):
    return zoo.materialize("squeezenet", tmp_path_factory.mktemp("zoo") / "squeezenet.onnx")


def _elf_machine(path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    return int.from_bytes(header[18:20], "little")


@pytest.mark.parametrize("name", targets.names())
def test_target_compiles_squeezenet(name, squeezenet, tmp_path):
    target = targets.get(name)
    missing = [
        t
        for t in (target.toolchain.cc, "nvcc" if target.family == "cuda" else None)
        if t and shutil.which(t) is None
    ]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed here (make toolchains installs the "
            "Arm cross compilers; nvcc comes with the CUDA toolkit)"
        )
    out = tmp_path / f"{name}.tvmedge"
    if name in NVCC_TOO_NEW:
        with pytest.raises(ToolchainError, match=f"cannot build {NVCC_TOO_NEW[name]}"):
            api.compile(squeezenet, target=name, output=out, log=lambda _m: None)
        assert not out.exists()
        return
    result = api.compile(squeezenet, target=name, output=out, log=lambda _m: None)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == result.manifest
    assert manifest["target"]["name"] == name
    assert manifest["build"]["toolchain"]["triple"] == target.toolchain.triple
    assert _elf_machine(out / "model.so") == ELF_MACHINE[target.runtime_arch]
    if target.family == "cuda":
        cuda = manifest["cuda"]
        assert cuda["arch"] == target.tvm["arch"] and cuda["kernels"] > 10
        cubin = out / cuda["cubin"]
        assert _elf_machine(cubin) == 0xBE  # EM_CUDA: a real cubin, not source
        assert manifest["files"][cuda["cubin"]]["size"] == cubin.stat().st_size
