"""Channels-last (NHWC data, HWIO weights) convolutions through Relax's ConvertLayout.

ConvertLayout needs constant weights (it crashes on a conv whose weight is computed, which is
what BatchNorm folding leaves until ``fold_weights`` runs) and has gaps of its own: a module it
cannot convert keeps its layout, with a warning on stderr naming TVM's reason, instead of failing
the build. Modules without a conv2d are left alone.
"""

from __future__ import annotations

import sys

import tvm
from tvm import relax

DESIRED = {"relax.nn.conv2d": ["NHWC", "HWIO"]}


def _has_conv2d(mod: tvm.IRModule) -> bool:
    found = []

    def visit(expr):
        if isinstance(expr, relax.Call) and getattr(expr.op, "name", "") == "relax.nn.conv2d":
            found.append(expr)

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func.body, visit)
    return bool(found)


@tvm.transform.module_pass(opt_level=0, name="tvmedge.ChannelsLast")
def channels_last(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
    if not _has_conv2d(mod):
        return mod
    try:
        converted = relax.transform.ConvertLayout(DESIRED)(mod)
    except Exception as e:  # TVM raises builtin types from C++ (IndexError, TypeError, ...)
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        print(
            f"tvmedge: warning: kept NCHW convolutions (TVM's layout conversion failed: "
            f"{reason}); the build is correct but slower",
            file=sys.stderr,
        )
        return mod
    return relax.transform.DeadCodeElimination()(converted)
