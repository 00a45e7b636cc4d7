"""Write the shipped tuning logs from a tuning cache, keeping only kernels the given models
compile today (with and without the Winograd rewrite, since ``--no-winograd`` uses the direct
convolutions' records): the best record of each.

    python scripts/ship_logs.py --target x86-64-avx512 --cache CACHE --dest tuning-logs \\
        build/models/squeezenet.onnx build/models/resnet18.onnx ...

``tvmedge tune --ship`` writes every workload in the cache instead, so kernels of graphs the
compiler no longer produces (a rewrite changed them) stay in the logs as dead weight; this is
the maintainers' step that leaves them out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tvmedge import rewrites, targets
from tvmedge.tune.cache import TuningCache, workload_hash, write_lean
from tvmedge.tune.tasks import extract, tuning_module


def model_hashes(model: str, target) -> set[str]:
    hashes = set()
    for names in (rewrites.DEFAULT, rewrites.without("winograd")):
        mod = tuning_module(model, {}, target, names)
        hashes |= {workload_hash(task.dispatched[0]) for task in extract(mod, target.tvm_target())}
    return hashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="the .onnx files whose kernels to keep")
    parser.add_argument("--target", required=True)
    parser.add_argument("--cache", required=True, help="the tuning cache to read")
    parser.add_argument(
        "--dest", default="tuning-logs", help="where to write (default: %(default)s)"
    )
    args = parser.parse_args()
    target = targets.get(args.target)
    wanted: set[str] = set()
    for model in args.models:
        wanted |= model_hashes(model, target)
    cache = TuningCache(Path(args.cache), target.name, target.tvm_target())
    records, size = write_lean(cache, Path(args.dest), only=wanted)
    print(f"{records} records of {len(wanted)} kernels ({size / 1024:.0f} KiB) to {args.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
