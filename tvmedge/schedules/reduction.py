"""Reductions that are not products: pooling, mean, softmax and layer-norm statistics.

Pooling-like blocks whose output's last axis also indexes the input's last axis (max/avg pool)
are vectorized along it with the shared tiler. Other reductions (over the contiguous axis, as
in softmax) keep the reduction innermost and parallelize their spatial loops; the element-wise
blocks around them get the injective schedule.
"""

from __future__ import annotations

from tvm import s_tir
from tvm.s_tir.dlight.analysis import SBlockInfo

from tvmedge.schedules.common import (
    Rule,
    const_extents,
    parallel,
    schedule_root_blocks,
    tile_reduction,
)
from tvmedge.schedules.contraction import output_axes, uses


class Reduction(Rule):
    """Default schedule for functions with reduction blocks the product rules left."""

    def apply(self, func, target, _tunable):
        kernel = self.kernel(func, target)
        if kernel is None:
            return None
        sch, infos = kernel
        if not any(info.is_reduction() for info in infos):
            return None
        injective = {info.name for info in infos if not info.is_reduction()}
        for info in infos:
            if not info.is_reduction():
                continue
            if (vec := _window_axis(sch, info)) is not None:
                tile_reduction(sch, info, self.cpu, vec=vec, reg=[])
            else:
                _parallel_spatial(sch, info)
        schedule_root_blocks(sch, injective, self.cpu)
        return sch


def _window_axis(sch: s_tir.Schedule, info: SBlockInfo) -> int | None:
    """The output's last axis, if every read's last index moves with it (a pooling window, a
    global pool over channels-last pixels)."""
    if const_extents(info) is None:
        return None
    axes = output_axes(sch, info)
    if not axes or int(info.iters[axes[-1]].dom) < 4:
        return None
    var = info.iters[axes[-1]].var
    reads = sch.get(info.block_rv).reads
    if reads and all(uses(r.region[-1].min, var) for r in reads):
        return axes[-1]
    return None


def _parallel_spatial(sch: s_tir.Schedule, info: SBlockInfo) -> None:
    """Spatial loops outermost and parallel, reductions inside them, order kept."""
    loops = sch.get_loops(info.block_rv)
    kinds = info.dom_kind()
    spatial = [lp for lp, k in zip(loops, kinds, strict=True) if k == "S"]
    sch.reorder(*spatial, *[lp for lp, k in zip(loops, kinds, strict=True) if k == "R"])
    extents = const_extents(info)
    work = None
    if extents is not None:
        work = 1
        for e in extents:
            work *= e
    parallel(sch, spatial, work)
