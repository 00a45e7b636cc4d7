"""Reductions over an empty set (tvmedge/frontend/converters/reduce.py) against ONNX's own node
cases: each gave whatever memory its output had (ReduceMax over bool failed to build). The
cases pass their axes as a graph input; exported models carry them as initializers, as here
(conformance.freeze_small_int_inputs: the case's own values)."""

import pytest

from tvmedge import conformance

CASES = [
    "test_reduce_sum_empty_set",
    "test_reduce_prod_empty_set",
    "test_reduce_max_empty_set",
    "test_reduce_max_empty_set_bool",
    "test_reduce_min_empty_set",
    "test_reduce_log_sum_exp_empty_set",
    "test_reduce_log_sum_empty_set_expanded",
    "test_reduce_sum_empty_set_non_reduced_axis_zero",
    "test_tril_zero",
]


@pytest.mark.parametrize("name", CASES)
def test_empty_set_reductions(name, tmp_path):
    (case,) = conformance.node_cases(f"^{name}$")
    case = conformance.freeze_small_int_inputs(case)
    ((inputs, expected),) = case.data_sets
    artifact = conformance.compile_model(
        case.model, tmp_path, conformance.input_shapes(case.model, inputs)
    )
    checks = conformance.compare_all(
        conformance.tvmedge_outputs(artifact, inputs), expected, case.rtol, case.atol
    )
    assert all(c["ok"] for c in checks), conformance.mismatch_reason(checks)
