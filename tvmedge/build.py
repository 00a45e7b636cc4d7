"""Relax IRModule -> compiled executable for one target: one straight pipeline of named steps.

rewrites (graph) -> library dispatch -> legalize + fuse -> schedule -> lower -> finalize.
Scheduling: kernels with a record in the tuning logs get its schedule; the rest get the target
family's default schedules (tvmedge's CPU rules in tvmedge/schedules, DLight's for CUDA).
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
from tvmedge.schedules import cpu_rules, cpu_variants
from tvmedge.targets import Target

Steps = list[tuple[str, list[tvm.transform.Pass]]]


def _tuned(database) -> list[tvm.transform.Pass]:
    """Kernels with a tuning record get its schedule (and are marked scheduled)."""
    return [] if database is None else [relax.transform.MetaScheduleApplyDatabase()]


def _transferred(database, target: Target, used: dict[str, str]) -> list[tvm.transform.Pass]:
    """Kernels without a record of their own get the schedule of the nearest tuned workload of
    the same kind (tvmedge.tune.transfer); ``used`` collects kernel -> source workload."""
    if database is None:
        return []

    @tvm.transform.module_pass(opt_level=0, name="tvmedge.TransferSchedules")
    def transfer(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        from tvmedge.tune.tasks import search_target
        from tvmedge.tune.transfer import Transfer

        finder, updates = None, {}
        for gv, func in mod.functions.items():
            if not isinstance(func, tvm.tirx.PrimFunc) or (
                func.attrs and func.attrs.get("tirx.is_scheduled", False)
            ):
                continue
            finder = finder or Transfer(database, search_target(target), rule_variants(target))
            found = finder.candidates(func, limit=1)
            if found:
                source, sch = found[0]
                updates[gv] = sch.mod["main"].with_attr("tirx.is_scheduled", True)
                used[gv.name_hint] = source.describe()
        for gv, func in updates.items():
            mod[gv] = func
        return mod

    return [transfer]


def _dlight_gpu_rules(_target: Target) -> list:
    from tvm.s_tir import dlight as dl

    return [
        dl.gpu.Matmul(),
        dl.gpu.GEMV(),
        dl.gpu.Reduction(),
        dl.gpu.GeneralReduction(),
        dl.gpu.Fallback(),
    ]


# The default-schedule rules of each target family, and the rule sets tuning measures as seeds
# (the default set first): a new family is one entry in each, not an if-chain.
DEFAULT_RULES: dict[str, Callable[[Target], list]] = {
    "x86": cpu_rules,
    "aarch64": cpu_rules,
    "armv7": cpu_rules,
    "cuda": _dlight_gpu_rules,
}
SEED_RULES: dict[str, Callable[[Target], list[list]]] = {
    "x86": cpu_variants,
    "aarch64": cpu_variants,
    "armv7": cpu_variants,
    "cuda": lambda target: [_dlight_gpu_rules(target)],
}


def default_rules(target: Target) -> list:
    """The default-schedule rules of ``target``: tvmedge's on CPUs, DLight's on GPUs."""
    return DEFAULT_RULES[target.family](target)


def rule_variants(target: Target) -> list[list]:
    """Sets of default rules that tuning measures as seeds: the default set first."""
    return SEED_RULES[target.family](target)


def _default(target: Target) -> list[tvm.transform.Pass]:
    """The default schedules for every kernel the logs did not schedule."""
    from tvm.s_tir import dlight as dl

    return [dl.ApplyDefaultSchedule(*default_rules(target))]


def _prepack(database) -> list[tvm.transform.Pass]:
    """Tuned CPU schedules may rewrite a weight's layout. The weights are constants, so the
    split-out layout transforms fold away at compile time and model.so's interface stays."""
    if database is None:
        return []
    return [_split_layout_rewrites]


_PREPROC = "meta_schedule.layout_rewrite_preproc"


def _rewrites_a_layout(func) -> bool:
    """Whether a block of ``func`` carries MetaSchedule's layout-rewrite annotation (TVM 0.27
    has no Python statement visitor, so the printed function is searched)."""
    return _PREPROC in func.script()


