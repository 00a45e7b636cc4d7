"""What tuning sees: the model after the pipeline's tuning steps, and its MetaSchedule tasks.

Tuning and compiling run the same steps (build.TUNING_STEPS) on the same bound shapes, so a
task's workload here is structurally identical to the kernel the compile looks up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tvm

from tvmedge import rewrites
from tvmedge.build import TUNING_STEPS, flops_of, steps
from tvmedge.errors import ShapeError
from tvmedge.frontend import check_supported, graph_inputs, load_onnx
from tvmedge.frontend.importer import import_onnx
from tvmedge.frontend.shapes import bind, format_shape
from tvmedge.targets import Target


def tuning_module(
    model: str | Path, input_shapes: dict, target: Target, rewrite_names=rewrites.DEFAULT
) -> tvm.IRModule:
    loaded = load_onnx(model)
    check_supported(loaded.proto)
    inputs = bind(graph_inputs(loaded.proto), input_shapes or {})
    symbolic = [s for s in inputs if not s.is_static]
    if symbolic:
        s = symbolic[0]
        raise ShapeError(
            f"tuning needs static shapes, and input '{s.name}' is {format_shape(s.shape)}: bind "
            f"it with --input-shape {s.name}=... (and compile with the same binding)"
        )
    mod = import_onnx(loaded, inputs)
    with target.tvm_target():
        for name, passes in steps(target, rewrite_names):
            if name in TUNING_STEPS:
                mod = tvm.transform.Sequential(passes, name=name)(mod)
    return mod


@dataclass(frozen=True)
class TaskState:
    """A task and what the cache already holds for it."""

    name: str
    weight: int
    flop: float
    records: int
    best_ms: float | None


def search_target(target: Target):
    """The TVM target MetaSchedule searches with. It needs a core count; a portable target
    (x86-64-avx2, ...) has none on purpose, so this machine's is used for the search only.
    The cache key stays that of the target as defined, so its logs serve any such CPU."""
    import psutil

    spec = dict(target.tvm)
    if target.family != "cuda" and "num-cores" not in spec:
        spec["num-cores"] = psutil.cpu_count(logical=False) or 1
    if target.host is not None:
        spec["host"] = dict(target.host)
    return tvm.target.Target(spec)


def extract(mod: tvm.IRModule, tvm_target):
    from tvm.s_tir import meta_schedule as ms

    return ms.relax_integration.extract_tasks(mod, tvm_target)


def states(tasks, database) -> list[TaskState]:
    """What ``database`` (or nothing) holds for each task."""
    result = []
    for task in tasks:
        records: list = []
        if database is not None and database.has_workload(task.dispatched[0]):
            workload = database.commit_workload(task.dispatched[0])
            records = [r for r in database.get_top_k(workload, 1 << 30) if r.run_secs]
        best = min((mean_ms(r.run_secs) for r in records), default=None)
        result.append(TaskState(task.task_name, int(task.weight), _flop(task), len(records), best))
    return result


def mean_ms(run_secs) -> float:
    """Mean of a record's measured seconds, in ms."""
    values = [float(v) for v in run_secs]
    return 1e3 * sum(values) / len(values)


def _flop(task) -> float:
    return flops_of(task.dispatched[0]) or 0.0
