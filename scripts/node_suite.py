"""ONNX's per-operator node suite through tvmedge and ONNX Runtime, for scripts/onnx_conformance.py.

Every case of ``onnx.backend.test.case.node.collect_testcases()`` runs through
``tvmedge.conformance.run_case`` (each engine in a forked child with a timeout). A case whose
small integer inputs (axes, shapes, pads, k, ...) arrive as graph inputs can also run with
them frozen into initializers (``--freeze-small-int-inputs``), as exported models carry them,
because tvmedge folds constants and refuses or binds run-time ones (docs/onnx-conformance.md).

Each finished case is appended to a JSON-lines file at once, so a run that is stopped still
leaves every result it reached; the report is made from that file (and says when it is partial).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tvmedge import conformance

# Causes of failure, matched in order against "<kind>: <reason>"; the first match wins. Each
# is (pattern, cause, what it would take); the cause may use the pattern's groups ({1}).
KNOWN_CAUSES: tuple[tuple[str, str, str], ...] = (
    (
        r"unsupported ONNX operator\(s\): (\S+) \(",
        "unsupported op {1}",
        "Add a converter for the op as tvmedge/frontend/converters/<family>.py, tested "
        "against ONNX Runtime.",
    ),
    (
        r"unsupported ONNX operator\(s\)",
        "unsupported ops (several)",
        "Add converters for the ops the reason lists.",
    ),
    (
        r"is not a tensor \(sequences, maps and optionals",
        "sequence/optional graph input or output",
        "tvmedge compiles tensor inputs and outputs only; a sequence or optional at the graph "
        "boundary would need the runtime to pass TVM ADT objects.",
    ),
    (
        r"requires the input new shape to be Shape|must be a constant|must be constant"
        r"|only supports constant|should be constant|requires .* to be constant"
        r"|Dynamic .* not supported|is not a constant",
        "run-time shape/axes input",
        "The op's shape-like input is a graph input, not a constant: TVM's importer needs it "
        "at compile time. Exported models carry these as initializers (see the frozen run); "
        "a converter that reads the value at run time would fix it.",
    ),
    (
        r"'num_heads'",
        "Attention: 'num_heads' not given",
        "TVM's Attention converter reads the `num_heads` attribute, which the opset-23 "
        "Attention (4-D q/k/v) does not need; a tvmedge converter for opset-23 Attention.",
    ),
    (
        r"Unsupported dtype in DLTensor|bfloat16|float8|float4|int4|uint4|e4m3|e5m2",
        "low-precision dtype (bfloat16/float8/int4)",
        "The dtype has no numpy<->DLPack path in the runtime or no TVM lowering; support it "
        "in tvmedge.runtime's feeds and outputs.",
    ),
    (
        r"^refused: TVM's ONNX importer failed",
        "TVM importer: other",
        "TVM's converter fails on this case; override it with a tvmedge converter.",
    ),
    (r"^refused: model .* fails the ONNX checker", "ONNX checker", "tvmedge's load check."),
    (r"^refused: ", "refused: other", "Read the reason."),
    (r"^wrong: ", "wrong result", "A wrong answer: reduce to the op and fix its converter."),
    (r"^(crash|timeout): ", "{0}", "Rerun the case alone (-k) and read its log in the JSON."),
    (r"^error: ", "internal error", "A tvmedge or TVM bug: rerun the case alone (-k)."),
)


def cause(result: dict) -> tuple[str, str]:
    """(cause, what it would take) of one engine's failed result."""
    text = f"{result['result']}: {result.get('reason', '')}"
    for pattern, label, note in KNOWN_CAUSES:
        m = re.search(pattern, text)
        if m:
            return label.format(result["result"], *m.groups()), note
    return result["result"], ""


