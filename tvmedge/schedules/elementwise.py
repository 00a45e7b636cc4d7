"""Injective kernels (element-wise, broadcast, concatenate, transpose, padding): everything
inlined into its consumers, then each remaining loop nest fused, vectorized inside and
parallel outside."""

from __future__ import annotations

from tvm import relax
from tvm.s_tir.dlight.base import try_inline

from tvmedge.schedules.common import Rule, blocks_of, schedule_injective


class ElementWise(Rule):
    """Default schedule for functions whose blocks are all spatial."""

    def apply(self, func, target, _tunable):
        if not self.is_target_available(target):
            return None
        # A pure reshape becomes a no-op view later (RewriteDataflowReshape) only if its loop
        # nest is untouched.
        if relax.analysis.has_reshape_pattern(func):
            return None
        found = blocks_of(func)
        if found is None:
            return None
        sch, infos = found
        if not all(info.is_injective() for info in infos):
            return None
        for info in try_inline(sch, infos):
            schedule_injective(sch, info.block_rv, self.cpu)
        return sch
