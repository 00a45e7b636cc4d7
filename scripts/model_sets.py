"""The onnx wheel's backend-test model sets, compiled and run by tvmedge.

Each model in onnx/backend/test/data/{light,pytorch-converted,pytorch-operator,simple} goes
through ``tvmedge.api.compile`` (target host, with its compile check) ->
``tvmedge.runtime.load(...).run``, and its outputs are compared with the reference outputs
shipped beside it, under the tolerances the onnx backend runner uses for that model and its
comparison rule (tvmedge.conformance.compare). Each model runs in a forked child of the warm
process (tvmedge.conformance.isolated), so a crash or hang fails that one model. The
"Model sets" section of docs/onnx-conformance.md comes from here.
"""

from __future__ import annotations

import os
import platform
import re
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import causes
import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.loader import load_model_tests
from onnx.backend.test.runner import Runner

from tvmedge import __version__, api, conformance, runtime
from tvmedge.errors import BuildError, ModelFileError, UnsupportedOpError

SITE_PACKAGES = Path(onnx.__file__).parent.parent
DATA_DIR = SITE_PACKAGES / "onnx" / "backend" / "test" / "data"
FOLDERS = ("light", "pytorch-converted", "pytorch-operator", "simple")
ROOT = Path(__file__).resolve().parent.parent
# The loader's defaults for a model whose data.json sets none (onnx/backend/test/loader).
DEFAULT_RTOL, DEFAULT_ATOL = 1e-3, 1e-7
CATEGORY_NOTES = {
    "unsupported-op": "Add a converter for the op as tvmedge/frontend/converters/<family>.py "
    "(`@register`, listed in `_FAMILIES`), tested against ONNX Runtime.",
    "load": "The model does not pass tvmedge's load checks (onnx.checker, shape inference); "
    "check whether the checker or tvmedge's loader is too strict for it.",
    "import": "TVM's converter for the op fails on this model; override it with a tvmedge "
    "converter that covers this case.",
    "build": "The model imports but TVM cannot compile the Relax module; reduce it to the "
    "failing op and fix or override that op's converter or legalization.",
    "run": "The artifact builds but fails at run time; reproduce with `tvmedge run` on the "
    "model and fix the runtime or the converter that produced the failing shape.",
    "mismatch": "Outputs differ beyond the runner's tolerance: reduce the model to the "
    "offending op, compare with ONNX Runtime and fix that op's converter.",
    "timeout": "The model took longer than the per-model limit (its last output is the JSON's "
    "`log`); profile compile and run (`tvmedge compile` prints step timings), find the slow step.",
    "crash": "The child process died in native code (its last output is the JSON's `log`); rerun "
    "the model alone under gdb to find the crashing pass or kernel; report it upstream if in TVM.",
}


@dataclass(frozen=True)
class Case:
    """One backend-test model: where it is, its tolerances, and its test data sets."""

    folder: str
    name: str
    model: Path
    rtol: float
    atol: float
    # test_data_set_* folders; empty for light models, whose input the runner generates.
    data_sets: tuple[Path, ...]

    @property
    def label(self) -> str:
        return f"{self.folder}/{self.name}"


def discover(only: str | None = None) -> list[Case]:
    """Every model in FOLDERS, with the tolerances onnx's own loader gives it."""
    cases = _light_cases() + [c for folder in FOLDERS[1:] for c in _folder_cases(folder)]
    return [c for c in cases if only is None or re.search(only, c.label)]


def _light_cases() -> list[Case]:
    # The runner tests light models through the "real" test list, whose data.json names the
    # light file by url and holds its tolerances.
    tolerances = {
        Path(t.url).name: (t.rtol, t.atol)
        for t in load_model_tests(kind="real")
        if t.url and t.url.startswith("onnx/backend/test/data/light/")
    }
    return [
        Case("light", path.stem, path, *tolerances.get(path.name, (DEFAULT_RTOL, DEFAULT_ATOL)), ())
        for path in sorted((DATA_DIR / "light").glob("*.onnx"))
    ]


def _folder_cases(folder: str) -> list[Case]:
    tolerances = {t.name: (t.rtol, t.atol) for t in load_model_tests(kind=folder)}
    cases = []
    for case_dir in sorted(p for p in (DATA_DIR / folder).iterdir() if p.is_dir()):
        rtol, atol = tolerances.get(case_dir.name, (DEFAULT_RTOL, DEFAULT_ATOL))
        data_sets = tuple(sorted(case_dir.glob("test_data_set_*")))
        cases.append(Case(folder, case_dir.name, case_dir / "model.onnx", rtol, atol, data_sets))
    return cases


