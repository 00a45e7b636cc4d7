"""Schedules for kernels without a tuning record of their own, taken from the nearest tuned
workload of the same kind (same operator and fused epilogue, other shapes).

Kind: two kernels are of one kind when their TIR prints the same once every integer is blanked
out and their parameters are renamed by position; the blanked integers (shapes, strides,
paddings) are the kernel's shape vector, and the nearest workload is the one whose vector is
closest in log scale. A record transfers in one of two ways:

- a MetaSchedule search record is replayed on the new kernel. Its tile sizes were sampled for
  the old shapes, so each sampled tiling keeps its inner factors where they still divide the
  new extent and gives the rest to the outer loop; the target's post-processors then run as
  they do after a search. A replay that does not fit the new kernel is no transfer.
- a record of one of tvmedge's default-schedule variants (what `tvmedge tune` measures first)
  transfers as that variant of the rules, applied to the new kernel. The default variant
  itself transfers nothing: it is what an untuned kernel gets anyway.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import tvm
import tvm_ffi
from tvm import s_tir

from tvmedge.schedules import default_schedule
from tvmedge.tune.cache import mean_ms

_INT = re.compile(r"(?<![\w.])\d+(?![\w.])")
_SAMPLES = (
    "SamplePerfectTile",
    "SampleCategorical",
    "SampleComputeLocation",
    "SamplePartitionedTile",
)


@dataclass(frozen=True)
class Kind:
    text: str  # the printed kernel with its integers blanked
    shape: tuple[int, ...]  # the blanked integers, in order


def kind_of(func: tvm.tirx.PrimFunc) -> Kind:
    """The kernel's kind and shape vector (see the module docstring)."""
    text = func.script()
    for i, param in enumerate(func.params):  # a parameter prints as its buffer's name
        text = re.sub(rf"\b{re.escape(param.name)}\b", f"arg{i}_", text)
    text = re.sub(r"\bT\.func_attr\(\{.*?\}\)", "", text)  # global symbol, noalias, ...
    text = re.sub(r"@T\.prim_func\(.*?\)", "@T.prim_func", text)  # private=True in a model
    shape = tuple(int(m) for m in _INT.findall(text))
    return Kind(_INT.sub("#", text), shape)


def distance(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    return sum(abs(math.log1p(x) - math.log1p(y)) for x, y in zip(a, b, strict=True))


def is_search_trace(trace) -> bool:
    """Whether the trace samples its decisions (a MetaSchedule search record), rather than
    being one of tvmedge's deterministic default schedules."""
    return any(inst.kind.name in _SAMPLES for inst in trace.insts)


@dataclass
class Source:
    """The best record of one tuned workload."""

    name: str  # a readable label: the workload's first block
    func: tvm.tirx.PrimFunc
    kind: Kind
    record: object  # TuningRecord
    ms: float

    def describe(self) -> str:
        """e.g. ``conv2d_nhwc (1,56,56,64,3,3,64,64), searched schedule``."""
        searched = is_search_trace(self.record.trace)
        how = "searched schedule" if searched else "default-schedule variant"
        return f"{self.name} ({','.join(map(str, self.kind.shape[:8]))}), {how}"


class Transfer:
    """Finds, for a kernel the logs do not hold, schedules from the nearest tuned kernels."""

    def __init__(self, database, target, variants: list[list]):
        self.target = target
        self.variants = variants
        self.sources: dict[str, list[Source]] = {}
        self._variants: dict[int, list | None] = {}  # id(source) -> its rule variant
        best: dict[int, object] = {}
        for record in database.get_all_tuning_records():
            if not record.run_secs:
                continue
            key = tvm_ffi.structural_hash(record.workload.mod)
            if key not in best or mean_ms(record.run_secs) < mean_ms(best[key].run_secs):
                best[key] = record
        for record in best.values():
            func = record.workload.mod["main"]
            kind = kind_of(func)
            self.sources.setdefault(kind.text, []).append(
                Source(_label(kind), func, kind, record, mean_ms(record.run_secs))
            )

    def candidates(self, func: tvm.tirx.PrimFunc, limit: int = 2) -> list[tuple[Source, object]]:
        """Up to ``limit`` (source, schedule) pairs for ``func``, nearest source first. A
        schedule is an s_tir.Schedule of ``func`` (with its trace)."""
        kind = kind_of(func)
        near = [s for s in self.sources.get(kind.text, []) if len(s.kind.shape) == len(kind.shape)]
        near.sort(key=lambda s: distance(s.kind.shape, kind.shape))
        found = []
        for source in near:
            if source.kind.shape == kind.shape:
                continue  # the same workload under another hash: not a transfer
            sch = self.schedule(source, func)
            if sch is not None:
                found.append((source, sch))
            if len(found) == limit:
                break
        return found

    def schedule(self, source: Source, func: tvm.tirx.PrimFunc):
        """``source``'s schedule applied to ``func``, or None when it does not transfer."""
        trace = source.record.trace
        if is_search_trace(trace):
            return self._replay(trace, func)
        variant = self._variant(source)
        return None if variant is None else default_schedule(func, variant, self.target)

    def _variant(self, source: Source):
        """The rule variant that scheduled ``source``'s record (found once per source), or
        None: the default schedule transfers nothing, untuned kernels get it anyway."""
        if id(source) not in self._variants:
            variants = [default_schedule(source.func, r, self.target) for r in self.variants]
            trace = str(source.record.trace)
            found = [i for i, s in enumerate(variants) if s is not None and str(s.trace) == trace]
            self._variants[id(source)] = self.variants[found[0]] if found and found[0] > 0 else None
        return self._variants[id(source)]

    def _replay(self, trace, func):
        from tvm.s_tir import meta_schedule as ms

        sch = s_tir.Schedule(func)

        def adapt(inst, inputs, attrs, decision):
            if inst.kind.name != "SamplePerfectTile":
                return decision
            extent = sch.get(inputs[0]).extent
            if not isinstance(extent, tvm.tirx.IntImm):
                return decision
            return refit_tile([int(d) for d in decision], int(extent), int(attrs[1]))

        try:
            trace.apply_to_schedule(sch, remove_postproc=True, decision_provider=adapt)
            context = ms.TuneContext(
                mod=sch.mod, target=self.target, space_generator="post-order-apply"
            )
            # marked as MetaSchedule marks it, so a search that replays this record without
            # its post-processing finds where that starts (else the layout rewrite ran twice)
            sch.enter_postproc()
            for postproc in context.space_generator.postprocs:
                if not postproc.apply(sch):
                    return None
        except (tvm.error.TVMError, s_tir.ScheduleError, RuntimeError, ValueError):
            return None
        return sch


def refit_tile(factors: list[int], extent: int, max_innermost: int) -> list[int]:
    """A perfect tiling of ``extent`` shaped like ``factors`` (a tiling of another extent):
    from the innermost out, each factor becomes the largest divisor of what is left that is
    not above it; the outermost takes the rest."""
    out = [1] * len(factors)
    left = extent
    for i in range(len(factors) - 1, 0, -1):
        limit = (
            factors[i]
            if i < len(factors) - 1 or max_innermost <= 0
            else min(factors[i], max_innermost)
        )
        out[i] = max(d for d in range(1, max(1, min(left, limit)) + 1) if left % d == 0)
        left //= out[i]
    out[0] = left
    return out


def _label(kind: Kind) -> str:
    names = re.findall(r'T\.sblock\("(\w+)"\)', kind.text)
    return next((n for n in names if n != "root" and not n.startswith("pad")), "kernel")
