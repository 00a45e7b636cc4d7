"""ONNX LSTM, GRU and RNN, unrolled over a static sequence length into plain Relax ops.

The three share one skeleton, :class:`_Recurrence`; a converter only supplies its cell's step.
Every tensor carries ``num_directions`` as its leading axis and the reverse direction reads a
time-flipped copy of X, so both directions of a bidirectional node advance in the same ops
(one batched matmul per step). X·W^T for all steps is one matmul before the loop. The batch
dimension may stay symbolic; the sequence length must be static.

Supported: every direction, optional B / sequence_lens / initial_h / initial_c / P inputs,
any subset of the outputs, ``layout`` 0 and 1, ``clip``, ``activations`` with
``activation_alpha`` / ``activation_beta``, GRU ``linear_before_reset``, LSTM ``input_forget``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax, tirx
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

from tvmedge.frontend.converters import register

Expr = relax.Expr
_op = relax.op

# Activation name (lower case, as ONNX Runtime matches them) -> default (alpha, beta); None
# means the function takes no such value. _REQUIRED: ONNX gives no default that ONNX Runtime
# agrees with (ThresholdedRelu: ONNX 1.0, ORT 0.0; Affine and ScaledTanh have no ONNX op to
# take one from), so the model must list the value rather than tvmedge silently picking a side.
_REQUIRED = object()
_ACTIVATIONS: dict[str, tuple[object, object]] = {
    "sigmoid": (None, None),
    "tanh": (None, None),
    "relu": (None, None),
    "softsign": (None, None),
    "softplus": (None, None),
    "leakyrelu": (0.01, None),
    "elu": (1.0, None),
    "hardsigmoid": (0.2, 0.5),
    "thresholdedrelu": (_REQUIRED, None),
    "affine": (_REQUIRED, _REQUIRED),
    "scaledtanh": (_REQUIRED, _REQUIRED),
}


@dataclass(frozen=True)
class _Activation:
    """One activation function of the RNN family with its alpha / beta bound."""

    name: str
    alpha: float | None = None
    beta: float | None = None

    def __call__(self, x: Expr, dtype: str) -> Expr:
        a = None if self.alpha is None else relax.const(self.alpha, dtype)
        b = None if self.beta is None else relax.const(self.beta, dtype)
        zero, one = relax.const(0.0, dtype), relax.const(1.0, dtype)
        match self.name:
            case "sigmoid":
                return _op.sigmoid(x)
            case "tanh":
                return _op.tanh(x)
            case "relu":
                return _op.nn.relu(x)
            case "softsign":
                return x / (_op.abs(x) + one)
            case "softplus":
                return _op.nn.softplus(x)
            case "leakyrelu":
                return _op.nn.leakyrelu(x, self.alpha)
            case "elu":
                return _op.where(_op.greater_equal(x, zero), x, a * (_op.exp(x) - one))
            case "hardsigmoid":
                return _op.clip(a * x + b, 0.0, 1.0)
            case "thresholdedrelu":
                return _op.where(_op.greater(x, a), x, zero)
            case "affine":
                return a * x + b
            case "scaledtanh":
                return a * _op.tanh(b * x)
        raise AssertionError(f"no activation {self.name}")  # parse() rejects unknown names


def _parse_activations(where: str, attr: dict, defaults: tuple[str, ...], num_dirs: int):
    """The cell's activations for each direction.

    alpha / beta values are consumed in order, one per function that takes one, as ONNX
    Runtime reads them; a function left without one gets its ONNX default.
    """
    names = [_text(n).lower() for n in attr.get("activations", defaults * num_dirs)]
    if len(names) != len(defaults) * num_dirs:
        raise tvm.error.OpAttributeInvalid(
            f"{where}: 'activations' lists {len(names)} functions, expected "
            f"{len(defaults) * num_dirs} ({len(defaults)} per direction)"
        )
    given = (list(attr.get("activation_alpha", ())), list(attr.get("activation_beta", ())))
    acts = []
    for name in names:
        if name not in _ACTIVATIONS:
            raise tvm.error.OpAttributeUnImplemented(
                f"{where}: activation '{name}' is not supported; supported: "
                + ", ".join(sorted(_ACTIVATIONS))
            )
        values = []
        for default, queue, attr_name in zip(
            _ACTIVATIONS[name], given, ("activation_alpha", "activation_beta"), strict=True
        ):
            value = default if default is None or not queue else float(queue.pop(0))
            if value is _REQUIRED:
                raise tvm.error.OpAttributeUnImplemented(
                    f"{where}: activation '{name}' needs an explicit value in {attr_name} "
                    "(ONNX defines no default that ONNX Runtime follows)"
                )
            values.append(value)
        acts.append(_Activation(name, *values))
    per = len(defaults)
    return [tuple(acts[d * per : (d + 1) * per]) for d in range(num_dirs)]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _split(bb, x: Expr, sections: int | list[int], axis: int) -> list[Expr]:
    """``sections`` equal parts of ``x`` (or parts cut at the given indices) along ``axis``.

    Each part is a strided slice, not an output of one split: a slice fuses into the kernel
    that consumes it (a gate's activation), where a split is a kernel of its own per time
    step, copying every gate."""
    if sections == 1:  # Relax's split then returns the tensor itself, not a 1-tuple
        return [x]
    x = bb.normalize(x)
    size = x.ty.shape.values[axis]
    if not isinstance(size, tirx.IntImm):
        parts = bb.emit(_op.split(x, sections, axis))
        return [bb.emit(relax.TupleGetItem(parts, i)) for i in range(len(parts.ty.fields))]
    if isinstance(sections, int):
        step = int(size) // sections
        bounds = [i * step for i in range(sections + 1)]
    else:
        bounds = [0, *(int(i) for i in sections), int(size)]
    return [
        bb.emit(_op.strided_slice(x, axes=[axis], begin=[lo], end=[hi]))
        for lo, hi in itertools.pairwise(bounds)
    ]


_DIRECTIONS = {"forward": (False,), "reverse": (True,), "bidirectional": (False, True)}


@dataclass
class _Recurrence:
    """One ONNX recurrent node, parsed; all tensors time-major, directions on the lead axis."""

    bb: relax.BlockBuilder
    where: str  # "LSTM node 'name'", for messages
    reverse: tuple[bool, ...]  # per direction
    layout: int
    x: Expr  # [T, B, I]
    w: Expr  # [D, G*H, I]
    r: Expr  # [D, G*H, H]
    bias: tuple[Expr, Expr] | None  # (Wb, Rb), [D, G*H] each
    seq_lens: Expr | None  # [B]
    acts: list[tuple[_Activation, ...]]  # per direction
    clip: float | None

    @classmethod
    def parse(cls, bb, op: str, inputs, attr: dict, activations: tuple[str, ...]):
        """Read the inputs and attributes every member of the family shares."""
        name = attr["tvm_custom"]["name"]
        where = f"{op} node '{name}'" if name else f"{op} node"
        direction = _text(attr.get("direction", "forward"))
        if direction not in _DIRECTIONS:
            raise tvm.error.OpAttributeInvalid(f"{where}: unknown direction '{direction}'")
        reverse = _DIRECTIONS[direction]
        layout = int(attr.get("layout", 0))
        x = inputs[0]
        if layout:  # batch-major [B, T, I]: compute time-major, transpose outputs back
            x = bb.emit(_op.permute_dims(x, [1, 0, 2]))
        shape = x.ty.shape
        if shape is None or not isinstance(shape.values[0], tvm.tirx.IntImm):
            raise tvm.error.OpNotImplemented(
                f"{where}: the sequence length (dim {layout} of its input X) is not a fixed "
                "number; tvmedge unrolls recurrences over time, so fix it with --input-shape "
                "NAME=D1,D2,... on the model input that sets it"
            )
        bias = tuple(_split(bb, inputs[3], 2, axis=1)) if inputs[3] is not None else None
        clip = attr.get("clip")
        return cls(
            bb=bb,
            where=where,
            reverse=reverse,
            layout=layout,
            x=x,
            w=inputs[1],
            r=inputs[2],
            bias=bias,
            seq_lens=inputs[4],
            acts=_parse_activations(where, attr, activations, len(reverse)),
            clip=None if clip is None else float(clip),
        )

    @property
    def dtype(self) -> str:
        return str(self.x.ty.dtype)

    @property
    def steps(self) -> int:
        return int(self.x.ty.shape.values[0])

    @property
    def hidden(self) -> int:
        return int(self.r.ty.shape.values[-1])

    def const(self, value: float) -> Expr:
        return relax.const(value, self.dtype)

    def act(self, index: int, x: Expr, clip: bool = True) -> Expr:
        """Activation ``index`` of the cell, after ``clip`` unless told not to, on a [D, B, n]
        tensor."""
        if clip and self.clip is not None:
            x = _op.clip(x, -self.clip, self.clip)
        fns = [acts[index] for acts in self.acts]
        if all(f == fns[0] for f in fns):
            return self.bb.emit(fns[0](x, self.dtype))
        # Directions with different functions: apply each to its own slice.
        parts = _split(self.bb, x, len(fns), axis=0)
        outs = [f(p, self.dtype) for f, p in zip(fns, parts, strict=True)]
        return self.bb.emit(_op.concat(outs, axis=0))

    def recurrent_weight(self) -> Expr:
        """R^T as [D, H, G*H], ready for h @ R^T (folded at build time when R is constant)."""
        return self.bb.emit(_op.permute_dims(self.r, [0, 2, 1]))

    def initial(self, given: Expr | None) -> Expr:
        """An initial state as [D, B, H]: the given one made time-major, or zeros."""
        if given is None:
            batch = self.x.ty.shape.values[1]
            shape = relax.ShapeExpr([len(self.reverse), batch, self.hidden])
            return self.bb.emit(_op.zeros(shape, self.dtype))
        return self.bb.emit(_op.permute_dims(given, [1, 0, 2])) if self.layout else given

    def run(self, step: Callable, input_bias: Expr | None, states: list[Expr]) -> relax.Tuple:
        """Unroll ``step(x_t, *states) -> new states`` over time; returns (Y, *final states).

        ``x_t`` is X_t·W^T + ``input_bias`` as [D, B, G*H] and the first state is h.
        """
        bb = self.bb
        inputs = self._per_step(self._project(input_bias))
        masks = self._live_masks() if self.seq_lens is not None else [None] * len(inputs)
        outputs = []
        for x_t, live in zip(inputs, masks, strict=True):
            new = [s if isinstance(s, relax.Var) else bb.emit(s) for s in step(x_t, *states)]
            if live is None:
                states = new
                outputs.append(new[0])
                continue
            # Past a sequence's end the state holds and Y is 0. Holding the state also makes
            # the reverse direction start at each sequence's own last valid step.
            states = [bb.emit(_op.where(live, n, s)) for n, s in zip(new, states, strict=True)]
            outputs.append(bb.emit(_op.where(live, new[0], self.const(0.0))))
        if self.seq_lens is not None:  # as ONNX Runtime: empty sequences end in zero states
            zero = relax.const(0, str(self.seq_lens.ty.dtype))
            nonempty = _op.expand_dims(_op.greater(self.seq_lens, zero), [0, 2])
            states = [bb.emit(_op.where(nonempty, s, self.const(0.0))) for s in states]
        y = self._time_order(bb.emit(_op.stack(outputs, axis=0)))
        if self.layout:
            y = _op.permute_dims(y, [2, 0, 1, 3])
            states = [_op.permute_dims(s, [1, 0, 2]) for s in states]
        return relax.Tuple([y, *states])

    def _project(self, input_bias: Expr | None) -> Expr:
        """X·W^T (+ bias) for every step at once, as [D, T, B, G*H]."""
        xs = [_op.flip(self.x, 0) if rev else self.x for rev in self.reverse]
        w_t = _op.expand_dims(_op.permute_dims(self.w, [0, 2, 1]), 1)  # [D, 1, I, G*H]
        xw = _op.matmul(_op.stack(xs, axis=0), w_t)
        if input_bias is not None:
            xw = xw + _op.expand_dims(input_bias, [1, 2])
        return self.bb.emit(xw)

    def _per_step(self, x: Expr, axis: int = 1) -> list[Expr]:
        """Split ``x`` along its time ``axis`` into one tensor per step, without that axis."""
        parts = _split(self.bb, x, self.steps, axis=axis)
        return [self.bb.emit(_op.squeeze(p, [axis])) for p in parts]

    def _live_masks(self) -> list[Expr]:
        """Per step, a [D, B, 1] mask: is that step of each direction inside each sequence?"""
        steps = self.steps
        t = [[steps - 1 - k if rev else k for rev in self.reverse] for k in range(steps)]
        index = relax.const(np.array(t)[..., None].astype(str(self.seq_lens.ty.dtype)))
        live = _op.less(index, _op.expand_dims(self.seq_lens, [0, 1]))  # [T, D, B]
        return self._per_step(self.bb.emit(_op.expand_dims(live, 3)), axis=0)

    def _time_order(self, y: Expr) -> Expr:
        """[T, D, B, H] in step order -> time order: the reverse direction's steps flipped."""
        if not any(self.reverse):
            return y
        if len(self.reverse) == 1:
            return self.bb.emit(_op.flip(y, 0))
        forward, backward = _split(self.bb, y, 2, axis=1)
        return self.bb.emit(_op.concat([forward, _op.flip(backward, 0)], axis=1))

    def summed_bias(self) -> Expr | None:
        """Wb + Rb: the whole bias, for cells whose R-bias is not gated (LSTM, RNN)."""
        return None if self.bias is None else self.bias[0] + self.bias[1]


@register("RNN")
class RNN(OnnxOpConverter):
    """ONNX RNN: H_t = f(X_t·W^T + H_{t-1}·R^T + Wb + Rb)."""

    @classmethod
    def _impl_v7(cls, bb, inputs, attr, params):
        rnn = _Recurrence.parse(bb, "RNN", inputs, attr, ("Tanh",))
        r_t = rnn.recurrent_weight()

        def step(x_t, h):
            return (rnn.act(0, x_t + _op.matmul(h, r_t)),)

        return rnn.run(step, rnn.summed_bias(), [rnn.initial(inputs[5])])


@register("GRU")
class GRU(OnnxOpConverter):
    """ONNX GRU, gates z, r, h; ``linear_before_reset`` applies r after the R matmul."""

    @classmethod
    def _impl_v7(cls, bb, inputs, attr, params):
        rnn = _Recurrence.parse(bb, "GRU", inputs, attr, ("Sigmoid", "Tanh"))
        linear_before_reset = bool(attr.get("linear_before_reset", 0))
        n = 2 * rnn.hidden  # z and r come first in every gate-stacked tensor
        r_t = rnn.recurrent_weight()
        if not linear_before_reset:  # h's R matmul needs r first: two matmuls per step
            r_zr, r_h = _split(bb, r_t, [n], axis=2)
        input_bias = rb_h = None
        if rnn.bias is not None:
            wb, rb = rnn.bias
            if linear_before_reset:  # Rbh sits inside r * (...), so it cannot join X·W^T
                rb_zr, rb_h = _split(bb, rb, [n], axis=1)
                input_bias = wb + _op.concat([rb_zr, _op.zeros_like(rb_h)], axis=1)
                rb_h = bb.emit(_op.expand_dims(rb_h, 1))
            else:
                input_bias = wb + rb

        def step(x_t, h):
            x_zr, x_h = _split(bb, x_t, [n], axis=2)
            if linear_before_reset:
                h_zr, h_h = _split(bb, _op.matmul(h, r_t), [n], axis=2)
            else:
                h_zr = _op.matmul(h, r_zr)
            z, r = _split(bb, rnn.act(0, x_zr + h_zr), 2, axis=2)
            if linear_before_reset:
                candidate = x_h + r * (h_h if rb_h is None else h_h + rb_h)
            else:
                candidate = x_h + _op.matmul(r * h, r_h)
            h_tilde = rnn.act(1, candidate)
            return ((rnn.const(1.0) - z) * h_tilde + z * h,)

        return rnn.run(step, input_bias, [rnn.initial(inputs[5])])


@register("LSTM")
class LSTM(OnnxOpConverter):
    """ONNX LSTM, gates i, o, f, c; optional peepholes P and coupled gates (input_forget)."""

    @classmethod
    def _impl_v7(cls, bb, inputs, attr, params):
        rnn = _Recurrence.parse(bb, "LSTM", inputs, attr, ("Sigmoid", "Tanh", "Tanh"))
        r_t = rnn.recurrent_weight()
        input_forget = bool(attr.get("input_forget", 0))
        peep = None
        if inputs[7] is not None:  # P: [D, 3H] in order i, o, f -> three [D, 1, H]
            peep = _split(bb, _op.expand_dims(inputs[7], 1), 3, axis=2)

        def step(x_t, h, c):
            i, o, f, g = _split(bb, x_t + _op.matmul(h, r_t), 4, axis=2)
            if peep is not None:
                i, f = i + peep[0] * c, f + peep[2] * c
            i = rnn.act(0, i)
            f = rnn.const(1.0) - i if input_forget else rnn.act(0, f)
            c = bb.emit(f * c + i * rnn.act(1, g))
            if peep is not None:
                o = o + peep[1] * c
            # ONNX Runtime clips the gates' inputs only, not the cell state that h() reads.
            return bb.emit(rnn.act(0, o) * rnn.act(2, c, clip=False)), c

        states = [rnn.initial(inputs[5]), rnn.initial(inputs[6])]
        return rnn.run(step, rnn.summed_bias(), states)
