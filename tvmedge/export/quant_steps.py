"""One quantization step of each quantized output of an ONNX model: the compile check's
tolerance for outputs that int8 arithmetic may round differently from ONNX Runtime.

An int8 model's requantize rounds ``acc * scale`` to the nearest integer; where tvmedge's
float32 product lands on the other side of a .5 than ONNX Runtime's (a different but equally
correct order of operations, or a float fake-quant op ONNX Runtime ran as an integer kernel),
the output differs by one step. So an output that a quantizing op writes (QuantizeLinear,
QLinearConv, ...) may differ by 1, and one dequantized right after by its scale.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

# Ops whose output is an integer tensor on a quantization grid (ONNX and com.microsoft).
QUANTIZING = frozenset(
    {
        "QuantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "QGemm",
        "QLinearAdd",
        "QLinearMul",
        "QLinearAveragePool",
        "QLinearGlobalAveragePool",
        "QLinearConcat",
        "QLinearSigmoid",
        "QLinearLeakyRelu",
    }
)


def quantization_steps(model: onnx.ModelProto) -> dict[str, float]:
    """Output name -> one step in its own units: 1 for an integer output of a quantizing op,
    the (largest) scale for a DequantizeLinear of one. Other outputs are not listed."""
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    constants = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = node.attribute[0].t
    steps = {}
    for output in graph.output:
        node = producers.get(output.name)
        if node is None:
            continue
        if node.op_type in QUANTIZING:
            steps[output.name] = 1.0
        elif node.op_type == "DequantizeLinear" and len(node.input) > 1:
            source = producers.get(node.input[0])
            scale = constants.get(node.input[1])
            if source is not None and source.op_type in QUANTIZING and scale is not None:
                steps[output.name] = float(np.abs(numpy_helper.to_array(scale)).max())
    return steps
