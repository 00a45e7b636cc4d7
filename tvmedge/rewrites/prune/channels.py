"""The channel axis of a tracked tensor, and the shape helpers the channel graph shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax, tirx


@dataclass
class Channels:
    """The channel axis of one tensor: a slot per channel, which channels are constant images
    (independent of the inputs) and their values (float64, batch 1, broadcastable)."""

    axis: int
    slots: list[int]
    mask: np.ndarray
    value: np.ndarray

    def __post_init__(self):
        shape = [1] * self.value.ndim
        shape[self.axis] = len(self.slots)
        self.value = np.where(self.mask.reshape(shape), self.value, 0.0)


def op_name(expr) -> str:
    if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
        return expr.op.name
    return ""


def static_shape(expr) -> list[int | None] | None:
    """Dims of a tensor expression, None for a symbolic one; None when the rank is unknown."""
    shape = getattr(expr.ty, "shape", None)
    if shape is None or not isinstance(shape, relax.ShapeExpr):
        return None
    return [int(d) if isinstance(d, tirx.IntImm) else None for d in shape.values]


def uniform(value: np.ndarray, axis: int) -> bool:
    return all(d == 1 for i, d in enumerate(value.shape) if i != axis)


def materialize(value: np.ndarray, shape) -> np.ndarray | None:
    """``value`` at the full non-batch shape, or None when a dim it varies over is symbolic."""
    if shape is None or any(d is None for d in shape[1:]):
        return None
    return np.broadcast_to(value, (1, *shape[1:]))


def split_bounds(indices_or_sections, n: int) -> list[int]:
    """The split points of relax.split along an axis of ``n``."""
    if isinstance(indices_or_sections, tirx.IntImm | int):
        sections = int(indices_or_sections)
        return [n // sections * i for i in range(1, sections)]
    return [int(i) for i in indices_or_sections]
