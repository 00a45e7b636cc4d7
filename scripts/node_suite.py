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
from pathlib import Path

import causes

from tvmedge import conformance


def cause(result: dict) -> tuple[str, str]:
    """(cause, what it would take) of one engine's failed result: a known cause, else the
    reason with the case's own names taken out, so that the same failure groups together."""
    text = f"{result['result']}: {result.get('reason', '')}"
    known = causes.match(text)
    if known:
        return known
    text = re.sub(r" on 'model\.onnx'| \(an internal failure of .*", "", text)
    text = re.sub(r" at node '[^']*' \((\w+)\)", r" (\1)", text)
    return text[:120], CAUSE_NOTES.get(result["result"], "")


CAUSE_NOTES = {
    "refused": "TVM's importer or tvmedge's checks refuse the case: a tvmedge converter or "
    "check that covers it.",
    "error": "An internal failure: rerun the case alone (-k NAME) and fix it in tvmedge, or "
    "report it upstream if it is TVM's.",
    "crash": "Rerun the case alone (-k NAME); its log (the JSON's `log`) says where it died.",
    "timeout": "Rerun the case alone (-k NAME); its log says which step was still running.",
    "wrong": "Reduce the case to the op, compare with ONNX Runtime, fix the op's converter.",
}


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
    return sorted(
        {
            n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}"
            for n in case.model.graph.node
        }
    )


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


# --- the report ----------------------------------------------------------------------------

WAYS = {
    "given": "as given (integer inputs at run time)",
    "frozen": "small integer inputs frozen into initializers",
}


def report(results: Path, env: dict) -> dict:
    """The node section of docs/onnx-conformance.json, from a results file."""
    runs, rows = load(results)
    total = len(conformance.node_cases())
    ways = [w for w in WAYS if any(w in r for r in rows)]
    return {
        "environment": env,
        "runs": runs,
        "suite_cases": total,
        "cases_run": len(rows),
        "partial": len(rows) < total,
        "summary": {w: summary(rows, w) for w in ways},
        "causes": {
            w: [
                {"cause": c, "count": len(cs), "cases": cs, "note": n}
                for c, n, cs in by_cause(rows, w)
            ]
            for w in ways
        },
        "int_inputs": int_inputs(rows),
        "cases": [_compact(r) for r in rows],
    }


def _compact(row: dict) -> dict:
    """A case row as docs/onnx-conformance.json keeps it: the child's log only for a crash or a
    timeout (where it says how far the child got), no tracebacks; the results file keeps
    everything."""
    out = dict(row)
    for way in WAYS:
        if way in row:
            out[way] = {
                engine: {
                    k: v
                    for k, v in r.items()
                    if k != "traceback" and (k != "log" or r["result"] in ("crash", "timeout"))
                }
                for engine, r in row[way].items()
            }
    return out


def int_inputs(rows: list[dict]) -> dict:
    """What tvmedge does with a small integer input at run time, measured: among cases that
    have one, those it passes as given (the input is read at run time), those it refuses as
    given but passes frozen (it needs the value at compile time), and the ops of each."""
    has = [r for r in rows if "frozen" in r and "given" in r]

    def ops(group):
        return sorted({op for r in group for op in r["ops"]})

    def res(r, way):
        return r[way]["tvmedge"]["result"]

    read = [r for r in has if res(r, "given") == "pass"]
    needs = [r for r in has if res(r, "given") == "refused" and res(r, "frozen") == "pass"]
    return {
        "cases": len(has),
        "pass_given": len(read),
        "pass_frozen": sum(res(r, "frozen") == "pass" for r in has),
        "refused_given_pass_frozen": len(needs),
        "ops_pass_given": ops(read),
        "ops_refused_given_pass_frozen": ops(needs),
    }


