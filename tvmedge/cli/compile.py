"""tvmedge compile MODEL.onnx --target NAME [-o OUT] [--input-shape name=1,3,224,224 ...]"""

from tvmedge import api, rewrites
from tvmedge.frontend import parse_bindings


def add_parser(sub) -> None:
    p = sub.add_parser("compile", help="compile an ONNX model into a NAME.tvmedge artifact")
    p.add_argument("model", help="the .onnx file")
    p.add_argument("--target", default="host", help="target name (default: host, this CPU)")
    p.add_argument("-o", "--output", help="artifact directory (default: ./MODEL.tvmedge)")
    add_input_shape(p)
    p.add_argument("--force", action="store_true", help="replace an existing artifact")
    p.add_argument(
        "--bundle",
        action="store_true",
        help="add runtime/ for devices without Python: TVM runtime, C API, tvmedge-run",
    )
    p.add_argument(
        "--tuning-logs",
        help="tuning-log folder (default: ~/.cache/tvmedge/tuning-logs)"
        "; the shipped tuning-logs/ are always read too",
    )
    p.add_argument("--no-tuning-logs", action="store_true", help="apply no tuning logs")
    p.add_argument(
        "--no-transfer",
        action="store_true",
        help="give kernels without a record of their own the default schedules, not the "
        "schedule of the nearest tuned kernel of the same kind",
    )
    add_no_winograd(p)
    add_prune(p)
    p.add_argument(
        "--error-on-untuned",
        action="store_true",
        help="fail unless every kernel has a tuning record (release builds)",
    )
    p.add_argument(
        "--no-check",
        action="store_true",
        help="do not load and run the artifact once and compare it with ONNX Runtime before "
        "writing it (recorded in the manifest)",
    )
    p.add_argument(
        "--runtime-dir",
        help="take libtvm_runtime.so and libtvm_ffi.so for the bundle from here",
    )
    p.set_defaults(handler=handle)


def add_no_winograd(p) -> None:
    p.add_argument(
        "--no-winograd",
        action="store_true",
        help="keep 3x3 convolutions direct (Winograd rounds differently: ~1e-6 relative "
        "per layer); compile and tune must agree on it",
    )


def add_prune(p) -> None:
    p.add_argument(
        "--prune",
        metavar="channels=R,criterion=l1|l2,NODE=R,skip=NODE",
        help="zero the lowest-norm filters of every layer (or of the named ONNX nodes; skip= "
        "repeats), channels coupled through adds together, then remove them (shrink-channels)"
        "; compile and tune must agree on it",
    )


def rewrite_names(args) -> tuple[str, ...]:
    return rewrites.without("winograd") if args.no_winograd else rewrites.DEFAULT


def add_input_shape(p) -> None:
    p.add_argument(
        "--input-shape",
        action="append",
        metavar="NAME=D1,D2,...",
        help="bind an input's shape (repeatable); unbound symbolic dims stay symbolic",
    )


def handle(args) -> int:
    api.compile(
        args.model,
        target=args.target,
        output=args.output,
        input_shapes=parse_bindings(args.input_shape),
        force=args.force,
        bundle=args.bundle,
        tuning_logs=args.tuning_logs,
        use_tuning_logs=not args.no_tuning_logs,
        error_on_untuned=args.error_on_untuned,
        transfer=not args.no_transfer,
        rewrites=rewrite_names(args),
        runtime_dir=args.runtime_dir,
        check=not args.no_check,
        prune=args.prune,
    )
    return 0
