"""Shape-like values (axes, shape, sizes, pads, k) that arrive as graph inputs: TVM needs them
at compile time, so compile refuses the model with one line that names the graph input to
freeze (tvmedge/frontend/importer._run_time_hint), through the CLI as for any bad input."""

from __future__ import annotations

import re

import onnx
import pytest
from conftest import cli
from onnx import TensorProto, helper
from onnx_graphs import io, model

from tvmedge import conformance
from tvmedge.errors import BuildError


def _reduce_sum_with_axes_input() -> onnx.ModelProto:
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)
    return model([node], [io("x", [2, 3]), io("axes", [1], TensorProto.INT64)], [io("y", [2, 1])])


def _reshape_through_cast() -> onnx.ModelProto:
    """The run-time shape reaches Reshape through a Cast: still named."""
    nodes = [
        helper.make_node("Cast", ["s"], ["shape"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    return model(nodes, [io("x", [2, 3]), io("s", [2], TensorProto.INT32)], [io("y", [3, 2])])


@pytest.mark.parametrize(
    ("proto", "pattern"),
    [
        (_reduce_sum_with_axes_input(), r"\(ReduceSum\).*graph input\(s\) 'axes' \(int64\[1\]\)"),
        (_reshape_through_cast(), r"\(Reshape\).*graph input\(s\) 's' \(int32\[2\]\)"),
    ],
    ids=["reduce-axes", "reshape-shape-via-cast"],
)
def test_error_names_the_input_to_freeze(proto, pattern, tmp_path):
    with pytest.raises(BuildError, match=pattern + r".*freeze it into the model"):
        conformance.compile_model(proto, tmp_path)


def test_cli_one_line(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_reduce_sum_with_axes_input(), path)
    proc = cli("compile", path, "--target", "host", "-o", tmp_path / "m.tvmedge")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert re.search(r"'axes' \(int64\[1\]\).*freeze it", line), line
    assert not (tmp_path / "m.tvmedge").exists()
