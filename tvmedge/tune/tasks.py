"""MetaSchedule tasks of the model as tuning sees it (tvmedge.pipeline.tuning_module), and what
the tuning-log cache holds for each."""

from __future__ import annotations

from dataclasses import dataclass

import tvm

from tvmedge.pipeline import flops_of
from tvmedge.tune.cache import mean_ms


@dataclass(frozen=True)
class TaskState:
    """A task and what the cache already holds for it."""

    name: str
    weight: int
    flop: float
    records: int
    best_ms: float | None


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


def _flop(task) -> float:
    return flops_of(task.dispatched[0]) or 0.0
