"""The suite's JSON document: what every run file must hold, checked before anything is
rendered from it (a file that lacks a field is refused by name, not half-rendered)."""

from __future__ import annotations

from tvmedge.errors import TvmedgeError

SCHEMA = "tvmedge-bench-suite/1"

REQUIRED = {
    "": ("schema", "date", "commit", "dirty", "command", "machine", "versions", "settings"),
    "machine": ("cpu", "mcpu", "cores", "arch", "governor", "flags_used", "target"),
    "versions": ("tvmedge", "apache-tvm", "onnxruntime", "onnx", "numpy", "python"),
    "settings": ("target", "threads", "warmup", "repeat", "rounds", "max_cv", "accuracy_inputs"),
}
TOP = ("models", "techniques", "techniques_unavailable", "tuning_progress")
MODEL = ("file", "source", "onnx_bytes", "techniques", "errors")
TECHNIQUE = ("engines", "agree", "agreement", "artifact", "model", "ratio_p50", "accuracy")
ENGINE = ("latency", "latencies_ms", "memory", "threads_applied")


class RunFileError(TvmedgeError, ValueError):
    """A suite JSON file that is not one (wrong schema or a missing field)."""


def validate(run: dict, name: str = "run") -> dict:
    """``run`` if it has every field the renderer reads; RunFileError naming the first gap."""

    def need(obj, keys, where):
        if not isinstance(obj, dict):
            raise RunFileError(f"{name}: {where or 'the document'} is not an object")
        missing = [k for k in keys if k not in obj]
        if missing:
            raise RunFileError(f"{name}: {where or 'the document'} lacks {', '.join(missing)}")

    need(run, (*REQUIRED[""], *TOP), "")
    if run["schema"] != SCHEMA:
        raise RunFileError(f"{name}: schema {run['schema']!r}, expected {SCHEMA!r}")
    for part in ("machine", "versions", "settings"):
        need(run[part], REQUIRED[part], part)
    for model, entry in run["models"].items():
        need(entry, MODEL, f"models.{model}")
        for tech, report in entry["techniques"].items():
            where = f"models.{model}.techniques.{tech}"
            need(report, TECHNIQUE, where)
            for engine in ("tvmedge", "onnxruntime"):
                need(report["engines"].get(engine), ENGINE, f"{where}.engines.{engine}")
    return run
