"""--accuracy-floor: what a quantized model must keep of the float model's quality.

A floor is one or more ``metric=value`` terms joined by commas, all of which must hold:

- ``accuracy=F``: the quantized model's accuracy on the labelled validation set is at least
  F times the float model's (F = 0.99: it keeps 99% of the float accuracy); needs labels;
- ``top1=F``: on every output of class scores, the quantized model's top-1 class is the float
  model's on at least a fraction F of the validation samples;
- ``sqnr=DB``: on every float output, the signal-to-quantization-noise ratio against the float
  model's output is at least DB decibels.

A bare number F means ``accuracy=F`` when labels are given and ``top1=F`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvmedge.errors import CalibrationError

METRICS = ("accuracy", "top1", "sqnr")
AUTO = "auto"  # a bare number: accuracy with labels, else top1


@dataclass(frozen=True)
class Floor:
    terms: tuple[tuple[str, float], ...]  # (metric, least value), metric in METRICS or AUTO

    def resolve(self, has_labels: bool) -> Floor:
        """Bare numbers made explicit; ``accuracy`` refused without labels."""
        terms = []
        for metric, value in self.terms:
            if metric == AUTO:
                metric = "accuracy" if has_labels else "top1"
            if metric == "accuracy" and not has_labels:
                raise CalibrationError(
                    "--accuracy-floor accuracy=... needs labels: an npz key 'labels' in the "
                    "validation (or calibration) data, or --labels FILE; or use top1=F or sqnr=DB"
                )
            terms.append((metric, value))
        return Floor(tuple(terms))

    def describe(self) -> str:
        return ",".join(f"{m}={v:g}" if m != AUTO else f"{v:g}" for m, v in self.terms)

    def values(self, report: dict) -> dict[str, float]:
        """Each term's metric as measured in an accuracy report (tvmedge.accuracy)."""
        rows = report["outputs"]
        found: dict[str, float] = {}
        for metric, _least in self.terms:
            if metric == "accuracy":
                got = [r["accuracy"]["retained"] for r in rows if "accuracy" in r]
            elif metric == "top1":
                got = [r["top1_agreement"] for r in rows if "top1_agreement" in r]
            else:
                got = [
                    float("inf") if r["sqnr_db"] is None else r["sqnr_db"]
                    for r in rows
                    if "sqnr_db" in r
                ]
            if not got:
                shapes = ", ".join(f"{r['output']}{r['shape']}" for r in rows)
                raise CalibrationError(
                    f"--accuracy-floor {metric}=... does not apply to this model's outputs "
                    f"({shapes}): top1 and accuracy need class scores [N, C]; sqnr needs a float "
                    "output"
                )
            found[metric] = min(got)
        return found

    def score(self, report: dict) -> float:
        """The worst term's measured / least value: >= 1 when the floor holds."""
        values = self.values(report)
        return min(values[m] / least for m, least in self.terms)

    def met(self, report: dict) -> bool:
        return bool(self.score(report) >= 1.0)


def parse_floor(text) -> Floor:
    """``0.99``, ``top1=0.99``, ``sqnr=25`` or ``accuracy=0.99,sqnr=20`` into a Floor."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        text = repr(float(text))
    if not isinstance(text, str) or not text.strip():
        raise CalibrationError(f"--accuracy-floor {text!r} is not a floor; e.g. 0.99 or sqnr=25")
    terms = []
    for part in text.split(","):
        metric, _, value = part.strip().rpartition("=")
        metric = metric.strip().lower() or AUTO
        try:
            least = float(value)
        except ValueError:
            least = float("nan")
        if metric not in (*METRICS, AUTO) or least != least:
            raise CalibrationError(
                f"--accuracy-floor term {part.strip()!r} is not METRIC=VALUE with METRIC one of "
                f"{', '.join(METRICS)} (or a bare fraction); e.g. top1=0.99 or sqnr=25"
            )
        if metric == "sqnr" and not least > 0:
            raise CalibrationError(f"--accuracy-floor sqnr={value} must be > 0 dB")
        if metric != "sqnr" and not 0 < least <= 1:
            raise CalibrationError(
                f"--accuracy-floor {part.strip()!r}: a fraction must be in (0, 1], e.g. 0.99"
            )
        terms.append((metric, least))
    return Floor(tuple(terms))
