"""The accuracy floor's fallback: layers that hurt most go back to float, one at a time.

Sensitivity is measured with ONNX Runtime, which is fast: each layer with int8 weights is kept
float alone (re-quantized from the cached calibration ranges, no new calibration) and the
floor's score measured on the validation set; the layers whose return to float raises the
score most rank first. The fallback then keeps the first 1, 2, ... of that ranking float until
the floor holds or ``limit`` layers are float.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tvmedge.errors import AccuracyFloorError
from tvmedge.quantize.floor import Floor

Measure = Callable[[Path], dict]  # a QDQ model -> its accuracy report (ONNX Runtime)
Quantize = Callable[[tuple[str, ...]], Path]  # layers kept float -> a QDQ model


def rank(layers: list[str], quantize: Quantize, measure: Measure, floor: Floor) -> list[dict]:
    """Each layer's floor score when it alone is float, best first (ties in graph order)."""
    scored = []
    for index, layer in enumerate(layers):
        report = measure(quantize((layer,)))
        scored.append((-floor.score(report), index, layer, floor.values(report)))
    scored.sort()
    return [{"layer": layer, "alone_float": values} for _, _, layer, values in scored]


class Fallback:
    """Walks the ranking: ``step()`` returns the next QDQ model with one more layer float."""

    def __init__(self, layers, quantize: Quantize, measure: Measure, floor: Floor, limit: int):
        self.layers, self.limit, self.floor = list(layers), limit, floor
        self._quantize, self._measure = quantize, measure
        self.ranking: list[dict] | None = None
        self.float_layers: tuple[str, ...] = ()
        self.steps: list[dict] = []  # per step: the layers float and the floor's values

    def exhausted(self) -> bool:
        return len(self.float_layers) >= min(self.limit, len(self.layers))

    def step(self) -> Path:
        if self.ranking is None:
            self.ranking = rank(self.layers, self._quantize, self._measure, self.floor)
        self.float_layers = tuple(r["layer"] for r in self.ranking[: len(self.float_layers) + 1])
        return self._quantize(self.float_layers)

    def record(self, values: dict, engine: str) -> None:
        self.steps.append({"float": list(self.float_layers), "values": values, "engine": engine})

    def search(self, model: Path, report: dict) -> tuple[Path, dict]:
        """From ``model`` (measured as ``report``), fall back until the floor holds (with
        ONNX Runtime's measure); raises AccuracyFloorError when ``limit`` is reached first."""
        best = (self.floor.score(report), self.floor.values(report), ())
        while not self.floor.met(report):
            if self.exhausted():
                if self.ranking is None:  # the message names the layers that hurt most
                    self.ranking = rank(self.layers, self._quantize, self._measure, self.floor)
                raise self.failure(best)
            model = self.step()
            report = self._measure(model)
            self.record(self.floor.values(report), "onnxruntime")
            best = max(
                best,
                (self.floor.score(report), self.floor.values(report), self.float_layers),
                key=lambda b: b[0],
            )
        return model, report

    def failure(self, best, engine: str = "onnxruntime on the quantized model") -> Exception:
        _score, values, float_layers = best
        hurt = self.ranking or []
        shown = (
            "; ".join(f"{r['layer']} ({_values(r['alone_float'])} when float)" for r in hurt[:3])
            or "none: no layer has int8 weights"
        )
        return AccuracyFloorError(
            f"accuracy floor {self.floor.describe()} not met: best reached {_values(values)} "
            f"({engine}) with {len(float_layers)} layer(s) float "
            f"({', '.join(float_layers) or 'none'}; at most {self.limit} of {len(self.layers)} "
            f"may be, --max-float-layers); layers that hurt most: {shown}; nothing was written"
        )


def _values(values: dict) -> str:
    return ", ".join(
        f"{m} {v:.2f} dB" if m == "sqnr" else f"{m} {v:.4f}" for m, v in values.items()
    )
