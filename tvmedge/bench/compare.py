"""tvmedge vs ONNX Runtime on the same inputs, threads, warm-up, repeats and timer."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import psutil

from tvmedge.bench.agreement import compare
from tvmedge.errors import TvmedgeError

ENGINES = ("onnxruntime", "tvmedge")  # ONNX Runtime first: the reference
SPREAD_WARN_CV = 0.10


class BenchError(TvmedgeError, RuntimeError):
    """A benchmark worker failed."""


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "arch": platform.machine(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "memory_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
    }


def _worker(engine: str, model: str, inputs: Path, work: Path, *, threads, warmup, repeat):
    result, outputs = work / f"{engine}.json", work / f"{engine}.npz"
    cmd = [
        sys.executable,
        "-m",
        "tvmedge.bench.worker",
        engine,
        model,
        str(inputs),
        str(result),
        str(outputs),
        "--threads",
        str(threads),
        "--warmup",
        str(warmup),
        "--repeat",
        str(repeat),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1:] or ["no output"]
        raise BenchError(f"{engine} benchmark run failed (exit {proc.returncode}): {tail[0]}")
    with np.load(outputs) as data:
        arrays = [data[k] for k in data.files]
    return json.loads(result.read_text()), arrays


def _pool(rounds: list[dict]) -> dict:
    """One engine's rounds as one result: latency over every timed run, the highest memory
    and load time of any round."""
    from tvmedge.bench.timing import summarize

    first = rounds[0]
    if len(rounds) == 1:
        return first
    latencies = [ms / 1e3 for r in rounds for ms in r["latencies_ms"]]
    pooled = dict(first)
    pooled["latency"] = summarize(latencies)
    pooled["latencies_ms"] = [ms for r in rounds for ms in r["latencies_ms"]]
    for key, value in first.items():
        if key == "memory":
            pooled["memory"] = {
                k: max(r["memory"][k] for r in rounds) if isinstance(v, int | float) else v
                for k, v in value.items()
            }
        elif key == "load_s":
            pooled[key] = max(r[key] for r in rounds)
    return pooled


def run_bench(
    *,
    model: Path,
    artifact: Path,
    manifest: dict,
    feeds: dict,
    threads: int,
    warmup: int,
    repeat: int,
    rtol: float,
    atol: float,
    rounds: int = 1,
) -> dict:
    """Run both engines in fresh processes and compare their outputs.

    With several ``rounds`` the engines alternate (A B, B A, A B, ...), each round a fresh
    process per engine, and the timings are pooled: a machine whose speed drifts (other
    tenants, clocks) then slows both engines alike instead of whichever ran second.
    """
    per_round: dict[str, list[dict]] = {engine: [] for engine in ENGINES}
    outputs = {}
    with tempfile.TemporaryDirectory(prefix="tvmedge-bench-") as tmp:
        work = Path(tmp)
        np.savez(work / "inputs.npz", **feeds)
        for r in range(rounds):
            for engine in ENGINES if r % 2 == 0 else tuple(reversed(ENGINES)):
                path = str(model if engine == "onnxruntime" else artifact)
                result, out = _worker(
                    engine,
                    path,
                    work / "inputs.npz",
                    work,
                    threads=threads,
                    warmup=warmup,
                    repeat=repeat,
                )
                per_round[engine].append(result)
                outputs.setdefault(engine, out)
    results = {engine: _pool(per_round[engine]) for engine in ENGINES}
    names = [o["name"] for o in manifest["outputs"]]
    agreement = compare(
        names, outputs["tvmedge"], outputs["onnxruntime"], rtol=rtol, atol=atol, steps=_steps(model)
    )
    ours, ref = results["tvmedge"]["latency"], results["onnxruntime"]["latency"]
    warnings = [
        f"{engine} run-to-run spread is large (coefficient of variation "
        f"{results[engine]['latency']['cv']:.0%}); close other programs or raise --repeat"
        for engine in ENGINES
        if results[engine]["latency"]["cv"] > SPREAD_WARN_CV
    ]
    artifact_bytes = sum(f["size"] for f in manifest["files"].values())
    return {
        "model": {
            "file": str(model),
            "sha256": manifest["source"]["sha256"],
            "onnx_bytes": model.stat().st_size,
        },
        "artifact": {
            "path": str(artifact),
            "bytes": artifact_bytes,
            "target": manifest["target"]["name"],
            "tvm": manifest["target"]["tvm"],
            "tuned": manifest["tuning"]["applied"],
        },
        "settings": {
            "threads": threads,
            "warmup": warmup,
            "repeat": repeat,
            "rounds": rounds,
            "inputs": {k: list(v.shape) for k, v in feeds.items()},
            "rtol": rtol,
            "atol": atol,
            "timer": "time.perf_counter_ns around run()",
        },
        "machine": machine(),
        "versions": manifest["versions"] | {"onnxruntime": _ort_version()},
        "engines": results,
        "ratio_p50": ours["p50_ms"] / ref["p50_ms"],
        "ratio_p50_rounds": [
            a["latency"]["p50_ms"] / b["latency"]["p50_ms"]
            for a, b in zip(per_round["tvmedge"], per_round["onnxruntime"], strict=True)
        ],
        "ratio_mean": ours["mean_ms"] / ref["mean_ms"],
        "agreement": agreement,
        "agree": all(row["ok"] for row in agreement),
        "warnings": warnings,
    }


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _steps(model: Path) -> dict[str, float]:
    """One quantization step per quantized output of the ONNX model (export.quant_steps)."""
    import onnx

    from tvmedge.export.quant_steps import quantization_steps

    return quantization_steps(onnx.load(str(model), load_external_data=False))
