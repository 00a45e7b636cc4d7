"""Channels-last (NHWC data, HWIO weights) convolutions through Relax's ConvertLayout.

ConvertLayout needs constant weights (it crashes on a conv whose weight is computed, which is
what BatchNorm folding leaves until ``fold_weights`` runs) and has gaps of its own: a module it
cannot convert keeps its layout, with a warning on stderr naming TVM's reason, instead of failing
the build. Modules without a conv2d are left alone.

Relax's ``nn.pad`` has no layout rule, so ConvertLayout leaves the explicit pad of an integer
conv (tvmedge.rewrites.int8: padded with the activation's zero point) in NCHW between two
transposes; :func:`pads_follow` then pads channels-last and the transposes cancel.
"""

from __future__ import annotations

import sys

import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from tvmedge.rewrites.mutate import rewrite_functions

DESIRED = {"relax.nn.conv2d": ["NHWC", "HWIO"]}


def _has_conv2d(mod: tvm.IRModule) -> bool:
    found = []

    def visit(expr):
        if isinstance(expr, relax.Call) and getattr(expr.op, "name", "") == "relax.nn.conv2d":
            found.append(expr)

    for func in mod.functions.values():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func.body, visit)
    return bool(found)


@tvm.transform.module_pass(opt_level=0, name="tvmedge.ChannelsLast")
def channels_last(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
    if not _has_conv2d(mod):
        return mod
    try:
        converted = relax.transform.ConvertLayout(DESIRED)(mod)
    except Exception as e:  # TVM raises builtin types from C++ (IndexError, TypeError, ...)
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        print(
            f"tvmedge: warning: kept NCHW convolutions (TVM's layout conversion failed: "
            f"{reason}); the build is correct but slower",
            file=sys.stderr,
        )
        return mod
    return relax.transform.DeadCodeElimination()(
        rewrite_functions(_PadsFollow(converted), converted)
    )


_TO_NHWC, _TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


def _call(expr, name: str):
    return isinstance(expr, relax.Call) and getattr(expr.op, "name", "") == name


def _axes(expr) -> list[int] | None:
    if not _call(expr, "relax.permute_dims") or expr.attrs.axes is None:
        return None
    return [int(a) for a in expr.attrs.axes]


@mutator
class _PadsFollow(PyExprMutator):
    """permute_dims(nn.pad(x), NCHW -> NHWC) -> nn.pad(x'), the widths permuted, where x' is
    x's own NHWC source when x is a transpose back from NHWC, else x transposed."""

    def _bound(self, expr):
        return self.lookup_binding(expr) if isinstance(expr, relax.Var) else expr

    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        pad = self._bound(call.args[0]) if _axes(call) == _TO_NHWC else None
        if not _call(pad, "relax.nn.pad") or str(pad.attrs.pad_mode) != "constant":
            return call
        widths = [int(w) for w in pad.attrs.pad_width]
        if len(widths) != 8:
            return call
        data = pad.args[0]
        source = self._bound(data)
        if _axes(source) == _TO_NCHW:
            data = source.args[0]
        else:
            data = self.builder_.emit(relax.op.permute_dims(data, _TO_NHWC))
        nhwc = [widths[2 * axis + side] for axis in _TO_NHWC for side in (0, 1)]
        return relax.op.nn.pad(data, nhwc, pad_value=float(pad.attrs.pad_value))
