"""Tensors with no elements: ONNX's own test_tril_zero (x of shape (3, 0, 5)) compiles, passes
its compile check, loads and returns the expected empty output. numpy gives such arrays all-zero
strides, which TVM's kernels refused ("Mismatched x.strides") until the runtime passed compact
ones."""

from __future__ import annotations

import numpy as np
import onnx
from onnx.backend.test.case.node import collect_testcases

from tvmedge import api, runtime


def test_onnx_tril_zero_runs_and_matches(tmp_path):
    (case,) = [c for c in collect_testcases() if c.name == "test_tril_zero"]
    path = tmp_path / "tril_zero.onnx"
    onnx.save(case.model, path)
    built = api.compile(path, output=tmp_path / "t.tvmedge", log=lambda _m: None)
    assert built.manifest["check"]["compared"] and built.manifest["check"]["outputs"][0]["ok"]
    inputs, expected = case.data_sets[0]
    names = [i.name for i in case.model.graph.input]
    (y,) = runtime.load(built.path).run(None, dict(zip(names, inputs, strict=True)))
    assert y.shape == expected[0].shape == (3, 0, 5) and y.dtype == expected[0].dtype
    np.testing.assert_array_equal(y, expected[0])
