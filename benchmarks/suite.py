"""One run of the suite: every model of the set, every available technique, against ONNX
Runtime; the result is one JSON document (schema.py) that everything else is rendered from."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks import model_set, provenance, techniques, tuning_progress
from benchmarks.schema import SCHEMA
from tvmedge import api
from tvmedge.bench.agreement import compare
from tvmedge.errors import TvmedgeError
from tvmedge.layout import TensorSpec

ACCURACY_INPUTS = 8  # seeded inputs both engines run for the accuracy column


def _ort(model: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def accuracy(model: Path, candidate, specs: list, inputs: int, threads: int) -> dict:
    """Agreement of ``candidate`` (an artifact, or an ONNX model ONNX Runtime runs) with ONNX
    Runtime's run of the fp32 ``model`` over ``inputs`` seeded feeds (seeds 1000...): top-1
    agreement where the output is a score vector, and the largest relative error."""
    from tvmedge import runtime

    session = _ort(model, threads)
    if Path(candidate).suffix == ".onnx":
        ours = _ort(Path(candidate), threads)
    else:
        ours = runtime.load(candidate, threads=threads)
    names = [o.name for o in session.get_outputs()]
    top1, max_rel = [], 0.0
    for i in range(inputs):
        feeds = api.random_inputs(specs, seed=1000 + i)
        rows = compare(names, ours.run(None, feeds), session.run(None, feeds))
        top1 += [r["top1_agreement"] for r in rows[:1] if "top1_agreement" in r]
        max_rel = max([max_rel, *(r.get("max_rel", 0.0) for r in rows)])
    return {
        "inputs": inputs,
        "seeds": [1000, 1000 + inputs - 1],
        "top1_agreement": float(np.mean(top1)) if top1 else None,
        "max_rel": max_rel,
    }


def measure(name: str, path: Path, technique, baseline, work: Path, settings: dict, log) -> dict:
    """Compile ``path`` with ``technique`` (``baseline``: its fp32 compile, reused where the
    technique adds no option), bench it against ONNX Runtime and score its accuracy."""
    specs = [TensorSpec.from_json(s) for s in baseline.manifest["inputs"]]
    options = technique.options(specs, settings["calibration_samples"])
    ort_model = None  # ONNX Runtime's own model of the technique, where bench can run one
    if technique.ort_own and techniques.accepts(api.bench, "ort_model"):
        ort_model = work / f"{name}-{technique.name}-ort.onnx"
        options["save_quantized"] = ort_model
    built = baseline
    if options:
        out = work / f"{name}-{technique.name}.tvmedge"
        built = api.compile(
            path, target=settings["target"], output=out, force=True, log=lambda _m: None, **options
        )
    extra = {"ort_model": ort_model} if ort_model is not None else {}
    report = api.bench(
        path,
        **extra,
        artifact=built.path,
        threads=settings["threads"],
        warmup=settings["warmup"],
        repeat=settings["repeat"],
        rounds=settings["rounds"],
        max_cv=settings["max_cv"],
        log=lambda _m: None,
    )
    report["accuracy"] = accuracy(
        path, built.path, specs, settings["accuracy_inputs"], settings["threads"]
    )
    report["technique"] = {
        "name": technique.name,
        "summary": technique.summary,
        "ort_model": None if ort_model is None else f"ONNX Runtime's own {technique.name} model",
    }
    if ort_model is not None:
        report["ort_accuracy"] = accuracy(
            path, ort_model, specs, settings["accuracy_inputs"], settings["threads"]
        )
        report["ort_model_bytes"] = ort_model.stat().st_size
    t, o = (report["engines"][e]["latency"]["p50_ms"] for e in ("tvmedge", "onnxruntime"))
    log(f"{name} {technique.name}: tvmedge {t:.3f} ms, ORT {o:.3f} ms, agree {report['agree']}")
    return report


def run(
    models: dict[str, Path],
    *,
    target: str = "host",
    threads: int | None = None,
    warmup: int = 20,
    repeat: int = 30,
    rounds: int = 3,
    max_cv: float = 0.10,
    accuracy_inputs: int = ACCURACY_INPUTS,
    calibration_samples: int = techniques.CALIBRATION_SAMPLES,
    technique_names: list[str] | None = None,
    tuning_folders: list[Path] | None = None,
    quick: bool = False,
    command: str = "",
    log: Callable[[str], None] = print,
) -> dict:
    """Run the suite on ``models`` (name -> ONNX file) and return the run's JSON document."""
    ready, skipped = techniques.available()
    if technique_names is not None:
        ready = [t for t in ready if t.name in technique_names]
    settings = {
        "target": target,
        "threads": threads or api.default_threads(),
        "warmup": warmup,
        "repeat": repeat,
        "rounds": rounds,
        "max_cv": max_cv,
        "accuracy_inputs": accuracy_inputs,
        "calibration_samples": calibration_samples,
        "quick": quick,
        "batch": 1,
        "inputs": "seeded random (api.random_inputs, seed 0), the same for both engines",
    }
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="tvmedge-suite-") as tmp:
        for name, path in models.items():
            entry = {
                "file": str(Path(path).name),
                "source": model_set.source(name),
                "onnx_bytes": Path(path).stat().st_size,
                "techniques": {},
                "errors": {},
            }
            work = Path(tmp)
            try:
                baseline = api.compile(
                    path, target=target, output=work / f"{name}.tvmedge", log=lambda _m: None
                )
            except (TvmedgeError, RuntimeError, ValueError) as e:  # recorded, not hidden
                entry["errors"]["compile"] = f"{type(e).__name__}: {e}"
                log(f"{name}: compile failed: {e}")
                results[name] = entry
                continue
            for technique in ready:
                try:
                    entry["techniques"][technique.name] = measure(
                        name, Path(path), technique, baseline, work, settings, log
                    )
                except (TvmedgeError, RuntimeError, ValueError) as e:
                    entry["errors"][technique.name] = f"{type(e).__name__}: {e}"
                    log(f"{name} {technique.name}: failed: {e}")
            results[name] = entry
    return {
        "schema": SCHEMA,
        "date": provenance.now(),
        "command": command,
        **provenance.git_state(),
        "machine": provenance.machine(target),
        "versions": provenance.versions(),
        "settings": settings,
        "techniques": {t.name: t.summary for t in ready},
        "techniques_unavailable": skipped,
        "models": results,
        "tuning_progress": tuning_progress.curves(tuning_folders or tuning_progress.folders()),
    }
