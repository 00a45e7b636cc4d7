"""Default CPU schedules: DLight-style rules that give every kernel without a tuning record a
parallel, vectorized loop nest, so an untuned compile is not left with TVM's serial loops.

Rules are tried in order; a rule returns None for a kernel it does not recognize, and the next
one gets it. Kernels no rule takes keep TVM's default loops.
"""

from __future__ import annotations

import dataclasses

from tvm.s_tir.dlight import ScheduleRule

from tvmedge.schedules.common import Cpu
from tvmedge.schedules.conv2d import Conv2d
from tvmedge.schedules.elementwise import ElementWise
from tvmedge.schedules.int8_dot import Int8Dot
from tvmedge.schedules.matmul import Matmul
from tvmedge.schedules.reduction import Reduction
from tvmedge.schedules.winograd import WinogradTransform


def cpu_of(target) -> Cpu:
    """The vector width and core count of a tvmedge Target (AVX2 and older have 16 registers)."""
    simd = target.capabilities.simd_width
    registers = 16 if target.family == "x86" and simd < 512 else 32
    cores = int(target.tvm.get("num-cores", 1))
    return Cpu(simd_bits=max(simd, 32), cores=cores, registers=registers)


def cpu_rules(target, cpu: Cpu | None = None) -> list[ScheduleRule]:
    """The default schedule rules for ``target``, most specific first."""
    cpu = cpu or cpu_of(target)
    return [
        Int8Dot(cpu),
        WinogradTransform(cpu),
        Conv2d(cpu),
        Matmul(cpu),
        Reduction(cpu),
        ElementWise(cpu),
    ]


def default_schedule(func, rules, target):
    """The schedule of ``func`` by the first of ``rules`` that takes it (with its trace), or
    None when none does."""
    for rule in rules:
        sch = rule.apply(func, target, False)
        if isinstance(sch, list):
            sch = sch[0] if sch else None
        if sch is not None:
            return sch
    return None


def cpu_variants(target) -> list[list[ScheduleRule]]:
    """The default rules and variants of them that tuning measures per kernel before its
    search: register tiles half as large (fewer accumulators, more cache-friendly panels), the
    other loop order of the tiles, and a padded copy for depthwise convs. The best measured one
    becomes the kernel's record (a variant that schedules a kernel as the default does is not
    measured twice)."""
    cpu = cpu_of(target)
    half = cpu.registers // 2
    return [
        cpu_rules(target, cpu),
        cpu_rules(target, dataclasses.replace(cpu, spare_registers=half)),
        cpu_rules(target, dataclasses.replace(cpu, flip_order=True)),
        cpu_rules(target, dataclasses.replace(cpu, pad_inline=False)),
    ]
