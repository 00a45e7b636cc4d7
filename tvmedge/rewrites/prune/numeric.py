"""The arithmetic of the Relax operators that channel shrinking folds, in numpy (float64).

A removed channel is a constant image: a zeroed filter plus its bias, through the element-wise
ops, pooling and depthwise convolutions after it. Its values are computed here, at compile
time, so a consumer can add exactly what the channel contributed. NCHW data, OIHW weights (IOHW
for transposed convolutions), batch 1: these values do not depend on the input.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


UNARY = {
    "relax.nn.relu": lambda x, _a: np.maximum(x, 0.0),
    "relax.sigmoid": lambda x, _a: _expit(x),
    "relax.tanh": lambda x, _a: np.tanh(x),
    "relax.nn.silu": lambda x, _a: x * _expit(x),
    "relax.nn.gelu": lambda x, _a: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))),
    "relax.erf": lambda x, _a: _erf(x),
    "relax.exp": lambda x, _a: np.exp(x),
    "relax.negative": lambda x, _a: -x,
    "relax.abs": lambda x, _a: np.abs(x),
    "relax.nn.leakyrelu": lambda x, a: np.where(x >= 0, x, x * float(a.alpha)),
}
BINARY = {
    "relax.add": np.add,
    "relax.subtract": np.subtract,
    "relax.multiply": np.multiply,
    "relax.divide": np.divide,
    "relax.maximum": np.maximum,
    "relax.minimum": np.minimum,
    "relax.power": np.power,
}
# Scalar arithmetic the importer leaves between constants (Clip's bounds: where(isnan(c), ...)).
SCALAR = {**BINARY, "relax.isnan": np.isnan, "relax.where": np.where}


def ints(values) -> list[int]:
    return [int(v) for v in values]


def _as_2d(attrs) -> SimpleNamespace:
    """A 1-D conv's or pool's attributes as those of the 2-D op over [N, C, 1, W]."""
    out = {}
    for key in ("groups", "ceil_mode", "count_include_pad"):
        if hasattr(attrs, key):
            out[key] = getattr(attrs, key)
    for key in ("strides", "dilation", "pool_size", "output_padding"):
        if hasattr(attrs, key):
            out[key] = [0 if key == "output_padding" else 1, *ints(getattr(attrs, key))]
    left, right = ints(attrs.padding)
    out["padding"] = [0, left, 0, right]
    return SimpleNamespace(**out)


def conv(x: np.ndarray, w: np.ndarray, attrs, transposed: bool = False) -> np.ndarray:
    """conv1d or conv2d (transposed: conv2d_transpose) of ``x``, by its rank."""
    fn = conv2d_transpose if transposed else conv2d
    if x.ndim == 4:
        return fn(x, w, attrs)
    return fn(x[:, :, None], w[:, :, None], _as_2d(attrs))[:, :, 0]


def pool(name: str, x: np.ndarray, attrs) -> np.ndarray | None:
    """max/avg pool1d or pool2d of ``x``, by its rank; None for ceil mode."""
    if x.ndim == 4:
        return pool2d(name, x, attrs)
    out = pool2d(name.replace("1d", "2d"), x[:, :, None], _as_2d(attrs))
    return None if out is None else out[:, :, 0]


def _windows(x: np.ndarray, kernel, strides, dilation, padding, fill: float = 0.0):
    """The strided views of padded ``x`` [N, C, H, W], one per kernel position (kh, kw),
    each [N, C, Ho, Wo]."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilation
    top, left, bottom, right = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=fill)
    ho = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
            cols = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)
            yield i, j, xp[:, :, rows, cols]


def conv2d(x: np.ndarray, w: np.ndarray, attrs) -> np.ndarray:
    """relax.nn.conv2d (NCHW, OIHW) of ``x``; grouped and depthwise too."""
    groups = int(attrs.groups)
    o, cg, kh, kw = w.shape
    og = o // groups
    out = None
    for i, j, patch in _windows(
        x, (kh, kw), ints(attrs.strides), ints(attrs.dilation), ints(attrs.padding)
    ):
        n, _, ho, wo = patch.shape
        p = patch.reshape(n, groups, cg, ho, wo)
        k = w[:, :, i, j].reshape(groups, og, cg)
        term = np.einsum("ngchw,goc->ngohw", p, k).reshape(n, o, ho, wo)
        out = term if out is None else out + term
    return out


def conv2d_transpose(x: np.ndarray, w: np.ndarray, attrs) -> np.ndarray:
    """relax.nn.conv2d_transpose (NCHW, IOHW, one group) of ``x``."""
    n, _, h, wd = x.shape
    _, o, kh, kw = w.shape
    sh, sw = ints(attrs.strides)
    dh, dw = ints(attrs.dilation)
    top, left, bottom, right = ints(attrs.padding)
    oph, opw = ints(attrs.output_padding)
    full_h, full_w = (h - 1) * sh + dh * (kh - 1) + 1 + oph, (wd - 1) * sw + dw * (kw - 1) + 1 + opw
    out = np.zeros((n, o, full_h, full_w))
    for i in range(kh):
        for j in range(kw):
            term = np.einsum("nchw,co->nohw", x, w[:, :, i, j])
            out[
                :,
                :,
                i * dh : i * dh + sh * (h - 1) + 1 : sh,
                j * dw : j * dw + sw * (wd - 1) + 1 : sw,
            ] += term
    return out[:, :, top : full_h - bottom, left : full_w - right]


def pool2d(name: str, x: np.ndarray, attrs) -> np.ndarray | None:
    """relax.nn.max_pool2d / avg_pool2d of ``x``; None for ceil mode (not computed here)."""
    if bool(attrs.ceil_mode):
        return None
    args = (ints(attrs.pool_size), ints(attrs.strides), ints(attrs.dilation), ints(attrs.padding))
    if name == "relax.nn.max_pool2d":
        return np.max([p for _, _, p in _windows(x, *args, fill=-np.inf)], axis=0)
    total = np.sum([p for _, _, p in _windows(x, *args)], axis=0)
    if bool(attrs.count_include_pad):
        return total / (args[0][0] * args[0][1])
    ones = np.ones((1, 1, *x.shape[2:]))
    return total / np.sum([p for _, _, p in _windows(ones, *args)], axis=0)
