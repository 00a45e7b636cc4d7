"""Output channels padded to whole vectors (tvmedge.rewrites.pad_channels): which widths are
padded, where the slice that takes the real channels back ends up, and whole compiles that must
equal TVM's unscheduled kernels and ONNX Runtime."""

from __future__ import annotations

import re

import pytest
from onnx import helper, numpy_helper
from onnx_graphs import io
from test_schedules import RNG, _weight, _x, check, model, rewritten

from tvmedge import targets
from tvmedge.rewrites.pad_channels import padded_width

# 500 channels need padding at 8 and at 16 lanes (AVX2, AVX-512: to 512), so these tests do
# not depend on which x86 CPU runs them.
N = 500


def _lanes() -> int:
    return targets.get("host").capabilities.simd_width // 32


@pytest.mark.parametrize(
    ("n", "lanes", "want"),
    [(1000, 16, 1024), (1000, 8, 1008), (24, 16, None), (1024, 16, None), (500, 8, 512)],
)
def test_only_widths_a_little_short_of_whole_vectors_are_padded(n, lanes, want):
    assert padded_width(n, lanes) == want


def _rewritten(proto, tmp_path) -> str:
    return rewritten(proto, tmp_path)["main"].script()


def _check(proto, feeds, tmp_path, monkeypatch):
    # the last transpose, (1, 1, 1, N) to (1, N, 1, 1), is a reshape: a view, no kernel
    built = check(proto, feeds, tmp_path, monkeypatch, all_scheduled=False)
    assert [k for k in built.unscheduled if "transpose" not in k] == []


def _head(tail: str = "relu"):
    """1x1 conv to N channels and bias, then ReLU, a division by per-channel constants, or a
    residual add of a second conv; then a global pool."""
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[1, 1])]
    inits = [_weight("w", N, 32, 1, 1), _weight("b", N)]
    if tail == "residual":
        nodes += [
            helper.make_node("Conv", ["x", "w2"], ["d"], kernel_shape=[1, 1]),
            helper.make_node("Add", ["c", "d"], ["r"]),
        ]
        inits.append(_weight("w2", N, 32, 1, 1))
    elif tail == "divide":
        nodes.append(helper.make_node("Div", ["c", "s"], ["r"]))
        inits.append(numpy_helper.from_array(RNG.uniform(0.5, 2, (1, N, 1, 1)).astype("f4"), "s"))
    else:
        nodes.append(helper.make_node("Relu", ["c"], ["r"]))
    nodes.append(helper.make_node("GlobalAveragePool", ["r"], ["y"]))
    return model(nodes, [io("x", [1, 32, 6, 6])], [io("y", None)], inits)


@pytest.mark.parametrize("tail", ["relu", "divide"])
def test_classifier_conv_is_padded_and_sliced_after_the_pool(tail, tmp_path, monkeypatch):
    width = padded_width(N, _lanes())
    proto = _head(tail)
    text = _rewritten(proto, tmp_path)
    assert re.search(rf"R\.Tensor\(\(1, 6, 6, {width}\), .*\) = R\.nn\.conv2d", text), text
    assert re.search(rf"\(1, 1, 1, {width}\), .*\) = R\.mean", text), text
    assert re.search(rf"\(1, 1, 1, {N}\), .*\) = R\.strided_slice", text), text
    _check(proto, {"x": _x(1, 32, 6, 6)}, tmp_path, monkeypatch)


def test_slice_stays_before_an_op_with_a_computed_operand(tmp_path, monkeypatch):
    """conv + conv: the second operand is not a constant to pad, so each conv is sliced
    before the add."""
    proto = _head("residual")
    text = _rewritten(proto, tmp_path)
    assert len(re.findall(rf"\(1, 6, 6, {N}\), .*\) = R\.strided_slice", text)) == 2, text
    _check(proto, {"x": _x(1, 32, 6, 6)}, tmp_path, monkeypatch)


def test_gemm_output_is_padded_and_sliced_last(tmp_path, monkeypatch):
    width = padded_width(N, _lanes())
    nodes = [helper.make_node("Gemm", ["a", "w", "b"], ["y"], transB=1)]
    proto = model(
        nodes, [io("a", [1, 64])], [io("y", None)], [_weight("w", N, 64), _weight("b", N)]
    )
    text = _rewritten(proto, tmp_path)
    assert re.search(rf"\(1, {width}\), .*\) = R\.matmul", text), text
    assert re.search(rf"\(1, {N}\), .*\) = R\.strided_slice", text), text
    _check(proto, {"a": _x(1, 64)}, tmp_path, monkeypatch)
