"""tvmedge compile MODEL.onnx --target NAME [-o OUT] [--input-shape name=1,3,224,224 ...]"""

from tvmedge import api, rewrites
from tvmedge.frontend import parse_bindings
from tvmedge.quantize import settings as quantize_settings  # the module


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
    add_allow_external_data(p)
    p.add_argument(
        "--release",
        type=int,
        metavar="N",
        help="release counter for devices' update slots (each install must raise it)",
    )
    p.add_argument(
        "--golden",
        action="store_true",
        help="bundle golden inputs and ONNX Runtime's outputs (golden.npz) for update checks",
    )
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
    add_quantize(p)
    p.set_defaults(handler=handle)


def add_quantize(p) -> None:
    g = p.add_argument_group("quantization (post-training static int8)")
    g.add_argument(
        "--quantize",
        choices=quantize_settings.SCHEMES,
        help="quantize with ONNX Runtime's quantize_static (QDQ: per-channel symmetric s8 "
        "weights, per-tensor activations) before compiling; needs --calibration",
    )
    g.add_argument(
        "--calibration",
        metavar="DATA",
        help="an .npz whose keys are the input names and whose first axis is the sample (an "
        "optional 'labels' key: class indices), or a folder of them",
    )
    g.add_argument(
        "--validation",
        metavar="DATA",
        help="data for the accuracy report, as --calibration (default: the calibration set's "
        "last 20%%, then not used to calibrate)",
    )
    g.add_argument(
        "--labels",
        metavar="FILE",
        help="class indices of the validation samples (.npy, or .npz with key 'labels')",
    )
    g.add_argument(
        "--calibration-method",
        choices=quantize_settings.METHODS,
        default="minmax",
        help="how activation ranges are chosen (default minmax)",
    )
    g.add_argument(
        "--activation-type",
        choices=quantize_settings.ACTIVATION_TYPES,
        help="activation bytes (default: the target's: u8 on x86, s8 on ARM and CUDA)",
    )
    g.add_argument(
        "--keep-float",
        nargs="+",
        action="extend",
        metavar="NODE",
        help="ONNX node names to leave in float (repeatable)",
    )
    g.add_argument(
        "--accuracy-floor",
        metavar="F",
        help="fail unless the quantized model keeps this much of the float model's quality "
        "on the validation set: 'accuracy=F' (its accuracy >= F x the float model's; needs "
        "labels), 'top1=F' (same top-1 class as the float model on >= a fraction F of "
        "samples), 'sqnr=DB' (signal-to-quantization-noise >= DB dB on every output); a bare "
        "F is accuracy=F with labels, else top1=F; join terms with commas. Missed, the layers "
        "that hurt most go back to float one at a time until it holds",
    )
    g.add_argument(
        "--max-float-layers",
        type=int,
        metavar="N",
        help="at most N layers go back to float for --accuracy-floor (default: half of "
        "the layers with weights)",
    )
    g.add_argument(
        "--save-quantized", metavar="FILE", help="also write the QDQ model that was compiled"
    )


def add_no_winograd(p) -> None:
    p.add_argument(
        "--no-winograd",
        action="store_true",
        help="keep 3x3 convolutions direct (Winograd rounds differently: ~1e-6 relative "
        "per layer); compile and tune must agree on it",
    )


def add_allow_external_data(p) -> None:
    p.add_argument(
        "--allow-external-data",
        action="store_true",
        help="read tensors the model stores in files next to it (off by default; even then "
        "only plain files in the model's folder, within their bounds)",
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
        quantize=args.quantize,
        calibration=args.calibration,
        validation=args.validation,
        labels=args.labels,
        calibration_method=args.calibration_method,
        activation_type=args.activation_type,
        keep_float=tuple(args.keep_float or ()),
        accuracy_floor=args.accuracy_floor,
        max_float_layers=args.max_float_layers,
        save_quantized=args.save_quantized,
        allow_external_data=args.allow_external_data,
        release=args.release,
        golden=args.golden,
        prune=args.prune,
    )
    return 0
