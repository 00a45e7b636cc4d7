"""tvmedge run ARTIFACT [--inputs in.npz] [--outputs out.npz] [--seed N] [--dim batch=8]"""

import os
import tempfile
from pathlib import Path

import numpy as np

from tvmedge import api
from tvmedge.errors import FeedError


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run an artifact once on given or seeded random inputs")
    p.add_argument("artifact", help="the NAME.tvmedge directory")
    p.add_argument("--inputs", help=".npz with one array per input name (default: seeded random)")
    p.add_argument("--outputs", help="write the outputs to this .npz")
    p.add_argument(
        "--pub",
        help="verify the artifact's signature with this public key first "
        "(default: $TVMEDGE_PUBLIC_KEY when set)",
    )
    add_random_inputs(p)
    p.set_defaults(handler=handle)


def add_random_inputs(p) -> None:
    """--seed and --dim, for commands that make seeded random inputs from the manifest."""
    p.add_argument("--seed", type=int, default=0, help="seed for random inputs (default 0)")
    p.add_argument(
        "--dim",
        action="append",
        metavar="NAME=N",
        help="size of a symbolic dim for random inputs (default 1), e.g. --dim batch=8",
    )


def dims(items) -> dict[str, int]:
    dims = {}
    for item in items or []:
        name, _, value = item.partition("=")
        if not value.isdigit() or int(value) <= 0:
            raise FeedError(f"--dim '{item}' must be NAME=N with N a positive integer")
        dims[name] = int(value)
    return dims


def handle(args) -> int:
    _, outputs = api.run(
        args.artifact, inputs=args.inputs, seed=args.seed, dims=dims(args.dim), public_key=args.pub
    )
    for name, value in outputs.items():
        flat = value.reshape(-1)
        stats = ""
        if flat.size and value.dtype.kind in "fiu":
            stats = f" min {flat.min():.6g} max {flat.max():.6g} mean {flat.mean():.6g}"
            if value.ndim >= 2 and value.shape[1] > 1 and value.dtype.kind == "f":
                stats += f" argmax {value.reshape(value.shape[0], -1).argmax(axis=1).tolist()[:8]}"
        print(f"{name}: {value.dtype} {list(value.shape)}{stats}")
    if args.outputs:
        _save_npz(Path(args.outputs), outputs)
        print(f"wrote {args.outputs}")
    return 0


def _save_npz(path: Path, arrays: dict) -> None:
    """Write atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
