"""Reductions over an empty set (tvmedge/frontend/converters/reduce.py) against ONNX's own node
cases: each gave whatever memory its output had (ReduceMax over bool failed to build). The
cases pass their axes as a graph input; exported models carry them as initializers, as here
(conformance.freeze_small_int_inputs: the case's own values). And float ReduceMax / ReduceMin
start from -inf / +inf: the max of a row of -inf was -3.4e38, so the Attention function
bodies' fully-masked-row test failed and their rows came back NaN."""

import pytest
from onnx_graphs import assert_node_case

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
    "test_reduce_max_keepdims_random",
    "test_reduce_min_do_not_keepdims_random",
    "test_reduce_max_bool_inputs",
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


@pytest.mark.parametrize(
    "name",
    [
        "test_attention_23_boolmask_fullymasked_row_nan_robustness_expanded",
        "test_attention_4d_causal_nonpad_negative_offset_structural_empty_expanded",
    ],
)
def test_fully_masked_attention_rows(name, tmp_path):
    assert_node_case(name, tmp_path)
