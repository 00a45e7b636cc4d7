"""Depthwise convolutions padded through a mask (tvmedge.rewrites.masked_pad): which convs
are rewritten, that their kernels load without a guard, and whole compiles that must equal
TVM's unscheduled kernels and ONNX Runtime, also with an infinity at the image's edge (the
clamped read of a padded position must not carry it into the padding)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import tvm
from onnx import helper
from onnx_graphs import io
from test_schedules import _weight, _x, check, model

from tvmedge import rewrites, targets
from tvmedge.frontend import graph_inputs, load_onnx
from tvmedge.frontend import shapes as _shapes
from tvmedge.frontend.importer import import_onnx

C = 16  # channels: small, so the unscheduled reference builds stay quick


def _depthwise(hw: int, *, stride=1, pads=(1, 1, 1, 1), dilation=1, group=C, k=3):
    """Conv (group = channels unless told) + Clip(0, 6), as in MobileNetV2's blocks."""
    out = C if group == C else 2 * C
    nodes = [
        helper.make_node(
            "Conv",
            ["x", "w", "b"],
            ["c"],
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=list(pads),
            dilations=[dilation, dilation],
            group=group,
        ),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    inits = [_weight("w", out, C // group, k, k), _weight("b", out)]
    return model(nodes, [io("x", [1, C, hw, hw])], [io("y", None)], inits)


def _rewritten(proto, tmp_path) -> tvm.IRModule:
    path = tmp_path / "rewritten.onnx"
    onnx.save(proto, path)
    loaded = load_onnx(path)
    mod = import_onnx(loaded, _shapes.bind(graph_inputs(loaded.proto), {}))
    target = targets.get("host")
    with target.tvm_target():
        return tvm.transform.Sequential(rewrites.passes(rewrites.DEFAULT, target))(mod)


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
    proto = _depthwise(hw, stride=stride, pads=pads, dilation=dilation)
    mod = _rewritten(proto, tmp_path)
    assert "R.nn.conv2d" not in mod["main"].script()
    kernels = _kernels(mod)
    assert list(kernels) == ["depthwise_conv2d"], list(kernels)
    assert "if_then_else" not in kernels["depthwise_conv2d"]
    assert "T.reinterpret" in kernels["depthwise_conv2d"]
    x = _x(1, C, hw, hw)
    check(proto, {"x": x}, tmp_path, monkeypatch)
    x[0, :, 0, 0] = np.inf  # a corner pixel: the padding around it reads it clamped
    x[0, :, hw - 1, 3] = -np.inf  # and an edge pixel on the other side
    check(proto, {"x": x}, tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("hw", "group", "stride"), [(28, C, 1), (112, 1, 2)], ids=["small-depthwise", "dense"]
)
def test_small_depthwise_and_dense_convs_keep_the_conv(hw, group, stride, tmp_path):
    """A dense conv pays for its padded copy with C times the work (stride 2: not Winograd)."""
    mod = _rewritten(_depthwise(hw, group=group, stride=stride), tmp_path)
    assert "R.nn.conv2d" in mod["main"].script()
    assert not any("depthwise" in name for name in _kernels(mod))
