"""Integer convs and matmuls on dot-product instructions (``vpdpbusd``, ``sdot``, ``vpmaddwd``).

Takes the kernels of tvmedge.rewrites.int8_dot: a reduction block annotated with the
instruction, over weights packed as (N/lanes, ..., K/r, lanes, r), then a write-back of the real
output channels with the fused epilogue (zero-point correction, bias, requantize, cast).
The nest is

    parallel(spatial tiles) / reductions (K in steps of r) / rows (unrolled) /
    vectors (unrolled) / [lanes x r]: one instruction

so each tile keeps ``rows x vectors`` int32 accumulators in registers: a broadcast of r
activation bytes feeds ``vectors`` instructions, a weight vector ``rows`` of them. The tile is
then written back through the epilogue while it is in registers. ``rows`` run along the output's
second-to-last axis (a conv's output pixels of one row, a matmul's rows).
"""

from __future__ import annotations

from tvm import s_tir

from tvmedge.schedules.common import (
    Rule,
    blocks_of,
    divisor_at_most,
    fold_epilogue,
    parallel,
    schedule_root_blocks,
)
from tvmedge.schedules.int8_intrin import ANNOTATION, dot_of

MAX_ROWS, MAX_ACCUMULATORS = 14, 16


def tile(rows_extent: int, blocks: int, budget: int = MAX_ACCUMULATORS) -> tuple[int, int]:
    """(rows, vectors) of the register tile: divisors of the extents (no tails), at most
    ``budget`` accumulators (16; 8 with AVX2's 16 registers), as many as fit, more rows
    first (each row reuses the loaded weight vectors); at most 2 vectors unless there are 1-2
    rows (a GEMV needs more independent sums).
    Measured on Zen 4 (ResNet-18's 3x3 convs, 1 thread): 8x2 and 7x2 beat 4x4, 2x4, 14x1
    by 10-30% at 56x56x64; 7x2 and 14x1 tied at 14x14x256; 7x4 (28 registers) spilled and
    took 4-5x longer."""
    best = (1, 1)
    for rows in range(1, min(rows_extent, MAX_ROWS) + 1):
        if rows_extent % rows:
            continue
        limit = min(4 if rows <= 2 else 2, budget // rows)
        vectors = divisor_at_most(blocks, limit)
        if rows * vectors >= best[0] * best[1]:
            best = (rows, vectors)
    return best


def _annotated(sch, infos):
    found = [i for i in infos if ANNOTATION in sch.get(i.block_rv).annotations]
    return found[0] if len(found) == 1 else None


class Int8Dot(Rule):
    """Default schedule for the packed int8 kernels (see the module docstring)."""

    def apply(self, func, target, _tunable):
        if not self.is_target_available(target):
            return None
        found = blocks_of(func)
        if found is None:
            return None
        sch, infos = found
        main = _annotated(sch, infos)
        if main is None or any(not i.is_injective() for i in infos if i is not main):
            return None
        consumers = sch.get_consumers(main.block_rv)
        loops = sch.get_loops(main.block_rv)
        if len(consumers) != 1 or len(loops) != len(main.iters):
            return None
        dot = dot_of(str(sch.get(main.block_rv).annotations[ANNOTATION]))
        others = {i.name for i in infos if i is not main}
        out = consumers[0]
        fold_epilogue(sch, out)
        tile_loop, lanes = self._tile(sch, main, loops, dot)
        sch.reverse_compute_at(out, tile_loop)
        *rows, last = sch.get_loops(out)[1:]  # under the one parallel loop
        for loop in rows:
            sch.unroll(loop)
        _unroll_vectorize(sch, last, dot.lanes)
        sch.set_scope(main.block_rv, 0, "local")
        sch.tensorize(lanes, dot.intrin)
        schedule_root_blocks(sch, others - {sch.get(out).name_hint}, self.cpu)
        return sch

    def _tile(self, sch: s_tir.Schedule, main, loops, dot):
        """Split and order the nest; returns the parallel loop the write-back goes under and
        the lane loop to tensorize."""
        kinds = [it.kind for it in main.iters]
        extents = [int(it.dom) for it in main.iters]
        spatial = [i for i, k in enumerate(kinds) if k == "S"]
        reduction = [i for i, k in enumerate(kinds) if k == "R"]
        vec = spatial[-1]
        reg = spatial[-2] if len(spatial) > 1 else None
        budget = MAX_ACCUMULATORS if self.cpu.registers >= 32 else MAX_ACCUMULATORS // 2
        rows, vectors = tile(1 if reg is None else extents[reg], extents[vec] // dot.lanes, budget)
        vec_outer, vec_tile, lanes = sch.split(loops[vec], [None, vectors, dot.lanes])
        *red_outer, red_last = (loops[i] for i in reduction)
        red_step, red_inner = sch.split(red_last, [None, dot.reduce])
        outer, inner = [], []
        for i in spatial[:-1]:
            if i == reg and rows > 1:
                reg_outer, reg_inner = sch.split(loops[i], [None, rows])
                outer.append(reg_outer)
                inner.append(reg_inner)
            else:
                outer.append(loops[i])
        outer.append(vec_outer)
        inner.append(vec_tile)
        sch.reorder(*outer, *red_outer, red_step, *inner, lanes, red_inner)
        work = 1
        for e in extents[: reduction[0]]:
            work *= e
        fused = parallel(sch, outer, work)
        first_reduction = red_outer[0] if red_outer else red_step
        init = sch.decompose_reduction(main.block_rv, first_reduction)
        *init_tile, init_lanes = sch.get_loops(init)[1:]
        for loop in (*inner, *init_tile):
            sch.unroll(loop)
        sch.vectorize(init_lanes)
        return fused, lanes


def _unroll_vectorize(sch: s_tir.Schedule, loop, lanes: int) -> None:
    """Vectorize ``loop`` in ``lanes``-wide pieces, the pieces unrolled."""
    extent = int(sch.get(loop).extent)
    if extent <= lanes:
        sch.vectorize(loop)
        return
    pieces, vec = sch.split(loop, [None, lanes])
    sch.unroll(pieces)
    sch.vectorize(vec)
