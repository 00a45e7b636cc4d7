"""Real architectures with seeded weights, made from models that ship inside the onnx wheel.

The onnx wheel carries ResNet-50, SqueezeNet, DenseNet-121, Inception v1/v2, ShuffleNet, VGG-19,
AlexNet and ZFNet-512 under ``onnx/backend/test/data/light/`` with every weight replaced by a
``ConstantOfShape`` fill, so all their outputs are equal and comparisons prove little. This module
puts seeded random weights back (He-scaled for Conv/Gemm, sane BatchNorm statistics), giving
full-size models with varied outputs and no download.

    python -m tvmedge.zoo squeezenet -o squeezenet.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
MODELS = {
    "alexnet": "light_bvlc_alexnet.onnx",
    "densenet121": "light_densenet121.onnx",
    "inception_v1": "light_inception_v1.onnx",
    "inception_v2": "light_inception_v2.onnx",
    "resnet50": "light_resnet50.onnx",
    "shufflenet": "light_shufflenet.onnx",
    "squeezenet": "light_squeezenet.onnx",
    "vgg19": "light_vgg19.onnx",
    "zfnet512": "light_zfnet512.onnx",
}


def source_path(name: str) -> Path:
    if name not in MODELS:
        raise SystemExit(f"unknown zoo model '{name}'; choose from: {', '.join(MODELS)}")
    return LIGHT_DIR / MODELS[name]


def _weight(rng, shape: tuple[int, ...], op: str, slot: int) -> np.ndarray:
    """A plausible value for input ``slot`` of an ``op`` node."""
    if op in ("Conv", "Gemm") and slot == 1:
        fan_in = int(np.prod(shape[1:])) if op == "Conv" else min(shape)
        return rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), shape)
    if op == "BatchNormalization":  # scale, bias, mean, var
        return (
            rng.uniform(0.5, 1.5, shape),
            rng.normal(0.0, 0.1, shape),
            rng.normal(0.0, 0.1, shape),
            rng.uniform(0.5, 1.5, shape),
        )[slot - 1]
    if op == "Mul":
        return rng.uniform(0.5, 1.5, shape)
    return rng.normal(0.0, 0.05, shape)  # biases, additive shifts


def materialize(name: str, out: Path, *, seed: int = 0) -> Path:
    """Write zoo model ``name`` with seeded weights to ``out``."""
    model = onnx.load(str(source_path(name)))
    rng = np.random.default_rng(seed)
    graph = model.graph
    shapes = {t.name: tuple(numpy_helper.to_array(t)) for t in graph.initializer}
    consumers: dict[str, tuple[str, int]] = {}
    for node in graph.node:
        for slot, tensor in enumerate(node.input):
            consumers.setdefault(tensor, (node.op_type, slot))
    keep, weights = [], []
    for node in graph.node:
        fill = node.op_type == "ConstantOfShape" and node.input[0] in shapes
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        if fill and value is not None and value.data_type == onnx.TensorProto.FLOAT:
            op, slot = consumers.get(node.output[0], ("", 0))
            array = _weight(rng, shapes[node.input[0]], op, slot).astype(np.float32)
            weights.append(numpy_helper.from_array(array, node.output[0]))
        else:
            keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)
    used = {i for n in keep for i in n.input}
    initializers = [t for t in graph.initializer if t.name in used] + weights
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    # Weights are initializers only, not graph inputs (IR version 4 and later allows that).
    names = {t.name for t in initializers} | set(shapes)
    inputs = [v for v in graph.input if v.name not in names]
    del graph.input[:]
    graph.input.extend(inputs)
    model.ir_version = max(model.ir_version, 4)
    onnx.checker.check_model(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tvmedge.zoo", description=__doc__.split("\n")[0])
    p.add_argument("name", choices=sorted(MODELS))
    p.add_argument("-o", "--output", required=True, help="where to write the .onnx file")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(materialize(args.name, Path(args.output), seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
