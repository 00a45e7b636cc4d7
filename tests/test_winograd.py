"""Winograd convolutions (tvmedge.rewrites.winograd, tvmedge.schedules.winograd): which convs
are rewritten, the transformed weights, and whole compiles that must equal TVM's unscheduled
kernels and ONNX Runtime for both tile sizes, padding, cropped tiles and batches.

Scheduled and unscheduled builds of one Winograd kernel round differently (the unrolled sums
are contracted into FMAs in another order, and F(4x4)'s transforms scale by up to 64), so they
are compared at 1e-4, the tolerance every build is held to against ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import cli
from onnx import helper
from onnx_graphs import io
from test_schedules import _conv, _weight, _x, check, model

from tvmedge.rewrites import winograd


def _winograd_kernels(built) -> list[str]:
    return sorted(k for k in built.flops if "winograd" in k)


@pytest.mark.parametrize("m", [2, 4])
def test_transformed_weights_reproduce_a_direct_convolution(m):
    """Y = A^T [(G g G^T) * (B^T d B)] A for one tile equals the 3x3 correlation of d."""
    rng = np.random.default_rng(1)
    a, b, _ = winograd.matrices(m)
    alpha = m + 2
    g = rng.standard_normal((3, 3, 1, 1))
    d = rng.standard_normal((alpha, alpha))
    u = winograd.transform_weight(g, m).reshape(alpha, alpha)
    y = a.T @ (u * (b.T @ d @ b)) @ a
    direct = np.array(
        [[np.sum(d[i : i + 3, j : j + 3] * g[:, :, 0, 0]) for j in range(m)] for i in range(m)]
    )
    np.testing.assert_allclose(y, direct, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("out_h", "out_w", "want"),
    [(56, 56, 4), (28, 28, 4), (55, 55, 4), (14, 14, 2), (13, 13, 2), (7, 7, 2)],
)
def test_tile_size_limits_wasted_tiles(out_h, out_w, want):
    assert winograd.tile_size(out_h, out_w) == want


@pytest.mark.parametrize(
    "case",
    [
        dict(cin=16, cout=32, hw=(30, 30)),  # F(4x4): 8x8 tiles, the last ones cropped
        dict(cin=24, cout=16, hw=(13, 13), relu=False),  # F(2x2), odd size, no epilogue
        dict(cin=16, cout=48, hw=(30, 34), pad=0),  # no padding: a 28x32 output
    ],
    ids=["f4-cropped", "f2-odd", "unpadded"],
)
def test_winograd_matches_direct_and_onnxruntime(case, tmp_path, monkeypatch):
    built = check(*_conv(**case), tmp_path, monkeypatch, tol=1e-4)
    kernels = _winograd_kernels(built)
    assert any("winograd_gemm" in k for k in kernels), kernels
    assert any("winograd_input" in k for k in kernels), kernels
    assert any("winograd_output" in k for k in kernels), kernels


def test_batch_and_residual_epilogue(tmp_path, monkeypatch):
    """Batch 2, and a residual add + ReLU fused into the output transform."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c", "x"], ["s"]),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    proto = model(
        nodes,
        [io("x", [2, 32, 28, 28])],
        [io("y", None)],
        [_weight("w", 32, 32, 3, 3), _weight("b", 32)],
    )
    built = check(proto, {"x": _x(2, 32, 28, 28)}, tmp_path, monkeypatch, tol=1e-4)
    assert any("winograd_output" in k and "add" in k for k in _winograd_kernels(built))


@pytest.mark.parametrize(
    "case",
    [
        dict(cin=16, cout=32, hw=(30, 30), stride=2),  # strided
        dict(cin=16, cout=32, hw=(30, 30), k=1, pad=0),  # 1x1
        dict(cin=8, cout=32, hw=(30, 30)),  # too few input channels
        dict(cin=32, cout=32, hw=(30, 30), group=32),  # depthwise
        dict(cin=64, cout=64, hw=(5, 5)),  # 5x5 output: 9 tiles do not amortize the transforms
    ],
    ids=["stride2", "1x1", "8-channels", "depthwise", "5x5"],
)
def test_convolutions_kept_direct(case, tmp_path, monkeypatch):
    built = check(*_conv(**case), tmp_path, monkeypatch)
    assert _winograd_kernels(built) == []


def test_cli_no_winograd_keeps_direct_convolutions(tmp_path):
    """`--no-winograd` compiles the direct form (recorded in the manifest) and both artifacts
    agree with ONNX Runtime; without it the 3x3 conv runs as Winograd kernels."""
    import json

    import onnx
    import onnxruntime as ort

    from tvmedge import api
    from tvmedge.layout import MANIFEST

    proto, feeds = _conv(cin=16, cout=32, hw=(28, 28))
    path = tmp_path / "conv.onnx"
    onnx.save(proto, path)
    (want,) = ort.InferenceSession(str(path)).run(None, feeds)
    for flag, expect_winograd in (([], True), (["--no-winograd"], False)):
        out = tmp_path / f"conv{len(flag)}.tvmedge"
        done = cli("compile", path, "--no-tuning-logs", "-o", out, *flag)
        assert done.returncode == 0, done.stderr
        manifest = json.loads((out / MANIFEST).read_text())
        assert ("winograd" in [r["name"] for r in manifest["rewrites"]]) == expect_winograd
        profile = cli("profile", out, "--repeat", "1")
        assert profile.returncode == 0, profile.stderr
        assert ("winograd_gemm" in profile.stdout) == expect_winograd, profile.stdout
        _, got = api.run(out, inputs=feeds)
        np.testing.assert_allclose(got["y"], want, rtol=1e-4, atol=1e-4)
