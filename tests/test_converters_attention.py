"""ONNX Attention, opsets 23-25 (tvmedge/frontend/converters/attention.py), against the node
cases' expected outputs (ONNX's reference): layouts, grouped heads, masks, causal with a KV
cache, softcap, the qk_matmul_output modes, padded keys, sliding windows, masked-out rows."""

import pytest
from onnx_graphs import assert_node_case


@pytest.mark.parametrize(
    "name",
    [
        "test_attention_3d_gqa_causal",  # 3-D layout, 9 query heads over 3 KV heads
        "test_attention_4d_diff_heads_with_past_and_present_mask4d",  # KV cache, V head size
        "test_attention_4d_attn_mask_bool",
        "test_attention_3d_with_past_and_present_qk_matmul_softcap",  # mode 1 with softcap
        "test_attention_4d_with_past_and_present_qk_matmul_bias_4d_mask_causal",  # mode 2
        "test_attention_23_fullymasked_qk_matmul_output_mode3_zero",  # a row with no key
        "test_attention_4d_causal_nonpad_attn_mask_composition",  # opset 24 nonpad_kv_seqlen
        "test_attention_local_window_with_past",  # opset 25 sliding window
        "test_attention_4d_gqa_with_past_and_present_fp16",  # float16, computed in float32
    ],
)
def test_node_cases(name, tmp_path):
    assert_node_case(name, tmp_path)
