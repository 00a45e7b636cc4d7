"""ONNX conformance: the onnx wheel's backend-test model sets and its per-operator node suite,
compiled and run by tvmedge (and the node suite by ONNX Runtime too, for comparison).

    python scripts/onnx_conformance.py [--suite models|node|all] [-k REGEX] [--timeout S]
        [--freeze-small-int-inputs | --both-ways] [--results FILE] [--report-only]

Model sets: scripts/model_sets.py. Node suite: scripts/node_suite.py, on the runner in
tvmedge/conformance.py. TVM and tvmedge are imported once; each model or case then runs in a
forked child of this warm process with a timeout, so a crash or hang is a result, not the end
of the run. Writes docs/onnx-conformance.md and docs/onnx-conformance.json; a run of one suite
keeps the other suite's last results (from the JSON) in both.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from tvmedge import conformance, machine

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_sets
import node_suite

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=("models", "node", "all"), default="all")
    parser.add_argument(
        "-k",
        "--only",
        dest="pattern",
        help="run only cases whose name matches this regex "
        "(models: FOLDER/NAME, node: the case name)",
    )
    parser.add_argument("--timeout", type=float, help="seconds per model (180) or case (120)")
    parser.add_argument(
        "--freeze-small-int-inputs",
        action="store_true",
        help="node suite: run cases with small integer inputs made initializers, for both "
        "engines, instead of as given",
    )
    parser.add_argument(
        "--both-ways",
        action="store_true",
        help="node suite: run each case as given and, if it has small integer inputs, frozen",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=ROOT / "build" / "onnx-node-results.jsonl",
        help="node suite: the JSON-lines file each case's result is appended to",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: write the docs from --results (and the model sets' last JSON)",
    )
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs")
    args = parser.parse_args()

    # Import the compiler here, once, so that every forked child starts warm.
    import tvmedge.build
    import tvmedge.export
    import tvmedge.frontend.importer
    import tvmedge.pipeline
    import tvmedge.runtime
    import tvmedge.tune.logs  # noqa: F401

    previous = _previous_report(args.out_dir / "onnx-conformance.json")
    report = {"models": previous.get("models"), "node": previous.get("node")}
    if args.suite in ("models", "all") and not args.report_only:
        report["models"] = model_sets.run_models(args.pattern, args.timeout or 180.0)
    if args.suite in ("node", "all"):
        if not args.report_only:
            ways = (
                ("given", "frozen")
                if args.both_ways
                else (("frozen",) if args.freeze_small_int_inputs else ("given",))
            )
            cases = conformance.node_cases(args.pattern)
            print(f"{len(cases)} node cases, run {' and '.join(ways)}", flush=True)
            meta = {"git": git_commit(), "cpu_model": machine.cpu_model()}
            meta |= {"started": _now(), "pattern": args.pattern}
            node_suite.run(
                cases, timeout=args.timeout or 120.0, ways=ways, results=args.results, meta=meta
            )
        report["node"] = node_suite.report(
            args.results, model_sets.environment(args.timeout or 120.0)
        )
    report = {"git": git_commit(), "cpu_model": machine.cpu_model()} | report
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "onnx-conformance.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out_dir / "onnx-conformance.md").write_text(render(report))
    print(f"wrote {args.out_dir}/onnx-conformance.{{md,json}}")
    return 0


def _previous_report(path: Path) -> dict:
    """The last report, so a run of one suite keeps the other's results. A report from before
    the node suite holds the model sets' section at its top level."""
    if not path.exists():
        return {}
    old = json.loads(path.read_text())
    return {"models": old} if "summary" in old else old


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def git_commit() -> str:
    """The commit the run was made at, '+dirty' when the work tree had changes."""

    def git(*a: str) -> str:
        return subprocess.run(
            ["git", *a], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return git("rev-parse", "HEAD") + ("+dirty" if git("status", "--porcelain", "-uno") else "")


def render(report: dict) -> str:
    """docs/onnx-conformance.md: the headline of each suite, then each suite's section."""
    lines = [
        "# ONNX conformance",
        "",
        "Generated by `scripts/onnx_conformance.py`; do not edit by hand, re-run the script. "
        f"Report written at commit `{report['git']}` on a {report['cpu_model']}.",
        "",
    ]
    node, models = report.get("node"), report.get("models")
    if node:
        lines += node_suite.headline(node)
    if models:
        all_ = next(t for t in models["summary"] if t["folder"] == "all")
        lines.append(
            f"- **Model sets**: {all_['passed']} / {all_['total']} models pass "
            f"(run {models['environment']['generated']})."
        )
    text = "\n".join(lines) + "\n"
    if node:
        text += "\n" + node_suite.markdown(node)
    if models:
        m = models
        text += "\n" + model_sets.markdown(m["models"], m["summary"], m["environment"], m["wall_s"])
    return text


if __name__ == "__main__":
    raise SystemExit(main())
