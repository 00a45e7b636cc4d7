"""Compile proves its artifact: load and run it once, compare with ONNX Runtime, then write.

Before a compiled artifact is renamed into place, :func:`checker` runs it in a child process
(``tvmedge.runtime.selftest``, so a crash in native code cannot take the compiler down) on
seeded inputs: float inputs standard normal, integer and boolean inputs zero (indices, lengths
and masks stay valid), a symbolic batch (axis 0) 1 and any other symbolic dim 64 (a sequence or
signal length: 1 is no length a strided or pooled model accepts, 64 divides by the strides of
most), the same value wherever the same dim name appears. The outputs are compared with ONNX
Runtime's on the same inputs. A failure is one :class:`~tvmedge.errors.CheckError` that names
the step (load, run, compare) and nothing is written. Artifacts this machine cannot run (another
architecture, a GPU, CPU features this CPU lacks) are not run: the manifest says why, and
`tvmedge verify-bundle` checks cross-compiled bundles under emulation.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tvmedge import machine
from tvmedge.errors import CheckError, FeedError
from tvmedge.layout import TensorSpec
from tvmedge.targets import Target

# A compile check catches wrong code, not rounding: an output agrees when
# max|ours - ref| <= ATOL + RTOL * max|ref| over its finite values (bench's rule, 10x looser
# than bench's default, since Winograd and fused kernels round differently from ONNX Runtime).
RTOL, ATOL = 1e-3, 1e-4
TIMEOUT_S = 600.0
SEED = 0
SYMBOLIC_BATCH, SYMBOLIC_OTHER = 1, 64  # sizes the check gives symbolic dims


def check_inputs(specs: list[TensorSpec], *, seed: int = SEED) -> dict[str, np.ndarray]:
    """The check's inputs: float standard normal (seeded), integer and bool zero, symbolic
    dims :data:`SYMBOLIC_BATCH` on axis 0 and :data:`SYMBOLIC_OTHER` elsewhere (by the axis
    where a dim name first appears)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    sizes: dict[str, int] = {}
    for spec in specs:
        for axis, d in enumerate(spec.shape):
            if not isinstance(d, int):
                sizes.setdefault(str(d), SYMBOLIC_BATCH if axis == 0 else SYMBOLIC_OTHER)
        shape = tuple(d if isinstance(d, int) else sizes[str(d)] for d in spec.shape)
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iub":
            feeds[spec.name] = np.zeros(shape, dtype)
        else:
            raise FeedError(f"cannot generate check inputs for '{spec.name}' of {dtype}")
    return feeds


def checker(
    target: Target,
    model: Path,
    *,
    enabled: bool = True,
    timeout: float = TIMEOUT_S,
    log: Callable[[str], None] = lambda _m: None,
) -> Callable[[Path, dict], dict]:
    """The check ``write_artifact`` runs on the finished artifact folder; it returns the
    manifest's ``check`` record or raises CheckError."""

    def skipped(reason: str) -> Callable[[Path, dict], dict]:
        return lambda _folder, _manifest: {"run": False, "reason": reason}

    if not enabled:
        return skipped("skipped with --no-check")
    if target.family == "cuda":
        return skipped("a CUDA artifact: this check runs CPU artifacts only")
    if target.runtime_arch != machine.arch():
        return skipped(
            f"cross-compiled for {target.runtime_arch}: check it with `tvmedge verify-bundle` "
            "(its bundle under emulation or on the device)"
        )

    def check(folder: Path, manifest: dict) -> dict:
        missing = machine.missing_features(manifest.get("cpu", {}).get("features", []))
        if missing:
            return {"run": False, "reason": f"this CPU lacks {', '.join(missing)}"}
        log("checking the artifact: load and run it once, compare with ONNX Runtime")
        return run_check(folder, model, manifest, timeout=timeout)

    return check


def run_check(folder: Path, model: Path, manifest: dict, *, timeout: float = TIMEOUT_S) -> dict:
    specs = [TensorSpec.from_json(s) for s in manifest["inputs"]]
    feeds = check_inputs(specs)
    with tempfile.TemporaryDirectory(prefix="tvmedge-check-") as tmp:
        work = Path(tmp)
        np.savez(work / "inputs.npz", **feeds)
        child = _run_child(folder, model, work, timeout)
        names = [s["name"] for s in manifest["outputs"]]
        ours = _arrays(work / "tvmedge.npz", names)
        record = {
            "run": True,
            "inputs": {
                "seed": SEED,
                "float": "standard normal",
                "integer": 0,
                "symbolic": {"axis 0": SYMBOLIC_BATCH, "other axes": SYMBOLIC_OTHER},
            },
            "seconds": child["seconds"],
        }
        if "reference_error" in child:
            return {
                **record,
                "compared": False,
                "reason": f"ONNX Runtime could not run the model: {child['reference_error']}",
            }
        steps = _steps(model, names)
        rows = compare(names, ours, _arrays(work / "onnxruntime.npz", names), steps=steps)
    bad = [r for r in rows if not r["ok"]]
    if bad:
        r = bad[0]
        raise CheckError(
            f"compile check failed at step 'compare': output '{r['output']}' {r['error']} on "
            "seeded inputs; nothing was written. This is a tvmedge bug: please report it "
            "(--no-check writes the artifact unchecked)"
        )
    record = {**record, "compared": True, "rtol": RTOL, "atol": ATOL, "outputs": rows}
    if steps:  # outputs of quantizing ops: one quantization step allowed (export.quant_steps)
        record["quantization_steps"] = steps
    return record


