"""The integer dot-product instructions the int8 kernels tensorize with, as TIR intrinsics.

Each computes ``C[i] += sum_k A[k] * B[i, k]`` for ``lanes`` outputs and ``reduce`` reduction
elements: A is ``reduce`` activation bytes (broadcast to every lane), B the packed weights of
``lanes`` output channels, ``reduce`` consecutive reduction elements each, C the int32
accumulators.

- ``vnni``: x86 AVX512-VNNI ``vpdpbusd`` (u8 activations x s8 weights, 16 lanes). TVM's bundled
  ``dot_16x4_vnni`` passes ``<16 x i32>`` operands, which this LLVM's declaration
  (``<64 x i8>``) rejects at verification; these pass the bytes as ``uint8x64``/``int8x64``.
- ``sdot``: aarch64 ``sdot`` (s8 x s8, 4 lanes), as TVM's ``dot_4x4_i8i8s32_sdot``.
- ``pmaddwd512`` / ``pmaddwd256``: x86 AVX-512 / AVX2 without VNNI. ``vpmaddwd`` multiplies
  int16 pairs into int32 sums, exactly: 2 reduction elements, u8 activations and s8 weights
  widened to int16 first (16 / 8 lanes). ``vpmaddubsw`` would take bytes directly, but its
  int16 pair sums saturate (255 x 127 x 2 > 32767): ONNX Runtime accepts that error, tvmedge
  does not. The activations are widened once, with the copy that pads them, so a pair is one
  32-bit broadcast load (widened in the kernel, each took four instructions).

The accumulators are in ``local`` scope (registers): the kernels keep their tile there.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T

ANNOTATION = "tvmedge.int8_dot"  # block annotation: the instruction a kernel is packed for


@dataclass(frozen=True)
class Dot:
    """One integer dot-product instruction: its intrinsic's name, output lanes, reduction
    elements per lane, and the activation dtype it multiplies with int8 weights."""

    name: str
    intrin: str
    lanes: int
    act_dtype: str
    reduce: int = 4
    widen: str | None = None  # the activations are widened to this dtype before the kernel


def _desc(lanes: int, reduce: int, act: str):
    """What every dot instruction computes: ``lanes`` int32 accumulators, each adding the
    products of ``reduce`` activations (dtype ``act``) with a row of int8 weights."""

    @T.prim_func(s_tir=True)
    def desc(
        A: T.Buffer((reduce,), act, offset_factor=1),
        B: T.Buffer((lanes, reduce), "int8", offset_factor=1),
        C: T.Buffer((lanes,), "int32", offset_factor=1, scope="local"),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:lanes], A[0:reduce], B[0:lanes, 0:reduce])
            T.writes(C[0:lanes])
            for i in T.serial(0, lanes):
                for k in T.serial(0, reduce):
                    with T.sblock("update"):
                        vi, vk = T.axis.remap("SR", [i, k])
                        C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")

    return desc


def _vnni():
    @T.prim_func(s_tir=True)
    def impl(
        A: T.Buffer((4,), "uint8", offset_factor=1),
        B: T.Buffer((16, 4), "int8", offset_factor=1),
        C: T.Buffer((16,), "int32", offset_factor=1, scope="local"),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:16], A[0:4], B[0:16, 0:4])
            T.writes(C[0:16])
            word = T.reinterpret(A.vload([0], "uint8x4"), dtype="int32")
            a = T.reinterpret(T.broadcast(word, 16), dtype="uint8x64")
            C[T.ramp(T.int32(0), 1, 16)] = T.call_llvm_pure_intrin(
                "int32x16",
                "llvm.x86.avx512.vpdpbusd.512",
                C.vload([0], dtype="int32x16"),
                a,
                B.vload([0, 0], dtype="int8x64"),
            )

    return _desc(16, 4, "uint8"), impl


def _sdot():
    @T.prim_func(s_tir=True)
    def impl(
        A: T.Buffer((4,), "int8", offset_factor=1),
        B: T.Buffer((4, 4), "int8", offset_factor=1),
        C: T.Buffer((4,), "int32", offset_factor=1, scope="local"),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:4], A[0:4], B[0:4, 0:4])
            T.writes(C[0:4])
            word = T.reinterpret(A.vload([0], "int8x4"), dtype="int32")
            a = T.reinterpret(T.broadcast(word, 4), dtype="int8x16")
            C[T.ramp(T.int32(0), 1, 4)] = T.call_llvm_pure_intrin(
                "int32x4",
                "llvm.aarch64.neon.sdot.v4i32.v16i8",
                C.vload([0], dtype="int32x4"),
                a,
                B.vload([0, 0], dtype="int8x16"),
            )

    return _desc(4, 4, "int8"), impl


def _pmaddwd(lanes: int, llvm_name: str):
    def make():
        @T.prim_func(s_tir=True)
        def impl(
            A: T.Buffer((2,), "int16", offset_factor=1),
            B: T.Buffer((lanes, 2), "int8", offset_factor=1),
            C: T.Buffer((lanes,), "int32", offset_factor=1, scope="local"),
        ) -> None:
            with T.sblock("root"):
                T.reads(C[0:lanes], A[0:2], B[0:lanes, 0:2])
                T.writes(C[0:lanes])
                pair = T.reinterpret(A.vload([0], "int16x2"), dtype="int32")
                a = T.reinterpret(T.broadcast(pair, lanes), dtype=f"int16x{2 * lanes}")
                b = T.cast(B.vload([0, 0], dtype=f"int8x{2 * lanes}"), f"int16x{2 * lanes}")
                C[T.ramp(T.int32(0), 1, lanes)] = C.vload([0], dtype=f"int32x{lanes}") + (
                    T.call_llvm_pure_intrin(f"int32x{lanes}", llvm_name, a, b)
                )

        return _desc(lanes, 2, "int16"), impl

    return make


DOTS = {
    "vnni": Dot("vnni", "tvmedge.vnni_u8s8_16x4", 16, "uint8"),
    "sdot": Dot("sdot", "tvmedge.sdot_s8s8_4x4", 4, "int8"),
    "pmaddwd512": Dot("pmaddwd512", "tvmedge.pmaddwd_s16s8_16x2", 16, "uint8", 2, "int16"),
    "pmaddwd256": Dot("pmaddwd256", "tvmedge.pmaddwd_s16s8_8x2", 8, "uint8", 2, "int16"),
}
_MAKERS = {
    "vnni": _vnni,
    "sdot": _sdot,
    "pmaddwd512": _pmaddwd(16, "llvm.x86.avx512.pmaddw.d.512"),
    "pmaddwd256": _pmaddwd(8, "llvm.x86.avx2.pmadd.wd"),
}


def dot_for(target) -> Dot | None:
    """The instruction the int8 kernels of ``target`` use: its ``int8_dot`` (vnni, sdot),
    else ``vpmaddwd`` on x86 with AVX-512 or AVX2; None when there is none (the integer ops
    keep the default schedules)."""
    caps = getattr(target, "capabilities", None)
    name = getattr(caps, "int8_dot", "none")
    if name not in DOTS and getattr(target, "family", None) == "x86":
        name = {512: "pmaddwd512", 256: "pmaddwd256"}.get(caps.simd_width, "none")
    return dot_of(name) if name in DOTS else None


def dot_of(name: str) -> Dot:
    """The instruction named ``name`` (a target's ``int8_dot``)."""
    return DOTS[name]


# Registered on import, not when first used: a tuning record's trace names its intrinsic, and
# a compile with tuning logs replays records before any rewrite has asked for an instruction.
for _name, _dot in DOTS.items():
    if TensorIntrin.get(_dot.intrin, allow_missing=True) is None:
        TensorIntrin.register(_dot.intrin, *_MAKERS[_name]())
