"""Loop-level building blocks shared by the CPU rules: vector factors, parallel outer loops,
injective blocks, and the register-tiled reduction nest that conv2d, matmul and pooling share.

Every helper keeps the kernel's semantics: splits that do not divide an extent add a predicate
(TVM scalarizes a vector loop whose body is predicated on the vector lane, so tails stay right),
and vectorization is only asked for on constant-extent loops.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import tvm
from tvm import s_tir, tirx
from tvm.ir import TensorLoad
from tvm.s_tir.dlight.analysis import SBlockInfo, normalize_prim_func
from tvm.s_tir.dlight.cpu.base import CPUScheduleRule

# Below this many iterations a parallel launch costs more than it saves.
MIN_PARALLEL_WORK = 16384
# A reduction with fewer outputs is still worth sharing from this many multiply-adds (vector
# FMAs or adds: a classifier GEMV's 1.3 M, a global pool's 170 k; an LSTM step's 65 k is not).
MIN_PARALLEL_MACS = 1 << 17


@dataclass(frozen=True)
class Cpu:
    """What a rule needs to know about the CPU: vector register width and core count."""

    simd_bits: int
    cores: int
    registers: int = 32  # vector registers (16 on AVX2 and older x86)
    # Knobs that tuning varies (tvmedge.schedules.variants); the defaults are the rules' picks.
    spare_registers: int = 4  # registers kept for operands; the rest may hold accumulators
    flip_order: bool = False  # put the other operand's tiles outermost
    pad_inline: bool = True  # depthwise convs test the padding in their loads, copying nothing

    def lanes(self, dtype: str) -> int:
        """Vector lanes for ``dtype`` (bool is stored as one byte)."""
        bits = 8 if dtype == "bool" else tvm.DataType(dtype).bits
        return max(1, self.simd_bits // bits)

    @property
    def accumulators(self) -> int:
        """Vector registers a tile may hold as accumulators; the rest feed the FMAs."""
        return max(1, self.registers - self.spare_registers)


def blocks_of(func: tirx.PrimFunc) -> tuple[s_tir.Schedule, list[SBlockInfo]] | None:
    """A schedule of ``func`` and its blocks, or None if it is not a plain loop nest, or if a
    block iterates over nothing (a zero-size tensor: no work to schedule, and fusing its empty
    loops divides by zero)."""
    if not isinstance(func, tirx.PrimFunc):
        return None
    sch = s_tir.Schedule(func)
    infos = normalize_prim_func(sch)
    if infos is None or any("O" in info.dom_kind() for info in infos):
        return None
    if any(isinstance(d, int | tirx.IntImm) and int(d) == 0 for info in infos for d in info.dom()):
        return None
    return sch, infos


def const_extents(info: SBlockInfo) -> list[int] | None:
    """The block's iteration extents, or None when any is symbolic."""
    dom = info.dom()
    if not all(isinstance(d, int | tirx.IntImm) for d in dom):
        return None
    return [int(d) for d in dom]


def out_dtype(sch: s_tir.Schedule, block) -> str:
    return str(sch.get(block).writes[0].source.dtype)


