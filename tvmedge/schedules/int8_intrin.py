"""The integer dot-product instructions the int8 kernels tensorize with, as TIR intrinsics.

Each computes ``C[i] += sum_k A[k] * B[i, k]`` for ``lanes`` outputs and 4 reduction
elements: A is 4 activation bytes (broadcast to every lane), B the packed weights of ``lanes``
output channels, 4 consecutive reduction elements each, C the int32 accumulators.

- ``vnni``: x86 AVX512-VNNI ``vpdpbusd`` (u8 activations x s8 weights, 16 lanes). TVM's bundled
  ``dot_16x4_vnni`` passes ``<16 x i32>`` operands, which this LLVM's declaration
  (``<64 x i8>``) rejects at verification; these pass the bytes as ``uint8x64``/``int8x64``.
- ``sdot``: aarch64 ``sdot`` (s8 x s8, 4 lanes), as TVM's ``dot_4x4_i8i8s32_sdot``.

The accumulators are in ``local`` scope (registers): the kernels keep their tile there.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T

REDUCE = 4  # reduction elements per lane and instruction (both instructions)
ANNOTATION = "tvmedge.int8_dot"  # block annotation: the instruction a kernel is packed for


@dataclass(frozen=True)
class Dot:
    """One integer dot-product instruction: its intrinsic's name, output lanes, and the
    activation dtype it multiplies with int8 weights."""

    name: str
    intrin: str
    lanes: int
    act_dtype: str


def _vnni():
    @T.prim_func(s_tir=True)
    def desc(
        A: T.Buffer((4,), "uint8", offset_factor=1),
        B: T.Buffer((16, 4), "int8", offset_factor=1),
        C: T.Buffer((16,), "int32", offset_factor=1, scope="local"),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:16], A[0:4], B[0:16, 0:4])
            T.writes(C[0:16])
            for i in T.serial(0, 16):
                for k in T.serial(0, 4):
                    with T.sblock("update"):
                        vi, vk = T.axis.remap("SR", [i, k])
                        C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")

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

    return desc, impl


def _sdot():
    @T.prim_func(s_tir=True)
    def desc(
        A: T.Buffer((4,), "int8", offset_factor=1),
        B: T.Buffer((4, 4), "int8", offset_factor=1),
        C: T.Buffer((4,), "int32", offset_factor=1, scope="local"),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:4], A[0:4], B[0:4, 0:4])
            T.writes(C[0:4])
            for i in T.serial(0, 4):
                for k in T.serial(0, 4):
                    with T.sblock("update"):
                        vi, vk = T.axis.remap("SR", [i, k])
                        C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")

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

    return desc, impl


DOTS = {
    "vnni": Dot("vnni", "tvmedge.vnni_u8s8_16x4", 16, "uint8"),
    "sdot": Dot("sdot", "tvmedge.sdot_s8s8_4x4", 4, "int8"),
}
_MAKERS = {"vnni": _vnni, "sdot": _sdot}


def dot_of(name: str) -> Dot:
    """The instruction named ``name`` (a target's ``int8_dot``), its intrinsic registered."""
    dot = DOTS[name]
    if TensorIntrin.get(dot.intrin, allow_missing=True) is None:
        TensorIntrin.register(dot.intrin, *_MAKERS[name]())
    return dot
