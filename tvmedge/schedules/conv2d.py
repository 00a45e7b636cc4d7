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
from tvm.s_tir.dlight.cpu.base import CPUScheduleRule

from tvmedge.schedules.common import Cpu, blocks_of, const_extents, inline_copies
from tvmedge.schedules.contraction import (
    mac_reads,
    output_axes,
    register_axis,
    schedule_contraction,
)


def is_window(loads: list[tirx.BufferLoad]) -> bool:
    """A sliding window: some load index is an expression (``y * stride + ry``), not a var."""
    return any(
        not isinstance(index, tirx.Var | tirx.IntImm) for load in loads for index in load.indices
    )


class Conv2d(CPUScheduleRule):
    """Default schedule for convolution kernels (with their fused epilogue)."""

    def __init__(self, cpu: Cpu):
        self.cpu = cpu

    def apply(self, func, target, _tunable):
        if not self.is_target_available(target):
            return None
        found = blocks_of(func)
        if found is None:
            return None
        sch, infos = found
        infos = inline_copies(sch, infos)
        mains = [info for info in infos if info.is_reduction()]
        if len(mains) != 1 or const_extents(mains[0]) is None:
            return None
        main = mains[0]
        loads, axes = mac_reads(sch, main), output_axes(sch, main)
        if loads is None or axes is None or not is_window(loads):
            return None
        vec = axes[-1]
        reg = register_axis(main, vec, loads)
        if reg is None:  # depthwise: block over output rows instead
            reg = axes[-2] if len(axes) > 1 else None
        return schedule_contraction(sch, infos, main, self.cpu, vec=vec, reg=reg)
