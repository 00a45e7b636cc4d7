"""ONNX in: load and check the file, bind shapes, find unsupported ops, import into Relax."""

from tvmedge.frontend.load import LoadedModel, load_onnx
from tvmedge.frontend.ops import check_supported
from tvmedge.frontend.shapes import TensorSpec, graph_inputs, graph_output_names, parse_bindings

__all__ = [
    "LoadedModel",
    "TensorSpec",
    "check_supported",
    "graph_inputs",
    "graph_output_names",
    "load_onnx",
    "parse_bindings",
]