@tvm.transform.module_pass(opt_level=0, name="tvmedge.SplitLayoutRewrites")
def _split_layout_rewrites(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
    """SplitLayoutRewritePreproc, run only when some applied record rewrote a weight's layout:
    TVM's pass fails on modules where none did (records of tvmedge's own default schedules)."""
    if not any(
        isinstance(f, tvm.tirx.PrimFunc) and _rewrites_a_layout(f) for f in mod.functions.values()
    ):
        return mod
    passes = [relax.transform.SplitLayoutRewritePreproc(), relax.transform.FoldConstant()]
    return tvm.transform.Sequential(passes)(mod)


TUNING_STEPS = ("rewrites", "dispatch", "legalize")  # what tuning sees: tasks come from here


def steps(
    target: Target,
    rewrite_names: tuple[str, ...],
    database=None,
    transferred: dict[str, str] | None = None,
) -> Steps:
    """The named pipeline steps for ``target``, in order. ``database``: tuning records;
    ``transferred``: a dict to collect schedules transferred from similar workloads (None: do
    not transfer)."""
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
        ("schedule", _tuned(database)),
        ("transfer", [] if transferred is None else _transferred(database, target, transferred)),
        ("default-schedule", _default(target)),
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
    kernels: int  # TIR kernels in the model
    untuned: list[str]  # kernels no tuning record of their own scheduled
    transferred: dict[str, str]  # kernel -> the tuned workload whose schedule it got
    unscheduled: list[str]  # kernels neither tuned nor default-scheduled: TVM's plain loops
    flops: dict[str, float]  # kernel name -> floating-point ops per call (TVM's TIR estimate)


def build(
    mod: tvm.IRModule,
    target: Target,
    *,
    rewrite_names: tuple[str, ...] = rewrites.DEFAULT,
    database=None,
    transfer: bool = True,
    log: Callable[[str], None] = lambda _msg: None,
) -> BuildResult:
    """Run the target family's pipeline and compile. ``database`` holds tuning records;
    with ``transfer`` kernels without a record of their own may get a similar one's."""
    tvm_target = target.tvm_target()
    timings: dict[str, float] = {}
    kernels, untuned, unscheduled, flops = 0, [], [], {}
    transferred: dict[str, str] = {}
    original = mod
    try:
        with tvm_target, database if database is not None else contextlib.nullcontext():
            pipeline = steps(target, rewrite_names, database, transferred if transfer else None)
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
    except Exception as e:  # TVM raises builtin types (RuntimeError, ValueError, ...)
        if transferred:  # an unmeasured schedule must never cost the user the whole build
            log(
                f"warning: a schedule transferred from a similar kernel failed to build "
                f"({_last_line(e)}); building again without transferred schedules"
            )
            return build(
                original,
                target,
                rewrite_names=rewrite_names,
                database=database,
                transfer=False,
                log=log,
            )
        raise BuildError(
            f"TVM failed to build for '{target.name}': {_last_line(e)} "
            "(set TVMEDGE_DEBUG=1 for the full trace)"
        ) from e
    return BuildResult(executable, timings, kernels, untuned, transferred, unscheduled, flops)


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


def kernel_flops(mod: tvm.IRModule) -> dict[str, float]:
    """Floating-point ops per call of each TIR kernel, for `tvmedge profile`'s GFLOP/s.

    Counted now because the artifact keeps only machine code. Scheduling reorders loops but
    does not change the arithmetic, so the count is the kernel's. A kernel TVM cannot count is
    left out. With symbolic shapes TVM counts a symbolic loop as a few iterations: the caller
    must drop these counts for such models (api.compile does).
    """
    flops = {}
    for gv, func in mod.functions.items():
        if isinstance(func, tvm.tirx.PrimFunc):
            count = flops_of(tvm.IRModule({gv: func}))
            if count is not None:
                flops[gv.name_hint] = count
    return flops


def flops_of(kernel: tvm.IRModule) -> float | None:
    """TVM's floating-point op count of a one-kernel module; None when it cannot count it."""
    from tvm.s_tir.analysis import estimate_tir_flops

    try:
        return float(estimate_tir_flops(kernel))
    except Exception:  # TVM raises builtin types for what it cannot count
        return None


def _last_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(e).__name__)[:300]
