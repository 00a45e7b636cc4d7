"""Run a device bundle's own tvmedge-run (under the target's emulator when the device is not
this machine) and compare its outputs with ONNX Runtime on this machine."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tvmedge.bench.agreement import compare
from tvmedge.errors import ArtifactError, TvmedgeError
from tvmedge.layout import LIBRARY


class VerifyError(TvmedgeError, RuntimeError):
    """The bundle could not be run at all (as opposed to running and disagreeing)."""


def runner_command(artifact: Path, manifest: dict) -> list[str]:
    """The command that starts the bundle's runner here: directly, or under qemu-user."""
    bundle = manifest.get("bundle")
    if not bundle:
        raise ArtifactError(f"'{artifact}' has no device bundle; compile it with --bundle")
    runner = str(artifact / bundle["runner"])
    target = manifest["target"]
    if target["runtime_arch"] == platform.machine():
        return [runner]
    emulator = (target.get("runtime") or {}).get("emulator")
    if not emulator:
        raise VerifyError(
            f"target '{target['name']}' names no emulator, and this {platform.machine()} machine "
            f"cannot run {target['runtime_arch']} code; verify it on the device"
        )
    if shutil.which(emulator) is None:
        raise VerifyError(f"emulator '{emulator}' is not installed: `apt-get install qemu-user`")
    sysroot = target["runtime"].get("sysroot")
    if sysroot and not Path(sysroot).is_dir():
        package = "libc6-arm64-cross" if "aarch64" in sysroot else "libc6-armhf-cross"
        raise VerifyError(f"the cross libc {sysroot} is missing: `apt-get install {package}`")
    return [emulator, *(["-L", sysroot] if sysroot else []), runner]


def run_bundle(artifact: Path, manifest: dict, feeds: dict, *, repeat: int = 1) -> dict:
    """Run the bundle on ``feeds``; returns {"outputs": {name: array}, "timing": {...}}."""
    cmd = runner_command(artifact, manifest)
    with tempfile.TemporaryDirectory(prefix="tvmedge-verify-") as tmp:
        work = Path(tmp)
        args = [str(artifact / LIBRARY)]
        for i, (name, value) in enumerate(feeds.items()):
            np.save(work / f"input{i}.npy", value)
            args += ["--input", f"{name}={work / f'input{i}.npy'}"]
        args += ["--output-dir", str(work / "out"), "--repeat", str(repeat)]
        proc = subprocess.run([*cmd, *args], capture_output=True, text=True)
        if proc.returncode != 0:
            message = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise VerifyError(
                f"the bundle's tvmedge-run failed (exit {proc.returncode}): {message}"
            )
        timing = json.loads(proc.stdout.strip().splitlines()[-1])
        outputs = {o["name"]: np.load(o["file"]) for o in timing.pop("outputs")}
    return {"outputs": outputs, "timing": timing, "command": cmd}


def verify(artifact: Path, manifest: dict, model: Path, feeds: dict, *, rtol, atol) -> dict:
    import onnxruntime as ort

    result = run_bundle(artifact, manifest, feeds)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o["name"] for o in manifest["outputs"]]
    ref = session.run(names, feeds)
    ours = [result["outputs"][n] for n in names]
    rows = compare(names, ours, ref, rtol=rtol, atol=atol, steps=_steps(model))
    return {
        "artifact": str(artifact),
        "target": manifest["target"]["name"],
        "command": result["command"],
        "timing": result["timing"],
        "agreement": rows,
        "agree": all(r["ok"] for r in rows),
    }


def _steps(model: Path) -> dict[str, float]:
    """One quantization step per quantized output of the ONNX model (export.quant_steps)."""
    import onnx

    from tvmedge.export.quant_steps import quantization_steps

    return quantization_steps(onnx.load(str(model), load_external_data=False))
