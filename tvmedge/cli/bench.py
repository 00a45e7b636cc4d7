"""tvmedge bench MODEL.onnx --target NAME [--artifact A] [--repeat N] [--threads N] [--json F]
[--csv F] [--max-cv X]"""

import os
from pathlib import Path

from tvmedge import api
from tvmedge.bench.agreement import DEFAULT_ATOL, DEFAULT_RTOL
from tvmedge.bench.compare import SPREAD_WARN_CV
from tvmedge.bench.report import table, write_csv, write_json
from tvmedge.cli.compile import add_allow_external_data, add_input_shape
from tvmedge.cli.run import add_random_inputs, dims
from tvmedge.errors import TvmedgeError
from tvmedge.frontend import parse_bindings

EXIT_MISMATCH = 3


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="compare latency, memory, size and outputs with ONNX Runtime")
    p.add_argument("model", help="the .onnx file (ONNX Runtime runs it as the reference)")
    p.add_argument("--target", default="host", help="target to compile for (default: host)")
    p.add_argument("--artifact", help="benchmark this artifact instead of compiling")
    p.add_argument(
        "--ort-model",
        metavar="ONNX",
        help="ONNX Runtime runs this model instead (e.g. its int8 QDQ model of MODEL, against "
        "an --artifact compiled with --quantize int8); outputs are compared with it: pass an "
        "--atol of about one quantization step of the outputs",
    )
    add_input_shape(p)
    p.add_argument("--threads", type=int, help="threads for both engines (default: physical cores)")
    p.add_argument(
        "--warmup",
        type=int,
        default=20,
        help="untimed runs first, per engine and round (default 20: a fresh tvmedge process "
        "takes about 15 runs to reach its steady speed)",
    )
    p.add_argument("--repeat", type=int, default=50, help="timed runs (default 50)")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="alternate the engines this many times, fresh processes each, timings pooled "
        "(default 1; use 3+ on a machine whose speed drifts)",
    )
    add_random_inputs(p)
    add_tolerances(p)
    p.add_argument(
        "--max-cv",
        type=float,
        default=SPREAD_WARN_CV,
        help="warn when an engine's latency has a coefficient of variation (std / mean) above "
        f"this fraction (default {SPREAD_WARN_CV:g}: 10%%)",
    )
    p.add_argument("--json", help="also write the full report as JSON to this file")
    p.add_argument("--csv", help="also write one row per engine as CSV to this file")
    add_allow_external_data(p)
    p.set_defaults(handler=handle)


def add_tolerances(p) -> None:
    """Agreement means max|tvmedge - ort| <= atol + rtol * max|ort| for every output."""
    p.add_argument(
        "--rtol",
        type=float,
        default=DEFAULT_RTOL,
        help=f"relative tolerance for agreement (default {DEFAULT_RTOL:g})",
    )
    p.add_argument(
        "--atol",
        type=float,
        default=DEFAULT_ATOL,
        help=f"absolute tolerance for agreement (default {DEFAULT_ATOL:g})",
    )


def check_report_path(path: str | None, flag: str) -> None:
    """Refuse an output path that cannot be written before minutes of benchmarking, not after."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise TvmedgeError(f"{flag} '{path}' is a directory; give a file name")
    parent = next((p for p in target.absolute().parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK):
        raise TvmedgeError(f"{flag} '{path}': cannot write under '{parent}'; give another path")


def handle(args) -> int:
    check_report_path(args.json, "--json")
    check_report_path(args.csv, "--csv")
    report = api.bench(
        args.model,
        target=args.target,
        artifact=args.artifact,
        input_shapes=parse_bindings(args.input_shape),
        threads=args.threads,
        warmup=args.warmup,
        repeat=args.repeat,
        rounds=args.rounds,
        seed=args.seed,
        dims=dims(args.dim),
        rtol=args.rtol,
        atol=args.atol,
        max_cv=args.max_cv,
        ort_model=args.ort_model,
        allow_external_data=args.allow_external_data,
    )
    print(table(report))
    if args.json:
        write_json(report, Path(args.json))
        print(f"wrote {args.json}")
    if args.csv:
        write_csv([report], Path(args.csv))
        print(f"wrote {args.csv}")
    if not report["agree"]:
        print("tvmedge: error: outputs differ from ONNX Runtime beyond the tolerance")
        return EXIT_MISMATCH
    return 0
