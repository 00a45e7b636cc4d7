"""Winograd transforms (tvmedge.rewrites.winograd): the tile position is unrolled, so the
select over the (m+2)^2 sparse sums folds to one sum per unrolled copy; channels are vectors.

The batched GEMM between the transforms is an ordinary matmul kernel (Matmul rule).
"""

from __future__ import annotations

import math

from tvm import s_tir

from tvmedge.rewrites.winograd import INPUT, OUTPUT
from tvmedge.schedules.common import (
    Rule,
    fold_epilogue,
    out_dtype,
    parallel,
    schedule_root_blocks,
    vector_factor,
)


def _find(infos, name: str):
    found = [info for info in infos if info.name.startswith(name)]
    return found[0] if len(found) == 1 else None


class WinogradTransform(Rule):
    """Default schedule for the input and output transforms of a Winograd convolution."""

    def apply(self, func, target, _tunable):
        kernel = self.kernel(func, target)
        if not kernel:
            return None
        sch, infos = kernel
        if any(info.is_reduction() for info in infos):
            return None
        if (info := _find(infos, INPUT)) is not None:
            self._input(sch, info.block_rv)
        elif (info := _find(infos, OUTPUT)) is not None:
            self._output(sch, info.block_rv)
        else:
            return None
        others = {i.name for i in infos if not i.name.startswith((INPUT, OUTPUT))}
        schedule_root_blocks(sch, others, self.cpu)
        return sch

    def _width(self, sch, block, extent: int) -> int:
        return vector_factor(extent, self.cpu.lanes(out_dtype(sch, block)))

    def _input(self, sch: s_tir.Schedule, block) -> None:
        # V[e, p, c]: per tile, per channel vector, all (m+2)^2 outputs unrolled
        e, p, c = sch.get_loops(block)
        c_extent = int(sch.get(c).extent)
        c_out, c_vec = sch.split(c, [None, self._width(sch, block, c_extent)])
        sch.reorder(p, c_out, e, c_vec)
        parallel(sch, [p], int(sch.get(p).extent) * c_extent)
        sch.unroll(e)
        sch.vectorize(c_vec)

    def _output(self, sch: s_tir.Schedule, block) -> None:
        # Y[n, h, w, k] from M[e, p, k]: split h and w into tile and position, unroll the
        # m x m positions; the conv's epilogue (bias, ReLU, residual add) is folded in
        m = math.isqrt(int(sch.get(block).reads[0].source.shape[0])) - 2
        fold_epilogue(sch, block)
        *batch, h, w, k = sch.get_loops(block)  # a batch of 1 has no loop
        th, vh = sch.split(h, [None, m])
        tw, vw = sch.split(w, [None, m])
        k_extent = int(sch.get(k).extent)
        k_out, k_vec = sch.split(k, [None, self._width(sch, block, k_extent)])
        sch.reorder(*batch, th, tw, k_out, vh, vw, k_vec)
        parallel(sch, [*batch, th], None)
        sch.unroll(vh)
        sch.unroll(vw)
        sch.vectorize(k_vec)
