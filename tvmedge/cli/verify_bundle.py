"""tvmedge verify-bundle ARTIFACT --model MODEL.onnx [--inputs in.npz] [--seed N]"""

from tabulate import tabulate

from tvmedge import api
from tvmedge.cli.bench import add_tolerances
from tvmedge.cli.run import add_random_inputs, dims

EXIT_MISMATCH = 3


def add_parser(sub) -> None:
    p = sub.add_parser(
        "verify-bundle",
        help="run a device bundle (under qemu when needed) and compare with ONNX Runtime",
    )
    p.add_argument("artifact", help="an artifact compiled with --bundle")
    p.add_argument("--model", required=True, help="the .onnx it was compiled from")
    p.add_argument("--inputs", help=".npz inputs (default: seeded random)")
    add_random_inputs(p)
    add_tolerances(p)
    p.set_defaults(handler=handle)


def handle(args) -> int:
    report = api.verify_bundle(
        args.artifact,
        model=args.model,
        inputs=args.inputs,
        seed=args.seed,
        dims=dims(args.dim),
        rtol=args.rtol,
        atol=args.atol,
    )
    print(
        f"ran: {' '.join(report['command'])} (target {report['target']}), "
        f"{report['timing']['latency_ms']['p50']:.1f} ms"
    )
    rows = [
        [
            r["output"],
            "x".join(map(str, r["shape"])),
            f"{r.get('max_abs', 0):.3g}",
            f"{r.get('top1_agreement', 1):.0%}" if "top1_agreement" in r else "-",
            "ok" if r["ok"] else "MISMATCH",
        ]
        for r in report["agreement"]
    ]
    print(
        tabulate(
            rows, headers=["output", "shape", "max abs err", "top-1", "status"], tablefmt="github"
        )
    )
    if not report["agree"]:
        print("tvmedge: error: the bundle's outputs differ from ONNX Runtime beyond the tolerance")
        return EXIT_MISMATCH
    print("verified: the bundle matches ONNX Runtime")
    return 0