def headline(node: dict) -> list[str]:
    """The top lines of docs/onnx-conformance.md for the node suite."""
    runs = node["runs"]
    cpu = runs[0]["cpu_model"] if runs else "?"
    scope = (
        f"**PARTIAL run: {node['cases_run']} of {node['suite_cases']} cases**"
        if node["partial"]
        else f"all {node['suite_cases']} cases"
    )
    lines = [
        f"- **Node suite** ({scope}; run on {cpu}, commit `{runs[0]['git'] if runs else '?'}`):"
    ]
    for way, s in node["summary"].items():
        k = s["tvmedge"]
        lines.append(
            f"  - {WAYS[way]}: tvmedge passes **{k['pass']} / {s['cases']}**, ONNX Runtime "
            f"passes {s['onnxruntime_pass']}; tvmedge passes {s['tvmedge_pass_of_ort_pass']} of "
            f"the cases ONNX Runtime passes. **Wrong: {k['wrong']}**"
            + (f" ({', '.join(s['wrong'])})" if s["wrong"] else "")
            + f"; refused {k['refused']}, error {k['error']}, crash {k['crash']}, "
            f"timeout {k['timeout']}."
        )
    return lines


def markdown(node: dict) -> str:
    lines = ["## Node suite", "", *_how(node), *_int_input_lines(node), *_summary_table(node)]
    for way in node["summary"]:
        lines += _wrong_lines(node, way) + _cause_table(node, way)
    lines += _case_table(node)
    return "\n".join(lines) + "\n"


def _how(node: dict) -> list[str]:
    runs, env = node["runs"], node["environment"]
    when = ", ".join(
        f"{r['started']} at `{r['git']}`" + (f" (-k {r['pattern']})" if r["pattern"] else "")
        for r in runs
    )
    partial = (
        [
            f"**This is a partial run**: {node['cases_run']} of the suite's {node['suite_cases']} "
            "cases have a result; the counts below are of those cases only.",
            "",
        ]
        if node["partial"]
        else []
    )
    return [
        *partial,
        "Every case of ONNX's per-operator node suite (`onnx.backend.test.case.node."
        f"collect_testcases()`, onnx {env['onnx']}: {node['suite_cases']} cases) is compiled by "
        '`tvmedge.api.compile(..., target="host", check=False)` at the shapes of its inputs, '
        "run once by `tvmedge.runtime`, and compared with the case's expected outputs; the same "
        f"model runs through ONNX Runtime {env['onnxruntime']} (CPU) for comparison. Runner: "
        "`tvmedge/conformance.py`; each engine runs in a forked child with a "
        f"{runs[0]['timeout_s'] if runs else '?'} s limit.",
        "",
        f"- Runs: {when}. Target `{env['target']}`; {env['machine']}.",
        "- Pass rule, as the onnx backend runner (`Runner.assert_similar_outputs`): same number "
        "of outputs, same shape and dtype, then `np.testing.assert_allclose` with the case's "
        "rtol/atol (every case uses the runner's defaults, rtol 1e-3, atol 1e-7): NaN must be "
        "NaN at the same places; bfloat16 with rtol at least 2^-6.",
        "- Result kinds: **pass**; **wrong** (ran, outputs differ: the worst kind); **refused** "
        "(compile raised a `TvmedgeError` that is not an internal error: an unsupported op, "
        "attribute, dtype or input kind, with tvmedge's one-line message); **error** (an "
        "internal error, any other exception at compile, or a failure while running the "
        "compiled model); **crash** (the child died by a signal); **timeout**. For ONNX "
        "Runtime, error means it would not load or run the case (e.g. IR version 14, newer "
        "than it supports).",
        "",
    ]


def _int_input_lines(node: dict) -> list[str]:
    ii = node["int_inputs"]
    if not ii["cases"]:
        return []
    return [
        "### Integer inputs at run time",
        "",
        "Many node cases pass shape-like values (Reshape's `shape`, Slice's `starts`/`ends`/"
        "`axes`, Pad's `pads`, TopK's `k`, Tile's `repeats`, ...) as graph inputs, where "
        "exported models carry them as initializers. tvmedge never treats a graph input as a "
        "constant: its shape folding (`tvmedge/frontend/fold_shapes.py`) evaluates only "
        "initializers, `Constant` nodes and `Shape`/`Size` of tensors. So a run-time integer "
        "input goes to TVM's ONNX importer as a Relax tensor, and the op's converter either "
        "reads it at run time (it builds a dynamic op, the value is bound when the model runs) "
        'or needs it at compile time and fails ("Reshape requires the input new shape to be '
        'Shape", "TopK k must be a constant"): tvmedge reports that as refused, naming the '
        "node. `--freeze-small-int-inputs` turns integer inputs of rank 0 or 1 with at most "
        f"{conformance.SMALL_INT_ELEMENTS} elements into initializers for both engines (the "
        "case's own values, so the expected outputs stay right) and feeds the rest; "
        "`--both-ways` runs each case both ways. Measured here:",
        "",
        f"- {ii['cases']} cases have such inputs; tvmedge passes {ii['pass_given']} of them as "
        f"given and {ii['pass_frozen']} frozen.",
        f"- Read at run time (pass as given): ops {', '.join(ii['ops_pass_given']) or 'none'}.",
        f"- Needed at compile time ({ii['refused_given_pass_frozen']} cases refused as given, "
        f"pass frozen): ops {', '.join(ii['ops_refused_given_pass_frozen']) or 'none'}.",
        "",
    ]


