"""Convolutions (NCHW conv2d, depthwise, grouped, 1x1): vectorized along the output width,
register-blocked over output channels.

Each vector of input pixels is loaded once and multiplied by several output channels' weights
(broadcast scalars), so the inner loop is FMAs on registers. Depthwise convolutions have no
channel reuse; they are blocked over output rows instead, reusing each broadcast weight. The
zero-padded input stays a separate (parallel, vectorized) loop nest: inlining the padding would
put a branch in the innermost loop.
"""

from __future__ import annotations

import contextlib

from tvm import s_tir, tirx

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


def inline_padding(sch, main) -> None:
    """Compute the zero padding inside the kernel's loads instead of copying the input.

    A depthwise conv does 9 FMAs per input element, so a padded copy of its input (written
    to memory, read back) costs about as much as the convolution. Inlined, the bounds test
    depends on the pixel only, so it is one branch per pixel vector, not per lane. Measured
    on MobileNetV2's ten depthwise kernels: 1.13 ms copied, 0.89 ms inlined; one of them
    (stride 2, 96 channels) was faster copied, so tuning measures both (schedules.cpu_variants).
    """
    for producer in sch.get_producers(main.block_rv):
        with contextlib.suppress(s_tir.ScheduleError):
            sch.compute_inline(producer)


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
            if self.cpu.pad_inline:
                inline_padding(sch, main)
        return schedule_contraction(sch, infos, main, loads, self.cpu, vec=vec, reg=reg)