# --- one model, in the child process ------------------------------------------------------


def _read_tensors(folder: Path, prefix: str) -> list[np.ndarray]:
    paths = sorted(folder.glob(f"{prefix}_*.pb"), key=lambda p: int(p.stem.split("_")[-1]))
    return [numpy_helper.to_array(onnx.load_tensor(str(p))) for p in paths]


def _light_data(case: Case) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """The runner's generated input, and the reference: the shipped outputs when ONNX Runtime
    reproduces them from that input, else ONNX Runtime's own outputs."""
    import onnxruntime as ort

    proto = onnx.load(str(case.model))
    weights = {t.name for t in proto.graph.initializer}
    specs = [x for x in proto.graph.input if x.name not in weights]
    # Exactly what the runner feeds light models: arange(n) / n, no randomness.
    inputs = [Runner.generate_dummy_data(x, seed=0, random=False) for x in specs]
    shipped = _read_tensors(case.model.parent, f"{case.name}_output")
    session = ort.InferenceSession(str(case.model), providers=["CPUExecutionProvider"])
    ort_out = session.run(None, {x.name: v for x, v in zip(specs, inputs, strict=True)})
    if len(shipped) == len(ort_out) and all(
        conformance.compare(o, s, case.rtol, case.atol)["ok"]
        for o, s in zip(ort_out, shipped, strict=True)
    ):
        return inputs, shipped, "shipped (ONNX Runtime reproduces it)"
    return inputs, list(ort_out), "ONNX Runtime (shipped output does not match the input)"


def evaluate(case: Case, workdir: Path) -> dict:
    """Compile, run and compare one model; every failure is returned, never raised."""
    timings: dict[str, float] = {}
    try:
        start = time.perf_counter()
        artifact = api.compile(
            case.model, target="host", output=workdir / "model.tvmedge", log=lambda _m: None
        ).path
        timings["compile_s"] = time.perf_counter() - start
        model = runtime.load(artifact)
        names = [i.name for i in model.get_inputs()]
        if case.data_sets:
            sets = [(_read_tensors(d, "input"), _read_tensors(d, "output")) for d in case.data_sets]
            reference = "shipped"
        else:
            inputs, refs, reference = _light_data(case)
            sets = [(inputs, refs)]
        checks, run_s = [], 0.0
        for data_set, (inputs, refs) in enumerate(sets):
            if len(inputs) != len(names):  # a harness bug, not the model's: say so loudly
                raise RuntimeError(f"data set has {len(inputs)} inputs, the model {len(names)}")
            start = time.perf_counter()
            outs = model.run(None, dict(zip(names, inputs, strict=True)))
            run_s += time.perf_counter() - start
            for i, (ours, ref) in enumerate(zip(outs, refs, strict=True)):
                where = {"data_set": data_set, "output": i}
                checks.append(where | conformance.compare(ours, ref, case.rtol, case.atol))
        timings["run_s"] = run_s
        ok = all(c["ok"] for c in checks)
        return {"ok": ok, "checks": checks, "reference": reference, **timings}
    except Exception as e:  # every failure is a row in the report, with its text
        return {
            "ok": False,
            "error_type": type(e).__name__,
            "category": _category(e),
            "message": " ".join(str(e).split()),
            "unsupported": sorted(getattr(e, "unsupported", {})),
            "traceback": traceback.format_exc(limit=-3),
            **timings,
        }


def _category(e: Exception) -> str:
    if isinstance(e, UnsupportedOpError):
        return "unsupported-op"
    if isinstance(e, ModelFileError):
        return "load"
    if isinstance(e, BuildError):  # tvmedge.frontend.importer words its errors this way
        return "import" if "importer failed" in str(e) else "build"
    return "run"


def run_isolated(case: Case, timeout: float) -> dict:
    """``evaluate`` in a forked child (tvmedge.conformance.isolated), killed after
    ``timeout`` seconds; a dead or silent child is a failure with its last output."""
    outcome = conformance.isolated(evaluate, case, timeout=timeout)
    if "ok" in outcome:
        return outcome
    category = outcome["result"]  # timeout or crash (an exit without an answer: a crash too)
    category = category if category == "timeout" else "crash"
    return {
        "ok": False,
        "error_type": category,
        "category": category,
        "message": outcome["reason"],
        "unsupported": [],
        "log": outcome.get("log"),  # the child's last output: where it hung or what it said
    }


# --- the report -------------------------------------------------------------------------------


