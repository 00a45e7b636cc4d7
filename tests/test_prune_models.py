"""PyTorch networks with 30% and 50% of their filters zeroed by ln_structured: shrunk, they do
proportionally less work and compute what ONNX Runtime computes on the zeroed model."""

import numpy as np
import pytest

from tests.prune_models import export_zeroed
from tests.test_shrink_channels import _check, _shrink


@pytest.mark.parametrize("name", ["resnet", "mobilenet"])
@pytest.mark.parametrize("amount", [0.3, 0.5])
def test_zeroed_model_shrinks_in_proportion_and_agrees(tmp_path, name, amount):
    path = str(tmp_path / f"{name}.onnx")
    export_zeroed(name, amount, path)
    report, _, after = _shrink(path, {"x": (1, 3, 32, 32)})
    for before, now in (report["params"], report["macs"]):
        # every layer loses `amount` of its filters, an inner one of its inputs too; filters
        # zeroed in one branch of a residual add only stay (torch zeroes each conv alone)
        assert (1 - amount) ** 2 - 0.05 < now / before < 1 - amount + 0.05
    assert report["zero_kept"] > 0  # coupled through an add: kept and reported
    assert report["constants_folded"] > 0  # zeroed filters' biases reach their consumers
    feeds = {"x": np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)}
    _check(path, after, feeds)


def test_residual_add_keeps_coupled_channels_together(tmp_path):
    """In the projection block, the second conv and the shortcut conv are added: both keep
    the same channels, and only those zeroed in both are gone."""
    path = str(tmp_path / "resnet.onnx")
    export_zeroed("resnet", 0.5, path)
    report, _, _ = _shrink(path, {"x": (1, 3, 32, 32)})
    second, shortcut = (report["layers"][f"main/conv2d#{i}"] for i in (4, 5))
    assert second["weight"] == [32, 32, 3, 3] and shortcut["weight"] == [32, 16, 1, 1]
    assert second["channels"] == shortcut["channels"]
    assert second["channels"][1] > 32 - 16  # each zeroed 16, not the same 16
    assert second["zero_kept"] == shortcut["zero_kept"] > 0
