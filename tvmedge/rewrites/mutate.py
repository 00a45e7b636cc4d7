"""What the call-rewriting passes (winograd, pad-channels, masked-pad) share."""

from __future__ import annotations

import tvm
from tvm import relax


def rewrite_functions(mutator, mod: tvm.IRModule) -> tvm.IRModule:
    """``mod`` with every Relax function visited by ``mutator`` (a PyExprMutator of ``mod``)."""
    for gvar, func in mod.functions.items():
        if isinstance(func, relax.Function):
            mutator.builder_.update_func(gvar, mutator.visit_expr(func))
    return mutator.builder_.get()


def channels_last_conv2d(call) -> bool:
    """A relax conv2d with NHWC data and output and HWIO weights (what layout-nhwc makes)."""
    if getattr(call.op, "name", "") != "relax.nn.conv2d":
        return False
    attrs = call.attrs
    return (
        attrs.data_layout == "NHWC"
        and attrs.kernel_layout == "HWIO"
        and attrs.out_layout in ("NHWC", "")
    )