def _slim(result: dict) -> dict:
    """A result as the JSON keeps it: the child's log and traceback only for failures that
    need them, and only their tails."""
    out = {k: v for k, v in result.items() if k not in ("checks", "log", "traceback")}
    for key in ("log", "traceback"):
        if result.get(key):
            out[key] = result[key][-1500:]
    for key in ("compile_s", "run_s", "wall_s"):
        if key in out:
            out[key] = round(out[key], 3)
    if result.get("result") == "wrong":
        out["checks"] = result.get("checks")
    return out


def ops_of(case: conformance.Case) -> list[str]:
    return sorted({n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}"
                   for n in case.model.graph.node})


def run(
    cases, *, timeout: float, ways: tuple[str, ...], results: Path, meta: dict, log=print
) -> None:
    """Run ``cases`` ``ways`` ('given', 'frozen'), appending one JSON line per case, after a
    line that says how and where (``meta``: commit, date, CPU, options)."""
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a") as out:
        meta = meta | {"cases": len(cases), "ways": list(ways), "timeout_s": timeout}
        out.write(json.dumps({"run": meta}) + "\n")
        for i, case in enumerate(cases, 1):
            row = {"case": case.name, "ops": ops_of(case)}
            for way in ways:
                run_as = conformance.freeze_small_int_inputs(case) if way == "frozen" else case
                if way == "frozen" and not run_as.frozen:
                    continue  # nothing to freeze: the frozen run would be the given run
                both = conformance.run_case(run_as, timeout)
                row[way] = {engine: _slim(r) for engine, r in both.items()}
                if way == "frozen":
                    row["frozen_inputs"] = list(run_as.frozen)
            out.write(json.dumps(row) + "\n")
            out.flush()
            log(f"[{i:4d}/{len(cases)}] {case.name}: " + _progress(row))


def _progress(row: dict) -> str:
    parts = []
    for way in ("given", "frozen"):
        if way in row:
            t, o = row[way]["tvmedge"], row[way]["onnxruntime"]
            reason = "" if t["result"] == "pass" else f" ({t.get('reason', '')[:120]})"
            parts.append(f"{way}: tvmedge {t['result']}{reason}, ORT {o['result']}")
    return "; ".join(parts)


def load(results: Path) -> tuple[list[dict], list[dict]]:
    """(the runs' meta lines, the case rows) of a results file; the last row of a case wins
    (a rerun with -k replaces it)."""
    runs, rows = [], {}
    for line in results.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if "run" in row:
                runs.append(row["run"])
            else:
                rows[row["case"]] = row
    return runs, list(rows.values())


def summary(rows: list[dict], way: str) -> dict:
    """Counts for one way of running: tvmedge kinds, ORT passes, both-pass, the wrong ones."""
    ran = [r for r in rows if way in r]
    kinds = {k: 0 for k in conformance.KINDS}
    for r in ran:
        kinds[r[way]["tvmedge"]["result"]] += 1
    ort = sum(r[way]["onnxruntime"]["result"] == "pass" for r in ran)
    return {
        "cases": len(ran),
        "tvmedge": kinds,
        "onnxruntime_pass": ort,
        "both_pass": sum(
            r[way]["tvmedge"]["result"] == "pass" and r[way]["onnxruntime"]["result"] == "pass"
            for r in ran
        ),
        "tvmedge_pass_of_ort_pass": sum(
            r[way]["tvmedge"]["result"] == "pass"
            for r in ran
            if r[way]["onnxruntime"]["result"] == "pass"
        ),
        "wrong": sorted(r["case"] for r in ran if r[way]["tvmedge"]["result"] == "wrong"),
    }


def by_cause(rows: list[dict], way: str) -> list[tuple[str, str, list[str]]]:
    """(cause, note, cases) for tvmedge's failures, most cases first."""
    groups: dict[str, tuple[str, list[str]]] = {}
    for r in rows:
        if way in r and r[way]["tvmedge"]["result"] != "pass":
            label, note = cause(r[way]["tvmedge"])
            groups.setdefault(label, (note, []))[1].append(r["case"])
    return sorted(((c, n, cs) for c, (n, cs) in groups.items()), key=lambda g: -len(g[2]))


