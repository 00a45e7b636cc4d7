"""Dense, matmul and batch matmul: vectorized along the output's columns, register-blocked
over rows, reduction loop outside the register tile, bias/activation epilogue fused.

Legalized ONNX Gemm/MatMul are ``C[.., i, j] += A[.., i, k] * B[.., k, j]`` (the transposes of
constant weights are folded before this step), so a vector of B's row feeds one accumulator
per row of A held in the tile.
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


class Matmul(CPUScheduleRule):
    """Default schedule for matrix-product kernels (with their fused epilogue)."""

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
        if loads is None or axes is None:
            return None
        if not all(isinstance(i, tirx.Var | tirx.IntImm) for ld in loads for i in ld.indices):
            return None  # a sliding window: Conv2d's kernel
        vec = axes[-1]
        return schedule_contraction(
            sch, infos, main, self.cpu, vec=vec, reg=register_axis(main, vec, loads)
        )
