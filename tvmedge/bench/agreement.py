"""Numeric agreement of two sets of outputs: errors per output, top-1 where it means something."""

from __future__ import annotations

import numpy as np

# Agreement means max|a - b| <= atol + rtol * max|b| for every output.
DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 1e-5


def _is_class_vector(shape: tuple[int, ...]) -> bool:
    """[N, C] or [N, C, 1, 1] with C > 1: a per-sample score vector."""
    return len(shape) >= 2 and shape[1] > 1 and all(d == 1 for d in shape[2:])


def compare(
    names: list[str],
    ours: list[np.ndarray],
    ref: list[np.ndarray],
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    steps: dict[str, float] | None = None,
) -> list[dict]:
    """``steps``: quantized outputs (name -> one quantization step, export.quant_steps) may
    differ by up to one step: int8 requantization rounds ties differently."""
    steps = steps or {}
    rows = []
    for name, a, b in zip(names, ours, ref, strict=True):
        row = {"output": name, "shape": list(b.shape), "dtype": str(b.dtype)}
        if a.shape != b.shape:
            rows.append({**row, "ok": False, "error": f"shape {list(a.shape)} != {list(b.shape)}"})
            continue
        if b.dtype.kind not in "fc":
            step = int(steps.get(name, 0))
            mismatches = int(
                np.count_nonzero(np.abs(a.astype(np.int64) - b.astype(np.int64)) > step)
            )
            rows.append({**row, "ok": mismatches == 0, "mismatches": mismatches})
            continue
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        diff = np.abs(a64 - b64)
        scale = float(np.abs(b64).max()) if b64.size else 0.0
        max_abs = float(diff.max()) if diff.size else 0.0
        # Relative error per element, floored at 0.1% of the output's scale so that
        # near-zero reference values do not turn rounding noise into huge ratios.
        floor = max(scale * 1e-3, np.finfo(np.float32).tiny)
        max_rel = float((diff / np.maximum(np.abs(b64), floor)).max()) if diff.size else 0.0
        row.update(
            max_abs=max_abs,
            max_rel=max_rel,
            ref_scale=scale,
            ok=bool(
                np.isfinite(a64).all()
                and max_abs <= max(atol + rtol * scale, steps.get(name, 0.0) * (1 + rtol))
            ),
        )
        if _is_class_vector(b.shape):
            top_a = a64.reshape(b.shape[0], -1).argmax(axis=1)
            top_b = b64.reshape(b.shape[0], -1).argmax(axis=1)
            row["top1_agreement"] = float(np.mean(top_a == top_b))
        rows.append(row)
    return rows