def _summary_table(node: dict) -> list[str]:
    ways = list(node["summary"])
    lines = ["### Summary", "", "| | " + " | ".join(WAYS[w] for w in ways) + " |"]
    lines.append("| --- |" + " ---: |" * len(ways))
    rows = [("cases", lambda s: s["cases"])]
    rows += [(f"tvmedge {k}", lambda s, k=k: s["tvmedge"][k]) for k in conformance.KINDS]
    rows += [
        ("ONNX Runtime pass", lambda s: s["onnxruntime_pass"]),
        ("both pass", lambda s: s["both_pass"]),
        ("tvmedge pass, of ORT's passes", lambda s: s["tvmedge_pass_of_ort_pass"]),
    ]
    for label, get in rows:
        lines.append(
            f"| {label} | " + " | ".join(str(get(node["summary"][w])) for w in ways) + " |"
        )
    return [*lines, ""]


def _wrong_lines(node: dict, way: str) -> list[str]:
    by_name = {r["case"]: r for r in node["cases"]}
    wrong = node["summary"][way]["wrong"]
    lines = [f"### Wrong results, {WAYS[way]}: {len(wrong)}", ""]
    if not wrong:
        return [*lines, "None.", ""]
    lines += ["| case | ops | what differs | ONNX Runtime |", "| --- | --- | --- | --- |"]
    for name in wrong:
        r = by_name[name][way]
        lines.append(
            f"| {name} | {', '.join(by_name[name]['ops'])} | {_cell(r['tvmedge']['reason'])} | "
            f"{r['onnxruntime']['result']} |"
        )
    return [*lines, ""]


def _cause_table(node: dict, way: str) -> list[str]:
    lines = [
        f"### tvmedge failures by cause, {WAYS[way]}",
        "",
        "| cause | cases | which | what it would take |",
        "| --- | ---: | --- | --- |",
    ]
    for c in node["causes"][way]:
        shown = ", ".join(c["cases"][:12]) + (
            f", ... ({len(c['cases']) - 12} more)" if len(c["cases"]) > 12 else ""
        )
        lines.append(f"| {_cell(c['cause'])} | {c['count']} | {shown} | {_cell(c['note'])} |")
    return [*lines, ""]


def _case_table(node: dict) -> list[str]:
    ways = list(node["summary"])
    head = (
        "| case | ops | "
        + " | ".join(f"tvmedge {w} | ORT {w}" for w in ways)
        + " | tvmedge s | reason |"
    )
    lines = [
        "### Every case",
        "",
        head,
        "| --- | --- |" + " --- | --- |" * len(ways) + " ---: | --- |",
    ]
    for r in node["cases"]:
        cells, reason = [], ""
        for w in ways:
            if w not in r:
                cells += ["", ""]
                continue
            t, o = r[w]["tvmedge"], r[w]["onnxruntime"]
            cells += [_kind(t["result"]), o["result"]]
            if t["result"] != "pass" and not reason:
                reason = f"{w}: {t.get('reason', '')}"
        seconds = r["given"]["tvmedge"].get("wall_s") if "given" in r else None
        lines.append(
            f"| {r['case']} | {', '.join(r['ops'][:4])}{', ...' if len(r['ops']) > 4 else ''} | "
            + " | ".join(cells)
            + f" | {'' if seconds is None else f'{seconds:.1f}'} | {_cell(reason[:200])} |"
        )
    return lines


def _kind(kind: str) -> str:
    return f"**{kind}**" if kind == "wrong" else kind


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
