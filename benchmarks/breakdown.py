"""Where a model's time goes, kernel by kernel, against ONNX Runtime's own per-node profile.

    python benchmarks/breakdown.py mobilenetv2 --threads 1 --section breakdown-mobilenetv2

Each convolution and matmul of tvmedge's artifact (compiled for the host with the shipped
tuning logs) is matched with ORT's Conv / Gemm / MatMul node in the same position of the run
(both engines run them in the graph's order). Per pair: tvmedge's time in the model, its time
run alone with its data in the caches (`tvmedge profile --alone`), ORT's time for the node, and
the running sum of the difference. Medians over the runs, the same inputs and threads for both.

One thread by default, for a fair per-node comparison: with its thread pool, ORT's profiler
adds to every node (its node sum reads above its own plain run), at one thread it does not.
The table and totals go into docs/notes/benchmarks.md (lab notes); the report as JSON under
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import models as torch_models
from benchmarks.model_set import ROOT, model_path
from benchmarks.notes import NOTES, write_section
from tvmedge import api, profile, runtime, zoo
from tvmedge.bench.compare import machine
from tvmedge.bench.timing import time_runs

HEAVY_ORT = {"Conv", "FusedConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul", "ConvTranspose"}
HEAVY_TVM = ("conv", "matmul", "dense")
WARMUP = 20


def ort_nodes(model: Path, feeds: dict, threads: int, repeat: int, workdir: Path):
    """([(node, op, median us)] in run order, plain median ms of a session without profiling)."""
    import onnxruntime as ort

    def session(profiling: bool):
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        if profiling:
            so.enable_profiling = True
            so.profile_file_prefix = str(workdir / "ort")
        return ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])

    plain = session(False)
    times = time_runs(lambda: plain.run(None, feeds), warmup=WARMUP, repeat=repeat)
    prof = session(True)
    for _ in range(WARMUP + repeat):
        prof.run(None, feeds)
    events = json.loads(Path(prof.end_profiling()).read_text())
    durations: dict[tuple[str, str], list[float]] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            key = (e["name"][: -len("_kernel_time")], e["args"].get("op_name", "?"))
            durations.setdefault(key, []).append(e["dur"])
    # the last `repeat` runs of each node: the first ones were warm-up
    nodes = [(n, op, statistics.median(d[-repeat:])) for (n, op), d in durations.items()]
    return nodes, statistics.median(times) * 1e3


def tvm_calls(model, feeds: dict, threads: int, repeat: int):
    """([(kernel, in-model us, alone us)] in run order, plain median ms)."""
    runtime.vm.set_threads(threads)
    arrays = model._check_feeds(feeds)
    vm = model._vm
    times = time_runs(lambda: vm(arrays), warmup=WARMUP, repeat=repeat)
    calls = profile.time_calls(vm, arrays, repeat)
    alone = profile.time_alone(vm, arrays, max(repeat, 20))
    rows = [(name, s * 1e6, alone[name] * 1e6) for name, s in calls]
    return rows, statistics.median(times) * 1e3


def _short(node: str) -> str:
    """ORT names a fused node after its output: drop the suffixes, keep the tail."""
    for suffix in ("_nchwc", "_output_0"):
        node = node.removesuffix(suffix)
    return node if len(node) <= 40 else "..." + node[-37:]


def render(name: str, report: dict) -> str:
    m, t = report["meta"], report["totals"]
    lines = [
        f"{name}, measured {m['date']} on {m['cpu']}, {m['threads']} thread(s), batch 1, "
        f"medians of {m['repeat']} runs after {WARMUP} warm-up, one process for both engines. "
        f"Command: `{m['command']}`.",
        "",
        f"- plain run: tvmedge {t['tvmedge_run_ms']:.2f} ms, ORT {t['ort_run_ms']:.2f} ms "
        f"(**{t['tvmedge_run_ms'] / t['ort_run_ms']:.2f}x**)",
        f"- kernels in the model: tvmedge {t['tvmedge_kernels_ms']:.2f} ms, ORT nodes "
        f"{t['ort_nodes_ms']:.2f} ms; tvmedge's kernels run alone with their data in the caches: "
        f"{t['tvmedge_alone_ms']:.2f} ms ({t['tvmedge_alone_ms'] / t['ort_nodes_ms']:.2f}x ORT's "
        f"nodes in the model)",
    ]
    pairs = report["pairs"]
    if not pairs:
        lines.append(f"- not matched: {report['unmatched']}")
        return "\n".join(lines)
    lines += [
        "",
        "| # | tvmedge kernel | in model us | alone us | ORT node | ORT us | difference us "
        "| running sum us |",
        "|---|---|---|---|---|---|---|---|",
    ]
    running = 0.0
    for i, p in enumerate(pairs):
        running += p["tvmedge_us"] - p["ort_us"]
        lines.append(
            f"| {i} | {p['kernel']} | {p['tvmedge_us']:.1f} | {p['alone_us']:.1f} | "
            f"{_short(p['node'])} | {p['ort_us']:.1f} | {p['tvmedge_us'] - p['ort_us']:+.1f} "
            f"| {running:+.1f} |"
        )
    lines.append(
        f"| | other kernels: {', '.join(report['other_tvmedge']) or '-'} | "
        f"{t['tvmedge_other_us']:.1f} | | other nodes: {', '.join(report['other_ort']) or '-'} "
        f"| {t['ort_other_us']:.1f} | {t['tvmedge_other_us'] - t['ort_other_us']:+.1f} | |"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", choices=sorted({*zoo.MODELS, *torch_models.MODELS}))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--section", help="notes section (default: breakdown-MODEL)")
    args = p.parse_args(argv)
    onnx_path = model_path(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        built = api.compile(onnx_path, target="host", output=work / "model.tvmedge", log=print)
        model = runtime.load(built.path, verify=False, threads=args.threads)
        feeds = api.random_inputs(model.get_inputs(), seed=0)  # the same inputs for both
        calls, tvm_ms = tvm_calls(model, feeds, args.threads, args.repeat)
        nodes, ort_ms = ort_nodes(onnx_path, feeds, args.threads, args.repeat, work)
    heavy_t = [c for c in calls if any(h in c[0] for h in HEAVY_TVM)]
    other_t = [c for c in calls if not any(h in c[0] for h in HEAVY_TVM)]
    heavy_o = [n for n in nodes if n[1] in HEAVY_ORT]
    other_o = [n for n in nodes if n[1] not in HEAVY_ORT]
    pairs, unmatched = [], None
    if len(heavy_t) == len(heavy_o):
        pairs = [
            {"kernel": k, "tvmedge_us": us, "alone_us": alone, "node": n, "op": op, "ort_us": o}
            for (k, us, alone), (n, op, o) in zip(heavy_t, heavy_o, strict=True)
        ]
    else:
        unmatched = f"{len(heavy_t)} tvmedge conv/matmul kernels, {len(heavy_o)} ORT nodes"
    cpu = machine()
    report = {
        "meta": {
            "date": datetime.date.today().isoformat(),
            "cpu": f"{cpu['cpu']} ({cpu['physical_cores']} cores)",
            "threads": args.threads,
            "repeat": args.repeat,
            "command": "python benchmarks/breakdown.py " + " ".join(argv or sys.argv[1:]),
        },
        "pairs": pairs,
        "unmatched": unmatched,
        "other_tvmedge": sorted({c[0] for c in other_t}),
        "other_ort": sorted({n[1] for n in other_o}),
        "totals": {
            "tvmedge_run_ms": tvm_ms,
            "ort_run_ms": ort_ms,
            "tvmedge_kernels_ms": sum(c[1] for c in calls) / 1e3,
            "tvmedge_alone_ms": sum(c[2] for c in calls) / 1e3,
            "ort_nodes_ms": sum(n[2] for n in nodes) / 1e3,
            "tvmedge_other_us": sum(c[1] for c in other_t),
            "ort_other_us": sum(n[2] for n in other_o),
        },
    }
    section = args.section or f"breakdown-{args.model}"
    out = ROOT / "benchmarks" / "results" / f"{section}-{report['meta']['date']}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    text = render(args.model, report)
    write_section(NOTES, section, text)
    print(text)
    print(f"wrote {out.relative_to(ROOT)} and section '{section}' of {NOTES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
