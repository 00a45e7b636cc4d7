"""tvmedge tune MODEL.onnx --target NAME [--trials N] [--time-budget MIN] [--tuning-logs DIR]
[--rpc-tracker HOST:PORT --rpc-key KEY] [--dry-run]"""

import sys
import time

from tabulate import tabulate

from tvmedge import api
from tvmedge.cli.compile import (
    add_allow_external_data,
    add_input_shape,
    add_no_winograd,
    add_prune,
    rewrite_names,
)
from tvmedge.frontend import parse_bindings


def add_parser(sub) -> None:
    p = sub.add_parser("tune", help="tune the model's kernels with MetaSchedule into the cache")
    p.add_argument("model", help="the .onnx file")
    p.add_argument("--target", default="host")
    add_input_shape(p)
    p.add_argument("--trials", type=int, help="measured trials in this run (default: target's)")
    p.add_argument("--time-budget", type=float, metavar="MIN", help="stop after MIN minutes")
    p.add_argument("--trials-per-task", type=int, help="cap per kernel over all runs")
    p.add_argument("--trials-per-iter", type=int, default=16, help="candidates per batch")
    p.add_argument(
        "--population",
        type=int,
        default=64,
        help="candidates the search evolves per round (MetaSchedule's default: 512)",
    )
    p.add_argument("--tuning-logs", help="cache folder (default: ~/.cache/tvmedge/tuning-logs)")
    p.add_argument("--builder-workers", type=int, help="parallel builds (default: cores - 1)")
    p.add_argument("--builder-timeout", type=float, default=120.0, help="seconds per build")
    p.add_argument("--runner-timeout", type=float, default=60.0, help="seconds per measurement")
    p.add_argument("--rpc-tracker", metavar="HOST:PORT", help="measure on devices of a tracker")
    p.add_argument("--rpc-key", help="device key registered with the tracker")
    p.add_argument("--dry-run", action="store_true", help="list tasks and cache state only")
    add_no_winograd(p)
    add_allow_external_data(p)
    add_prune(p)
    p.add_argument(
        "--seeds-only",
        action="store_true",
        help="measure each kernel's default schedule and its variants, then stop (no search)",
    )
    p.add_argument(
        "--ship",
        metavar="DIR",
        help="then write the best record of every kernel (lean logs) under DIR, e.g. tuning-logs",
    )
    p.set_defaults(handler=handle)


class Progress:
    """One live line on a terminal, a line per batch otherwise."""

    def __init__(self):
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()

    def __call__(self, event: dict) -> None:
        if event["event"] == "warning":
            print(f"warning: {event['message']}", file=sys.stderr)
        if event["event"] == "info":
            print(event["message"], file=sys.stderr)
        if event["event"] == "seed":
            print(
                f"[{time.monotonic() - self.start:6.0f}s] {event['task'][:40]:40s} "
                f"default schedule measured: {event['ms']:.3f} ms",
                file=sys.stderr,
            )
        if event["event"] != "batch":
            return
        best = f"{event['best_ms']:.3f} ms" if event["best_ms"] is not None else "-"
        errors = event["errors"]
        line = (
            f"[{time.monotonic() - self.start:6.0f}s] {event['task'][:40]:40s} "
            f"trials {event['trials']:4d}  best {best:>11s}  total {event['total']:5d}  "
            f"errors build {errors['build']} run {errors['run']}"
        )
        print(
            ("\r" + line) if self.tty else line,
            end="" if self.tty else "\n",
            file=sys.stderr,
            flush=True,
        )


def handle(args) -> int:
    report = api.tune(
        args.model,
        target=args.target,
        input_shapes=parse_bindings(args.input_shape),
        tuning_logs=args.tuning_logs,
        trials=args.trials,
        time_budget=args.time_budget,
        trials_per_task=args.trials_per_task,
        trials_per_iter=args.trials_per_iter,
        population=args.population,
        builder_workers=args.builder_workers,
        builder_timeout=args.builder_timeout,
        runner_timeout=args.runner_timeout,
        rpc_tracker=args.rpc_tracker,
        rpc_key=args.rpc_key,
        dry_run=args.dry_run,
        seeds_only=args.seeds_only,
        ship=args.ship,
        rewrites=rewrite_names(args),
        allow_external_data=args.allow_external_data,
        prune=args.prune,
        progress=Progress(),
    )
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(render(report, dry_run=args.dry_run))
    return 0


def render(report: dict, *, dry_run: bool) -> str:
    rows, total, untuned = [], 0.0, 0
    for s in report["after"]:
        weighted = s["best_ms"] * s["weight"] if s["best_ms"] is not None else None
        total += weighted or 0.0
        untuned += weighted is None
        gflops = s["flop"] / (s["best_ms"] * 1e6) if s["best_ms"] and s["flop"] else None
        rows.append(
            [
                s["name"],
                s["weight"],
                f"{s['flop'] / 1e6:.1f}",
                s["records"],
                report["planned"].get(s["name"], 0) if dry_run else "",
                "-" if s["best_ms"] is None else f"{s['best_ms']:.4f}",
                "-" if weighted is None else f"{weighted:.4f}",
                "-" if gflops is None else f"{gflops:.1f}",
            ]
        )
    headers = [
        "task",
        "weight",
        "MFLOP",
        "records",
        "planned" if dry_run else "",
        "best (ms)",
        "weighted (ms)",
        "GFLOP/s",
    ]
    lines = [tabulate(rows, headers=headers, tablefmt="github")]
    lines.append(
        f"estimated model latency from tuned kernels: {total:.3f} ms"
        + (f" (+ {untuned} untuned kernels)" if untuned else "")
    )
    lines.append(f"cache: {report['cache']}")
    if dry_run:
        lines.append(
            f"would run {sum(report['planned'].values())} trials on "
            f"{len(report['planned'])} tasks (cap {report['trials_per_task']} per task)"
        )
    elif report["stopped"]:
        errors = report["errors"]
        lines.append(
            f"stopped: {report['stopped']}; build errors {errors['build']}, run errors "
            f"{errors['run']}"
            + (f" (first: {report['first_error']})" if report.get("first_error") else "")
        )
        lines.append(f"log: {report['log']}")
    else:
        lines.append("nothing to tune: every task has its trials in the cache")
    return "\n".join(lines)
