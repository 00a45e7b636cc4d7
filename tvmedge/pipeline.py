"""The one pipeline that `compile` and `tune` both run, from an ONNX file to scheduled kernels.

    import_model:  load + check + bind shapes + import into Relax   (frontend)
    steps:         rewrites -> dispatch -> legalize + fuse -> schedule -> transfer
                   -> default-schedule -> prepack -> lower -> finalize

Tuning runs the same steps up to ``TUNING_STEPS`` on the same bound shapes, so a task's
workload is structurally identical to the kernel a compile looks up in the logs. tvmedge.build
drives these steps and generates code; tvmedge.tune extracts tasks from ``tuning_module``.
Scheduling: kernels with a record in the tuning logs get its schedule; the rest get the target
family's default schedules (tvmedge's CPU rules in tvmedge/schedules, DLight's for CUDA).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx
import tvm
from tvm import relax

from tvmedge import rewrites
from tvmedge.errors import ShapeError
from tvmedge.frontend import check_supported, graph_inputs, graph_output_names, load_onnx
from tvmedge.frontend.gate import check_bound_sizes
from tvmedge.frontend.importer import import_onnx, output_specs
from tvmedge.frontend.load import LoadedModel
from tvmedge.frontend.shapes import bind, format_shape
from tvmedge.layout import TensorSpec
from tvmedge.schedules import cpu_rules, cpu_variants
from tvmedge.targets import Target

Steps = list[tuple[str, list[tvm.transform.Pass]]]
TUNING_STEPS = ("rewrites", "dispatch", "legalize")  # what tuning sees: tasks come from here


@dataclass(frozen=True)
class Imported:
    """A model loaded, checked, bound to its input shapes and imported into Relax."""

    loaded: LoadedModel
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    mod: tvm.IRModule


def import_model(
    model: str | Path,
    input_shapes: dict | None = None,
    *,
    static: bool = False,
    allow_external_data: bool = False,
    prepare: Callable[[onnx.ModelProto], onnx.ModelProto] | None = None,
) -> Imported:
    """Load and check ``model``, bind ``input_shapes``, import it. ``static``: every input dim
    must be bound (tuning measures kernels of fixed shapes). ``allow_external_data``: read
    tensors stored in files next to the model (frontend/external_data.py). ``prepare``: applied
    to the loaded graph before anything else sees it (``--prune`` zeroes filters there)."""
    loaded = load_onnx(model, allow_external_data=allow_external_data)
    if prepare is not None:
        loaded = dataclasses.replace(loaded, proto=prepare(loaded.proto))
    check_supported(loaded.proto)
    inputs = bind(graph_inputs(loaded.proto), input_shapes or {})
    check_bound_sizes(inputs, f"'{loaded.path}'")
    symbolic = [s for s in inputs if not s.is_static]
    if static and symbolic:
        s = symbolic[0]
        raise ShapeError(
            f"tuning needs static shapes, and input '{s.name}' is {format_shape(s.shape)}: bind "
            f"it with --input-shape {s.name}=... (and compile with the same binding)"
        )
    names = graph_output_names(loaded.proto)  # refuses non-tensor outputs before the import
    mod = import_onnx(loaded, inputs)
    outputs = output_specs(mod, names)
    return Imported(loaded, inputs, outputs, mod)


def tuning_module(
    model: str | Path,
    input_shapes: dict,
    target: Target,
    specs=rewrites.DEFAULT,
    *,
    allow_external_data: bool = False,
) -> tvm.IRModule:
    """The model as tuning sees it: imported with static shapes, through ``TUNING_STEPS``."""
    mod = import_model(
        model, input_shapes, static=True, allow_external_data=allow_external_data
    ).mod
    chosen = rewrites.plan(specs, target)
    with target.tvm_target():
        for name, passes in steps(target, chosen):
            if name in TUNING_STEPS:
                mod = tvm.transform.Sequential(passes, name=name)(mod)
    return mod


def search_target(target: Target):
    """The TVM target MetaSchedule searches with. It needs a core count; a portable target
    (x86-64-avx2, ...) has none on purpose, so this machine's is used for the search only.
    The cache key stays that of the target as defined, so its logs serve any such CPU."""
    from tvmedge.machine import physical_cores

    spec = dict(target.tvm)
    if target.family != "cuda" and "num-cores" not in spec:
        spec["num-cores"] = physical_cores()
    if target.host is not None:
        spec["host"] = dict(target.host)
    return tvm.target.Target(spec)


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


def steps(
    target: Target,
    chosen: list[rewrites.Chosen],
    database=None,
    transferred: dict[str, str] | None = None,
) -> Steps:
    """The named pipeline steps for ``target``, in order. ``chosen``: the planned rewrites
    (rewrites.plan), whose reports fill as they run; ``database``: tuning records;
    ``transferred``: a dict to collect schedules transferred from similar workloads (None: do
    not transfer)."""
    return [
        ("rewrites", rewrites.passes(chosen, target)),
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


def kernel_flops(mod: tvm.IRModule) -> dict[str, float]:
    """Floating-point ops per call of each TIR kernel, for `tvmedge profile`'s GFLOP/s.

    Counted after legalization because the artifact keeps only machine code. Scheduling
    reorders loops but does not change the arithmetic, so the count is the kernel's. A kernel
    TVM cannot count is left out. With symbolic shapes TVM counts a symbolic loop as a few
    iterations: the caller must drop these counts for such models (api.compile does).
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
