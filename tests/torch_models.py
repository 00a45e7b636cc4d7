"""PyTorch models exported in the tests themselves (CPU build, seeded, no downloads)."""

import warnings

import onnx
import torch


def export_torch(module: torch.nn.Module, example: torch.Tensor, path) -> onnx.ModelProto:
    """TorchScript export with a symbolic batch, the way most deployed RNN models were made."""
    with warnings.catch_warnings():  # tracer and deprecation notices, about torch not us
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (example,),
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
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