def _steps(model: Path, names: list[str]) -> dict[str, float]:
    import onnx

    from tvmedge.export.quant_steps import quantization_steps

    steps = quantization_steps(onnx.load(str(model), load_external_data=False))
    return {n: steps[n] for n in names if n in steps}


def _run_child(folder: Path, model: Path, work: Path, timeout: float) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "tvmedge.runtime.selftest",
        str(folder),
        str(model),
        str(work / "inputs.npz"),
        str(work),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CheckError(
            f"compile check failed: loading and running the artifact once took over "
            f"{timeout:.0f} s; nothing was written (--no-check skips the check)"
        ) from None
    lines = proc.stdout.splitlines()
    steps = [ln.split(" ", 1)[1] for ln in lines if ln.startswith("step ")]
    step = steps[-1] if steps else "start"
    last = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    if proc.returncode == 0 and last is not None:
        return last
    if last is not None and "failed" in last:
        cause = last["error"]
    elif proc.returncode < 0:
        cause = f"the process died with {signal.Signals(-proc.returncode).name}"
    else:
        tail = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1:] or ["no message"]
        cause = f"exit {proc.returncode}: {tail[0][:300]}"
    bug = "" if "report it" in cause else ". This is a tvmedge bug: please report it"
    raise CheckError(
        f"compile check failed at step '{step}' (the artifact, loaded and run once in a child "
        f"process): {cause}; nothing was written{bug}"
    )


def _arrays(path: Path, names: list[str]) -> list[np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return [data[n] for n in names]


def compare(
    names: list[str],
    ours: list[np.ndarray],
    ref: list[np.ndarray],
    steps: dict[str, float] | None = None,
) -> list[dict]:
    """Per output: same shape and dtype; exact for integers and booleans; for floats the same
    non-finite values in the same places and the finite ones within ATOL + RTOL * max|ref|.
    An output in ``steps`` (a quantized one: name -> one quantization step) may differ by up
    to that step: int8 requantization rounds ties differently from ONNX Runtime's."""
    steps = steps or {}
    rows = []
    for name, a, b in zip(names, ours, ref, strict=True):
        row = {"output": name, "shape": list(b.shape), "dtype": str(b.dtype)}
        if a.shape != b.shape or a.dtype != b.dtype:
            error = f"is {a.dtype}{list(a.shape)} where ONNX Runtime gives {b.dtype}{list(b.shape)}"
            rows.append({**row, "ok": False, "error": error})
            continue
        if b.dtype.kind not in "fc":
            step = int(steps.get(name, 0))
            wrong = int(np.count_nonzero(np.abs(a.astype(np.int64) - b.astype(np.int64)) > step))
            error = f"differs from ONNX Runtime in {wrong} of {b.size} values" + (
                f" by more than {step}" if step else ""
            )
            rows.append({**row, "ok": wrong == 0, "mismatches": wrong, "error": error})
            continue
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        finite = np.isfinite(b64)
        same_special = np.array_equal(a64[~finite], b64[~finite], equal_nan=True)
        diff = np.abs(a64[finite] - b64[finite])
        scale = float(np.abs(b64[finite]).max()) if diff.size else 0.0
        max_abs = float(diff.max()) if diff.size else 0.0
        if not np.isfinite(diff).all():
            max_abs = float("inf")
        limit = max(ATOL + RTOL * scale, steps.get(name, 0.0) * (1 + RTOL))
        ok = same_special and max_abs <= limit
        if not same_special:
            error = "has NaN or infinite values where ONNX Runtime's differ"
        else:
            error = f"differs from ONNX Runtime by up to {max_abs:.3g} (allowed {limit:.3g})"
        rows.append({**row, "ok": ok, "max_abs": max_abs, "ref_scale": scale, "error": error})
    for r in rows:
        if r["ok"]:
            del r["error"]
    return rows
