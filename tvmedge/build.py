"""Relax IRModule -> compiled executable for one target: runs tvmedge.pipeline's named steps,
timing each, then generates code. A build that fails on a schedule transferred from a similar
kernel is redone without transfer; any other TVM failure is one CompilerFailure line (internal).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import tvm

from tvmedge import rewrites
from tvmedge.errors import CompilerFailure, TvmedgeError
from tvmedge.pipeline import kernel_flops, steps
from tvmedge.targets import Target


@dataclass
class BuildResult:
    executable: tvm.runtime.Executable
    seconds: dict[str, float]
    kernels: int  # TIR kernels in the model
    untuned: list[str]  # kernels no tuning record of their own scheduled
    transferred: dict[str, str]  # kernel -> the tuned workload whose schedule it got
    unscheduled: list[str]  # kernels neither tuned nor default-scheduled: TVM's plain loops
    flops: dict[str, float]  # kernel name -> floating-point ops per call (TVM's TIR estimate)
    rewrites: list[rewrites.Chosen]  # the rewrites planned, their reports filled


def build(
    mod: tvm.IRModule,
    target: Target,
    *,
    rewrite_specs=rewrites.DEFAULT,
    database=None,
    transfer: bool = True,
    log: Callable[[str], None] = lambda _msg: None,
) -> BuildResult:
    """Run the target family's pipeline and compile. ``rewrite_specs``: names or (name,
    options) pairs (tvmedge.rewrites.plan); ``database`` holds tuning records; with
    ``transfer`` kernels without a record of their own may get a similar one's."""
    chosen = rewrites.plan(rewrite_specs, target)
    tvm_target = target.tvm_target()
    timings: dict[str, float] = {}
    kernels, untuned, unscheduled, flops = 0, [], [], {}
    transferred: dict[str, str] = {}
    original = mod
    try:
        with tvm_target, database if database is not None else contextlib.nullcontext():
            pipeline = steps(target, chosen, database, transferred if transfer else None)
            for step, step_passes in pipeline:
                start = time.perf_counter()
                mod = tvm.transform.Sequential(step_passes, name=step)(mod)
                timings[step] = time.perf_counter() - start
                if step == "legalize":  # counted before scheduling: TVM cannot count some
                    flops = kernel_flops(mod)  # scheduled forms (a rewritten weight layout)
                elif step == "schedule":
                    kernels, untuned = _kernels(mod)
                elif step == "default-schedule":
                    unscheduled = _kernels(mod)[1]
                elif step == "prepack":  # a kernel whose weight layout was split out is
                    flops |= _renamed_prepacked(mod, flops)  # renamed NAME_prepacked
        start = time.perf_counter()
        log(f"generating code for {target.describe()}")
        # TIR's common-subexpression pass took half of a Winograd transform kernel's compile
        # (3.4 of 6.7 s); LLVM eliminates the same subexpressions itself.
        ctx = tvm.transform.PassContext.current()
        config = {**dict(ctx.config), "tirx.disable_cse_tir": True}
        with tvm.transform.PassContext(
            opt_level=ctx.opt_level, config=config, instruments=list(ctx.instruments)
        ):
            executable = tvm.compile(mod, target=tvm_target, relax_pipeline=None)
        timings["codegen"] = time.perf_counter() - start
    except TvmedgeError:  # a rewrite refusing what it cannot do: already one clear line
        raise
    except Exception as e:  # TVM raises builtin types (RuntimeError, ValueError, ...)
        if transferred:  # an unmeasured schedule must never cost the user the whole build
            log(
                f"warning: a schedule transferred from a similar kernel failed to build "
                f"({_last_line(e)}); building again without transferred schedules"
            )
            return build(
                original,
                target,
                rewrite_specs=rewrite_specs,
                database=database,
                transfer=False,
                log=log,
            )
        raise CompilerFailure(
            f"TVM failed to build for '{target.name}': {_last_line(e)} (an internal failure "
            "of tvmedge or TVM on a model that imported: please report it; TVMEDGE_DEBUG=1 "
            "for the full trace)"
        ) from e
    return BuildResult(
        executable, timings, kernels, untuned, transferred, unscheduled, flops, chosen
    )


def _renamed_prepacked(mod: tvm.IRModule, flops: dict[str, float]) -> dict[str, float]:
    """FLOPs under the names SplitLayoutRewritePreproc gives kernels it splits."""
    suffix = "_prepacked"
    return {
        gv.name_hint: flops[gv.name_hint[: -len(suffix)]]
        for gv in mod.functions
        if gv.name_hint.endswith(suffix) and gv.name_hint[: -len(suffix)] in flops
    }


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
