"""Whole-model int8 vs fp32, tvmedge and ONNX Runtime, on ResNet-18 and MobileNetV2.

Each model is exported with seeded weights (benchmarks/models.py) and quantized by ONNX
Runtime's ``quantize_static`` (QDQ, per-channel s8 weights, u8 activations, MinMax on 8 seeded
standard-normal samples), as the issue's ORT baseline was. tvmedge compiles both for the host
with its defaults (the int8 model through the int8 and int8-dot rewrites); the four engines
then run alternately in one process, ``--rounds`` times ``--repeat`` runs after 20 warm-ups.

    python benchmarks/int8_models.py resnet18 mobilenetv2 --threads 2 [--work build/int8]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from models import MODELS, export

from tvmedge import api, runtime


class _Reader:
    def __init__(self, shape, samples: int = 8):
        rng = np.random.default_rng(1)
        self.feeds = iter(
            [{"input": rng.standard_normal(shape).astype(np.float32)} for _ in range(samples)]
        )

    def get_next(self):
        return next(self.feeds, None)


def quantize(source: Path, out: Path, shape) -> Path:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        str(source),
        str(out),
        _Reader(shape),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return out


def _ms(run, warmup: int, repeat: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def measure(name: str, work: Path, *, threads: int, rounds: int, repeat: int) -> dict:
    shape = MODELS[name][1]
    fp32 = export(name, work / f"{name}.onnx")
    int8 = quantize(fp32, work / f"{name}_qdq.onnx", shape)
    engines = {}
    for label, model in (("fp32", fp32), ("int8", int8)):
        out = work / f"{name}_{label}.tvmedge"
        api.compile(model, target="host", output=out, force=True, log=lambda _m: None)
        engines[f"tvmedge {label}"] = runtime.load(out, threads=threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        engines[f"ort {label}"] = ort.InferenceSession(str(model), options)
    x = {"input": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    results = {k: [] for k in engines}
    for _ in range(rounds):
        for label, engine in engines.items():
            results[label].append(_ms(lambda e=engine: e.run(None, x), 20, repeat))
    return {k: float(np.median(v)) for k, v in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", choices=["resnet18", "mobilenetv2"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--work", type=Path, default=Path("build/int8"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(
        "| model | threads | tvmedge fp32 | tvmedge int8 | ORT fp32 | ORT int8 | "
        "tvmedge fp32/int8 | tvmedge int8 / ORT int8 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        r = measure(name, args.work, threads=args.threads, rounds=args.rounds, repeat=args.repeat)
        print(
            f"| {name} | {args.threads} | {r['tvmedge fp32']:.2f} ms | {r['tvmedge int8']:.2f} ms"
            f" | {r['ort fp32']:.2f} ms | {r['ort int8']:.2f} ms"
            f" | {r['tvmedge fp32'] / r['tvmedge int8']:.2f}"
            f" | {r['tvmedge int8'] / r['ort int8']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
