"""The tuning process: MetaSchedule over the planned tasks, every measured batch written to the
tuning-log cache at once, so a Ctrl-C or a kill keeps every finished trial.

Run by tvmedge.tune.driver as ``python -m tvmedge.tune.worker PLAN.json``; it reports progress
as one JSON object per line on stdout.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path

from tvmedge import no_torch


def emit(event: dict) -> None:
    print(json.dumps(event), flush=True)


def export_with(module, *, cc: str, flags: list[str]) -> str:
    """MetaSchedule builder export: link the candidate with the target's toolchain.

    Each candidate gets a folder of its own: MetaSchedule deletes the folder that holds an
    artifact once it is measured.
    """
    import os
    import tempfile

    from tvm.support import cc as tvm_cc

    path = os.path.join(tempfile.mkdtemp(prefix="tvmedge-ms-"), "candidate.so")
    module.export_library(path, fcompile=tvm_cc.cross_compiler(cc, options=flags))
    return path


def make_writer(cache, tvm_target):
    from tvm.ir.utils import derived_object
    from tvm.s_tir import meta_schedule as ms

    @derived_object
    class CacheWriter(ms.measure_callback.PyMeasureCallback):
        """Writes each measured batch to the cache and reports progress."""

        def __init__(self):
            self.trials: dict[str, int] = {}
            self.best_ms: dict[str, float] = {}
            self.errors = {"build": 0, "run": 0}
            self.first_error: str | None = None

        def apply(self, task_scheduler, task_id, candidates, builder_results, runner_results):
            task = task_scheduler.tasks_[task_id]
            name = str(task.ctx.task_name)
            good = []
            for cand, built, ran in zip(candidates, builder_results, runner_results, strict=True):
                if built.error_msg or ran.error_msg:
                    kind = "build" if built.error_msg else "run"
                    self.errors[kind] += 1
                    message = str(built.error_msg or ran.error_msg).strip().splitlines()
                    self.first_error = self.first_error or f"{kind}: {message[-1][:200]}"
                else:
                    good.append((cand, ran.run_secs))
            if good:
                with cache.writing() as db:
                    workload = db.commit_workload(task.ctx.mod)
                    for cand, secs in good:
                        db.commit_tuning_record(
                            ms.database.TuningRecord(
                                cand.sch.trace, workload, secs, tvm_target, cand.args_info
                            )
                        )
                best = min(1e3 * sum(map(float, s)) / len(s) for _, s in good)
                self.best_ms[name] = min(best, self.best_ms.get(name, best))
            self.trials[name] = self.trials.get(name, 0) + len(candidates)
            emit(
                {
                    "event": "batch",
                    "task": name,
                    "trials": self.trials[name],
                    "total": sum(self.trials.values()),
                    "best_ms": self.best_ms.get(name),
                    "errors": dict(self.errors),
                    "first_error": self.first_error,
                }
            )

    return CacheWriter()


def seed_default_schedules(contexts, variants, tvm_target, builder, runner, cache, database):
    """Measure each task's default schedule, and the variants of it, as tuning records first;
    for a task the cache holds no record of, also the schedules transferred from the nearest
    tuned workloads of its kind (tvmedge.tune.transfer).

    The search then starts from them (MetaSchedule's evolutionary search takes part of its
    first population from the measured records), and the best record of a task is never
    slower than what an untuned compile gets. A seed already in the cache is not measured
    again, so a resumed tune repeats no work. All seeds are built in one batch, then run.
    """
    from tvm.s_tir import meta_schedule as ms

    from tvmedge.schedules import default_schedule
    from tvmedge.tune.transfer import Transfer

    finder = Transfer(database, tvm_target, variants) if database is not None else None
    seeds = []  # (task name, workload module, schedule)
    transferred = 0
    for ctx in contexts:
        known = set()
        if database is not None and database.has_workload(ctx.mod):
            records = database.get_top_k(database.commit_workload(ctx.mod), 1 << 30)
            known = {str(r.trace) for r in records}
        schedules = [default_schedule(ctx.mod["main"], rules, tvm_target) for rules in variants]
        if finder is not None and not known:
            for source, sch in finder.candidates(ctx.mod["main"]):
                emit(
                    {
                        "event": "info",
                        "message": f"{ctx.task_name}: seeded with the schedule of "
                        f"{source.describe()} ({source.ms:.3f} ms there)",
                    }
                )
                schedules.append(sch)
                transferred += 1
        for sch in schedules:
            if sch is not None and str(sch.trace) not in known:
                known.add(str(sch.trace))
                seeds.append((str(ctx.task_name), ctx.mod, sch))
    if not seeds:
        return
    emit(
        {
            "event": "info",
            "message": f"measuring {len(seeds)} seeds: default schedules and their variants"
            + (f", {transferred} transferred from similar tuned kernels" if transferred else ""),
        }
    )
    device = "cuda" if tvm_target.kind.name == "cuda" else "cpu"
    # as MetaSchedule does: a schedule that rewrote a weight's layout (a transferred search
    # record) is measured with the weight in its new layout
    args = [ms.arg_info.ArgInfo.from_entry_func(sch.mod, remove_preproc=True) for *_, sch in seeds]
    built = builder.build([ms.builder.BuilderInput(sch.mod, tvm_target) for _, _, sch in seeds])
    inputs, order = [], []
    for i, result in enumerate(built):
        if result.error_msg:
            reason = str(result.error_msg).strip().splitlines()[-1][:200]
            emit({"event": "warning", "message": f"seed of {seeds[i][0]} did not build: {reason}"})
            continue
        inputs.append(ms.runner.RunnerInput(result.artifact_path, device, args[i]))
        order.append(i)
    ran = [future.result() for future in runner.run(inputs)] if inputs else []
    with cache.writing() as db:
        for i, result in zip(order, ran, strict=True):
            name, mod, sch = seeds[i]
            if result.error_msg:
                reason = str(result.error_msg).strip().splitlines()[-1][:200]
                emit({"event": "warning", "message": f"seed of {name} did not run: {reason}"})
                continue
            workload = db.commit_workload(mod)
            db.commit_tuning_record(
                ms.database.TuningRecord(sch.trace, workload, result.run_secs, tvm_target, args[i])
            )
            secs = [float(v) for v in result.run_secs]
            emit({"event": "seed", "task": name, "ms": 1e3 * sum(secs) / len(secs)})


def local_runner(timeout_sec: float):
    """A runner that measures on this machine with the thread count ``bench`` runs artifacts
    with (physical cores). TVM's own default here is 1 thread, and a schedule that is best
    on one thread is not always best on two: a kernel too small to parallelize won on one
    core, and the seeds were ranked that way."""
    from tvm.s_tir import meta_schedule as ms

    from tvmedge.machine import physical_cores

    os.environ["TVM_NUM_THREADS"] = str(physical_cores())  # inherited by the runner's workers
    return ms.runner.LocalRunner(timeout_sec=timeout_sec)


def main(plan_path: str) -> int:
    no_torch.block()  # tvm_ffi imports torch when installed; nothing here needs it
    plan = json.loads(Path(plan_path).read_text())
    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
    from tvm.s_tir import meta_schedule as ms

    from tvmedge import machine, targets
    from tvmedge.pipeline import search_target, tuning_module
    from tvmedge.tune.cache import TuningCache
    from tvmedge.tune.tasks import extract

    target = targets.get(plan["target"])
    tvm_target = search_target(target)
    shapes = {k: tuple(v) for k, v in plan["input_shapes"].items()}
    mod = tuning_module(
        plan["model"],
        shapes,
        target,
        tuple(plan["rewrites"]),
        allow_external_data=plan.get("allow_external_data", False),
    )
    wanted = set(plan["tasks"])
    tasks = [t for t in extract(mod, tvm_target) if t.task_name in wanted]
    population = plan.get("population", 64)
    strategy = ms.search_strategy.EvolutionarySearch(
        population_size=population, init_min_unmeasured=min(50, population)
    )
    contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
        tasks,
        plan["work_dir"],
        strategy=strategy,
        num_threads=plan["builder_workers"],
        seed=plan.get("seed"),
    )
    measured_on = {"rpc_key": plan["rpc"]["key"]} if plan.get("rpc") else machine.fingerprint()
    cache = TuningCache(Path(plan["cache_root"]), target.name, target.tvm_target(), measured_on)
    database = cache.load(lambda m: emit({"event": "warning", "message": m}))
    tc = target.toolchain
    builder = ms.builder.LocalBuilder(
        max_workers=plan["builder_workers"],
        timeout_sec=plan["builder_timeout"],
        f_export=functools.partial(export_with, cc=tc.cc, flags=list(tc.flags)),
    )
    if plan.get("rpc"):
        rpc = plan["rpc"]
        runner = ms.runner.RPCRunner(
            rpc_config=ms.runner.RPCConfig(
                tracker_host=rpc["host"],
                tracker_port=rpc["port"],
                tracker_key=rpc["key"],
                session_timeout_sec=int(plan["runner_timeout"]),
            ),
            max_workers=rpc["workers"],
        )
    else:
        runner = local_runner(plan["runner_timeout"])
    emit({"event": "start", "tasks": [t.task_name for t in tasks]})
    if plan.get("seed_defaults", True):
        from tvmedge.pipeline import rule_variants

        seed_default_schedules(
            contexts, rule_variants(target), tvm_target, builder, runner, cache, database
        )
        database = cache.load(lambda m: None)  # the search starts from the seeds too
    if plan.get("seeds_only"):
        emit({"event": "done"})
        return 0
    ms.tune_tasks(
        tasks=contexts,
        task_weights=weights,
        work_dir=plan["work_dir"],
        max_trials_global=plan["trials"],
        max_trials_per_task=plan["trials_per_task"],
        num_trials_per_iter=plan["trials_per_iter"],
        builder=builder,
        runner=runner,
        database=database or ms.database.MemoryDatabase(),
        cost_model="xgb",
        measure_callbacks=[
            *ms.measure_callback.MeasureCallback.create("default"),
            make_writer(cache, tvm_target),
        ],
        # round-robin hands each measured batch to the cache writer when the task comes round
        # again; the gradient scheduler holds every result of its first round (all tasks, 8
        # minutes for ResNet-18 here) until the round ends, so a 10-minute budget kept none
        task_scheduler="round-robin",
    )
    emit({"event": "done"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
