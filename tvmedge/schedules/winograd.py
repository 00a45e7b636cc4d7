"""Winograd transforms (tvmedge.rewrites.winograd): each transform's first pass (along the
tile's rows) is computed per tile and channel vector into a local buffer, which LLVM keeps in
registers; the tile positions of both passes are unrolled, so every select over the short
sparse sums folds to one sum per unrolled copy; channels are vectors.

The batched GEMM between the transforms is an ordinary matmul kernel (Matmul rule).
"""

from __future__ import annotations

from tvm import s_tir

from tvmedge.rewrites.winograd import INPUT, INPUT_ROWS, OUTPUT, OUTPUT_ROWS
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
        if (info := _find(infos, INPUT)) and (rows := _find(infos, INPUT_ROWS)):
            self._input(sch, info.block_rv, rows.block_rv)
        elif (info := _find(infos, OUTPUT)) and (rows := _find(infos, OUTPUT_ROWS)):
            self._output(sch, info.block_rv, rows.block_rv)
        else:
            return None
        ours = (INPUT, INPUT_ROWS, OUTPUT, OUTPUT_ROWS)
        others = {i.name for i in infos if not i.name.startswith(ours)}
        schedule_root_blocks(sch, others, self.cpu)
        return sch

    def _width(self, sch, block, extent: int) -> int:
        return vector_factor(extent, self.cpu.lanes(out_dtype(sch, block)))

    def _first_pass(self, sch: s_tir.Schedule, rows, block, loop) -> None:
        """Compute the first pass at ``loop`` (one tile, one channel vector) in a local
        buffer, its positions unrolled and its channels a vector."""
        sch.compute_at(rows, loop)
        sch.set_scope(rows, 0, "local")
        target = sch.get(loop)
        depth = 1 + next(
            i for i, lp in enumerate(sch.get_loops(block)) if sch.get(lp).same_as(target)
        )
        *positions, vec = sch.get_loops(rows)[depth:]
        for lp in positions:
            sch.unroll(lp)
        sch.vectorize(vec)

    def _input(self, sch: s_tir.Schedule, block, rows) -> None:
        # V[e, p, c]: per tile, per channel vector, all (m+2)^2 outputs unrolled
        e, p, c = sch.get_loops(block)
        c_extent = int(sch.get(c).extent)
        c_out, c_vec = sch.split(c, [None, self._width(sch, block, c_extent)])
        sch.reorder(p, c_out, e, c_vec)
        parallel(sch, [p], int(sch.get(p).extent) * c_extent)
        sch.unroll(e)
        sch.vectorize(c_vec)
        self._first_pass(sch, rows, block, c_out)

    def _output(self, sch: s_tir.Schedule, block, rows) -> None:
        # Y[n, h, w, k] from M[e, p, k]: split h and w into tile and position, unroll the
        # m x m positions; the conv's epilogue (bias, ReLU, residual add) is folded in
        m = int(sch.get(rows).writes[0].source.shape[1])  # Z[i, w % m, p, k]
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
        self._first_pass(sch, rows, block, k_out)
