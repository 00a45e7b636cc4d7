"""Depthwise convolutions padded through a mask (tvmedge.rewrites.masked_pad): which convs
are rewritten, that their kernels load without a guard, and whole compiles that must equal
TVM's unscheduled kernels and ONNX Runtime, also with an infinity at the image's edge (the
clamped read of a padded position must not carry it into the padding)."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from test_schedules import _conv, check, rewritten

C = 16  # channels: small, so the unscheduled reference builds stay quick


def _kernels(mod: tvm.IRModule) -> dict[str, str]:
    return {
        gv.name_hint: f.script()
        for gv, f in mod.functions.items()
        if isinstance(f, tvm.tirx.PrimFunc)
    }


@pytest.mark.parametrize(
    ("hw", "stride", "pads", "dilation"),
    [
        (56, 1, (1, 1, 1, 1), 1),
        (112, 2, (0, 0, 1, 1), 1),  # TF's "SAME" padding for stride 2: bottom and right only
        (56, 1, (2, 2, 2, 2), 2),
    ],
)
def test_large_depthwise_convs_load_without_a_guard(
    hw, stride, pads, dilation, tmp_path, monkeypatch
):
    proto, feeds = _conv(C, C, (hw, hw), stride=stride, pads=pads, dilation=dilation, group=C)
    mod = rewritten(proto, tmp_path)
    assert "R.nn.conv2d" not in mod["main"].script()
    kernels = _kernels(mod)
    assert list(kernels) == ["depthwise_conv2d"], list(kernels)
    assert "if_then_else" not in kernels["depthwise_conv2d"]
    assert "T.reinterpret" in kernels["depthwise_conv2d"]
    x = feeds["x"]
    check(proto, {"x": x}, tmp_path, monkeypatch)
    x[0, :, 0, 0] = np.inf  # a corner pixel: the padding around it reads it clamped
    x[0, :, hw - 1, 3] = -np.inf  # and an edge pixel on the other side
    check(proto, {"x": x}, tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("hw", "group", "stride"), [(28, C, 1), (112, 1, 2)], ids=["small-depthwise", "dense"]
)
def test_small_depthwise_and_dense_convs_keep_the_conv(hw, group, stride, tmp_path):
    """A dense conv pays for its padded copy with C times the work (stride 2: not Winograd)."""
    proto, _ = _conv(C, C, (hw, hw), stride=stride, group=group)
    mod = rewritten(proto, tmp_path)
    assert "R.nn.conv2d" in mod["main"].script()
    assert not any("depthwise" in name for name in _kernels(mod))
