"""Small float ONNX models and their int8 versions made by ONNX Runtime's ``quantize_static``
(QDQ or QOperator format, per-tensor or per-channel weights, u8 or s8 activations), with
seeded random weights and calibration data: the int8 tests' inputs (tests/test_int8_*.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SHAPE = (1, 3, 16, 16)  # the CNN's input
FEATURES = (1, 24)  # the MLP's input


class Reader:
    """ORT's CalibrationDataReader: ``samples`` seeded standard-normal feeds of ``name``."""

    def __init__(self, name: str, shape: tuple[int, ...], samples: int = 8, seed: int = 1):
        rng = np.random.default_rng(seed)
        self._feeds = iter(
            [{name: rng.standard_normal(shape).astype(np.float32)} for _ in range(samples)]
        )

    def get_next(self):
        return next(self._feeds, None)


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(proto)
    return proto


def cnn(seed: int = 0) -> onnx.ModelProto:
    """Conv 3x3 pad 1 + ReLU -> grouped conv stride 2 -> depthwise 3x3 + ReLU -> 1x1 conv,
    a residual Add, ReLU, GlobalAveragePool, Flatten, a Gemm head (10 classes)."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def conv(x, y, cout, cin_per_group, k, stride=1, pad=0, groups=1, relu=False):
        w = rng.standard_normal((cout, cin_per_group, k, k)).astype(np.float32)
        w *= np.sqrt(2.0 / (cin_per_group * k * k))
        b = (0.1 * rng.standard_normal(cout)).astype(np.float32)
        inits.extend([numpy_helper.from_array(w, f"{y}_w"), numpy_helper.from_array(b, f"{y}_b")])
        out = f"{y}_pre" if relu else y
        nodes.append(
            helper.make_node(
                "Conv",
                [x, f"{y}_w", f"{y}_b"],
                [out],
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[pad] * 4,
                group=groups,
            )
        )
        if relu:
            nodes.append(helper.make_node("Relu", [out], [y]))

    conv("input", "c1", 16, 3, 3, pad=1, relu=True)
    conv("c1", "c2", 32, 4, 3, stride=2, pad=1, groups=4)
    conv("c2", "c3", 32, 1, 3, pad=1, groups=32, relu=True)
    conv("c3", "c4", 32, 32, 1)
    nodes.append(helper.make_node("Add", ["c4", "c2"], ["sum"]))
    nodes.append(helper.make_node("Relu", ["sum"], ["act"]))
    nodes.append(helper.make_node("GlobalAveragePool", ["act"], ["pool"]))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"]))
    w = (rng.standard_normal((10, 32)) / np.sqrt(32)).astype(np.float32)
    b = (0.1 * rng.standard_normal(10)).astype(np.float32)
    inits.extend([numpy_helper.from_array(w, "fc_w"), numpy_helper.from_array(b, "fc_b")])
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1))
    return _model(
        nodes,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        inits,
    )


def mlp(seed: int = 0) -> onnx.ModelProto:
    """MatMul + Add + Relu, MatMul + Add: the QLinearMatMul / MatMul-with-bias cases."""
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((FEATURES[1], 32)) / np.sqrt(FEATURES[1])).astype(np.float32)
    w2 = (rng.standard_normal((32, 8)) / np.sqrt(32)).astype(np.float32)
    b1 = (0.1 * rng.standard_normal(32)).astype(np.float32)
    b2 = (0.1 * rng.standard_normal(8)).astype(np.float32)
    inits = [
        numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (w2, "w2"), (b1, "b1"), (b2, "b2"))
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["y0"]),
        helper.make_node("Add", ["y0", "b2"], ["y"]),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(FEATURES))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        inits,
    )


def quantize(
    proto: onnx.ModelProto,
    out: Path,
    *,
    per_channel: bool,
    activations: str = "u8",
    qoperator: bool = False,
    input_name: str = "input",
    shape: tuple[int, ...] = SHAPE,
) -> Path:
    """``proto`` quantized by ORT's quantize_static (MinMax, 8 seeded calibration samples):
    s8 weights, ``activations`` 'u8' or 's8'; QDQ format, or QOperator with ``qoperator``."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    out = Path(out)
    source = out.with_name(out.stem + "_float.onnx")
    onnx.save(proto, source)
    quantize_static(
        str(source),
        str(out),
        Reader(input_name, shape),
        quant_format=QuantFormat.QOperator if qoperator else QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=QuantType.QUInt8 if activations == "u8" else QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )
    return out
