"""tvmedge profile ARTIFACT [--repeat N] [--top N] [--alone] [--threads N] [--json F]
[--seed N] [--dim batch=8]"""

import json
from pathlib import Path

from tabulate import tabulate

from tvmedge import api
from tvmedge.cli.run import add_random_inputs, dims


def add_parser(sub) -> None:
    p = sub.add_parser("profile", help="time each kernel of a host artifact against CPU peak")
    p.add_argument("artifact", help="the NAME.tvmedge directory (compiled for this machine)")
    p.add_argument("--repeat", type=int, default=10, help="timed runs (default 10)")
    p.add_argument("--top", type=int, default=20, help="kernels shown, slowest first (default 20)")
    p.add_argument("--json", metavar="FILE", help="write the full report as JSON")
    p.add_argument(
        "--threads", type=int, help="TVM threads (default: physical cores, as bench uses)"
    )
    p.add_argument(
        "--alone",
        action="store_true",
        help="also time each kernel run by itself with its data in the caches: the gap to its "
        "in-model time is what the model's memory traffic costs it",
    )
    add_random_inputs(p)
    p.set_defaults(handler=handle)


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _ratio(num, den) -> str:
    return "-" if num is None or not den else f"{num / den:.2f}"


def handle(args) -> int:
    r = api.profile(
        args.artifact,
        repeat=args.repeat,
        seed=args.seed,
        dims=dims(args.dim),
        threads=args.threads,
        alone=args.alone,
    )
    rows = [
        [
            k["name"],
            _num(k["calls_per_run"], "g"),
            _num(k["ms_per_run"], ".3f"),
            _num(k["mean_us"], ".1f"),
            _num(k["percent"], ".1f"),
            _num(k["flops_per_call"] and k["flops_per_call"] / 1e6, ".3f"),
            _num(k["gflops"], ".1f"),
            _num(k["peak_fraction"] and 100 * k["peak_fraction"], ".1f"),
        ]
        + ([_num(k["alone_us"], ".1f"), _ratio(k["mean_us"], k["alone_us"])] if args.alone else [])
        for k in r["kernels"][: args.top]
    ]
    headers = ["kernel", "calls", "ms/run", "mean us", "%", "MFLOP/call", "GFLOP/s", "% peak"]
    if args.alone:
        headers += ["alone us", "in model / alone"]
    t, m = r["totals"], r["machine"]
    shown = f"top {len(rows)} of {t['kernels']}" if len(rows) < t["kernels"] else "all"
    lines = [
        f"{args.artifact} on {', '.join(f'{n}{s}' for n, s in r['inputs'].items())}: "
        f"{r['repeat']} runs, {r['threads']} threads, {shown} kernels by time",
        tabulate(rows, headers=headers, tablefmt="github"),
        f"kernels    {t['kernel_ms_per_run']:.3f} ms/run in {t['kernels']} kernels; VM builtins "
        f"{t['builtin_ms_per_run']:.3f} ms in {t['builtin_calls_per_run']:g} calls",
        f"run        {t['uninstrumented_run_ms']:.3f} ms plain, "
        f"{t['instrumented_run_ms']:.3f} ms with the per-call timing hook",
    ]
    if t.get("alone_ms_per_run") is not None:
        lines.append(
            f"alone      {t['alone_ms_per_run']:.3f} ms/run if every kernel found its data in the "
            f"caches (each re-run by itself); the other "
            f"{t['kernel_ms_per_run'] - t['alone_ms_per_run']:.3f} ms is mostly the model's "
            "memory traffic"
        )
    lines += [
        "model      "
        + (
            f"{t['flops_per_run'] / 1e9:.3f} GFLOP/run, {_num(t['gflops'], '.1f')} GFLOP/s, "
            f"{_num(t['peak_fraction'] and 100 * t['peak_fraction'], '.1f')}% of peak"
            if t["flops_per_run"] is not None
            else "FLOPs not counted (symbolic shapes, or compiled before tvmedge counted them); "
            "compile with --input-shape to count them"
        ),
        f"peak fp32  {m['formula']}"
        + ("" if m["fma_pipes_known"] else f" (FMA pipes of mcpu '{m['mcpu']}' unknown: assumed)"),
        f"clock      {m['clock_source']}",
    ]
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
