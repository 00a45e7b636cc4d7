"""python -m benchmarks [--models M ...] [--target host] [--repeat N] [--quick] [--render-only]

Runs the model set against ONNX Runtime for every technique available, saves the run as
benchmarks/results/suite/MACHINE/DATE-COMMIT.json (and .csv), then rewrites BENCHMARKS.md and
the plots under benchmarks/results/plots/ from every run file there.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
from pathlib import Path

from benchmarks import provenance, render, techniques
from benchmarks.provenance import ROOT
from tvmedge.bench.report import CSV_FIELDS, csv_rows, write_json
from tvmedge.errors import TvmedgeError

RESULTS = ROOT / "benchmarks" / "results" / "suite"
PLOTS = ROOT / "benchmarks" / "results" / "plots"
QUICK = {"repeat": 5, "warmup": 2, "rounds": 1, "accuracy_inputs": 2, "calibration_samples": 4}


def parse(argv):
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the benchmark suite and write BENCHMARKS.md from its JSON files.",
    )
    p.add_argument(
        "--models", nargs="+", metavar="NAME", help="default: the set (model_set.DEFAULT)"
    )
    p.add_argument("--target", default="host")
    p.add_argument("--threads", type=int, help="both engines (default: physical cores)")
    p.add_argument("--warmup", type=int, help="untimed runs per engine and round (default 20)")
    p.add_argument("--repeat", type=int, help="timed runs per engine and round (default 30)")
    p.add_argument("--rounds", type=int, help="alternating rounds per engine (default 3)")
    p.add_argument("--max-cv", type=float, default=0.10, help="spread warning threshold")
    p.add_argument(
        "--techniques",
        nargs="+",
        choices=[t.name for t in techniques.TECHNIQUES],
        help="default: every technique this tvmedge can run",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: SqueezeNet only unless --models, {QUICK['repeat']} runs, 1 round",
    )
    p.add_argument(
        "--tuning-curve",
        action="append",
        type=Path,
        metavar="DIR",
        help="a tuning-log folder (TARGET/KEY) to draw the progress of (default: every shipped "
        "or cached folder that has search history)",
    )
    p.add_argument("--render-only", action="store_true", help="rewrite from the JSON files only")
    p.add_argument("--results", type=Path, default=RESULTS, help="run files (default: %(default)s)")
    p.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    p.add_argument("--plots", type=Path, default=PLOTS)
    p.add_argument("--no-plots", action="store_true")
    return p.parse_args(argv)


def write_run(run: dict, results: Path) -> Path:
    """The run file and its CSV (one row per model, technique and engine)."""
    stamp = run["date"].replace("-", "").replace(":", "")[:15]
    commit = (run["commit"] or "nocommit")[:10] + ("-dirty" if run["dirty"] else "")
    path = results / provenance.machine_key(run["machine"]) / f"{stamp}-{commit}.json"
    write_json(run, path)
    with open(path.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=("technique", *CSV_FIELDS), lineterminator="\n")
        writer.writeheader()
        for name, entry in run["models"].items():
            for tech, report in entry["techniques"].items():
                for row in csv_rows(report):
                    writer.writerow({"technique": tech, **row, "model": name})
    return path


def regenerate(results: Path, output: Path, plots: Path | None) -> None:
    runs = render.load_runs(results)
    if plots is not None:
        from benchmarks import plots as plotting

        for made in plotting.draw(runs, plots):
            print(f"wrote {made}")
    root = output.resolve().parent
    text = render.render(runs, root, plots if plots is not None else root / "no-plots")
    tmp = output.with_suffix(".md.part")
    tmp.write_text(text)
    tmp.replace(output)
    print(f"wrote {output} from {len(runs)} run file(s) under {results}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    plots = None if args.no_plots else args.plots
    try:
        if not args.render_only:
            from benchmarks import model_set, suite  # torch, for the PyTorch models

            names = args.models or (model_set.QUICK if args.quick else model_set.DEFAULT)
            unknown = sorted(set(names) - set(model_set.CHOICES))
            if unknown:
                raise TvmedgeError(
                    f"unknown model(s) {', '.join(unknown)}; the set has: "
                    + ", ".join(model_set.CHOICES)
                )
            quick = QUICK if args.quick else {}
            models = {name: model_set.model_path(name) for name in names}
            run = suite.run(
                models,
                target=args.target,
                threads=args.threads,
                warmup=args.warmup if args.warmup is not None else quick.get("warmup", 20),
                repeat=args.repeat if args.repeat is not None else quick.get("repeat", 30),
                rounds=args.rounds if args.rounds is not None else quick.get("rounds", 3),
                max_cv=args.max_cv,
                accuracy_inputs=quick.get("accuracy_inputs", suite.ACCURACY_INPUTS),
                calibration_samples=quick.get(
                    "calibration_samples", techniques.CALIBRATION_SAMPLES
                ),
                technique_names=args.techniques,
                tuning_folders=args.tuning_curve,
                quick=args.quick,
                command=shlex.join(["python", "-m", "benchmarks", *argv]),
            )
            print(f"wrote {write_run(run, args.results)}")
        regenerate(args.results, args.output, plots)
    except TvmedgeError as e:
        print(f"benchmarks: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
