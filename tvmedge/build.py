"""Relax IRModule -> compiled executable for one target: one straight pipeline of named steps.

rewrites (graph) -> library dispatch -> legalize + fuse -> schedule -> lower -> finalize.
The schedule step is per target family: DLight's default GPU schedules for CUDA; on CPU it is
where tuning logs (MetaSchedule databases) will apply, and until then kernels keep TVM's
default (unscheduled) loops.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import tvm
from tvm import relax

from tvmedge import rewrites
from tvmedge.errors import BuildError
from tvmedge.targets import Target

Steps = list[tuple[str, list[tvm.transform.Pass]]]


def _no_schedule(_target: Target) -> list[tvm.transform.Pass]:
    # CPU kernels keep TVM's default loops until tuning logs or default schedules apply.
    return []


def _dlight_gpu(_target: Target) -> list[tvm.transform.Pass]:
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
SCHEDULES: dict[str, Callable[[Target], list[tvm.transform.Pass]]] = {
    "x86": _no_schedule,
    "aarch64": _no_schedule,
    "armv7": _no_schedule,
    "cuda": _dlight_gpu,
}


def steps(target: Target, rewrite_names: tuple[str, ...]) -> Steps:
    """The named pipeline steps for ``target``, in order."""
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
            ],
        ),
        ("schedule", SCHEDULES[target.family](target)),
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


def build(
    mod: tvm.IRModule,
    target: Target,
    *,
    rewrite_names: tuple[str, ...] = rewrites.DEFAULT,
    log: Callable[[str], None] = lambda _msg: None,
) -> tuple[tvm.runtime.Executable, dict[str, float]]:
    """Run the target family's pipeline and compile; returns the executable and step timings."""
    tvm_target = target.tvm_target()
    timings: dict[str, float] = {}
    try:
        with tvm_target:
            for step, step_passes in steps(target, rewrite_names):
                start = time.perf_counter()
                mod = tvm.transform.Sequential(step_passes, name=step)(mod)
                timings[step] = time.perf_counter() - start
        start = time.perf_counter()
        log(f"generating code for {target.describe()}")
        executable = tvm.compile(mod, target=tvm_target, relax_pipeline=None)
        timings["codegen"] = time.perf_counter() - start
    except Exception as e:  # TVM raises builtin types (RuntimeError, ValueError, ...)
        raise BuildError(
            f"TVM failed to build for '{target.name}': {_last_line(e)} "
            "(set TVMEDGE_DEBUG=1 for the full trace)"
        ) from e
    return executable, timings


def _last_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(e).__name__)[:300]
