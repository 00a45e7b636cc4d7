"""Small PyTorch networks with filters zeroed by structured pruning, exported to ONNX for the
channel-shrinking tests (CPU build, seeded, no downloads)."""

from __future__ import annotations

import torch
from torch.nn.utils import prune

from tests.torch_models import export_torch


def _bn(c: int) -> torch.nn.BatchNorm2d:
    bn = torch.nn.BatchNorm2d(c)
    with torch.no_grad():  # trained-looking statistics: a zeroed filter keeps a non-zero bias
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return bn


class Block(torch.nn.Module):
    """A ResNet basic block: conv-bn-relu-conv-bn, plus the input (or a strided 1x1 conv of
    it), then relu: the add couples the second conv's channels with the shortcut's."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = _bn(cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = _bn(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = torch.nn.Sequential(
                torch.nn.Conv2d(cin, cout, 1, stride, bias=False), _bn(cout)
            )

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class TinyResNet(torch.nn.Module):
    """Stem, three residual blocks (one with a projection shortcut), pooling, a linear head;
    ``width`` multiplies every channel count."""

    def __init__(self, width: int = 1):
        super().__init__()
        a, b = 16 * width, 32 * width
        self.stem = torch.nn.Conv2d(3, a, 3, 1, 1, bias=False)
        self.bn = _bn(a)
        self.blocks = torch.nn.Sequential(Block(a, a, 1), Block(a, b, 2), Block(b, b, 1))
        self.head = torch.nn.Linear(b, 10)

    def forward(self, x):
        x = self.blocks(torch.relu(self.bn(self.stem(x))))
        return self.head(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(torch.nn.Module):
    """MobileNetV2's block: 1x1 expand, 3x3 depthwise, 1x1 project (ReLU6 between)."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int):
        super().__init__()
        mid = cin * expand
        self.layers = torch.nn.Sequential(
            torch.nn.Conv2d(cin, mid, 1, bias=False),
            _bn(mid),
            torch.nn.ReLU6(),
            torch.nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False),
            _bn(mid),
            torch.nn.ReLU6(),
            torch.nn.Conv2d(mid, cout, 1, bias=False),
            _bn(cout),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.layers(x)
        return x + y if self.residual else y


class TinyMobileNet(torch.nn.Module):
    """A stem, inverted residual blocks, two branches joined by a Concat, then a flatten of
    the 4x4 feature map into a dense layer (channel c feeds its 16 columns); ``width``
    multiplies every channel count."""

    def __init__(self, width: int = 1):
        super().__init__()
        a, b = 16 * width, 24 * width
        self.stem = torch.nn.Sequential(
            torch.nn.Conv2d(3, a, 3, 2, 1, bias=False), _bn(a), torch.nn.ReLU6()
        )
        self.block1 = InvertedResidual(a, a, 2, 1)
        self.block2 = InvertedResidual(a, b, 3, 2)
        self.left = torch.nn.Sequential(torch.nn.Conv2d(b, a, 1), torch.nn.ReLU())
        self.right = torch.nn.Sequential(
            torch.nn.Conv2d(b, b, 3, 1, 1, groups=b),
            torch.nn.ReLU6(),
            torch.nn.Conv2d(b, a, 1),
        )
        self.pool = torch.nn.AvgPool2d(2)
        self.head = torch.nn.Linear(2 * a * 4 * 4, 10)

    def forward(self, x):  # [N, 3, 32, 32]
        x = self.block2(self.block1(self.stem(x)))  # [N, 24, 8, 8]
        x = self.pool(torch.cat([self.left(x), self.right(x)], dim=1))  # [N, 32, 4, 4]
        return self.head(torch.flatten(x, 1))


MODELS = {"resnet": TinyResNet, "mobilenet": TinyMobileNet}


def zeroed(name: str, amount: float, seed: int = 0, width: int = 1) -> torch.nn.Module:
    """Model ``name`` with ``amount`` of every conv's filters zeroed by ``prune.ln_structured``
    (L1 norm over each output channel, each conv on its own), made permanent."""
    torch.manual_seed(seed)
    model = MODELS[name](width).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            prune.ln_structured(module, "weight", amount=amount, n=1, dim=0)
            prune.remove(module, "weight")
    return model


def export_zeroed(name: str, amount: float, path, seed: int = 0, width: int = 1):
    """``zeroed(...)`` exported to ``path`` (32x32 RGB input 'x', symbolic batch)."""
    model = zeroed(name, amount, seed, width)
    return export_torch(model, torch.randn(1, 3, 32, 32), path, opset=17)
