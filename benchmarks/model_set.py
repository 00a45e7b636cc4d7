"""The suite's models, every one made on this machine with no download: the onnx wheel's
architectures with seeded weights (``tvmedge.zoo``) and the PyTorch definitions of
``benchmarks/models.py`` exported with seeded weights."""

from __future__ import annotations

from pathlib import Path

from benchmarks import models as torch_models
from benchmarks.provenance import ROOT
from tvmedge import zoo

MODELS_DIR = ROOT / "build" / "models"

# The default set: image classifiers (SqueezeNet, ResNet-18, MobileNetV2, ResNet-50), a
# CNN-LSTM for ECG, a 1-D U-Net for EEG and a small transformer encoder.
DEFAULT = ("squeezenet", "resnet18", "mobilenetv2", "resnet50", "cnn_lstm", "unet1d", "encoder")
QUICK = ("squeezenet",)
CHOICES = tuple(sorted({*zoo.MODELS, *torch_models.MODELS}))


def source(name: str) -> str:
    """Where model ``name`` comes from, for the report."""
    if name in zoo.MODELS:
        return "onnx wheel, seeded weights"
    if name in torch_models.MODELS:
        return "PyTorch export (benchmarks/models.py), seeded weights"
    return "an ONNX file given to the suite"


def model_path(name: str, out_dir: Path = MODELS_DIR) -> Path:
    """The ONNX file of benchmark model ``name``, made from the onnx wheel or PyTorch."""
    out = out_dir / f"{name}.onnx"
    if name in zoo.MODELS:
        return zoo.materialize(name, out)
    return torch_models.export(name, out)
