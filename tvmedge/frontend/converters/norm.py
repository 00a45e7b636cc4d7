"""Normalizations whose TVM conversion gave wrong secondary outputs (LayerNormalization,
BatchNormalization in training mode).

- LayerNormalization: TVM returned its optional ``Mean`` and ``InvStdDev`` outputs as float32
  scalar placeholders (shape [] where ONNX gives the input's shape with the normalized axes
  kept as 1). They are the mean and 1/sqrt(variance + epsilon) over the normalized axes, in
  the stash type (float32 unless ``stash_type`` says otherwise). ``Y`` stays TVM's
  ``layer_norm``; when the other outputs are unused, their reductions are dead code.
- BatchNormalization with ``training_mode=1``: TVM's ``relax.nn.batch_norm(training=True)``
  gave ``Y`` off by up to 6 and running statistics with PyTorch's momentum convention. ONNX
  normalizes with the batch's own mean and (population) variance over every axis but 1, and
  returns ``running = input * momentum + batch * (1 - momentum)`` for mean and variance.
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register

_STASH_DTYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}


def _rank(expr: relax.Expr) -> int:
    return int(expr.ty.ndim)


def _mean_and_var(bb, x: relax.Expr, axes: list[int]) -> tuple[relax.Expr, relax.Expr]:
    """Mean and population variance of ``x`` over ``axes``, both with the axes kept."""
    mean = bb.normalize(relax.op.mean(x, axis=axes, keepdims=True))
    centred = bb.normalize(relax.op.subtract(x, mean))
    var = relax.op.mean(relax.op.multiply(centred, centred), axis=axes, keepdims=True)
    return mean, bb.normalize(var)


@register("LayerNormalization")
class LayerNormalization(onnx_frontend.LayerNormalization):
    """Y from TVM's layer_norm; Mean and InvStdDev computed, shaped as ONNX says."""

    @classmethod
    def _impl_v17(cls, bb, inputs, attr, params):
        x = inputs[0]
        rank = _rank(x)
        axis = int(attr.get("axis", -1))
        axis = axis + rank if axis < 0 else axis
        epsilon = float(attr.get("epsilon", 1e-5))
        stash = int(attr.get("stash_type", 1))
        if stash not in _STASH_DTYPES:
            raise ValueError(f"LayerNormalization stash_type {stash} is not a float type")
        y = bb.normalize(
            relax.TupleGetItem(
                bb.normalize(onnx_frontend.LayerNormalization._impl_v17(bb, inputs, attr, params)),
                0,
            )
        )
        xs = (
            x
            if str(x.ty.dtype) == _STASH_DTYPES[stash]
            else relax.op.astype(x, _STASH_DTYPES[stash])
        )
        mean, var = _mean_and_var(bb, bb.normalize(xs), list(range(axis, rank)))
        eps = relax.const(epsilon, _STASH_DTYPES[stash])
        inv_std = relax.op.rsqrt(relax.op.add(var, eps))
        return relax.Tuple([y, mean, bb.normalize(inv_std)])


@register("BatchNormalization")
class BatchNormalization(onnx_frontend.BatchNormalization):
    """Inference mode: TVM's converter. Training mode (opset 14+): the batch's statistics."""

    @classmethod
    def _impl_v15(cls, bb, inputs, attr, params):
        if not attr.get("training_mode", 0):
            return onnx_frontend.BatchNormalization._impl_v15(bb, inputs, attr, params)
        x, scale, bias, mean_in, var_in = inputs[:5]
        dtype = x.ty.dtype
        if not all(e.ty.dtype == dtype for e in (scale, bias, mean_in, var_in)):
            raise NotImplementedError(
                "BatchNormalization training_mode=1 with inputs of mixed dtypes is not "
                "supported; give X, scale, B, input_mean and input_var one float dtype"
            )
        epsilon = float(attr.get("epsilon", 1e-5))
        momentum = float(attr.get("momentum", 0.9))
        rank = _rank(x)
        axes = [a for a in range(rank) if a != 1]
        mean, var = _mean_and_var(bb, x, axes)
        per_channel = [1, -1] + [1] * (rank - 2)

        def channel(v: relax.Expr) -> relax.Expr:
            return relax.op.reshape(v, per_channel)

        inv_std = relax.op.rsqrt(relax.op.add(var, relax.const(epsilon, dtype)))
        y = relax.op.multiply(relax.op.subtract(x, mean), inv_std)
        y = relax.op.add(relax.op.multiply(y, channel(scale)), channel(bias))

        def running(old: relax.Expr, batch: relax.Expr) -> relax.Expr:
            batch = relax.op.squeeze(batch, axes)
            keep = relax.op.multiply(old, relax.const(momentum, dtype))
            return relax.op.add(keep, relax.op.multiply(batch, relax.const(1 - momentum, dtype)))

        return relax.Tuple([bb.normalize(y), running(mean_in, mean), running(var_in, var)])

    _impl_v14 = _impl_v15
