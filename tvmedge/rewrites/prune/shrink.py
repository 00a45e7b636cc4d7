"""Shrink channels: remove the all-zero output channels of constant-weight convolutions and
dense layers, and everything that depends on them (tvmedge.rewrites.prune.graph decides which).

Exact: a removed channel is a constant image, and each consumer convolution or dense layer
adds what it contributed (a per-channel bias, or a per-position one where zero padding makes
the borders differ). Producers lose weight rows, channel-wise constants (biases, scales) lose
entries, depthwise convolutions lose groups, splits move their points and a flatten into a
dense layer loses each channel's columns.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from tvmedge.rewrites.prune.channels import split_bounds
from tvmedge.rewrites.prune.cost import cost
from tvmedge.rewrites.prune.graph import ChannelGraph


def _const(array: np.ndarray, dtype: str) -> relax.Constant:
    return relax.const(np.ascontiguousarray(array).astype(dtype))


@mutator
class _Shrink(PyExprMutator):
    def __init__(self, mod: tvm.IRModule, graph: ChannelGraph):
        super().__init__(mod)
        self.graph = graph

    def visit_var_binding_(self, binding) -> None:
        role = self.graph.roles.get(binding.var)
        rewrite = getattr(self, f"_{role}", None) if role else None
        value = rewrite(binding.var, binding.value) if rewrite else None
        if value is None:
            super().visit_var_binding_(binding)
            return
        # Emitted here, not by the base class: it would keep the old var (and its old shape)
        # for a value whose arguments its visit leaves unchanged.
        value = self.builder_.normalize(self.visit_expr(value))
        var = binding.var
        emit = (
            self.builder_.emit if isinstance(var, relax.DataflowVar) else self.builder_.emit_output
        )
        self.set_var_remap(var, emit(value, var.name))

    def _kept_in(self, var) -> np.ndarray | slice:
        data = self.graph.consumers.get(var)
        return slice(None) if data is None else self.graph.kept(data)

    def _with_contribution(self, var, call: relax.Call, kept_out) -> relax.Expr:
        extra = self.graph.contribution(var)
        if extra is None:
            return call
        extra = np.take(extra, kept_out, axis=self.graph.chans[var].axis)
        inner = self.builder_.emit(call)
        return relax.op.add(inner, _const(extra, str(call.ty.dtype)))

    def _conv(self, var, call):
        w = self.graph.weights[var]
        kept = self.graph.kept(var)
        weight = _const(w[kept][:, self._kept_in(var)], str(call.args[1].ty.dtype))
        new = relax.Call(call.op, [self.visit_expr(call.args[0]), weight], call.attrs)
        return self._with_contribution(var, new, kept)

    def _grouped(self, var, call):
        kept = self.graph.kept(var)
        weight = _const(self.graph.weights[var][kept], str(call.args[1].ty.dtype))
        return relax.Call(call.op, [self.visit_expr(call.args[0]), weight], call.attrs)

    def _depthwise(self, var, call):
        kept = self.graph.kept(var)
        a = call.attrs
        conv = relax.op.nn.conv2d if call.op.name == "relax.nn.conv2d" else relax.op.nn.conv1d
        return conv(
            self.visit_expr(call.args[0]),
            _const(self.graph.weights[var][kept], str(call.args[1].ty.dtype)),
            strides=a.strides,
            padding=a.padding,
            dilation=a.dilation,
            groups=len(kept),
            data_layout=a.data_layout,
            kernel_layout=a.kernel_layout,
            out_layout=a.out_layout,
            out_dtype=a.out_dtype,
        )

    def _transpose(self, var, call):
        kept = self.graph.kept(var)
        w = self.graph.weights[var][self._kept_in(var)][:, kept]
        weight = _const(w, str(call.args[1].ty.dtype))
        new = relax.Call(call.op, [self.visit_expr(call.args[0]), weight], call.attrs)
        return self._with_contribution(var, new, kept)

    def _dense(self, var, call):
        kept = self.graph.kept(var)
        w = self.graph.weights[var][self._kept_in(var)][:, kept]
        weight = _const(w, str(call.args[1].ty.dtype))
        new = relax.Call(call.op, [self.visit_expr(call.args[0]), weight], call.attrs)
        return self._with_contribution(var, new, kept)

    def _channelwise(self, var, call):
        """Per-channel constants (a bias, a scale) lose the removed channels' entries."""
        ch = self.graph.chans[var]
        kept = self.graph.kept(var)
        if len(kept) == len(ch.slots):
            return None
        rank = ch.value.ndim
        args = []
        for arg in call.args:
            if isinstance(arg, tvm.ir.GenericConst) and arg.value.numpy().ndim:
                value = arg.value.numpy()
                aligned = ch.axis - (rank - value.ndim)
                if aligned >= 0 and value.shape[aligned] == len(ch.slots):
                    arg = relax.const(np.ascontiguousarray(np.take(value, kept, axis=aligned)))
            args.append(arg)
        return relax.Call(call.op, args, call.attrs)

    def _split(self, var, call):
        data = call.args[0]
        n = len(self.graph.chans[data].slots)
        kept = self.graph.kept(data)
        bounds = split_bounds(call.attrs.indices_or_sections, n)
        new_bounds = [int(np.sum(kept < b)) for b in bounds]
        if new_bounds == bounds:
            return None
        return relax.op.split(self.visit_expr(data), new_bounds, axis=call.attrs.axis)

    def _flatten(self, var, call):
        kept = self.graph.kept(var)
        dims = call.ty.shape.values
        if len(kept) == int(dims[1]):
            return None
        shape = relax.ShapeExpr([dims[0], len(kept)])
        return relax.op.reshape(self.visit_expr(call.args[0]), shape)


