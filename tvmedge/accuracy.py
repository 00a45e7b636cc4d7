"""How close a rewritten model stays to its reference, output by output, on a validation set.

Independent of how the model was rewritten (quantization, pruning): it takes the outputs of a
reference (the float model under ONNX Runtime) and of a candidate on the same samples, and
optional labels, and returns a JSON-ready report:

- per output: max and mean absolute error, SQNR in dB (10 log10 of the reference's energy over
  the error's; None when the outputs are identical), and for outputs of class scores ([N, C]
  with C > 1, trailing dims 1) the top-1 agreement; with labels, on the first such output, the
  accuracy of both and the fraction of the reference's the candidate keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tvmedge.errors import CalibrationError

Runner = Callable[[dict], list[np.ndarray]]  # feeds -> outputs, in the model's output order


def collect(run: Runner, samples: Sequence[dict]) -> list[np.ndarray]:
    """Run every sample and join each output's values along axis 0 (scalars stacked)."""
    per_sample = [run(feeds) for feeds in samples]
    joined = []
    for values in zip(*per_sample, strict=True):
        arrays = [np.asarray(v) for v in values]
        joined.append(np.stack(arrays) if arrays[0].ndim == 0 else np.concatenate(arrays))
    return joined


def _is_class_scores(shape: tuple[int, ...]) -> bool:
    return len(shape) >= 2 and shape[1] > 1 and all(d == 1 for d in shape[2:])


def _sqnr_db(ref: np.ndarray, err: np.ndarray) -> float | None:
    noise = float(np.sum(err * err))
    if noise == 0.0:
        return None
    signal = float(np.sum(ref * ref))
    return round(10.0 * np.log10(max(signal, np.finfo(np.float64).tiny) / noise), 3)


def compare(
    names: Sequence[str],
    reference: Sequence[np.ndarray],
    candidate: Sequence[np.ndarray],
    *,
    labels: np.ndarray | None = None,
) -> dict:
    """The report of ``candidate`` against ``reference`` (outputs from :func:`collect`)."""
    rows, labelled = [], False
    for name, ref, got in zip(names, reference, candidate, strict=True):
        row = {"output": name, "shape": list(ref.shape), "dtype": str(ref.dtype)}
        if ref.shape != got.shape:
            raise CalibrationError(
                f"output '{name}' is {list(got.shape)} where the reference gives "
                f"{list(ref.shape)} on the validation set"
            )
        if ref.dtype.kind not in "fc":
            row["mismatches"] = int(np.count_nonzero(ref != got))
            rows.append(row)
            continue
        r64, g64 = ref.astype(np.float64), got.astype(np.float64)
        err = np.abs(g64 - r64)
        row["max_abs_error"] = float(err.max()) if err.size else 0.0
        row["mean_abs_error"] = float(err.mean()) if err.size else 0.0
        row["sqnr_db"] = _sqnr_db(r64, err)
        if _is_class_scores(ref.shape):
            top_ref = r64.reshape(ref.shape[0], -1).argmax(axis=1)
            top_got = g64.reshape(ref.shape[0], -1).argmax(axis=1)
            row["top1_agreement"] = float(np.mean(top_ref == top_got))
            if labels is not None and not labelled:
                row["accuracy"] = _accuracy(name, top_ref, top_got, labels)
                labelled = True
        rows.append(row)
    if labels is not None and not labelled:
        raise CalibrationError(
            "labels were given but no output holds class scores [N, C]; drop the labels"
        )
    return {"samples": len(reference[0]) if reference else 0, "outputs": rows}


def _accuracy(name: str, top_ref, top_got, labels: np.ndarray) -> dict:
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != top_ref.shape[0]:
        raise CalibrationError(
            f"{labels.shape[0]} labels for {top_ref.shape[0]} rows of output '{name}' on the "
            "validation set; give one class index per validation sample"
        )
    ref, got = float(np.mean(top_ref == labels)), float(np.mean(top_got == labels))
    return {
        "reference": ref,
        "candidate": got,
        "retained": got / ref if ref > 0 else (1.0 if got >= ref else 0.0),
    }
