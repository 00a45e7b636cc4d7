"""Recognize multiply-accumulate reduction blocks and pick the axes the tiler vectorizes."""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.ir import TensorLoad
from tvm.s_tir.dlight.analysis import SBlockInfo, collect_vars_used_in_prim_expr

from tvmedge.schedules.common import const_extents, schedule_root_blocks, tile_reduction


def _strip_casts(expr):
    while isinstance(expr, tirx.Cast):
        expr = expr.value
    return expr


def mac_reads(sch: s_tir.Schedule, info: SBlockInfo) -> list[TensorLoad] | None:
    """The two loads of ``C[...] = C[...] + A[...] * B[...]`` (casts allowed), else None."""
    if not info.is_reduction():
        return None
    body = sch.get(info.block_rv).body
    if not isinstance(body, tirx.BufferStore) or not isinstance(body.value, tirx.Add):
        return None
    acc, product = body.value.a, _strip_casts(body.value.b)
    if not (isinstance(acc, TensorLoad) and acc.source.same_as(body.buffer)):
        return None
    if not isinstance(product, tirx.Mul):
        return None
    loads = [_strip_casts(product.a), _strip_casts(product.b)]
    return loads if all(isinstance(ld, TensorLoad) for ld in loads) else None


def output_axes(sch: s_tir.Schedule, info: SBlockInfo) -> list[int] | None:
    """Iter positions of the output's indices, if it is written at plain spatial iters
    (constant indices are unit dims that normalization dropped from the loop nest); None for a
    block whose body is not one store (ArgMax/ArgMin write an index and a value)."""
    store = sch.get(info.block_rv).body
    if not isinstance(store, tirx.BufferStore):
        return None
    iter_vars = [it.var for it in info.iters]
    axes = []
    for index in store.indices:
        if isinstance(index, tirx.IntImm):
            continue
        match = [i for i, v in enumerate(iter_vars) if index.same_as(v)]
        if len(match) != 1 or info.iters[match[0]].kind != "S":
            return None
        axes.append(match[0])
    return axes


def uses(expr, var: tirx.Var) -> bool:
    return any(v.same_as(var) for v in collect_vars_used_in_prim_expr(expr))


def register_axes(info: SBlockInfo, vec: int, loads: list[TensorLoad]) -> list[int]:
    """The spatial iters to unroll into registers: adjacent ones the vector-loaded operand does
    not depend on (a conv's output pixels in NHWC, its output channels in NCHW, a matmul's
    rows), so the other operand is a broadcast scalar. They are fused into one tile axis."""
    var = info.iters[vec].var
    vector_load = next((ld for ld in loads if any(uses(i, var) for i in ld.indices)), None)
    if vector_load is None:
        return []
    return longest_run(
        i
        for i, it in enumerate(info.iters)
        if it.kind == "S"
        and i != vec
        and not any(uses(ix, it.var) for ix in vector_load.indices)
        and int(it.dom) > 1
    )


def longest_run(indices) -> list[int]:
    """The run of consecutive iter positions in ``indices`` with the most positions."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return max(runs, key=len, default=[])


def vector_operand_larger(info: SBlockInfo, vec: int, loads: list[TensorLoad]) -> bool:
    """Whether the operand loaded as vectors (a conv's weights) is the bigger of the two."""
    var = info.iters[vec].var
    vector = [ld for ld in loads if any(uses(i, var) for i in ld.indices)]
    if len(vector) != 1:
        return False
    other = next(ld for ld in loads if ld is not vector[0])
    return _elements(vector[0].source) > _elements(other.source)


def _elements(buffer) -> int:
    n = 1
    for d in buffer.shape:
        n *= int(d) if isinstance(d, tirx.IntImm) else 1 << 20
    return n


def schedule_contraction(sch, infos, main: SBlockInfo, loads, cpu, *, vec: int, reg: list[int]):
    """Tile ``main`` and give every other block of the function (pads, epilogues that would
    not fuse) the injective schedule. Returns the schedule, or None if a block is not
    injective (a second reduction: some other rule's kernel)."""
    others = {info.name for info in infos if info is not main}
    if not all(info.is_injective() for info in infos if info is not main):
        return None
    vec_major = vector_operand_larger(main, vec, loads) != cpu.flip_order
    tile_reduction(sch, main, cpu, vec=vec, reg=reg, vec_major=vec_major)
    schedule_root_blocks(sch, others, cpu)
    return sch


def single_contraction(sch: s_tir.Schedule, infos: list[SBlockInfo]):
    """(main block, its multiply-accumulate loads, its output axes) when the kernel has exactly
    one reduction, of constant extents, that is a sum of products; otherwise None."""
    mains = [info for info in infos if info.is_reduction()]
    if len(mains) != 1 or const_extents(mains[0]) is None:
        return None
    main = mains[0]
    loads = mac_reads(sch, main)
    axes = None if loads is None else output_axes(sch, main)
    if axes is None:
        return None
    return main, loads, axes
