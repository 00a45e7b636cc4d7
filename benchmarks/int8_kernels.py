"""Int8 kernels vs fp32 kernels of the same shape, one thread: ResNet-18's convolutions (NHWC,
as layout-nhwc makes them, so no layout transposes are timed) and its classifier matmul.

int8: the int8 rewrite's form (tests/int8_forms.py: u8 x s8 -> int32, fused requantize to u8)
through the default pipeline (packed weights, vpdpbusd/sdot schedule). fp32: the same conv with
bias + ReLU, direct (``--no-winograd``) and with the default rewrites (Winograd for 3x3 s1).

    TVM_NUM_THREADS=1 python benchmarks/int8_kernels.py [--repeat 200]

Each figure is the best of 7 means of ``--repeat`` runs (on a machine shared with other jobs,
medians varied 3x between runs; the best is the kernel when it had the core).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import tvm
from tvm import relax

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from int8_forms import Quant, activation, conv, matmul

from tvmedge import build as _build
from tvmedge import rewrites, targets

SHAPES = {  # name: (c, hw, o, k, stride, pad[, groups])
    "conv 3x3 64->64 56x56": (64, 56, 64, 3, 1, 1),
    "conv 3x3 128->128 28x28": (128, 28, 128, 3, 1, 1),
    "conv 3x3 256->256 14x14": (256, 14, 256, 3, 1, 1),
    "conv 3x3 512->512 7x7": (512, 7, 512, 3, 1, 1),
    "conv 3x3 s2 64->128 56x56": (64, 56, 128, 3, 2, 1),
    "conv 1x1 s2 128->256 28x28": (128, 28, 256, 1, 2, 0),
    "conv 7x7 s2 3->64 224x224": (3, 224, 64, 7, 2, 3),
    "depthwise 3x3 32 112x112": (32, 112, 32, 3, 1, 1, 32),
    "depthwise 3x3 s2 144 56x56": (144, 56, 144, 3, 2, 1, 144),
    "depthwise 3x3 576 14x14": (576, 14, 576, 3, 1, 1, 576),
}


def _fp32_conv(c, hw, o, k, stride, pad, groups=1):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((k, k, c // groups, o)).astype("float32")
    b = rng.standard_normal((1, 1, 1, o)).astype("float32")
    x = relax.Var("x", relax.TensorType((1, hw, hw, c), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(
                relax.op.nn.conv2d(
                    x,
                    relax.const(w),
                    strides=stride,
                    padding=pad,
                    groups=groups,
                    data_layout="NHWC",
                    kernel_layout="HWIO",
                )
            )
            y = bb.emit(relax.op.nn.relu(relax.op.add(y, relax.const(b))))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return bb.get(), rng.standard_normal((1, hw, hw, c)).astype("float32")


def _fp32_matmul(m, k, n):
    rng = np.random.default_rng(0)
    x = relax.Var("x", relax.TensorType((m, k), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            w = relax.const(rng.standard_normal((k, n)).astype("float32"))
            y = bb.emit(relax.op.add(relax.op.matmul(x, w), relax.const(np.ones(n, "float32"))))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return bb.get(), rng.standard_normal((m, k)).astype("float32")


def time_us(mod, x, specs, repeat: int) -> float:
    built = _build.build(mod, targets.get("host"), rewrite_specs=specs)
    vm = relax.VirtualMachine(built.executable, tvm.cpu())
    arg = tvm.runtime.tensor(x)
    timer = vm.time_evaluator("main", tvm.cpu(), number=repeat, repeat=7, min_repeat_ms=0)
    return float(np.min(timer(arg).results)) * 1e6  # the best of 7: shared machines are noisy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    direct = rewrites.without("winograd")
    print(f"target: {targets.get('host').describe()}")
    print("| kernel | int8 us | fp32 direct us | fp32 default us | fp32 direct / int8 |")
    print("| --- | --- | --- | --- | --- |")
    rng = np.random.default_rng(0)
    cases = []
    for name, (c, hw, o, k, s, p, *g) in SHAPES.items():
        i8, _ = conv(rng, 1, c, (hw, hw), o, k, stride=s, pad=p, groups=(g or [1])[0], nhwc=True)
        cases.append(
            (name, i8, activation(rng, (1, hw, hw, c), Quant()), _fp32_conv(c, hw, o, k, s, p, *g))
        )
    i8, _ = matmul(rng, 1, 512, 1000)
    cases.append(
        ("matmul 1x512 -> 1000", i8, activation(rng, (1, 512), Quant()), _fp32_matmul(1, 512, 1000))
    )
    for name, i8, x8, (f32, x32) in cases:
        t8 = time_us(i8, x8, rewrites.DEFAULT, args.repeat)
        td = time_us(f32, x32, direct, args.repeat)
        tw = time_us(f32, x32, rewrites.DEFAULT, args.repeat)
        print(f"| {name} | {t8:.1f} | {td:.1f} | {tw:.1f} | {td / t8:.2f} |", flush=True)


if __name__ == "__main__":
    main()
