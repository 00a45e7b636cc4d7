"""Shared fixtures: real models (PyTorch exports, the onnx wheel's models) and the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real `tvmedge` command line in a fresh process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TVMEDGE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "tvmedge", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def export_tiny_cnn(path: Path) -> Path:
    """A small Conv-BN-ReLU CNN classifier exported by PyTorch, with a symbolic batch."""
    import torch

    torch.manual_seed(0)

    class TinyCNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Sequential(
                torch.nn.Conv2d(3, 16, 3, padding=1),
                torch.nn.BatchNorm2d(16),
                torch.nn.ReLU(),
                torch.nn.MaxPool2d(2),
                torch.nn.Conv2d(16, 32, 3, padding=1, groups=2),
                torch.nn.BatchNorm2d(32),
                torch.nn.ReLU(),
            )
            self.head = torch.nn.Linear(32, 10)

        def forward(self, x):
            return torch.softmax(self.head(self.features(x).mean((2, 3))), dim=1)

    model = TinyCNN().eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding them is tested
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    torch.onnx.export(
        model,
        (torch.randn(1, 3, 32, 32),),
        str(path),
        dynamo=False,
        input_names=["image"],
        output_names=["probs"],
        dynamic_axes={"image": {0: "batch"}},
    )
    return path


@pytest.fixture(scope="session")
def tiny_cnn(tmp_path_factory) -> Path:
    return export_tiny_cnn(tmp_path_factory.mktemp("models") / "tiny_cnn.onnx")


@pytest.fixture(scope="session")
def tiny_artifact(tiny_cnn, tmp_path_factory) -> Path:
    from tvmedge import api

    out = tmp_path_factory.mktemp("artifacts") / "tiny_cnn.tvmedge"
    return api.compile(tiny_cnn, output=out, log=lambda _m: None).path
