"""Calibration and validation data: read, checked against the model's inputs, split.

A source is an ``.npz`` whose keys are the model's input names (plus an optional ``labels``)
and whose first axis is the sample, a folder of such files (read in name order), a dict of the
same arrays, or an object with ``get_next()`` returning a feed dict or None (ONNX Runtime's
CalibrationDataReader; a ``labels`` key in a feed is taken as that feed's labels). Each sample
becomes one feed: with an array of the input's rank, sample i is rows ``[i:i+1]`` (the model's
batch axis is 1 or symbolic); with one more axis, sample i is ``array[i]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tvmedge.errors import CalibrationError
from tvmedge.layout import TensorSpec, format_shape

LABELS = "labels"
HELD_BACK = 0.2  # the calibration set's last fifth validates when no --validation is given
BATCH_ROWS = 64  # samples per run when the model's batch axis is symbolic


@dataclass(frozen=True)
class Samples:
    feeds: list[dict]  # one feed dict per sample
    labels: list[np.ndarray] | None  # per sample, its rows' class indices
    origin: str  # where the samples came from, for the report

    def __len__(self) -> int:
        return len(self.feeds)

    def all_labels(self) -> np.ndarray | None:
        return None if self.labels is None else np.concatenate(self.labels)


def load(source, specs: list[TensorSpec], what: str = "calibration") -> Samples:
    """Read ``source`` and check every sample against ``specs``: names, dtypes, static dims."""
    if hasattr(source, "get_next"):
        feeds, labels = _from_reader(source)
        origin = f"{type(source).__name__}.get_next()"
    elif isinstance(source, dict):
        feeds, labels = _from_arrays(dict(source), specs, what, "the dict")
        origin = "a dict of arrays"
    else:
        path = Path(source)
        files = sorted(path.glob("*.npz")) if path.is_dir() else [path]
        if not files:
            raise CalibrationError(f"{what} folder '{path}' holds no .npz files; the set is empty")
        feeds, labels = [], []
        for f in files:
            got, got_labels = _from_arrays(_read_npz(f, what), specs, what, f"'{f}'")
            feeds += got
            labels = None if labels is None or got_labels is None else labels + got_labels
        labels = labels or None
        origin = str(path)
    if not feeds:
        raise CalibrationError(f"the {what} set from {origin} is empty: give at least one sample")
    for i, feed in enumerate(feeds):
        _check_feed(feed, specs, what, f"sample {i} of {origin}")
    return Samples(feeds, labels, origin)


def _read_npz(path: Path, what: str) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise ValueError("not an archive")
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise CalibrationError(f"{what} file '{path}' does not exist") from None
    except (OSError, ValueError, EOFError):
        raise CalibrationError(
            f"{what} file '{path}' is not a readable .npz archive; write one with "
            "numpy.savez(path, input_name=array, ..., labels=classes)"
        ) from None


def _from_reader(reader) -> tuple[list[dict], list[np.ndarray] | None]:
    feeds, labels = [], []
    while (feed := reader.get_next()) is not None:
        feed = dict(feed)
        label = feed.pop(LABELS, None)
        feeds.append({k: np.asarray(v) for k, v in feed.items()})
        labels.append(None if label is None else np.atleast_1d(np.asarray(label)))
    return feeds, (labels if labels and all(x is not None for x in labels) else None)


def _from_arrays(arrays: dict, specs: list[TensorSpec], what: str, where: str):
    names = [s.name for s in specs]
    label_array = arrays.pop(LABELS, None)
    unknown = [k for k in arrays if k not in names]
    if unknown:
        raise CalibrationError(
            f"{what} key {unknown[0]!r} in {where} is not an input of the model; its inputs: "
            f"{', '.join(names)} (and an optional '{LABELS}')"
        )
    counts = set()
    for spec in specs:
        if spec.name not in arrays:
            raise CalibrationError(
                f"{what} data in {where} has no input '{spec.name}' (expected {spec.dtype}"
                f"{format_shape(('N', *spec.shape))}: the first axis is the sample)"
            )
        counts.add(np.asarray(arrays[spec.name]).shape[:1])
    if len(counts) > 1:
        raise CalibrationError(
            f"{what} arrays in {where} have different sample counts (first axes "
            f"{', '.join(str(c[0]) if c else 'scalar' for c in sorted(counts))}); give each "
            "input the same number of samples"
        )
    n = next(iter(counts))[0] if counts and next(iter(counts)) else 0
    feeds = []
    for i in range(n):
        feeds.append({s.name: _sample(np.asarray(arrays[s.name]), s, i) for s in specs})
    labels = None
    if label_array is not None:
        label_array = np.asarray(label_array)
        if label_array.shape[:1] != (n,) or label_array.dtype.kind not in "iu":
            raise CalibrationError(
                f"'{LABELS}' in {where} is {label_array.dtype}{list(label_array.shape)}: give "
                f"one integer class index per sample ({n})"
            )
        labels = [np.atleast_1d(label_array[i]) for i in range(n)]
    return feeds, labels


def _sample(array: np.ndarray, spec: TensorSpec, i: int) -> np.ndarray:
    # an array of the input's rank holds batch rows; one more axis holds whole feeds
    return array[i : i + 1] if array.ndim == len(spec.shape) else array[i]


def _check_feed(feed: dict, specs: list[TensorSpec], what: str, where: str) -> None:
    names = [s.name for s in specs]
    extra = [k for k in feed if k not in names]
    if extra:
        raise CalibrationError(
            f"{what} feed {extra[0]!r} ({where}) is not an input of the model; its inputs: "
            f"{', '.join(names)}"
        )
    for spec in specs:
        expected = f"{spec.dtype}{format_shape(spec.shape)}"
        if spec.name not in feed:
            raise CalibrationError(f"{what} {where} has no input '{spec.name}' ({expected})")
        value = feed[spec.name]
        got = f"{value.dtype}{format_shape(value.shape)}"
        dims_ok = len(value.shape) == len(spec.shape) and all(
            not isinstance(d, int) or d == v for d, v in zip(spec.shape, value.shape, strict=True)
        )
        if str(value.dtype) != spec.dtype or not dims_ok:
            raise CalibrationError(
                f"{what} input '{spec.name}' ({where}) is {got}; the model expects {expected} "
                "per sample (npz arrays: the sample axis first, then the input's dims)"
            )


def read_labels(source) -> np.ndarray:
    """``--labels``: an integer array, an .npy, or an .npz with a ``labels`` key."""
    if isinstance(source, np.ndarray | list | tuple):
        labels = np.asarray(source)
    else:
        path = Path(source)
        try:
            loaded = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise CalibrationError(f"labels file '{path}' does not exist") from None
        except (OSError, ValueError, EOFError):
            raise CalibrationError(f"labels file '{path}' is not a readable .npy or .npz") from None
        if isinstance(loaded, np.ndarray):
            labels = loaded
        else:
            with loaded:
                if LABELS not in loaded.files:
                    raise CalibrationError(f"labels file '{path}' has no key '{LABELS}'")
                labels = loaded[LABELS]
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise CalibrationError(
            f"labels are {labels.dtype}{list(labels.shape)}: give a 1-D array of integer class "
            "indices, one per validation sample"
        )
    return labels


def with_labels(samples: Samples, labels: np.ndarray) -> Samples:
    """``samples`` labelled by ``labels`` (one per sample), replacing any they had."""
    if len(labels) != len(samples):
        raise CalibrationError(
            f"{len(labels)} labels for {len(samples)} samples of {samples.origin}; give one "
            "class index per sample"
        )
    return Samples(samples.feeds, [np.atleast_1d(x) for x in labels], samples.origin)


def split(samples: Samples) -> tuple[Samples, Samples]:
    """The first four fifths calibrate, the last fifth (at least one sample) validates."""
    n = len(samples)
    if n < 2:
        raise CalibrationError(
            f"the calibration set from {samples.origin} has {n} sample: too few to hold back a "
            "validation part; give more samples or pass --validation DATA"
        )
    held = max(1, round(n * HELD_BACK))
    cut = n - held
    labels = samples.labels
    calib = Samples(samples.feeds[:cut], labels and labels[:cut], samples.origin)
    valid = Samples(
        samples.feeds[cut:],
        labels and labels[cut:],
        f"the last {held} of {n} samples of {samples.origin} (held back from calibration)",
    )
    return calib, valid


def batches(samples: Samples, specs: list[TensorSpec], rows: int = BATCH_ROWS) -> list[dict]:
    """The samples' feeds joined ``rows`` at a time along axis 0 when every input's axis 0 is
    the same symbolic batch dim (fewer, larger runs; the same values row for row), else as
    they are."""
    dims = {s.shape[0] if s.shape else None for s in specs}
    if len(dims) != 1 or not isinstance(next(iter(dims)), str):
        return list(samples.feeds)
    joined = []
    for start in range(0, len(samples.feeds), rows):
        group = samples.feeds[start : start + rows]
        joined.append({s.name: np.concatenate([f[s.name] for f in group]) for s in specs})
    return joined
