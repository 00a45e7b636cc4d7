"""Relax IRModule -> compiled executable for one target: one straight pipeline of named steps.

rewrites (graph) -> library dispatch -> legalize + fuse -> schedule -> lower -> finalize.
The schedule step is per target family: DLight's default GPU schedules for CUDA; on CPU it is
where tuning logs (MetaSchedule databases) will apply, and until then kernels keep TVM's
default (unscheduled) loops.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import tvm
from tvm import relax

from tvmedge import rewrites
from tvmedge.errors import BuildError
from tvmedge.targets import Target

Steps = list[tuple[str, list[tvm.transform.Pass]]]


def _cpu_schedule(_target: Target, database) -> list[tvm.transform.Pass]:
    """Tuned kernels from the tuning logs; the rest keep TVM's default loops."""
    return [] if database is None else [relax.transform.MetaScheduleApplyDatabase()]


def _prepack(database) -> list[tvm.transform.Pass]:
    """Tuned CPU schedules may rewrite a weight's layout. The weights are constants, so the
    split-out layout transforms fold away at compile time and model.so's interface stays."""
    if database is None:
        return []
    return [relax.transform.SplitLayoutRewritePreproc(), relax.transform.FoldConstant()]


def _dlight_gpu(_target: Target, _database) -> list[tvm.transform.Pass]:
    from tvm.s_tir import dlight as dl

    return [
        dl.ApplyDefaultSchedule(
            dl.gpu.Matmul(),
            dl.gpu.GEMV(),
            dl.gpu.Reduction(),
            dl.gpu.GeneralReduction(),
            dl.gpu.Fallback(),
        )
    ]


# The schedule step of each target family; a new family is one entry here, not an if-chain.
SCHEDULES: dict[str, Callable[[Target, object], list[tvm.transform.Pass]]] = {
    "x86": _cpu_schedule,
    "aarch64": _cpu_schedule,
    "armv7": _cpu_schedule,
    "cuda": _dlight_gpu,
}
TUNING_STEPS = ("rewrites", "dispatch", "legalize")  # what tuning sees: tasks come from here


def steps(target: Target, rewrite_names: tuple[str, ...], database=None) -> Steps:
    """The named pipeline steps for ``target``, in order. ``database``: tuning records."""
    return [
        ("rewrites", rewrites.passes(rewrite_names, target)),
        ("dispatch", [relax.backend.DispatchSampling(), relax.backend.DispatchSortScan()]),
        (
            "legalize",
            [
                relax.transform.LegalizeOps(),
                relax.transform.AnnotateTIROpPattern(),
                relax.transform.FoldConstant(),
                relax.transform.FuseOps(),
                relax.transform.FuseTIR(),
                # mark weight buffers so tuned schedules may prepack them (a no-op otherwise)
                relax.transform.AttachAttrLayoutFreeBuffers(),
            ],
        ),
        ("schedule", SCHEDULES[target.family](target, database)),
        ("prepack", _prepack(database) if target.family != "cuda" else []),
        (
            "lower",
            [
                relax.transform.RewriteDataflowReshape(),
                relax.transform.ToNonDataflow(),
                relax.transform.RemovePurityChecking(),
                relax.transform.CallTIRRewrite(),
            ],
        ),
        (
            "finalize",
            [
                relax.transform.StaticPlanBlockMemory(),
                relax.transform.LowerAllocTensor(),
                relax.transform.KillAfterLastUse(),
                relax.transform.LowerRuntimeBuiltin(),
                relax.transform.ComputePrimValue(),
                relax.transform.VMShapeLower(),
                relax.transform.AttachGlobalSymbol(),
            ],
        ),
    ]


@dataclass
class BuildResult:
    executable: tvm.runtime.Executable
    seconds: dict[str, float]
    kernels: int  # TIR kernels in the model after scheduling
    untuned: list[str]  # kernels no tuning record or default schedule scheduled


def build(
    mod: tvm.IRModule,
    target: Target,
    *,
    rewrite_names: tuple[str, ...] = rewrites.DEFAULT,
    database=None,
    log: Callable[[str], None] = lambda _msg: None,
) -> BuildResult:
    """Run the target family's pipeline and compile. ``database`` holds tuning records."""
    tvm_target = target.tvm_target()
    timings: dict[str, float] = {}
    kernels, untuned = 0, []
    try:
        with tvm_target, database if database is not None else contextlib.nullcontext():
            for step, step_passes in steps(target, rewrite_names, database):
                start = time.perf_counter()
                mod = tvm.transform.Sequential(step_passes, name=step)(mod)
                timings[step] = time.perf_counter() - start
                if step == "schedule":
                    kernels, untuned = _kernels(mod)
        start = time.perf_counter()
        log(f"generating code for {target.describe()}")
        executable = tvm.compile(mod, target=tvm_target, relax_pipeline=None)
        timings["codegen"] = time.perf_counter() - start
    except Exception as e:  # TVM raises builtin types (RuntimeError, ValueError, ...)
        raise BuildError(
            f"TVM failed to build for '{target.name}': {_last_line(e)} "
            "(set TVMEDGE_DEBUG=1 for the full trace)"
        ) from e
    return BuildResult(executable, timings, kernels, untuned)


def _kernels(mod: tvm.IRModule) -> tuple[int, list[str]]:
    """(number of TIR kernels, names of those not yet scheduled)."""
    funcs = [
        (gv.name_hint, f) for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)
    ]
    unscheduled = [n for n, f in funcs if not (f.attrs and f.attrs.get("tirx.is_scheduled", False))]
    return len(funcs), sorted(unscheduled)


def _last_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(e).__name__)[:300]
