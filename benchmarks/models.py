"""Benchmark models that the onnx wheel does not carry, defined in plain PyTorch (torchvision
is not usable here) and exported with seeded weights: no downloads.

    python benchmarks/models.py resnet18 -o build/models/resnet18.onnx

ResNet-18 and MobileNetV2 follow the torchvision architectures layer for layer (ImageNet
shapes, batch 1); the CNN-LSTM is a 12-lead ECG classifier, the U-Net a 1-D EEG segmenter, the
encoder a BERT-mini-sized transformer. BatchNorm statistics are randomized so folding them is
not a no-op.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
from torch import nn


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, relu: str = "relu"):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)]
    layers.append(nn.BatchNorm2d(cout))
    if relu == "relu":
        layers.append(nn.ReLU(inplace=True))
    elif relu == "relu6":
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, relu=""))
        self.skip = (
            conv_bn(cin, cout, 1, stride, relu="") if stride != 1 or cin != cout else nn.Identity()
        )

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


class ResNet18(nn.Module):
    def __init__(self, classes: int = 1000):
        super().__init__()
        layers = [conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)]
        cin = 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers = [conv_bn(cin, hidden, 1, relu="relu6")] if expand != 1 else []
        layers += [
            conv_bn(hidden, hidden, 3, stride, groups=hidden, relu="relu6"),
            conv_bn(hidden, cout, 1, relu=""),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(nn.Module):
    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))
    SETTINGS += ((6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, classes: int = 1000):
        super().__init__()
        layers = [conv_bn(3, 32, 3, 2, relu="relu6")]
        cin = 32
        for expand, cout, repeats, stride in self.SETTINGS:
            for i in range(repeats):
                layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        layers.append(conv_bn(cin, 1280, 1, relu="relu6"))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes))

    def forward(self, x):
        pooled = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(pooled, 1))


class CnnLstm(nn.Module):
    """12-lead ECG, 10 s at 50 Hz: Conv1d feature extractor, 2-layer LSTM, 5 rhythm classes."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(12, 32, 7, 2, 3),
            nn.BatchNorm1d(32),
            nn.ReLU(),
            nn.Conv1d(32, 64, 5, 2, 2),
            nn.BatchNorm1d(64),
            nn.ReLU(),
            nn.MaxPool1d(2),
        )
        self.lstm = nn.LSTM(64, 128, num_layers=2, batch_first=True)
        self.head = nn.Linear(128, 5)

    def forward(self, x):  # [1, 12, 500] -> 62 steps
        seq, _ = self.lstm(self.features(x).transpose(1, 2))
        return self.head(seq[:, -1])


class UNet1d(nn.Module):
    """EEG sleep-stage segmentation, 16 channels, 30 s at 256 Hz: a 3-level 1-D U-Net (Conv1d +
    BatchNorm1d + ReLU blocks, MaxPool1d down, ConvTranspose1d up, concatenated skips) with a
    per-sample sigmoid head."""

    def __init__(self, width: int = 16):
        super().__init__()

        def block(cin: int, cout: int):
            return nn.Sequential(
                nn.Conv1d(cin, cout, 5, padding=2), nn.BatchNorm1d(cout), nn.ReLU()
            )

        self.enc1, self.enc2 = block(16, width), block(width, 2 * width)
        self.mid = block(2 * width, 4 * width)
        self.pool = nn.MaxPool1d(2)
        self.up2 = nn.ConvTranspose1d(4 * width, 2 * width, 2, stride=2)
        self.dec2 = block(4 * width, 2 * width)
        self.up1 = nn.ConvTranspose1d(2 * width, width, 2, stride=2)
        self.dec1 = block(2 * width, width)
        self.head = nn.Conv1d(width, 1, 1)

    def forward(self, x):  # [1, 16, 7680]
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        m = self.mid(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(m), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return torch.sigmoid(self.head(d1))


class Encoder(nn.Module):
    """4 post-norm TransformerEncoder layers (d 256, 4 heads, FFN 1024) over 128 tokens."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(256, 4, 1024, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
        self.head = nn.Linear(256, 2)

    def forward(self, x):  # [1, 128 tokens, 256]
        return self.head(self.encoder(x)[:, 0])


MODELS = {
    "resnet18": (ResNet18, (1, 3, 224, 224)),
    # the same network on 160x160 images: every conv has new shapes, none is in the shipped
    # logs, but each has a tuned ResNet-18 kernel of its kind (the transfer experiment)
    "resnet18-160": (ResNet18, (1, 3, 160, 160)),
    "mobilenetv2": (MobileNetV2, (1, 3, 224, 224)),
    "cnn_lstm": (CnnLstm, (1, 12, 500)),
    "unet1d": (UNet1d, (1, 16, 7680)),
    "encoder": (Encoder, (1, 128, 256)),
}


def export(name: str, out: Path, *, seed: int = 0) -> Path:
    """Write benchmark model ``name`` (batch 1, opset 17) with seeded weights to ``out``."""
    cls, shape = MODELS[name]
    torch.manual_seed(seed)
    model = cls().eval()
    for m in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # no no_grad: it sends the encoder down a fused path
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.randn(*shape),),
            str(out),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("name", choices=sorted(MODELS))
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(export(args.name, Path(args.output), seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