_AXIS = {
    "relax.nn.conv2d": 0,
    "relax.nn.conv1d": 0,
    "relax.nn.conv2d_transpose": 1,
    "relax.matmul": 1,
}


def has_zero_filters(func: relax.Function) -> bool:
    """Whether a constant weight of a conv or matmul in ``func`` has an all-zero filter."""
    found = []

    def visit(expr):
        axis = _AXIS.get(getattr(getattr(expr, "op", None), "name", ""))
        if found or axis is None or not isinstance(expr, relax.Call) or len(expr.args) < 2:
            return
        weight = expr.args[1]
        if isinstance(weight, tvm.ir.GenericConst) and weight.value.numpy().ndim > axis:
            w = np.moveaxis(weight.value.numpy(), axis, 0)
            if w.size and not np.all(np.any(w.reshape(w.shape[0], -1) != 0, axis=1)):
                found.append(expr)

    relax.analysis.post_order_visit(func.body, visit)
    return bool(found)


def _layers(graph: ChannelGraph) -> tuple[dict, int, int]:
    """Per producer (``op#k`` in graph order): channels before and after, zero filters found
    and zero filters kept (coupled to a channel that is not constant, or leaving the graph)."""
    layers, counts, found, kept_zero = {}, {}, 0, 0
    for var, zero in graph.zero.items():
        op = graph.values[var].op.name.removeprefix("relax.nn.").removeprefix("relax.")
        index = counts.get(op, 0)
        counts[op] = index + 1
        kept = graph.kept(var)
        stays = int(np.sum(zero[kept]))
        found += int(zero.sum())
        kept_zero += stays
        if zero.any() or len(kept) < len(zero):
            layers[f"{op}#{index}"] = {
                "weight": list(graph.weights[var].shape),
                "channels": [len(zero), len(kept)],
                "zero_filters": int(zero.sum()),
                "zero_kept": stays,
            }
    return layers, found, kept_zero


def shrink_channels(report: dict, round_to: int = 1) -> tvm.transform.Pass:
    """The pass; it fills ``report`` with the layers shrunk, parameters and MACs before and
    after, and the zero filters it had to keep. ``round_to``: every producer keeps a multiple
    of this many channels (or all), so its kernels tile whole vectors."""

    @tvm.transform.module_pass(opt_level=0, name="tvmedge.ShrinkChannels")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        before = cost(mod)
        layers, found, kept_zero, folded = {}, 0, 0, 0
        for gvar, func in list(mod.functions.items()):
            if not isinstance(func, relax.Function) or not has_zero_filters(func):
                continue  # the common case, a model nobody pruned: nothing to analyse
            graph = ChannelGraph(func, round_to)
            if not graph.zero:
                continue
            found_layers, f, k = _layers(graph)
            layers.update({f"{gvar.name_hint}/{n}": v for n, v in found_layers.items()})
            found, kept_zero = found + f, kept_zero + k
            if not any(len(graph.kept(v)) < len(ch.slots) for v, ch in graph.chans.items()):
                continue  # nothing removed
            folded += sum(isinstance(graph.contribution(v), np.ndarray) for v in graph.consumers)
            shrink = _Shrink(mod, graph)
            shrink.builder_.update_func(gvar, shrink.visit_expr(func))
            mod = shrink.builder_.get()
        after = cost(mod)
        report.update(
            {
                "layers": {
                    k: v
                    for k, v in layers.items()
                    if v["channels"][0] != v["channels"][1] or v["zero_kept"]
                },
                "zero_filters": found,
                "zero_kept": kept_zero,
                "constants_folded": folded,
                "params": [before["params"], after["params"]],
                "macs": [before["macs"], after["macs"]],
                "constants": [before["constants"], after["constants"]],
            }
        )
        return mod

    return _pass
