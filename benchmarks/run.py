"""Bench zoo models against ONNX Runtime and write the figures BENCHMARKS.md shows.

    python benchmarks/run.py squeezenet resnet18 mobilenetv2 --repeat 20

Models: the onnx wheel's architectures with seeded weights (``tvmedge.zoo``) and the PyTorch
definitions in ``benchmarks/models.py`` (ResNet-18, MobileNetV2, CNN-LSTM, encoder).

Each model goes through `tvmedge.api.bench` (separate processes per engine, same inputs,
threads, warm-up, repeats and timer). Reports are saved as JSON under benchmarks/results/ and
rendered as a markdown table into BENCHMARKS.md between the markers of the chosen section.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from tvmedge import api, rewrites, zoo

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models as torch_models  # benchmarks/models.py: the PyTorch-defined models

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20


def _row(name: str, r: dict) -> str:
    t, o = r["engines"]["tvmedge"]["latency"], r["engines"]["onnxruntime"]["latency"]
    tm, om = r["engines"]["tvmedge"]["memory"], r["engines"]["onnxruntime"]["memory"]
    top1 = [a.get("top1_agreement") for a in r["agreement"] if a.get("top1_agreement") is not None]
    agree = ("yes" if r["agree"] else "NO") + (f", top-1 {min(top1):.0%}" if top1 else "")
    return (
        f"| {name} | {r['artifact']['target']}{'' if r['artifact']['tuned'] else ' (untuned)'} "
        f"| {t['p50_ms']:.2f} | {o['p50_ms']:.2f} | **{r['ratio_p50']:.2f}** "
        f"| {t['cv']:.0%} / {o['cv']:.0%} | {tm['peak_rss_bytes'] / MiB:.0f} / "
        f"{om['peak_rss_bytes'] / MiB:.0f} | {r['artifact']['bytes'] / MiB:.1f} / "
        f"{r['model']['onnx_bytes'] / MiB:.1f} | {agree} |"
    )


def render(results: dict, meta: dict) -> str:
    m = meta["machine"]
    lines = [
        f"Measured {meta['date']} on {m['cpu']} ({m['physical_cores']} cores, {m['arch']}), "
        f"threads {meta['threads']}, batch 1, warm-up {meta['warmup']}, {meta['repeat']} runs x "
        f"{meta.get('rounds', 1)} alternating rounds per engine; "
        f"tvmedge {meta['versions']['tvmedge']}, TVM {meta['versions']['tvm']}, "
        f"onnxruntime {meta['versions']['onnxruntime']}. Command: `{meta['command']}`.",
        "",
        "| model | target | tvmedge p50 (ms) | ORT p50 (ms) | tvmedge / ORT | spread (cv) "
        "tvmedge / ORT | peak RSS MiB tvmedge / ORT | size MiB artifact / onnx | agrees |",
        "|---|---|---|---|---|---|---|---|---|",
        *(_row(name, r) for name, r in results.items()),
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str, body: str) -> None:
    begin, end = f"<!-- bench:{section}:begin -->", f"<!-- bench:{section}:end -->"
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + f"\n\n## {section}\n\n{block}\n"
    path.write_text(text)


def model_path(name: str) -> Path:
    """The ONNX file of benchmark model ``name``, made from the onnx wheel or PyTorch."""
    out = ROOT / "build" / "models" / f"{name}.onnx"
    if name in zoo.MODELS:
        return zoo.materialize(name, out)
    return torch_models.export(name, out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+", choices=sorted({*zoo.MODELS, *torch_models.MODELS}))
    p.add_argument("--target", default="host")
    p.add_argument("--threads", type=int, default=api.default_threads())
    # tvmedge's first runs in a fresh process are slow (SqueezeNet: ~3.6 ms for the first five,
    # then ~1.9 down to ~1.65 ms over ten more; ORT's are flat), so warm both engines well
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per engine")
    p.add_argument(
        "--no-tuning-logs", action="store_true", help="compile with default schedules only"
    )
    p.add_argument("--no-winograd", action="store_true", help="keep 3x3 convolutions direct")
    p.add_argument("--section", default="untuned", help="BENCHMARKS.md section to (re)write")
    args = p.parse_args(argv)
    results = {}
    for name in args.models:
        model = model_path(name)
        results[name] = api.bench(
            model,
            target=args.target,
            threads=args.threads,
            warmup=args.warmup,
            repeat=args.repeat,
            rounds=args.rounds,
            use_tuning_logs=not args.no_tuning_logs,
            rewrites=rewrites.without("winograd") if args.no_winograd else rewrites.DEFAULT,
        )
        print(_row(name, results[name]), flush=True)
    first = next(iter(results.values()))
    meta = {
        "date": datetime.date.today().isoformat(),
        "machine": first["machine"],
        "versions": first["versions"],
        "threads": args.threads,
        "warmup": args.warmup,
        "repeat": args.repeat,
        "rounds": args.rounds,
        "command": "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    out = ROOT / "benchmarks" / "results" / f"{args.section}-{meta['date']}.json"
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    write_section(ROOT / "BENCHMARKS.md", args.section, render(results, meta))
    print(f"wrote {out.relative_to(ROOT)} and BENCHMARKS.md section '{args.section}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
