"""Small ONNX graphs for the converter tests (tests/test_converters_*.py): build one, run it
through tvmedge (api.compile, then the runtime) and through ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tvmedge import conformance, runtime

RTOL, ATOL = 1e-4, 1e-5


def io(name: str, dims: list, dtype: int = onnx.TensorProto.FLOAT) -> onnx.ValueInfoProto:
    """A graph input or output; ``dims`` may hold names (symbolic dims)."""
    return helper.make_tensor_value_info(name, dtype, dims)


def const(name: str, values, dtype=np.int64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype), name)


def model(nodes, inputs, outputs, initializers=(), opset: int = 13) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def tvmedge_outputs(proto: onnx.ModelProto, feeds: dict, tmp_path: Path) -> list[np.ndarray]:
    """Compile for the host and run once (tvmedge.conformance, as the node suite does)."""
    artifact = conformance.compile_model(proto, tmp_path)
    return runtime.load(artifact).run(None, feeds)


def onnxruntime_outputs(proto: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    inputs = [feeds[name] for name in conformance.graph_input_names(proto)]
    return conformance.ort_outputs(proto, inputs)


def assert_outputs_match(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.dtype == w.dtype, f"output {i}: dtype {g.dtype}, expected {w.dtype}"
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL, err_msg=f"output {i}")


def assert_matches_onnxruntime(proto: onnx.ModelProto, feeds: dict, tmp_path: Path) -> None:
    assert_outputs_match(tvmedge_outputs(proto, feeds, tmp_path), onnxruntime_outputs(proto, feeds))
