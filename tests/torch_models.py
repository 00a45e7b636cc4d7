"""PyTorch models exported in the tests themselves (CPU build, seeded, no downloads)."""

import warnings

import onnx
import torch


def export_torch(
    module: torch.nn.Module,
    example: torch.Tensor | tuple[torch.Tensor, ...],
    path,
    input_names: tuple[str, ...] = ("x",),
    opset: int | None = None,
) -> onnx.ModelProto:
    """TorchScript export with a symbolic batch (dim 0 of every input and of the output
    'logits'), the way most deployed models were made; ``opset`` defaults to torch's."""
    examples = example if isinstance(example, tuple) else (example,)
    with warnings.catch_warnings():  # tracer and deprecation notices, about torch not us
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            examples,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=list(input_names),
            output_names=["logits"],
            dynamic_axes={name: {0: "batch"} for name in (*input_names, "logits")},
        )
    return onnx.load(path)


class CnnLstm(torch.nn.Module):
    """The classic ECG/EEG model: Conv1d feature extractor, 2-layer LSTM, linear head."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv1d(2, 8, 5, padding=2),
            torch.nn.ReLU(),
            torch.nn.MaxPool1d(2),
            torch.nn.Conv1d(8, 16, 5, padding=2),
            torch.nn.ReLU(),
            torch.nn.MaxPool1d(2),
        )
        self.lstm = torch.nn.LSTM(16, 32, num_layers=2, batch_first=True)
        self.head = torch.nn.Linear(32, 5)

    def forward(self, x):  # [N, 2 leads, 96 samples]
        seq, _ = self.lstm(self.features(x).transpose(1, 2))  # 24 steps
        return self.head(seq[:, -1])


class BiGruClassifier(torch.nn.Module):
    """A bidirectional GRU whose two final states feed a linear classifier."""

    def __init__(self):
        super().__init__()
        self.gru = torch.nn.GRU(12, 24, batch_first=True, bidirectional=True)
        self.head = torch.nn.Linear(48, 4)

    def forward(self, x):  # [N, 20 steps, 12 features]
        _, h = self.gru(x)
        return self.head(torch.cat([h[0], h[1]], dim=-1))


class UNet1d(torch.nn.Module):
    """A 1-D U-Net over a signal and a conditioning signal: strided Conv1d down, ConvTranspose1d
    up, a skip connection, GELU (exported as Erf) between."""

    def __init__(self):
        super().__init__()
        self.down1 = torch.nn.Conv1d(3, 8, 3, padding=1)
        self.down2 = torch.nn.Conv1d(8, 16, 3, stride=2, padding=1)
        self.up = torch.nn.ConvTranspose1d(16, 8, 4, stride=2, padding=1)
        self.out = torch.nn.Conv1d(16, 2, 1)
        self.gelu = torch.nn.GELU()

    def forward(self, signal, cond):  # both [N, 3, 32]
        skip = self.gelu(self.down1(signal + cond))
        up = self.gelu(self.up(self.gelu(self.down2(skip))))
        return self.out(torch.cat([up, skip], dim=1))


class TinyEncoder(torch.nn.Module):
    """Two batch-first TransformerEncoder layers (LayerNormalization; attention as MatMul,
    Softmax and Transpose, its shapes computed from Shape) and a per-token linear head."""

    def __init__(self):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = torch.nn.Linear(32, 3)

    def forward(self, x):  # [N, 10 tokens, 32]
        return self.head(self.encoder(x))


class UpsampleHead(torch.nn.Module):
    """The decoder ops exporters emit: ConvTranspose2d, reflect Pad, Resize (nearest and
    bilinear) and an Einsum contraction over channels."""

    def __init__(self):
        super().__init__()
        self.up = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1)
        self.conv = torch.nn.Conv2d(6, 4, 3)

    def forward(self, x):  # [N, 4, 8, 8]
        y = self.conv(torch.nn.functional.pad(self.up(x), (1, 1, 1, 1), mode="reflect"))
        near = torch.nn.functional.interpolate(y, scale_factor=2, mode="nearest")
        smooth = torch.nn.functional.interpolate(y, scale_factor=2, mode="bilinear")
        return torch.einsum("nchw,nchw->nhw", near, smooth)


class SkipUpsample(torch.nn.Module):
    """A U-Net/FPN decoder step: upsample a coarse map to its skip connection's size (Resize
    with ``sizes`` computed from Shape of the skip), then add the skip."""

    def __init__(self):
        super().__init__()
        self.down = torch.nn.Conv2d(4, 4, 3, stride=2, padding=1)

    def forward(self, x):  # [N, 4, 7, 9]: odd sizes, which no scale factor restores
        up = torch.nn.functional.interpolate(self.down(x), size=x.shape[-2:], mode="bilinear")
        return x + up


class BroadcastGate(torch.nn.Module):
    """A per-step gate broadcast over features with ``Tensor.expand(-1, -1, 4)`` (Expand to a
    shape PyTorch computes with Where; constant once folded)."""

    def __init__(self):
        super().__init__()
        self.score = torch.nn.Linear(4, 1)

    def forward(self, x):  # [N, 6 steps, 4]
        return x * torch.sigmoid(self.score(x)).expand(-1, -1, 4)


class EegUNet(torch.nn.Module):
    """A 1-D U-Net for EEG segmentation as deployers export it: a raw channel and 15 derived
    channels, Conv1d + BatchNorm1d + GELU (Erf) blocks, MaxPool1d down, ConvTranspose1d up,
    Concat skips, a Sigmoid head, and a zero 'prior' channel made with ``new_zeros(...).expand``
    (Shape -> Gather -> Unsqueeze -> ConstantOfShape -> Expand in the export)."""

    def __init__(self, width: int = 8):
        super().__init__()

        def block(cin, cout):
            return torch.nn.Sequential(
                torch.nn.Conv1d(cin, cout, 5, padding=2),
                torch.nn.BatchNorm1d(cout),
                torch.nn.GELU(),
            )

        self.enc1 = block(1 + 15 + 1, width)
        self.enc2 = block(width, 2 * width)
        self.mid = block(2 * width, 4 * width)
        self.pool = torch.nn.MaxPool1d(2)
        self.up2 = torch.nn.ConvTranspose1d(4 * width, 2 * width, 2, stride=2)
        self.dec2 = block(4 * width, 2 * width)
        self.up1 = torch.nn.ConvTranspose1d(2 * width, width, 2, stride=2)
        self.dec1 = block(2 * width, width)
        self.head = torch.nn.Conv1d(width, 1, 1)
        for bn in (m for m in self.modules() if isinstance(m, torch.nn.BatchNorm1d)):
            torch.nn.init.uniform_(bn.running_mean, -0.2, 0.2)  # not the identity: the
            torch.nn.init.uniform_(bn.running_var, 0.5, 1.5)  # folded statistics matter

    def forward(self, raw, derived):  # [N, 1, L], [N, 15, L]; L divisible by 4
        prior = raw.new_zeros((raw.shape[0], 1, 1)).expand(-1, -1, raw.shape[2])
        e1 = self.enc1(torch.cat([raw, derived, prior], dim=1))
        e2 = self.enc2(self.pool(e1))
        m = self.mid(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(m), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return torch.sigmoid(self.head(d1))
