"""A digit classifier trained in the test on scikit-learn's packaged digits (no downloads)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRAIN = 1200  # of the 1797 digits; the rest is the held-back split


@dataclass(frozen=True)
class Digits:
    model: Path  # the float ONNX model: image float32[batch, 64] -> logits float32[batch, 10]
    calibration: Path  # .npz of 256 training samples: image, labels
    validation: Path  # .npz of the held-back split: image, labels
    images: np.ndarray  # the held-back split
    labels: np.ndarray


def train_digits(folder: Path) -> Digits:
    """An MLP (64 -> 1024 -> 1024 -> 10: weights dominate its artifact) trained for a few
    epochs with torch, seeded, exported to ONNX with a symbolic batch."""
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 1024),
        torch.nn.ReLU(),
        torch.nn.Linear(1024, 1024),
        torch.nn.ReLU(),
        torch.nn.Linear(1024, 10),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x[:TRAIN]), torch.from_numpy(y[:TRAIN])
    for _epoch in range(4):
        for batch in torch.randperm(TRAIN).split(100):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[batch]), yt[batch]).backward()
            optimizer.step()
    path = folder / "digits.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (xt[:1],),
            str(path),
            dynamo=False,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        )
    calibration, validation = folder / "calibration.npz", folder / "validation.npz"
    np.savez(calibration, image=x[:256], labels=y[:256])
    np.savez(validation, image=x[TRAIN:], labels=y[TRAIN:])
    return Digits(path, calibration, validation, x[TRAIN:], y[TRAIN:])