def vector_factor(extent: int, lanes: int) -> int:
    """The inner vector length for a loop of ``extent``.

    A divisor of the extent avoids a predicated (scalarized) tail; non-power-of-two lengths are
    fine for LLVM, which splits them into whole and masked registers. A divisor wins when it
    fills at least half of the registers it occupies; otherwise ``lanes`` with a tail.
    """
    if extent <= 2 * lanes:
        return extent
    best, best_fill = 1, 0.0
    for d in range(2, 2 * lanes + 1):
        if extent % d == 0:
            fill = d / (-(-d // lanes) * lanes)
            if fill >= best_fill:
                best, best_fill = d, fill
    return best if best_fill >= 0.5 else lanes


def divisor_at_most(extent: int, limit: int) -> int:
    """The largest divisor of ``extent`` not above ``limit`` (at least 1)."""
    return max(d for d in range(1, max(1, min(extent, limit)) + 1) if extent % d == 0)


def parallel(sch: s_tir.Schedule, loops: list, work: int | None):
    """Fuse ``loops`` into one parallel loop, unless there is too little work to share."""
    if not loops:
        return None
    fused = sch.fuse(*loops) if len(loops) > 1 else loops[0]
    if work is None or work >= MIN_PARALLEL_WORK:
        sch.parallel(fused)
    return fused


def _cut(cond, var) -> int | None:
    """The first index of the second part for ``cond`` = ``var`` compared with a constant."""
    for cls, (after_const_var, after_var_const) in {
        tirx.LE: (0, 1),  # c <= v: v >= c | v <= c: v >= c + 1
        tirx.LT: (1, 0),
        tirx.GE: (1, 0),
        tirx.GT: (0, 1),
    }.items():
        if not isinstance(cond, cls):
            continue
        if isinstance(cond.a, tirx.IntImm) and cond.b.same_as(var):
            return int(cond.a.value) + after_const_var
        if isinstance(cond.b, tirx.IntImm) and cond.a.same_as(var):
            return int(cond.b.value) + after_var_const
    return None


def concat_cuts(sch: s_tir.Schedule, block) -> list[int]:
    """Where an injective block switches source along its innermost axis: the constants its
    ``if_then_else`` conditions compare that axis with (a concatenation's offsets)."""
    stmt = sch.get(block)
    loops = sch.get_loops(block)
    if not stmt.iter_vars or len(loops) != len(stmt.iter_vars):
        return []
    it = stmt.iter_vars[-1]
    extent = sch.get(loops[-1]).extent
    if not isinstance(extent, tirx.IntImm) or not isinstance(it.dom.extent, tirx.IntImm):
        return []
    if int(extent) != int(it.dom.extent):
        return []
    cuts = set()
    if not isinstance(stmt.body, tirx.BufferStore):
        return []
    for node in _subexpressions(stmt.body.value):
        if isinstance(node, tvm.ir.Call) and getattr(node.op, "name", "") == "prim.if_then_else":
            cut = _cut(node.args[0], it.var)
            if cut is not None and 0 < cut < int(extent):
                cuts.add(cut)
    return sorted(cuts)


def _subexpressions(expr):
    """``expr`` and the expressions under it (calls, arithmetic, casts, selects); TVM 0.27 has
    no Python expression visitor."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, tvm.ir.Call):
            stack.extend(node.args)
        elif isinstance(node, tirx.Select):
            stack.extend([node.condition, node.true_value, node.false_value])
        elif isinstance(node, tirx.Cast):
            stack.append(node.value)
        elif hasattr(node, "a") and hasattr(node, "b"):
            stack.extend([node.a, node.b])


def schedule_partitioned(sch: s_tir.Schedule, block, cuts: list[int], cpu: Cpu) -> bool:
    """Split the innermost loop at ``cuts`` into one loop per source, so each part's condition
    is a constant and its vectors load one source: a concatenation's select across vector
    lanes makes TVM scalarize the loop. False (nothing changed) if TVM refuses."""
    lanes = cpu.lanes(out_dtype(sch, block))
    *outer, inner = sch.get_loops(block)
    extent = int(sch.get(inner).extent)
    bounds = [0, *cuts, extent]
    sizes = [b - a for a, b in itertools.pairwise(bounds)]
    try:
        parts = sch.loop_partition(inner, sizes[:-1])  # the last part is the rest
    except s_tir.ScheduleError:
        return False
    for i, (part, size) in enumerate(zip(parts, sizes, strict=True)):
        width = vector_factor(size, lanes)
        if i == 0 and 1 < width < size:
            _, vec = sch.split(part, [None, width])
            sch.vectorize(vec)
        elif size <= 16 * lanes:  # TVM splits only loops from 0: the part is one vector
            sch.vectorize(part)
    work = extent
    for lp in outer:
        ext = sch.get(lp).extent
        work = work * int(ext) if isinstance(ext, tirx.IntImm) and work is not None else None
    parallel(sch, outer, work)
    return True


def schedule_injective(sch: s_tir.Schedule, block, cpu: Cpu) -> None:
    """Fuse the trailing constant-extent loops and vectorize them; parallelize the rest.

    Symbolic extents (a dynamic batch) stay in the parallel outer part, so the vector loop
    always has a constant length. A concatenation along the innermost axis is split into one
    loop per source first (schedule_partitioned).
    """
    cuts = concat_cuts(sch, block)
    if cuts and schedule_partitioned(sch, block, cuts, cpu):
        return
    loops = sch.get_loops(block)
    extents = [sch.get(lp).extent for lp in loops]
    n_const = 0
    for extent in reversed(extents):
        if not isinstance(extent, tirx.IntImm):
            break
        n_const += 1
    outer = list(loops[: len(loops) - n_const])
    work = None
    if n_const:
        inner_extent = 1
        for extent in extents[len(loops) - n_const :]:
            inner_extent *= int(extent)
        inner = loops[-n_const:]
        fused = sch.fuse(*inner) if n_const > 1 else inner[0]
        lanes = cpu.lanes(out_dtype(sch, block))
        # A vector must not straddle two rows of the innermost axis: its lanes would then
        # index (or pad-test) two rows, which TVM cannot prove contiguous, and it scalarizes
        # the loop (a stride-2 depthwise conv's padding, 144 channels as 32-wide vectors,
        # took 0.5 ms for a 1.9 MB copy). So the width divides the innermost extent.
        # With fewer channels than lanes, a vector spans whole pixels of one row instead: a
        # vector across two rows is not affine in its lanes either (a 3-channel stem's padded
        # copy, 226 x 3 floats a row: 12-wide vectors 376 us, 6-wide 44 us).
        last = int(extents[-1])
        width = vector_factor(last if last >= lanes else inner_extent, lanes)
        if last < lanes and n_const > 1:
            row = last * int(extents[-2])
            if row % width:
                width = divisor_at_most(row, 2 * lanes)
            if width % last:  # whole pixels (a 114-wide vector of 32-channel u8 pixels: 67x
                # slower than 64-wide; tests/test_schedules.py has the figures)
                width = last * divisor_at_most(int(extents[-2]), max(1, lanes // last))
        if width > 1:
            rest, vec = sch.split(fused, [None, width])
            sch.vectorize(vec)
            outer.append(rest)
        else:
            outer.append(fused)
        work = inner_extent if not outer[:-1] else None
    parallel(sch, outer, work)


def inline_copies(sch: s_tir.Schedule, infos: list[SBlockInfo]) -> list[SBlockInfo]:
    """Inline producers that only copy or broadcast (a zero-width pad): free to recompute."""
    kept = []
    for info in infos:
        block = sch.get(info.block_rv)
        store = block.body
        if (
            info.is_injective()
            and isinstance(store, tirx.BufferStore)
            and isinstance(store.value, TensorLoad)
        ):
            try:
                sch.compute_inline(info.block_rv)
                continue
            except s_tir.ScheduleError:
                pass
        kept.append(info)
    return kept


def _same_size(sch: s_tir.Schedule, producer, consumer) -> bool:
    """Whether ``consumer`` writes as many elements as ``producer`` (a reshape does, a slice
    does not)."""
    shapes = [sch.get(b).writes[0].source.shape for b in (producer, consumer)]
    if all(isinstance(d, tirx.IntImm) for shape in shapes for d in shape):
        return math.prod(int(d) for d in shapes[0]) == math.prod(int(d) for d in shapes[1])
    return [str(d) for d in shapes[0]] == [str(d) for d in shapes[1]]  # symbolic: same dims


def fold_epilogue(sch: s_tir.Schedule, writeback) -> None:
    """Inline the element-wise consumers (bias, ReLU, residual add) into ``writeback``, so
    they run on the tile while it is in cache. Those that will not inline stay at the root."""
    while len(consumers := sch.get_consumers(writeback)) == 1:
        if not _same_size(sch, writeback, consumers[0]):
            return  # a slice: inlined, TVM would write its whole input's range (out of bounds)
        try:
            sch.reverse_compute_inline(consumers[0])
        except s_tir.ScheduleError:
            return


def schedule_root_blocks(sch: s_tir.Schedule, names: set[str], cpu: Cpu) -> None:
    """Give the injective schedule to the blocks named ``names`` still at the root (not
    inlined or folded into a tile's write-back by now)."""
    for block in sch.get_child_blocks(sch.get_sblock("root")):
        if sch.get(block).name_hint in names:
            schedule_injective(sch, block, cpu)


def tile_reduction(
    sch: s_tir.Schedule,
    info: SBlockInfo,
    cpu: Cpu,
    *,
    vec: int,
    reg: list[int],
    vec_major: bool = False,
) -> None:
    """Register-tile a reduction block, folding its element-wise epilogue into the tile.

    ``vec`` indexes the spatial iter to vectorize (the output's contiguous axis); ``reg`` the
    adjacent spatial iters, fused into one, whose tile is unrolled so each loaded vector feeds
    several accumulators (a conv's output pixels, a matmul's rows). The nest becomes

        parallel(spatial outer) / reductions / reg tile (unrolled) / vector tile (vectorized)

    with the accumulators in a local buffer written back, epilogue fused, per tile. With
    ``vec_major`` the vector axis's tiles are the outermost (a big weight panel stays in cache
    while every output pixel uses it), else they are in iteration order. Tiles
    always divide their extents: a predicated tail inside a vector loop scalarizes it.
    """
    extents = const_extents(info)
    kinds = list(info.dom_kind())
    lanes = cpu.lanes(out_dtype(sch, info.block_rv))
    block = info.block_rv
    writeback = sch.cache_write(block, 0, "local")
    fold_epilogue(sch, writeback)
    loops = list(sch.get_loops(block))
    runs = tuple(extents[i] for i in sorted(reg, reverse=True))  # the fused axes, innermost first
    if len(reg) > 1:  # one axis of (say) all output pixels, so a tile rarely needs a tail
        first = min(reg)
        fused = sch.fuse(*[loops[i] for i in sorted(reg)])
        size = 1
        for i in reg:
            size *= extents[i]
        drop = set(reg) - {first}
        loops = [fused if i == first else lp for i, lp in enumerate(loops) if i not in drop]
        extents = [size if i == first else e for i, e in enumerate(extents) if i not in drop]
        kinds = [k for i, k in enumerate(kinds) if i not in drop]
        vec -= sum(1 for i in drop if i < vec)
        reg = [first]
    reg_axis = reg[0] if reg else None

    reg_extent = 1 if reg_axis is None else extents[reg_axis]
    width, rows, extra = plan_tile(reg_extent, extents[vec], lanes, cpu.accumulators, runs)
    vec_outer, vec_inner = sch.split(loops[vec], [None, width])
    unroll = []
    if extra > 1:  # several vectors per row: each broadcast feeds more than one FMA
        vec_outer, vec_unroll = sch.split(vec_outer, [None, extra])
        unroll.append(vec_unroll)
    outer = []
    for i, kind in enumerate(kinds):
        if kind != "S":
            continue
        if i == vec:
            outer.append(vec_outer)
        elif i == reg_axis and rows > 1:
            reg_outer, reg_inner = sch.split(loops[i], [None, rows])
            outer.append(reg_outer)
            unroll.insert(0, reg_inner)
        else:
            outer.append(loops[i])
    if vec_major:
        outer.remove(vec_outer)
        outer.insert(0, vec_outer)
    reductions = [loops[i] for i, kind in enumerate(kinds) if kind == "R"]
    sch.reorder(*outer, *reductions, *unroll, vec_inner)
    work = macs = 1
    for i, kind in enumerate(kinds):
        macs *= extents[i]
        if kind == "S":
            work *= extents[i]
    # A matrix-vector product has few outputs but many multiply-adds each (a classifier's
    # 1000 x 1280 weights: 169 us on one core here); its multiply-adds decide, not its outputs.
    tile = parallel(sch, outer, None if macs >= MIN_PARALLEL_MACS else work)
    for lp in unroll:
        sch.unroll(lp)
    sch.vectorize(vec_inner)
    sch.reverse_compute_at(writeback, tile, preserve_unit_loops=True)
    _, wb_vec = sch.split(sch.get_loops(writeback)[-1], [None, width])
    sch.vectorize(wb_vec)
    if reductions:
        init = sch.decompose_reduction(block, reductions[0])
        sch.vectorize(sch.get_loops(init)[-1])


def row_tile(rows: int, budget: int, runs: tuple[int, ...]) -> int:
    """The largest row count within ``budget`` that divides ``rows`` and whose tiles are boxes
    of the fused axes: a tile that straddles two runs is not a box, and its write-back would
    cover pixels of other tiles. ``runs``: the fused axes' extents, innermost first."""
    return max(r for r in range(1, min(rows, budget) + 1) if rows % r == 0 and is_box(r, runs))


def is_box(rows: int, runs: tuple[int, ...]) -> bool:
    """Whether every tile of ``rows`` consecutive elements, starting at multiples of ``rows``,
    of axes of extents ``runs`` (innermost first) fused into one, is a box of those axes: it
    spans whole inner axes and a divisor of the next one (n, h, w = 2, 7, 7: 7 or 49 rows are
    boxes; 14, two rows of 7 pixels, is not: the tile at row 42 holds h = 6 of image 0 and
    h = 0 of image 1, and its write-back would cover all of both images)."""
    inner = 1
    for extent in runs:
        if rows % inner == 0 and extent % (rows // inner) == 0:
            return True
        inner *= extent
    return rows % inner == 0


def tile_shape(rows: int, vectors: int, budget: int, runs: tuple[int, ...] = ()) -> tuple[int, int]:
    """(rows, vectors) of the register tile, each a divisor of its extent (a tail inside the
    tile costs more than a smaller tile). Rows come first: a row's operand is a broadcast from
    L1, a vector's is a weight panel streamed from L2, so each vector should feed many rows.
    Vectors are added only while the rows leave half the accumulators idle."""
    r = row_tile(rows, budget, runs or (rows,))
    v = divisor_at_most(vectors, budget // r) if 2 * r <= budget else 1
    return r, v


def plan_tile(
    reg_extent: int, vec_extent: int, lanes: int, accumulators: int, runs: tuple[int, ...]
):
    """(vector width, rows, vectors) for a register tile: the vector width that fills its
    registers best is not always best overall, and odd widths (1000 channels as 25-wide
    vectors) make LLVM spill: candidates are whole registers dividing the extent, or the
    largest divisor within one register. Each is scored by filled lanes x busy accumulators,
    halved for a one-row tile, which streams weights at one load per FMA."""
    widths = {k * lanes for k in (1, 2, 4) if vec_extent % (k * lanes) == 0}
    widths.add(divisor_at_most(vec_extent, lanes))  # part of one register, no tail
    best, best_score = None, -1.0
    for width in sorted(widths, reverse=True):
        registers = -(-width // lanes)
        budget = max(1, accumulators // registers)
        rows, vectors = tile_shape(reg_extent, -(-vec_extent // width), budget, runs)
        fill = width / (registers * lanes)
        score = fill * rows * vectors * registers / accumulators * (1 if rows > 1 else 0.5)
        if score > best_score:
            best, best_score = (width, rows, vectors), score
    return best


class Rule(CPUScheduleRule):
    """A tvmedge CPU rule: knows the CPU, and finds a kernel's blocks with copies inlined."""

    def __init__(self, cpu: Cpu):
        self.cpu = cpu

    def kernel(self, func, target):
        """(schedule, block infos) of ``func``, or None when this rule cannot look at it."""
        if not self.is_target_available(target):
            return None
        found = blocks_of(func)
        if found is None:
            return None
        sch, infos = found
        return sch, inline_copies(sch, infos)
