"""ONNX's per-operator node suite through tvmedge.conformance, and the runner itself.

The default run takes a seeded sample of the suite's cases: any wrong answer fails, and so
does a case that the committed report (docs/onnx-conformance.json) records as passing and
that no longer passes. Refusals are fine (an unsupported op is an honest no); other failures
the report already records are listed as warnings, not failures, so that this test guards
against regressions without restating the report. The whole suite runs under -m slow.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx_graphs import io, model

from tvmedge import conformance

REPORT = Path(__file__).resolve().parent.parent / "docs" / "onnx-conformance.json"
SAMPLE, SEED = 20, 20


def _recorded() -> dict[str, str]:
    """tvmedge's result for each node case (as given) in the committed report."""
    if not REPORT.exists():
        return {}
    node = json.loads(REPORT.read_text()).get("node") or {}
    return {r["case"]: r["given"]["tvmedge"]["result"] for r in node.get("cases", [])}


def _tvmedge(case: conformance.Case, timeout: float = 120) -> dict:
    return conformance.isolated(conformance.evaluate_tvmedge, case, timeout=timeout)


def _check_cases(cases: list[conformance.Case]) -> None:
    recorded = _recorded()
    wrong, regressed, other = [], [], []
    for case in cases:
        result = _tvmedge(case)
        kind, reason = result["result"], result.get("reason", "")
        if kind == "wrong":
            wrong.append(f"{case.name}: {reason}")
        elif kind != "pass" and recorded.get(case.name) == "pass":
            regressed.append(f"{case.name}: {kind}: {reason}")
        elif kind not in ("pass", "refused"):
            known = "as the report records" if recorded.get(case.name) == kind else "new"
            other.append(f"{case.name}: {kind} ({known}): {reason}")
    for line in other:
        warnings.warn(f"node case: {line}", stacklevel=1)
    assert not wrong, "wrong results:\n" + "\n".join(wrong)
    assert not regressed, "passed in docs/onnx-conformance.json, not now:\n" + "\n".join(regressed)


def test_seeded_sample_of_the_node_suite():
    cases = conformance.node_cases()
    assert len(cases) > 1000  # the whole suite was collected, not an empty list
    _check_cases(random.Random(SEED).sample(cases, SAMPLE))


@pytest.mark.slow
def test_whole_node_suite():
    _check_cases(conformance.node_cases())


# --- the runner, on hand-made graphs ------------------------------------------------------


def _relu_case(expected: np.ndarray | None = None) -> conformance.Case:
    proto = model([helper.make_node("Relu", ["x"], ["y"])], [io("x", [2, 3])], [io("y", [2, 3])])
    x = np.array([[-1, 0, 2], [3, -4, 5]], np.float32)
    return conformance.Case(
        "relu", proto, (([x], [np.maximum(x, 0) if expected is None else expected]),)
    )


def test_a_correct_case_passes_both_engines():
    result = conformance.run_case(_relu_case())
    assert result["tvmedge"]["result"] == "pass", result
    assert result["onnxruntime"]["result"] == "pass", result
    assert result["tvmedge"]["compile_s"] > 0 and result["tvmedge"]["wall_s"] > 0


def test_an_altered_expected_output_is_wrong_for_both_engines():
    altered = np.array([[0, 0, 2], [3, 0, 5.01]], np.float32)
    result = conformance.run_case(_relu_case(altered))
    assert result["tvmedge"]["result"] == "wrong", result
    assert result["onnxruntime"]["result"] == "wrong", result
    assert "1 of 6 elements differ" in result["tvmedge"]["reason"]


def test_shape_and_dtype_must_match_too():
    assert not conformance.compare(np.zeros(3, np.float32), np.zeros(3, np.float64), 1e-3, 0)["ok"]
    assert not conformance.compare(np.zeros(3, np.float32), np.zeros((3, 1), np.float32), 1e-3, 0)[
        "ok"
    ]
    nan = np.array([np.nan, 1], np.float32)
    assert conformance.compare(nan, nan.copy(), 1e-3, 1e-7)["ok"]
    assert not conformance.compare(nan, nan[::-1].copy(), 1e-3, 1e-7)["ok"]


def test_an_unsupported_op_is_refused_with_its_message():
    proto = model(
        [helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")],
        [io("x", [2])],
        [io("y", [2])],
    )
    proto.opset_import.append(helper.make_opsetid("com.example", 1))
    case = conformance.Case("frob", proto, (([np.ones(2, np.float32)], [np.ones(2, np.float32)]),))
    result = _tvmedge(case)
    assert result["result"] == "refused", result
    assert "com.example::Frobnicate" in result["reason"]


def test_small_int_inputs_frozen_for_both_engines():
    """Reshape's target as a graph input: TVM's importer needs it at compile time (refused);
    frozen into an initializer, as exporters write it, the same case passes."""
    proto = model(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        [io("x", [2, 3]), io("shape", [2], TensorProto.INT64)],
        [io("y", [3, 2])],
    )
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    case = conformance.Case("reshape", proto, (([x, np.array([3, 2])], [x.reshape(3, 2)]),))
    frozen = conformance.freeze_small_int_inputs(case)
    assert frozen.frozen == ("shape",)
    assert [v.name for v in frozen.model.graph.input] == ["x"]
    assert _tvmedge(case)["result"] == "refused"
    both = conformance.run_case(frozen)
    assert both["tvmedge"]["result"] == "pass", both
    assert both["onnxruntime"]["result"] == "pass", both
    old = conformance.Case("reshape", _with_ir(proto, 3), case.data_sets)
    # before IR 4 an initializer must also be listed as a graph input: it stays listed
    assert [v.name for v in conformance.freeze_small_int_inputs(old).model.graph.input] == [
        "x",
        "shape",
    ]


def _with_ir(proto: onnx.ModelProto, version: int) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    copy.ir_version = version
    return copy


def _sleep(_workdir):
    time.sleep(30)
    return {"result": "pass"}


def _segfault(_workdir):
    os.kill(os.getpid(), signal.SIGSEGV)


def test_a_hang_is_a_timeout_and_a_crash_is_a_result():
    start = time.perf_counter()
    assert conformance.isolated(_sleep, timeout=1)["result"] == "timeout"
    assert time.perf_counter() - start < 15
    crashed = conformance.isolated(_segfault, timeout=30)
    assert crashed["result"] == "crash"
    assert "SIGSEGV" in crashed["reason"]


def test_ort_error_lines_are_short():
    """ONNX Runtime's messages start with its source path and a C++ signature; the reason
    keeps what went wrong."""
    proto = model([helper.make_node("Relu", ["x"], ["y"])], [io("x", [2])], [io("y", [2])])
    proto.ir_version = onnx.IR_VERSION + 5  # newer than any ONNX Runtime supports
    case = conformance.Case(
        "future", proto, (([np.ones(2, np.float32)], [np.ones(2, np.float32)]),)
    )
    result = conformance.isolated(conformance.evaluate_ort, case, timeout=60)
    assert result["result"] == "error"
    assert "onnxruntime_src" not in result["reason"]
    assert "IR version" in result["reason"]
