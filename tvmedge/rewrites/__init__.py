"""Graph rewrites: a registry of named, pure IRModule -> IRModule steps.

Each entry is a frozen record whose ``passes(target)`` returns TVM passes. The build applies
``DEFAULT`` in order; quantization and pruning register here too and record their settings and
accuracy in the artifact manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

import tvm
from tvm import relax

from tvmedge.errors import TvmedgeError
from tvmedge.rewrites.fold_weights import fold_weights
from tvmedge.rewrites.layout import channels_last
from tvmedge.rewrites.masked_pad import masked_pad_convolutions
from tvmedge.rewrites.pad_channels import pad_channels
from tvmedge.rewrites.winograd import winograd_convolutions


@dataclass(frozen=True)
class Rewrite:
    name: str
    description: str
    passes: Callable[[object], list[tvm.transform.Pass]]


def _fold_batchnorm(_target) -> list[tvm.transform.Pass]:
    # Scale/shift of an inference BatchNorm after a Conv2D folded into the conv's weights;
    # the BatchNorms left (not after a conv) become elementwise ops that fold further.
    return [relax.transform.FoldBatchnormToConv2D(), relax.transform.DecomposeOpsForInference()]


def _simplify(_target) -> list[tvm.transform.Pass]:
    # No Relax-level FoldConstant here: before legalization it can leave a reference to an
    # undefined shape_func (a Slice with run-time bounds), which breaks FuseOps later. The
    # build's legalize step folds constant sub-graphs after lowering instead.
    return [relax.transform.CanonicalizeBindings(), relax.transform.DeadCodeElimination()]


def _layout_nhwc(target) -> list[tvm.transform.Pass]:
    # Channels-last convolutions on CPUs: the output channels become the contiguous axis, so a
    # conv's inner loop is a vector of weights times a broadcast input pixel, whatever its stride
    # or input channel count. Layout-agnostic ops follow; transposes are left at the edges.
    if target.family == "cuda":
        return []
    return [fold_weights, channels_last, relax.transform.CanonicalizeBindings()]


def _winograd(target) -> list[tvm.transform.Pass]:
    # 3x3 stride-1 convolutions as Winograd F(4x4 or 2x2, 3x3) on CPUs: 2.25-4x fewer
    # multiplications, transformed weights folded at compile time (tvmedge.rewrites.winograd).
    if target.family == "cuda":
        return []
    # ConvertLayout leaves the HWIO weights as transposes of constants: fold them first.
    return [fold_weights, winograd_convolutions, relax.transform.DeadCodeElimination()]


def _pad_channels(target) -> list[tvm.transform.Pass]:
    # Output channels of constant-weight convs and matmuls padded to whole vectors on CPUs
    # (1000 classes as 1024: 32 x 16 lanes, not 100 x 10), sliced back after the channel-wise ops
    # that follow (tvmedge.rewrites.pad_channels).
    if target.family == "cuda":
        return []
    lanes = max(1, target.capabilities.simd_width // 32)
    return [fold_weights, pad_channels(lanes), relax.transform.DeadCodeElimination()]


def _masked_pad(target) -> list[tvm.transform.Pass]:
    # Depthwise convs read their zero padding through a clamped index and a bit mask instead of
    # a guarded load, which LLVM compiled into a branch per load and accumulators on the stack
    # (tvmedge.rewrites.masked_pad). GPUs predicate guarded loads without branching.
    if target.family == "cuda":
        return []
    return [masked_pad_convolutions]


REGISTRY = MappingProxyType(
    {
        r.name: r
        for r in (
            Rewrite(
                "fold-batchnorm",
                "fold inference BatchNorm into the preceding Conv",
                _fold_batchnorm,
            ),
            Rewrite("simplify", "canonicalize bindings, drop dead code", _simplify),
            Rewrite(
                "layout-nhwc",
                "channels-last convolutions on CPU targets (NHWC data, HWIO weights)",
                _layout_nhwc,
            ),
            Rewrite(
                "winograd",
                "3x3 stride-1 convolutions as Winograd F(4x4|2x2, 3x3) on CPU targets",
                _winograd,
            ),
            Rewrite(
                "pad-channels",
                "output channels padded to whole vectors on CPU targets, sliced back after "
                "the channel-wise ops that follow",
                _pad_channels,
            ),
            Rewrite(
                "masked-pad",
                "depthwise convolutions read their zero padding through a mask, not a branch, "
                "on CPU targets",
                _masked_pad,
            ),
        )
    }
)
DEFAULT = (
    "fold-batchnorm",
    "simplify",
    "layout-nhwc",
    "winograd",
    "pad-channels",
    "masked-pad",
)


def without(*names: str) -> tuple[str, ...]:
    """DEFAULT less ``names`` (``--no-winograd``: direct convolutions, the exact rounding of a
    plain sum of products, for users who must reproduce another runtime's numerics closely)."""
    return tuple(n for n in DEFAULT if n not in names)


def passes(names: tuple[str, ...], target) -> list[tvm.transform.Pass]:
    """The TVM passes for the named rewrites, in order; an unknown name lists the valid ones."""
    result: list[tvm.transform.Pass] = []
    for name in names:
        if name not in REGISTRY:
            raise TvmedgeError(f"unknown rewrite '{name}'; valid: {', '.join(REGISTRY)}")
        result.extend(REGISTRY[name].passes(target))
    return result