def explain(outcome: dict, case: Case) -> tuple[str, str]:
    """A failure's reason, and what it would take to fix it."""
    category = outcome.get("category", "mismatch")
    if category == "unsupported-op":
        reason = "unsupported op(s): " + ", ".join(outcome["unsupported"])
    elif category == "mismatch":
        reason = _mismatch_reason(outcome["checks"], case)
    elif category == "import":
        reason = "TVM importer error: " + _short(outcome["message"])
    elif category in ("timeout", "crash"):
        reason = f"{category}: " + _short(outcome["message"])
    else:
        reason = f"{category} error ({outcome['error_type']}): " + _short(outcome["message"])
    known = causes.match(reason)
    if known:
        return reason, known[1]
    return reason, CATEGORY_NOTES[category]


def _mismatch_reason(checks: list[dict], case: Case) -> str:
    parts = []
    for c in checks:
        if not c["ok"]:
            where = f" of data set {c['data_set']}" if c["data_set"] else ""
            parts.append(conformance.mismatch_reason([c]) + where)
    return f"numeric mismatch (rtol {case.rtol:g}, atol {case.atol:g}): " + "; ".join(parts)


def _short(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def record(case: Case, outcome: dict, wall_s: float) -> dict:
    """One model's row for the JSON and the tables."""
    row = {
        "folder": case.folder,
        "model": case.name,
        "path": str(case.model.relative_to(SITE_PACKAGES)),
        "result": "pass" if outcome["ok"] else "fail",
        "rtol": case.rtol,
        "atol": case.atol,
        "compile_s": _round(outcome.get("compile_s")),
        "run_s": _round(outcome.get("run_s")),
        "wall_s": _round(wall_s),
        "reference": outcome.get("reference"),
        "outputs": outcome.get("checks"),
        "tvmedge_converters": _tvmedge_converted(case.model),
    }
    if not outcome["ok"]:
        reason, note = explain(outcome, case)
        row |= {"category": outcome.get("category", "mismatch"), "reason": reason, "note": note}
        row["error"] = outcome.get("message")
        row["traceback"] = outcome.get("traceback")  # the last frames, for run-time errors
        row["log"] = outcome.get("log")
    return row


def _tvmedge_converted(path: Path) -> list[str]:
    """The model's ops that tvmedge's own converters convert instead of TVM's importer."""
    from tvmedge.frontend import converters

    ops = {
        node.op_type for node in onnx.load(str(path)).graph.node if node.domain in ("", "ai.onnx")
    }
    return sorted(ops & set(converters.converters()))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def summary(rows: list[dict]) -> list[dict]:
    """Passed / total per folder, all folders, and all but light (the 95% target)."""
    groups = [(f, [r for r in rows if r["folder"] == f]) for f in FOLDERS]
    groups.append(("all", rows))
    groups.append(("all but light", [r for r in rows if r["folder"] != "light"]))
    out = []
    for name, group in groups:
        passed = sum(r["result"] == "pass" for r in group)
        rate = 100.0 * passed / len(group) if group else 0.0
        out.append({"folder": name, "passed": passed, "total": len(group), "pct": round(rate, 1)})
    return out


def environment(timeout: float) -> dict:
    import onnxruntime
    import tvm

    from tvmedge import targets

    return {
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "tvmedge": __version__,
        "tvm": tvm.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
        "target": targets.get("host").describe(),
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs",
        "timeout_s": timeout,
    }


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(rows: list[dict], totals: list[dict], env: dict, wall_s: float) -> str:
    """The whole report: how it was made, the summary, failures by cause, a table per folder."""
    lines = _intro(env, wall_s) + _summary_lines(totals) + _cause_lines(rows)
    for folder in FOLDERS:
        group = [r for r in rows if r["folder"] == folder]
        if group:
            lines += _folder_lines(folder, group)
    return "\n".join(lines) + "\n"


def _intro(env: dict, wall_s: float) -> list[str]:
    return [
        "## Model sets",
        "",
        f"Run on {env['generated']}. Every model the onnx wheel ships in "
        "`onnx/backend/test/data/{light,pytorch-converted,pytorch-operator,simple}` is compiled "
        "with `tvmedge.api.compile` for target `host`, run with `tvmedge.runtime`, and compared "
        "with the reference outputs shipped beside it.",
        "",
        f"- Environment: tvmedge {env['tvmedge']}, TVM {env['tvm']}, onnx {env['onnx']}, "
        f"onnxruntime {env['onnxruntime']}, Python {env['python']}; {env['machine']}.",
        f"- Target: `{env['target']}`.",
        "- Pass rule, as the onnx backend runner: same shape and dtype, and elementwise "
        "`|tvmedge - ref| <= atol + rtol * |ref|` for every output of every test data set. "
        "Tolerances are the runner's per model (its loader's default rtol=1e-3, atol=1e-7 "
        "unless the model's data.json sets others; the tables list each).",
        "- `light` models ship only their outputs; the input is the one the runner generates "
        "(`Runner.generate_dummy_data(..., seed=0, random=False)`: `arange(n) / n`). The shipped "
        "output is the reference when ONNX Runtime reproduces it from that input, else ONNX "
        "Runtime's output is (each light row says which). Their weights are `ConstantOfShape` "
        "fills, so most of their outputs are uniform (0.001 everywhere after the softmax): a "
        "pass shows the model imports, builds and runs, but checks its numerics only weakly.",
        f"- Each model runs in a forked child with a {env['timeout_s']:.0f} s limit; times are "
        f"the child's compile and run. The whole run took {wall_s:.0f} s.",
    ]


def _summary_lines(totals: list[dict]) -> list[str]:
    lines = ["", "### Summary", "", "| folder | passed | total | pass rate |"]
    lines.append("| --- | ---: | ---: | ---: |")
    lines += [f"| {t['folder']} | {t['passed']} | {t['total']} | {t['pct']:.1f}% |" for t in totals]
    by_name = {t["folder"]: t for t in totals}
    light, others = by_name["light"], by_name["all but light"]
    lines += [
        "",
        f"Targets: every `light` model passes: {_yes(light['passed'] == light['total'])}; at "
        f"least 95% of the others pass: {_yes(others['pct'] >= 95.0)} ({others['pct']:.1f}%).",
    ]
    return lines


def _yes(met: bool) -> str:
    return "**met**" if met else "**not met**"


def _cause_lines(rows: list[dict]) -> list[str]:
    """Failures grouped by reason, so each cause and its fix reads once."""
    causes: dict[str, list[dict]] = {}
    for r in rows:
        if r["result"] == "fail":
            causes.setdefault(r["reason"], []).append(r)
    if not causes:
        return ["", "Every model passes."]
    lines = ["", "### Failures by cause", "", "| models | reason | what it would take |"]
    lines.append("| --- | --- | --- |")
    for reason, group in sorted(causes.items(), key=lambda item: -len(item[1])):
        names = ", ".join(f"{r['folder']}/{r['model']}" for r in group)
        lines.append(
            f"| {len(group)}: {_cell(names)} | {_cell(reason)} | {_cell(group[0]['note'])} |"
        )
    return lines


def _folder_lines(folder: str, group: list[dict]) -> list[str]:
    lines = [
        "",
        f"### {folder}",
        "",
        "| model | result | compile s | run s | rtol / atol | detail | what it would take |",
        "| --- | --- | ---: | ---: | --- | --- | --- |",
    ]
    for r in group:
        passed = r["result"] == "pass"
        detail, note = (_pass_detail(r), "") if passed else (r["reason"], r["note"])
        lines.append(
            f"| {r['model']} | **{r['result']}** | {_seconds(r['compile_s'])} | "
            f"{_seconds(r['run_s'])} | {r['rtol']:g} / {r['atol']:g} | {_cell(detail)} | "
            f"{_cell(note)} |"
        )
    return lines


def _pass_detail(row: dict) -> str:
    errors = [c["max_abs"] for c in row["outputs"] or [] if "max_abs" in c]
    detail = f"max abs error {max(errors):.2g}" if errors else "exact"
    if row["folder"] == "light":
        detail += f"; reference: {row['reference']}"
    if row["tvmedge_converters"]:
        detail += "; tvmedge converts " + ", ".join(row["tvmedge_converters"])
    return detail


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def run_models(pattern: str | None, timeout: float) -> dict:
    """Every model set's model, one forked child each; the models section of the report."""
    cases = discover(pattern)
    env = environment(timeout)
    print(f"{len(cases)} models, target {env['target']}", flush=True)
    start = time.perf_counter()
    rows = []
    for i, case in enumerate(cases, 1):
        print(f"[{i:3d}/{len(cases)}] {case.label} ...", end=" ", flush=True)
        t0 = time.perf_counter()
        row = record(case, run_isolated(case, timeout), time.perf_counter() - t0)
        rows.append(row)
        status = "pass" if row["result"] == "pass" else f"FAIL: {row['reason']}"
        print(f"{status} ({row['wall_s']:.1f} s)", flush=True)
    wall_s = time.perf_counter() - start
    totals = summary(rows)
    for t in totals:
        print(f"{t['folder']:>18}: {t['passed']}/{t['total']} ({t['pct']:.1f}%)")
    return {"environment": env, "wall_s": round(wall_s, 1), "summary": totals, "models": rows}
