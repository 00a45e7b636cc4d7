"""Convolutions (NCHW conv2d, depthwise, grouped, 1x1): vectorized along the output width,
register-blocked over output channels.

Each vector of input pixels is loaded once and multiplied by several output channels' weights
(broadcast scalars), so the inner loop is FMAs on registers. Depthwise convolutions have no
channel reuse; they are blocked over output rows instead, reusing each broadcast weight. The
zero-padded input stays a separate (parallel, vectorized) loop nest: inlining the padding would
put a branch in the innermost loop.
"""

from __future__ import annotations

from tvm import tirx

from tvmedge.schedules.common import Rule
from tvmedge.schedules.contraction import (
    longest_run,
    register_axes,
    schedule_contraction,
    single_contraction,
)


def is_window(loads: list[tirx.BufferLoad]) -> bool:
    """A sliding window: some load index is an expression (``y * stride + ry``), not a var."""
    return any(
        not isinstance(index, tirx.Var | tirx.IntImm) for load in loads for index in load.indices
    )


class Conv2d(Rule):
    """Default schedule for convolution kernels (with their fused epilogue)."""

    def apply(self, func, target, _tunable):
        kernel = self.kernel(func, target)
        found = kernel and single_contraction(*kernel)
        if not found or not is_window(found[1]):
            return None
        sch, infos = kernel
        main, loads, axes = found
        vec = axes[-1]
        reg = register_axes(main, vec, loads)
        if not reg:  # depthwise: every operand is a vector; block over output pixels
            reg = longest_run(i for i in axes if i != vec and int(main.iters[i].dom) > 1)
        return schedule_contraction(sch, infos, main, loads, self.cpu, vec=vec, reg=reg)
