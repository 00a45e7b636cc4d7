"""Small ONNX graphs for the converter tests (tests/test_converters_*.py): build one, run it
through tvmedge (api.compile, then the runtime) and through ONNX Runtime; or take one of ONNX's
own node test cases and compare with its expected outputs."""

from __future__ import annotations

import functools
import warnings
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


@functools.cache
def _node_cases() -> dict:
    """ONNX's own node test cases by name. Collected once, unfiltered: collect_testcases keeps
    its cases in a module global, so a filtered first call would hide every other op's."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():  # some cases compute infinities on purpose
        warnings.simplefilter("ignore", RuntimeWarning)
        return {case.name: case for case in collect_testcases()}


def node_case(name: str):
    """The ONNX node test case ``name`` (its .model, .data_sets, .rtol, .atol)."""
    return _node_cases()[name]


def assert_node_case(name: str, tmp_path: Path) -> None:
    """Compile ONNX's node test case ``name`` at its inputs' shapes, run every data set and
    compare with the expected outputs under the case's own tolerances (the onnx runner's rule:
    same shape and dtype, |got - want| <= atol + rtol * |want|)."""
    case = node_case(name)
    weights = {t.name for t in case.model.graph.initializer}
    names = [i.name for i in case.model.graph.input if i.name not in weights]
    for k, (inputs, expected) in enumerate(case.data_sets):
        (tmp_path / str(k)).mkdir()
        got = tvmedge_outputs(case.model, dict(zip(names, inputs, strict=True)), tmp_path / str(k))
        assert len(got) == len(expected), f"{len(got)} outputs, expected {len(expected)}"
        for i, (g, w) in enumerate(zip(got, expected, strict=True)):
            where = f"{name} data set {k} output {i}"
            assert g.shape == w.shape, f"{where}: shape {g.shape}, expected {w.shape}"
            assert g.dtype == w.dtype, f"{where}: dtype {g.dtype}, expected {w.dtype}"
            np.testing.assert_allclose(g, w, rtol=case.rtol, atol=case.atol, err_msg=where)
