"""Held-out-style timing: what a new user measures on this machine, with no flags.

    python benchmarks/held_out.py squeezenet resnet18 mobilenetv2 resnet50 --rounds 5

For each model, two artifacts are compiled for ``--target host`` exactly as `tvmedge compile`
does with no flags: one with the tuning logs that apply here (the shipped logs of this CPU's
target, if any) and one with ``--no-tuning-logs``. Then, in alternating rounds, a fresh process
per run loads each artifact with ``tvmedge.runtime.load(path)`` and calls ``.run(None, feeds)``
(no thread count: the runtime's default), and a fresh process runs ONNX Runtime's
``InferenceSession`` with its defaults; all three use the project's one timer
(``tvmedge.bench.timing``) on the same seeded inputs. Last, ``tvmedge bench`` times the with-logs
artifact, so the table shows whether the default run is the figure `bench` reports.

Writes benchmarks/results/held-out-MCPU-DATE.json (MCPU: LLVM's name for this CPU) and the
section ``held-out-MCPU`` of docs/notes/benchmarks.md (lab notes), so another machine's run
adds its own section.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.model_set import ROOT, model_path
from benchmarks.notes import NOTES, write_section
from tvmedge import api, zoo
from tvmedge.bench.compare import machine
from tvmedge.bench.timing import summarize, time_runs
from tvmedge.layout import TensorSpec

ENGINES = ("with logs", "no logs", "onnxruntime")


def child(engine: str, path: str, inputs: str, warmup: int, repeat: int) -> None:
    """One timed run in this (fresh) process; prints the latencies as JSON."""
    feeds = dict(np.load(inputs))
    if engine == "onnxruntime":
        import onnxruntime as ort

        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        fn = lambda: session.run(None, feeds)  # noqa: E731
    else:
        from tvmedge import runtime

        model = runtime.load(path)
        fn = lambda: model.run(None, feeds)  # noqa: E731
    print(json.dumps(time_runs(fn, warmup=warmup, repeat=repeat)))


def _timed(engine, path, inputs, warmup, repeat) -> list[float]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            engine,
            str(path),
            str(inputs),
            str(warmup),
            str(repeat),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(name: str, work: Path, *, rounds: int, warmup: int, repeat: int) -> dict:
    model = model_path(name)
    quiet = lambda _m: None  # noqa: E731
    with_logs = api.compile(model, output=work / f"{name}-logs.tvmedge", force=True, log=quiet)
    no_logs = api.compile(
        model, output=work / f"{name}-none.tvmedge", force=True, use_tuning_logs=False, log=quiet
    )
    # the inputs `bench` makes: seed 0, shaped by the manifest
    feeds = api.random_inputs([TensorSpec.from_json(s) for s in with_logs.manifest["inputs"]])
    inputs = work / f"{name}-inputs.npz"
    np.savez(inputs, **feeds)
    paths = {"with logs": with_logs.path, "no logs": no_logs.path, "onnxruntime": model}
    times: dict[str, list[float]] = {e: [] for e in ENGINES}
    for r in range(rounds):  # alternate, and rotate who goes first
        for engine in ENGINES[r % 3 :] + ENGINES[: r % 3]:
            times[engine] += _timed(engine, paths[engine], inputs, warmup, repeat)
    bench = api.bench(
        model, artifact=with_logs.path, warmup=warmup, repeat=repeat, rounds=rounds, log=quiet
    )
    return {
        "latency": {e: summarize(t) for e, t in times.items()},
        "tuning": with_logs.manifest.get("tuning"),
        "bench": {
            "tvmedge_p50_ms": bench["engines"]["tvmedge"]["latency"]["p50_ms"],
            "onnxruntime_p50_ms": bench["engines"]["onnxruntime"]["latency"]["p50_ms"],
            "threads": bench.get("threads"),
        },
    }


def _git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip()


def render(results: dict, meta: dict) -> str:
    m = meta["machine"]
    lines = [
        f"Measured {meta['date']} on {m['cpu']} ({m['physical_cores']} cores, {m['arch']}; "
        f"LLVM mcpu {meta['mcpu']}), commit {meta['commit'][:10]}, batch 1, warm-up "
        f"{meta['warmup']}, {meta['repeat']} runs x {meta['rounds']} alternating rounds, a fresh "
        f"process per run, every engine at its defaults (no thread count). "
        f"Command: `{meta['command']}`.",
        "",
        "| model | logs applied | default run p50 (ms): with logs / no logs / ORT | "
        "logs vs none | with logs / ORT | `bench` p50 tvmedge / ORT (ms) | default run / bench |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lat = {e: r["latency"][e]["p50_ms"] for e in ENGINES}
        folders = (r["tuning"] or {}).get("logs", {}).get("folders") or []
        applied = ", ".join(Path(f).parent.name for f in folders) or "none"
        b = r["bench"]
        lines.append(
            f"| {name} | {applied} "
            f"| {lat['with logs']:.2f} / {lat['no logs']:.2f} / {lat['onnxruntime']:.2f} "
            f"| **{lat['with logs'] / lat['no logs']:.2f}** "
            f"| {lat['with logs'] / lat['onnxruntime']:.2f} "
            f"| {b['tvmedge_p50_ms']:.2f} / {b['onnxruntime_p50_ms']:.2f} "
            f"| {lat['with logs'] / b['tvmedge_p50_ms']:.2f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+", choices=sorted({*zoo.MODELS, "resnet18", "mobilenetv2"}))
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    from tvmedge import machine as host

    with tempfile.TemporaryDirectory(prefix="tvmedge-held-out-") as tmp:
        results = {}
        for name in args.models:
            results[name] = measure(
                name, Path(tmp), rounds=args.rounds, warmup=args.warmup, repeat=args.repeat
            )
            print(name, json.dumps({e: results[name]["latency"][e]["p50_ms"] for e in ENGINES}))
    meta = {
        "date": datetime.date.today().isoformat(),
        "commit": _git_commit(),
        "machine": machine(),
        "mcpu": host.fingerprint().get("mcpu"),
        "warmup": args.warmup,
        "repeat": args.repeat,
        "rounds": args.rounds,
        "command": "python benchmarks/held_out.py " + " ".join(argv),
    }
    out = ROOT / "benchmarks" / "results" / f"held-out-{meta['mcpu']}-{meta['date']}.json"
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    section = f"held-out-{meta['mcpu']}"
    write_section(NOTES, section, render(results, meta))
    print(f"wrote {out.relative_to(ROOT)} and section '{section}' of {NOTES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
