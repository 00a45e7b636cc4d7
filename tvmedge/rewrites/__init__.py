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


@dataclass(frozen=True)
class Rewrite:
    name: str
    description: str
    passes: Callable[[object], list[tvm.transform.Pass]]


def _fold_batchnorm(_target) -> list[tvm.transform.Pass]:
    # Scale/shift of an inference BatchNorm after a Conv2D folded into the conv's weights;
    # the BatchNorms left (not after a conv) become elementwise ops that fold further.
    return [relax.transform.FoldBatchnormToConv2D(), relax.transform.DecomposeOpsForInference()]


def _fold_constants(_target) -> list[tvm.transform.Pass]:
    return [
        relax.transform.FoldConstant(),
        relax.transform.CanonicalizeBindings(),
        relax.transform.DeadCodeElimination(),
    ]


REGISTRY = MappingProxyType(
    {
        r.name: r
        for r in (
            Rewrite(
                "fold-batchnorm",
                "fold inference BatchNorm into the preceding Conv",
                _fold_batchnorm,
            ),
            Rewrite(
                "fold-constants", "evaluate constant sub-graphs, drop dead code", _fold_constants
            ),
        )
    }
)
DEFAULT = ("fold-batchnorm", "fold-constants")


def passes(names: tuple[str, ...], target) -> list[tvm.transform.Pass]:
    """The TVM passes for the named rewrites, in order; an unknown name lists the valid ones."""
    result: list[tvm.transform.Pass] = []
    for name in names:
        if name not in REGISTRY:
            raise TvmedgeError(f"unknown rewrite '{name}'; valid: {', '.join(REGISTRY)}")
        result.extend(REGISTRY[name].passes(target))
    return result
