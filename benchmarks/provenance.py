"""What ties a figure to the run that made it: the commit (and whether the tree was dirty),
the date, the machine (CPU, the ISA features the compiled code may use, cores, governor) and
every version that matters."""

from __future__ import annotations

import datetime
import platform
import subprocess
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def git_state(root: Path = ROOT) -> dict:
    """HEAD's commit and whether tracked files differ from it; None where git cannot tell."""

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        except OSError:
            return None
        return proc.stdout if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit.strip() if commit else None,
        "dirty": None if status is None else bool(status.strip()),
    }


def governor() -> str | None:
    """cpu0's frequency governor, or None where the kernel does not expose it (VMs)."""
    try:
        return GOVERNOR.read_text().strip()
    except OSError:
        return None


def machine(target: str) -> dict:
    """This machine as tuning and timing see it, and the features ``target``'s code may use."""
    import psutil

    from tvmedge import machine as host
    from tvmedge import targets

    resolved = targets.get(target)
    return {
        **host.fingerprint(),  # cpu, mcpu, cores: what tuning records depend on
        "arch": host.arch(),
        "logical_cores": psutil.cpu_count(logical=True),
        "memory_bytes": psutil.virtual_memory().total,
        "governor": governor(),
        "os": platform.platform(),
        "target": target,
        "target_mcpu": resolved.tvm.get("mcpu"),
        "flags_used": host.required_features(resolved.tvm_target()),
    }


def versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("tvmedge", "apache-tvm", "onnx", "onnxruntime", "numpy", "torch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def now() -> str:
    """The UTC time of the run, to the second (ISO 8601)."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def machine_key(m: dict) -> str:
    """One machine's name in file names and section anchors: mcpu and cores, then the CPU."""
    cpu = "".join(c if c.isalnum() else "-" for c in m["cpu"].lower()).strip("-")
    while "--" in cpu:
        cpu = cpu.replace("--", "-")
    return f"{m['mcpu']}-{m['cores']}c-{cpu}"
