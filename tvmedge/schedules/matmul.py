"""Dense, matmul and batch matmul: vectorized along the output's columns, register-blocked
over rows, reduction loop outside the register tile, bias/activation epilogue fused.

Legalized ONNX Gemm/MatMul are ``C[.., i, j] += A[.., i, k] * B[.., k, j]`` (the transposes of
constant weights are folded before this step), so a vector of B's row feeds one accumulator
per row of A held in the tile.
"""

from __future__ import annotations

from tvm import tirx

from tvmedge.schedules.common import Rule
from tvmedge.schedules.contraction import (
    register_axes,
    schedule_contraction,
    single_contraction,
)


class Matmul(Rule):
    """Default schedule for matrix-product kernels (with their fused epilogue)."""

    def apply(self, func, target, _tunable):
        kernel = self.kernel(func, target)
        found = kernel and single_contraction(*kernel)
        if not found:
            return None
        sch, infos = kernel
        main, loads, axes = found
        if not all(isinstance(i, tirx.Var | tirx.IntImm) for ld in loads for i in ld.indices):
            return None  # a sliding window: Conv2d's kernel
        vec = axes[-1]
        return schedule_contraction(
            sch, infos, main, loads, self.cpu, vec=vec, reg=register_axes(main, vec, loads)
        )
