"""Graph rewrites: a registry of named, pure IRModule -> IRModule steps.

Each entry is a frozen :class:`Rewrite` record: the options it takes, the dtypes, layouts and
target families it applies to, the rewrites it needs before it, and ``make``, which returns its
TVM passes. A compile asks for rewrites by name (or ``(name, {option: value})``); :func:`plan`
checks them against the registry and the target, :func:`passes` runs them, and each fills a
report that the manifest keeps as ``{name, options, report}``. The build applies ``DEFAULT`` in
order; quantization and pruning register here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import tvm
from tvm import relax

from tvmedge.errors import TvmedgeError
from tvmedge.rewrites.fold_weights import fold_weights
from tvmedge.rewrites.int8 import activation_dtype, lower_to_integer
from tvmedge.rewrites.int8_dot import pack_int8
from tvmedge.rewrites.layout import channels_last
from tvmedge.rewrites.masked_pad import masked_pad_convolutions
from tvmedge.rewrites.pad_channels import pad_channels
from tvmedge.rewrites.prune import shrink_channels
from tvmedge.rewrites.qdq_elementwise import qdq_elementwise
from tvmedge.rewrites.winograd import winograd_convolutions
from tvmedge.schedules.int8_intrin import dot_for

CPU_FAMILIES = ("x86", "aarch64", "armv7")
ALL_FAMILIES = (*CPU_FAMILIES, "cuda")


@dataclass(frozen=True)
class Rewrite:
    """One named graph rewrite: what it does, the options it takes (name -> default value),
    what it applies to, and ``make(target, options, report)``, which returns its TVM passes.
    Passes may add what they did to ``report`` (quantization its accuracy, pruning what it
    removed); the pipeline adds the operator counts the rewrite changed."""

    name: str
    description: str
    make: Callable[[object, Mapping, dict], list[tvm.transform.Pass]]
    options: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    dtypes: tuple[str, ...] = ("float32", "float16")  # tensor dtypes it rewrites
    layouts: tuple[str, ...] = ("any",)  # data layouts it expects: NCHW, NHWC or any
    families: tuple[str, ...] = ALL_FAMILIES  # target families where it acts
    requires: tuple[str, ...] = ()  # rewrites that must run before it

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "options": dict(self.options),
            "dtypes": list(self.dtypes),
            "layouts": list(self.layouts),
            "families": list(self.families),
            "requires": list(self.requires),
        }


@dataclass(frozen=True)
class Chosen:
    """A rewrite planned for one compile: its options and, once it ran, its report."""

    rewrite: Rewrite
    options: Mapping[str, object]
    applies: bool  # False on a target family the rewrite does not act on
    report: dict = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        return self.rewrite.name

    def to_json(self) -> dict:
        """What the manifest keeps: ``{name, options, report}`` and the description."""
        return {
            "name": self.name,
            "description": self.rewrite.description,
            "options": dict(self.options),
            "applied": self.applies,
            "report": dict(self.report),
        }


def _fold_batchnorm(_target, _options, _report) -> list[tvm.transform.Pass]:
    # Scale/shift of an inference BatchNorm after a Conv2D folded into the conv's weights;
    # the BatchNorms left (not after a conv) become elementwise ops that fold further.
    return [relax.transform.FoldBatchnormToConv2D(), relax.transform.DecomposeOpsForInference()]


def _simplify(_target, _options, _report) -> list[tvm.transform.Pass]:
    # No Relax-level FoldConstant here: before legalization it can leave a reference to an
    # undefined shape_func (a Slice with run-time bounds), which breaks FuseOps later. The
    # build's legalize step folds constant sub-graphs after lowering instead.
    return [relax.transform.CanonicalizeBindings(), relax.transform.DeadCodeElimination()]


def _int8(target, _options, report) -> list[tvm.transform.Pass]:
    # QDQ convs and matmuls (dq -> op -> q) as integer ops: int8 weights, int32 accumulation,
    # requantize in the epilogue (tvmedge.rewrites.int8). Acts only where such patterns are.
    # The fake-quant ops left (around a residual Add, a pooling) become elementwise ops that
    # layout conversion moves through (tvmedge.rewrites.qdq_elementwise).
    return [
        lower_to_integer(report, activation_dtype(target)),
        qdq_elementwise,
        relax.transform.DeadCodeElimination(),
    ]


def _shrink_channels(target, options, report) -> list[tvm.transform.Pass]:
    # All-zero output channels (filters zeroed by structured pruning) removed with everything
    # that depends on them, exactly: a zeroed channel's constant (its bias, through the ops
    # after it) is folded into its consumers (tvmedge.rewrites.prune). Runs on NCHW weights,
    # after BatchNorm folding, so the weights are plain constants. Layers keep whole vectors of
    # channels: ResNet-style convs shrunk to 46 and 114 channels ran their Winograd GEMMs at 3%
    # of peak (benchmarks/prune.py), slower than the unshrunk model.
    round_to = options["round_to"] or lanes(target)
    report["round_to"] = round_to
    return [
        fold_weights,
        shrink_channels(report, round_to),
        relax.transform.DeadCodeElimination(),
    ]


def lanes(target) -> int:
    """fp32 vector lanes of ``target`` (1 without one: a test passing no target)."""
    caps = getattr(target, "capabilities", None)
    return max(1, caps.simd_width // 32) if caps is not None and caps.simd_width else 1


def _layout_nhwc(_target, _options, _report) -> list[tvm.transform.Pass]:
    # Channels-last convolutions on CPUs: the output channels become the contiguous axis, so a
    # conv's inner loop is a vector of weights times a broadcast input pixel, whatever its stride
    # or input channel count. Layout-agnostic ops follow; transposes are left at the edges.
    return [fold_weights, channels_last, relax.transform.CanonicalizeBindings()]


def _winograd(_target, _options, _report) -> list[tvm.transform.Pass]:
    # 3x3 stride-1 convolutions as Winograd F(4x4 or 2x2, 3x3) on CPUs: 2.25-4x fewer
    # multiplications, transformed weights folded at compile time (tvmedge.rewrites.winograd).
    # ConvertLayout leaves the HWIO weights as transposes of constants: fold them first.
    return [fold_weights, winograd_convolutions, relax.transform.DeadCodeElimination()]


def _pad_channels(target, options, report) -> list[tvm.transform.Pass]:
    # Output channels of constant-weight convs and matmuls padded to whole vectors on CPUs
    # (1000 classes as 1024: 32 x 16 lanes, not 100 x 10), sliced back after the channel-wise ops
    # that follow (tvmedge.rewrites.pad_channels).
    lanes = options["lanes"] or max(1, target.capabilities.simd_width // 32)
    report["lanes"] = lanes
    return [fold_weights, pad_channels(lanes), relax.transform.DeadCodeElimination()]


def _masked_pad(_target, _options, _report) -> list[tvm.transform.Pass]:
    # Depthwise convs read their zero padding through a clamped index and a bit mask instead of
    # a guarded load, which LLVM compiled into a branch per load and accumulators on the stack
    # (tvmedge.rewrites.masked_pad). GPUs predicate guarded loads without branching.
    return [masked_pad_convolutions]


def _int8_dot(target, _options, report) -> list[tvm.transform.Pass]:
    # Integer convs and matmuls (the int8 rewrite's forms) with their int8 weights packed for
    # the target's dot-product instruction, which tvmedge.schedules.int8_dot tensorizes with.
    dot = dot_for(target)
    if dot is None:
        return []
    report["instruction"] = dot.name
    return [fold_weights, pack_int8(dot, report)]


REGISTRY = MappingProxyType(
    {
        r.name: r
        for r in (
            Rewrite(
                "fold-batchnorm",
                "fold inference BatchNorm into the preceding Conv",
                _fold_batchnorm,
                layouts=("NCHW",),
            ),
            Rewrite("simplify", "canonicalize bindings, drop dead code", _simplify),
            Rewrite(
                "int8",
                "quantized (QDQ) convolutions and matmuls as int8 ops with int32 accumulation "
                "and a fused requantize, on CPU targets",
                _int8,
                dtypes=("float32", "int8", "uint8"),
                layouts=("NCHW",),
                families=CPU_FAMILIES,
            ),
            Rewrite(
                "shrink-channels",
                "remove all-zero output channels of convolutions and dense layers (pruned "
                "filters) and what depends on them, their constants folded into the consumers",
                _shrink_channels,
                options=MappingProxyType({"round_to": 0}),  # 0: the target's fp32 lanes
                layouts=("NCHW",),
            ),
            Rewrite(
                "layout-nhwc",
                "channels-last convolutions on CPU targets (NHWC data, HWIO weights)",
                _layout_nhwc,
                layouts=("NCHW",),
                families=CPU_FAMILIES,
            ),
            Rewrite(
                "winograd",
                "3x3 stride-1 convolutions as Winograd F(4x4|2x2, 3x3) on CPU targets",
                _winograd,
                layouts=("NHWC",),
                families=CPU_FAMILIES,
                requires=("layout-nhwc",),
            ),
            Rewrite(
                "pad-channels",
                "output channels padded to whole vectors on CPU targets, sliced back after "
                "the channel-wise ops that follow",
                _pad_channels,
                options=MappingProxyType({"lanes": 0}),  # 0: the target's fp32 vector lanes
                families=CPU_FAMILIES,
            ),
            Rewrite(
                "masked-pad",
                "depthwise convolutions read their zero padding through a mask, not a branch, "
                "on CPU targets",
                _masked_pad,
                dtypes=("float32", "float16"),
                layouts=("NHWC",),
                families=CPU_FAMILIES,
                requires=("layout-nhwc",),
            ),
            Rewrite(
                "int8-dot",
                "int8 convs and matmuls with weights packed for the target's dot-product "
                "instruction (vpdpbusd, sdot, vpmaddwd)",
                _int8_dot,
                dtypes=("int8", "uint8"),
                layouts=("NHWC",),
                families=CPU_FAMILIES,
                requires=("layout-nhwc",),
            ),
        )
    }
)
DEFAULT = (
    "fold-batchnorm",
    "simplify",
    "int8",
    "shrink-channels",
    "layout-nhwc",
    "winograd",
    "pad-channels",
    "masked-pad",
    "int8-dot",
)
# A rewrite asked for: its name, or (name, {option: value}).
Spec = str | tuple[str, Mapping[str, object]]


def without(*names: str) -> tuple[str, ...]:
    """DEFAULT less ``names`` (``--no-winograd``: direct convolutions, the exact rounding of a
    plain sum of products, for users who must reproduce another runtime's numerics closely)."""
    return tuple(n for n in DEFAULT if n not in names)


def plan(specs, target) -> list[Chosen]:
    """Check the asked-for rewrites against the registry and ``target``: unknown names and
    options list the valid ones, an option of the wrong type or a prerequisite missing (or
    after its dependant) is an error naming the fix. Options not given take their defaults."""
    chosen: list[Chosen] = []
    for spec in specs:
        name, given = (spec, {}) if isinstance(spec, str) else (spec[0], dict(spec[1]))
        if name not in REGISTRY:
            raise TvmedgeError(f"unknown rewrite '{name}'; valid: {', '.join(REGISTRY)}")
        rewrite = REGISTRY[name]
        for key, value in given.items():
            if key not in rewrite.options:
                valid = ", ".join(rewrite.options) or "none"
                raise TvmedgeError(f"rewrite '{name}' has no option '{key}'; its options: {valid}")
            default = rewrite.options[key]
            if type(value) is not type(default):
                raise TvmedgeError(
                    f"rewrite '{name}' option '{key}' must be a {type(default).__name__}, "
                    f"not {value!r}"
                )
        earlier = {c.name for c in chosen}
        missing = [r for r in rewrite.requires if r not in earlier]
        if missing:
            raise TvmedgeError(
                f"rewrite '{name}' needs {', '.join(repr(m) for m in missing)} to run before "
                "it; add it earlier in the list or drop this rewrite"
            )
        if name in earlier:
            raise TvmedgeError(f"rewrite '{name}' is asked for twice; give it once")
        options = MappingProxyType({**rewrite.options, **given})
        family = getattr(target, "family", None)  # None: a test passes no target
        chosen.append(Chosen(rewrite, options, family is None or family in rewrite.families))
    return chosen


def passes(chosen, target) -> list[tvm.transform.Pass]:
    """The TVM passes of the planned rewrites (or of specs, planned here), in order. Each
    rewrite's passes run as one pass that records, in its report, the Relax operators it added
    or removed."""
    if not all(isinstance(c, Chosen) for c in chosen):
        chosen = plan(chosen, target)
    return [_reported(c, c.rewrite.make(target, c.options, c.report)) for c in chosen if c.applies]


def _reported(chosen: Chosen, steps: list[tvm.transform.Pass]) -> tvm.transform.Pass:
    @tvm.transform.module_pass(opt_level=0, name=f"tvmedge.rewrite.{chosen.name}")
    def run(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        before = op_counts(mod)
        mod = tvm.transform.Sequential(steps)(mod)
        after = op_counts(mod)
        changed = {
            op: [before.get(op, 0), after.get(op, 0)]
            for op in sorted(set(before) | set(after))
            if before.get(op, 0) != after.get(op, 0)
        }
        if changed:  # op -> [calls before, calls after]
            chosen.report["ops"] = changed
        return mod

    return run


def op_counts(mod: tvm.IRModule) -> dict[str, int]:
    """Calls of each Relax operator (and of generated TIR kernels, as call_tir) in ``mod``."""
    counts: dict[str, int] = {}

    def visit(expr):
        if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
            name = expr.op.name.removeprefix("relax.")
            counts[name] = counts.get(name, 0) + 1

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func.body, visit)
    return counts
