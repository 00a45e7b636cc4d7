"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (training losses that exported
evaluation graphs keep), which TVM's importer does not convert.

Per the ONNX spec, for input (N, C, d1, ...) and integer target (N, d1, ...):
``loss[n, d] = -input[n, target[n, d], d] * w[n, d]``, ``w = weight[target]`` (1 without a
weight) and 0 where ``target == ignore_index``; reduction ``none`` keeps that tensor, ``sum``
sums it and ``mean`` divides the sum by ``sum(w)`` (the weighted count of the kept elements).
SoftmaxCrossEntropyLoss is that loss of ``log_softmax(scores, axis=1)``, which it can also
return. Targets are clamped to [0, C) before they index anything, so an ignored target outside
the classes (ignore_index -1 or C) reads memory in bounds; its loss is zeroed all the same.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register


def _reduction(attr: dict) -> str:
    reduction = attr.get("reduction", b"mean")
    reduction = reduction.decode() if isinstance(reduction, bytes) else str(reduction)
    if reduction not in ("none", "sum", "mean"):
        raise ValueError(f"reduction '{reduction}' is not one of none, sum, mean")
    return reduction


def _classes(scores: relax.Expr) -> int:
    shape = scores.ty.shape
    if shape is None or len(shape.values) < 2:
        raise ValueError("the loss input must have a known rank of 2 or more: (N, C, ...)")
    classes = shape.values[1]
    if not isinstance(classes, tvm.tirx.IntImm):
        raise ValueError(
            f"the number of classes (input dim 1) is symbolic ({classes}); bind it with "
            "--input-shape"
        )
    return int(classes)


def nll_loss(bb, log_prob, target, weight, attr) -> relax.Expr:
    """The loss of ``log_prob`` (N, C, ...) at the classes ``target`` (N, ...), in Relax."""
    reduction = _reduction(attr)
    last = relax.const(_classes(log_prob) - 1, target.ty.dtype)
    index = relax.op.maximum(target, relax.const(0, target.ty.dtype))
    index = bb.emit(relax.op.minimum(index, last))
    picked = relax.op.gather_elements(log_prob, relax.op.expand_dims(index, 1), axis=1)
    picked = bb.emit(relax.op.squeeze(picked, [1]))
    w = relax.op.ones_like(picked) if weight is None else relax.op.take(weight, index, axis=0)
    if "ignore_index" in attr:
        kept = relax.op.not_equal(target, relax.const(attr["ignore_index"], target.ty.dtype))
        w = relax.op.where(kept, w, relax.op.zeros_like(w))
    w = bb.emit(w)
    loss = bb.emit(relax.op.negative(relax.op.multiply(picked, w)))
    if reduction == "none":
        return loss
    total = bb.emit(relax.op.sum(loss))
    if reduction == "sum":
        return total
    return relax.op.divide(total, relax.op.sum(w))


@register("NegativeLogLikelihoodLoss")
class NegativeLogLikelihoodLoss(onnx_frontend.OnnxOpConverter):
    """Opsets 12, 13 and 22 (the later ones only widened the types)."""

    @classmethod
    def _impl_v12(cls, bb, inputs, attr, params):
        weight = inputs[2] if len(inputs) > 2 else None
        return nll_loss(bb, inputs[0], inputs[1], weight, attr)

    _impl_v13 = _impl_v22 = _impl_v12


@register("SoftmaxCrossEntropyLoss")
class SoftmaxCrossEntropyLoss(onnx_frontend.OnnxOpConverter):
    """(loss, log_prob): the importer binds the outputs the node names, one or both."""

    @classmethod
    def _impl_v12(cls, bb, inputs, attr, params):
        log_prob = bb.emit(relax.op.nn.log_softmax(inputs[0], axis=1))
        weight = inputs[2] if len(inputs) > 2 else None
        loss = bb.emit(nll_loss(bb, log_prob, inputs[1], weight, attr))
        return relax.Tuple([loss, log_prob])

    _impl_v13 = _impl_v12
