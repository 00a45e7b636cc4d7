"""Write the shipped tuning logs from a tuning cache, keeping only kernels the given models
compile today (with and without the Winograd rewrite, since ``--no-winograd`` uses the direct
convolutions' records): the best record of each.

    python scripts/ship_logs.py --target x86-64-avx512 --cache CACHE --dest tuning-logs \\
        build/models/squeezenet.onnx build/models/resnet18.onnx ...

``tvmedge tune --ship`` writes every workload in the cache instead, so kernels of graphs the
compiler no longer produces (a rewrite changed them) stay in the logs as dead weight; this is
the maintainers' step that leaves them out. ``--prefer MODEL=CACHE`` takes that model's kernels
from another cache first (one whose records came from a longer search, say).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tvmedge import rewrites, targets
from tvmedge.pipeline import tuning_module
from tvmedge.tune.cache import Sanitized, TuningCache, lean, workload_hash, write_records
from tvmedge.tune.tasks import extract


def model_hashes(model: str, target) -> set[str]:
    hashes = set()
    for names in (rewrites.DEFAULT, rewrites.without("winograd")):
        mod = tuning_module(model, {}, target, names)
        hashes |= {workload_hash(task.dispatched[0]) for task in extract(mod, target.tvm_target())}
    return hashes


def merged(parts) -> Sanitized:
    """The best record of each wanted kernel, from the first (folder, hashes) part that has
    one."""
    workloads: list[str] = []
    records: list[str] = []
    seen: set[str] = set()
    for folder, hashes in parts:
        kept = lean(folder, 1, hashes - seen)
        offset = len(workloads)
        workloads += kept.workloads
        for line in kept.records:
            index, record = json.loads(line)
            records.append(json.dumps([index + offset, record]))
        seen |= {json.loads(w)[0] for w in kept.workloads}
    return Sanitized(workloads, records, [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="the .onnx files whose kernels to keep")
    parser.add_argument("--target", required=True)
    parser.add_argument("--cache", required=True, help="the tuning cache to read")
    parser.add_argument(
        "--dest", default="tuning-logs", help="where to write (default: %(default)s)"
    )
    parser.add_argument(
        "--prefer",
        action="append",
        default=[],
        metavar="MODEL=CACHE",
        help="take MODEL's kernels from CACHE where it has them (repeatable)",
    )
    args = parser.parse_args()
    target = targets.get(args.target)
    tvm_target = target.tvm_target()
    preferred = [spec.partition("=")[::2] for spec in args.prefer]  # (model, cache folder)
    # importing a model and extracting its kernels takes seconds: once per model
    hashes = {m: model_hashes(m, target) for m in {*args.models, *(m for m, _ in preferred)}}
    parts = [
        (TuningCache(Path(folder), target.name, tvm_target).folder, hashes[model])
        for model, folder in preferred
    ]
    wanted = set().union(*(hashes[m] for m in args.models))
    cache = TuningCache(Path(args.cache), target.name, tvm_target)
    parts.append((cache.folder, wanted))
    records, size = write_records(cache, Path(args.dest), merged(parts))
    print(f"{records} records of {len(wanted)} kernels ({size / 1024:.0f} KiB) to {args.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
