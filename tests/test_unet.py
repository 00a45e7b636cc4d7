"""The EEG U-Net of the sound-artifacts issue: a PyTorch export (opset 17) with a raw and a
derived signal input, Conv1d + BatchNorm1d + GELU (Erf), MaxPool1d, ConvTranspose1d, Concat skips,
a Sigmoid head and a ``new_zeros(...).expand`` prior channel. It compiles, passes its compile
check, loads and matches ONNX Runtime bound at the deployed shape (1, 1, 7500) / (1, 15, 7500),
with a symbolic batch (which failed to import at Expand: "'Var' object has no attribute
'value'") and with a symbolic batch and length (which failed to build: the skip Concat's lengths
``len // 4 * 2`` and ``len // 2`` are equal but not provably so)."""

from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch_models import EegUNet

from tvmedge import api, runtime
from tvmedge.errors import FeedError

LENGTH = 7500
RTOL, ATOL = 1e-4, 1e-5


def _export(path, dynamic: dict[int, str]) -> None:
    torch.manual_seed(0)
    axes = {name: dynamic for name in ("raw", "derived", "mask")}
    with warnings.catch_warnings():  # tracer notices, about torch not us
        warnings.simplefilter("ignore")
        torch.onnx.export(
            EegUNet().eval(),
            (torch.randn(1, 1, 64), torch.randn(1, 15, 64)),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["raw", "derived"],
            output_names=["mask"],
            dynamic_axes=axes if dynamic else None,
        )


def _feeds(batch: int, length: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(batch * 100_003 + length)
    return {
        "raw": rng.standard_normal((batch, 1, length)).astype(np.float32),
        "derived": rng.standard_normal((batch, 15, length)).astype(np.float32),
    }


@pytest.mark.parametrize(
    "dynamic, bind, runs",
    [
        pytest.param({}, None, [(1, 64)], id="static-export"),
        pytest.param(
            {0: "batch", 2: "len"},
            {"raw": (1, 1, LENGTH), "derived": (1, 15, LENGTH)},
            [(1, LENGTH)],
            id="bound-7500",
        ),
        pytest.param({0: "batch"}, None, [(1, 64), (3, 64)], id="symbolic-batch"),
        pytest.param(
            {0: "batch", 2: "len"}, None, [(1, LENGTH), (2, 256)], id="symbolic-batch-and-length"
        ),
    ],
)
def test_eeg_unet_compiles_checks_loads_and_matches_onnxruntime(tmp_path, dynamic, bind, runs):
    path = tmp_path / "unet.onnx"
    _export(path, dynamic)
    built = api.compile(
        path, output=tmp_path / "unet.tvmedge", input_shapes=bind, log=lambda _m: None
    )
    check = built.manifest["check"]
    assert check["run"] and check["compared"] and all(o["ok"] for o in check["outputs"])
    model = runtime.load(built.path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, length in runs:
        feeds = _feeds(batch, length)
        (ours,) = model.run(None, feeds)
        (want,) = session.run(None, feeds)
        assert ours.shape == want.shape == (batch, 1, length)
        np.testing.assert_allclose(ours, want, rtol=RTOL, atol=ATOL)


def test_a_length_the_model_cannot_take_is_a_clear_error_not_a_wrong_answer(tmp_path):
    """With a symbolic length the skip Concat checks at run time that its lengths agree, as
    ONNX requires: a length not divisible by 4 (which the model cannot take: ONNX Runtime
    refuses it too) fails with an error instead of concatenating misaligned signals."""
    path = tmp_path / "unet.onnx"
    _export(path, {0: "batch", 2: "len"})
    built = api.compile(path, output=tmp_path / "unet.tvmedge", log=lambda _m: None)
    feeds = _feeds(1, 66)
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.Fail, match="Non concat axis"):
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    with pytest.raises(FeedError, match=r"break a shape rule of the model.*match_cast"):
        runtime.load(built.path).run(None, feeds)
