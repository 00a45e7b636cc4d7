"""The rows of the technique table: how one model is compiled for each technique (fp32
baseline, int8, ...), each measured against ONNX Runtime in the same run of the suite.

A technique is one entry in TECHNIQUES: the keyword arguments it adds to ``api.compile`` and
why it cannot run here (None when it can: int8 needs the quantizer's ``quantize`` option).
Pruning and pruning + int8 rows are entries of the same shape, added when their compile
options land; the table takes whichever techniques are available.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CALIBRATION_SAMPLES = 16  # seeded random inputs: a stand-in, labelled so in the report


@dataclass(frozen=True)
class Technique:
    name: str  # the row's label
    summary: str  # what it does, for the report
    options: Callable[[list, int], dict]  # (input specs, samples) -> api.compile keywords
    missing: Callable[[], str | None]  # why it cannot run with this tvmedge; None if it can
    # ONNX Runtime runs its own model of the technique (the QDQ model compile saves with
    # ``save_quantized``) where bench can take it (``ort_model``); else ORT runs the fp32 one
    ort_own: bool = False


def accepts(function, option: str) -> bool:
    import inspect

    return option in inspect.signature(function).parameters


def _compile_accepts(option: str) -> Callable[[], str | None]:
    def missing() -> str | None:
        from tvmedge import api

        if accepts(api.compile, option):
            return None
        return f"api.compile has no '{option}' option in this tvmedge"

    return missing


def _calibration(specs: list, samples: int) -> dict:
    """``samples`` seeded random feeds, stacked on a new first axis (a sample per row)."""
    from tvmedge import api

    feeds = [api.random_inputs(specs, seed=100 + i) for i in range(samples)]
    return {name: np.stack([f[name] for f in feeds]) for name in feeds[0]}


TECHNIQUES = (
    Technique("fp32", "float32 as exported, the baseline", lambda _s, _n: {}, lambda: None),
    Technique(
        "int8",
        f"post-training static int8, calibrated on {CALIBRATION_SAMPLES} seeded random inputs",
        lambda specs, n: {"quantize": "int8", "calibration": _calibration(specs, n)},
        _compile_accepts("quantize"),
        ort_own=True,
    ),
)
BASELINE = "fp32"


def available() -> tuple[list[Technique], dict[str, str]]:
    """The techniques that can run here, and why each other one cannot."""
    ready, skipped = [], {}
    for t in TECHNIQUES:
        reason = t.missing()
        if reason is None:
            ready.append(t)
        else:
            skipped[t.name] = reason
    return ready, skipped


def by_name(names: list[str]) -> list[Technique]:
    known = {t.name: t for t in TECHNIQUES}
    return [known[n] for n in names]
