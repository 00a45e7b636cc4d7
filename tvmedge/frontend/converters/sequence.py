"""ONNX SequenceInsert and SplitToSequence where TVM's converters get them wrong.

Sequences are Relax tuples fixed at import time, as in TVM's importer; these two converters
replace TVM's:

- SequenceInsert: a negative position p inserts at p + n, as the spec and ONNX Runtime do
  (TVM inserts at p + n + 1, one place late: ``test_sequence_model3``).
- SplitToSequence: TVM returns Relax's ``split`` call rather than a tuple, so SequenceLength
  cannot count it (``test_sequence_model6``); it splits a scalar ``split`` into equal parts
  instead of chunks of that size with a shorter last one; and it rejects a ``split`` computed
  at run time (``test_sequence_model8``), which only needs its length known to fix the count.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax, tirx
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from tvmedge.frontend.converters import register

_op = relax.op


def _constant(expr: relax.Expr | None) -> np.ndarray | None:
    return expr.value.numpy() if isinstance(expr, tvm.ir.GenericConst) else None


@register("SequenceInsert")
class SequenceInsert(OnnxOpConverter):
    """Insert a tensor at a constant position in [-n, n] (default: append)."""

    @classmethod
    def _impl_v11(cls, bb, inputs, attr, params):
        sequence, tensor = list(inputs[0]), inputs[1]
        given = inputs[2] if len(inputs) > 2 else None
        position = len(sequence) if given is None else _constant(given)
        if position is None:
            raise tvm.error.OpNotImplemented(
                "SequenceInsert: the position must be a constant (sequences are fixed when the "
                "model is compiled)"
            )
        position = int(position)
        if not -len(sequence) <= position <= len(sequence):
            raise tvm.error.OpAttributeInvalid(
                f"SequenceInsert: position {position} is outside [-{len(sequence)}, "
                f"{len(sequence)}]"
            )
        sequence.insert(position + len(sequence) if position < 0 else position, tensor)
        return relax.Tuple(sequence)


@register("SplitToSequence")
class SplitToSequence(OnnxOpConverter):
    """Split along ``axis`` into a tuple: size-1 parts (squeezed unless ``keepdims``), chunks
    of a scalar ``split`` (the last may be shorter), or parts of a 1-D ``split``'s lengths."""

    @classmethod
    def _impl_v11(cls, bb, inputs, attr, params):
        x = inputs[0]
        ndim = len(x.ty.shape.values)
        axis = int(attr.get("axis", 0)) % ndim
        split = inputs[1] if len(inputs) > 1 else None
        values = _constant(split)
        if split is not None and values is None:
            return relax.Tuple(_split_at_run_time(bb, x, split, axis))
        if values is None or values.ndim == 0:
            size = x.ty.shape.values[axis]
            if not isinstance(size, tirx.IntImm):
                raise tvm.error.OpNotImplemented(
                    "SplitToSequence: splitting into chunks needs a static size on the split "
                    "axis (the number of parts fixes the sequence's length)"
                )
            chunk = 1 if values is None else int(values)
            sizes = [min(chunk, int(size) - start) for start in range(0, int(size), chunk)]
        else:
            sizes = [int(v) for v in values]
        parts = _split_static(bb, x, sizes, axis)
        if split is None and not int(attr.get("keepdims", 1)):  # keepdims only without split
            parts = [bb.emit(_op.squeeze(p, [axis])) for p in parts]
        return relax.Tuple(parts)


def _split_static(bb, x: relax.Expr, sizes: list[int], axis: int) -> list[relax.Expr]:
    if len(sizes) == 1:  # Relax's split then returns the tensor itself, not a 1-tuple
        return [x]
    parts = bb.emit(_op.split(x, np.cumsum(sizes)[:-1].tolist(), axis))
    return [bb.emit(relax.TupleGetItem(parts, i)) for i in range(len(sizes))]


def _split_at_run_time(bb, x: relax.Expr, split: relax.Expr, axis: int) -> list[relax.Expr]:
    """One slice per entry of a run-time 1-D ``split``, whose length must be static.

    The running sums of ``split`` become symbolic bounds e1, e2, ... (bound at run time) and
    part k is x[e(k-1):e(k)] on ``axis``. ``dynamic_strided_slice`` would express it directly,
    but TVM 0.27's FoldConstant leaves a dangling ``shape_func`` behind for it and the build
    fails, so strided_slice with symbolic bounds it is.
    """
    length = split.ty.shape.values[0] if split.ty.shape is not None else None
    if not isinstance(length, tirx.IntImm):
        raise tvm.error.OpNotImplemented(
            "SplitToSequence: a run-time split needs a static length (the sequence's length)"
        )
    ends = bb.emit(_op.cumsum(split, axis=0, dtype="int64"))
    bounds = [tirx.Var(f"split_end{k}", "int64") for k in range(int(length))]
    bb.match_cast(bb.emit(_op.tensor_to_shape(ends)), relax.ShapeType(bounds))
    starts = [tirx.IntImm("int64", 0), *bounds[:-1]]
    return [
        bb.emit(_op.strided_slice(x, [axis], [begin], [end], assume_inbound=False))
        for begin, end in zip(starts, bounds, strict=True)
    ]
