"""Channel shrinking's speed-up: zeroed models compiled with and without shrink-channels.

    python benchmarks/prune.py --rounds 3 --repeat 200 --width 4

Models (tests/prune_models.py, batch 1, 3x32x32, channels x ``--width``): the ResNet-style and
MobileNet-style networks
with 50% of every conv's filters zeroed by ``torch.nn.utils.prune.ln_structured`` (each conv on
its own, so filters coupled through a residual add mostly stay), and the same networks, dense,
pruned by ``--prune channels=0.5`` (coupled channels zeroed together). Each is compiled for
``--target host`` twice, with the default rewrites and without shrink-channels, and both
artifacts are timed at 1 thread in alternating rounds in a fresh process (tvmedge.bench.timing).
``--real`` adds ResNet-18 and MobileNetV2 (benchmarks/models.py, 224x224) pruned by
``--prune channels=0.3``. Writes benchmarks/results/prune-MCPU-DATE.json and section
``prune-MCPU`` of docs/notes/benchmarks.md (lab notes).
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import onnx
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import models  # noqa: E402
from benchmarks.notes import NOTES, write_section  # noqa: E402
from tests.prune_models import MODELS, export_zeroed  # noqa: E402
from tests.torch_models import export_torch  # noqa: E402
from tvmedge import api, rewrites, runtime  # noqa: E402
from tvmedge.bench.compare import machine  # noqa: E402
from tvmedge.bench.timing import summarize, time_runs  # noqa: E402
from tvmedge.rewrites.prune import parse_prune, prune_model  # noqa: E402

REAL = ("resnet18", "mobilenetv2")  # benchmarks/models.py, --prune channels=0.3 with --real


def _shape(path: Path) -> dict[str, tuple[int, ...]]:
    """The model's input bound to batch 1 (its other dims are static)."""
    (inp,) = onnx.load(path, load_external_data=False).graph.input
    dims = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    return {inp.name: tuple(dims)}


def _models(work: Path, width: int, real: bool) -> dict[str, Path]:
    paths = {}
    for name in REAL if real else ():
        dense = models.export(name, work / f"{name}.onnx")
        pruned, _ = prune_model(onnx.load(dense), parse_prune("channels=0.3"), round_to=16)
        onnx.save(pruned, work / f"{name}-prune30.onnx")
        paths[f"{name} --prune channels=0.3"] = work / f"{name}-prune30.onnx"
    for name in MODELS:
        zeroed = work / f"{name}-ln50.onnx"
        export_zeroed(name, 0.5, zeroed, width=width)
        paths[f"{name} x{width} ln_structured 50%"] = zeroed
        torch.manual_seed(0)
        dense = work / f"{name}.onnx"
        export_torch(MODELS[name](width).eval(), torch.randn(1, 3, 32, 32), dense, opset=17)
        pruned, _ = prune_model(onnx.load(dense), parse_prune("channels=0.5"))
        onnx.save(pruned, work / f"{name}-prune50.onnx")
        paths[f"{name} x{width} --prune channels=0.5"] = work / f"{name}-prune50.onnx"
    return paths


def _compile(path: Path, out: Path, shrink: bool) -> dict:
    specs = rewrites.DEFAULT if shrink else rewrites.without("shrink-channels")
    result = api.compile(
        path,
        output=out,
        input_shapes=_shape(path),
        rewrites=specs,
        force=True,
        log=lambda _m: None,
    )
    records = [r for r in result.manifest["rewrites"] if r["name"] == "shrink-channels"]
    return records[0]["report"] if records else {}


def _time(work: Path, rounds: int, repeat: int, warmup: int) -> dict:
    """p50 etc. of the two artifacts in ``work``, alternating, in this (fresh) process: timed in
    the process that compiled them, both ran 50-100x slower here."""
    loaded = {k: runtime.load(work / f"{k}.tvmedge", threads=1) for k in ("kept", "shrunk")}
    feeds = api.random_inputs(loaded["kept"].get_inputs())
    times = {k: [] for k in loaded}
    for _ in range(rounds):
        for k, m in loaded.items():
            times[k] += time_runs(lambda m=m: m.run(None, feeds), warmup=warmup, repeat=repeat)
    return {k: summarize(v) for k, v in times.items()}


def section(result: dict, date: str) -> str:
    """The BENCHMARKS.md section of a run's results."""
    info, args = result["machine"], result["args"]
    lines = [
        f"{info['cpu']} (LLVM {result['mcpu']}), 1 thread, batch 1, {date}; {args['rounds']} "
        f"alternating rounds of {args['repeat']} runs (`benchmarks/prune.py`), layers rounded to "
        "whole 16-lane vectors. The machine was shared with 4-5 other jobs on its 2 cores (load "
        "average 13-16) while this ran, so a p50 can be several times the minimum (the least "
        "disturbed run); both are shown. ln_structured zeroes each conv alone, "
        "so zeroed filters coupled through a residual add mostly stay (zero_kept in the JSON); "
        "--prune zeroes coupled channels together.",
        "",
        "| model | params | MACs | p50 unshrunk | p50 shrunk | min unshrunk | min shrunk "
        "| speed-up p50 / min | MAC ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["rows"]:
        (p0, p1), (m0, m1) = row["report"]["params"], row["report"]["macs"]
        kept, shrunk = row["timing"]["kept"], row["timing"]["shrunk"]
        lines.append(
            f"| {row['model']} | {p0} -> {p1} | {m0 / 1e6:.2f}M -> {m1 / 1e6:.2f}M | "
            f"{kept['p50_ms']:.3f} ms | {shrunk['p50_ms']:.3f} ms | {kept['min_ms']:.3f} ms | "
            f"{shrunk['min_ms']:.3f} ms | {kept['p50_ms'] / shrunk['p50_ms']:.2f}x / "
            f"{kept['min_ms'] / shrunk['min_ms']:.2f}x | {m0 / m1:.2f}x |"
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeat", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--width", type=int, default=4, help="channel multiplier of the models")
    p.add_argument("--real", action="store_true", help="add ResNet-18 and MobileNetV2 rows")
    p.add_argument("--time-only", metavar="DIR", help=argparse.SUPPRESS)  # the child's job
    args = p.parse_args()
    if args.time_only:
        stats = _time(Path(args.time_only), args.rounds, args.repeat, args.warmup)
        print(json.dumps(stats))
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for label, path in _models(work, args.width, args.real).items():
            report = _compile(path, work / "shrunk.tvmedge", True)
            _compile(path, work / "kept.tvmedge", False)
            child = [sys.executable, __file__, "--time-only", str(work)]
            child += ["--rounds", str(args.rounds), "--repeat", str(args.repeat)]
            child += ["--warmup", str(args.warmup)]
            done = subprocess.run(child, capture_output=True, text=True, check=True)
            stats = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append({"model": label, "report": report, "timing": stats})
            print(label, {k: round(v["p50_ms"], 4) for k, v in stats.items()}, flush=True)
    info = machine()
    mcpu = api._targets.get("host").tvm.get("mcpu")
    date = datetime.date.today().isoformat()
    result = {"machine": info, "mcpu": mcpu, "threads": 1, "args": vars(args), "rows": rows}
    out = ROOT / "benchmarks" / "results" / f"prune-{mcpu}-{date}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    write_section(NOTES, f"prune-{mcpu}", section(result, date))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
