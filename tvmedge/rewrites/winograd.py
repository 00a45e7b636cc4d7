"""Winograd convolution for 3x3, stride-1 convolutions on CPUs (channels-last, constant weights).

F(m x m, 3 x 3) computes an m x m output tile from an (m+2) x (m+2) input tile with (m+2)^2
multiplications per input/output channel pair instead of 9 m^2: 2.25x fewer for m = 2, 4x
fewer for m = 4. The convolution becomes three kernels:

    input transform   V[e, p, c] = (B^T d_p B)[e]      for every tile p and input channel c
    batched GEMM      M[e, p, k] = sum_c V[e, p, c] U[e, c, k]   (e = one of (m+2)^2 GEMMs)
    output transform  Y[n, h, w, k] = (A^T M_p A)[h % m, w % m]  (+ the conv's fused epilogue)

U = G g G^T is the transformed weight, computed here with numpy (float64, then rounded once).
The transforms are written out as sparse sums with the constants folded in (no matrix in the
kernel), selected by the tile position, in two passes each (rows, then columns); the
schedules (tvmedge.schedules.winograd) compute the first pass per tile into registers and
unroll the position so every selection folds away at compile time.

Numerics: the transforms add and scale values, so results differ from a direct convolution by
rounding (measured: relative error ~1e-6 per layer for m = 4); ``bench`` checks agreement with
ONNX Runtime. Convolutions with fewer than MIN_CHANNELS channels or MIN_TILES output tiles
keep the direct form, where the transforms cost more than they save. U holds (m+2)^2 / 9 times
the weights; ResNet-18's 7x7 layers (16 F(2x2) tiles) still measured faster this way.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax, te, tirx
from tvm.relax.expr_functor import PyExprMutator, mutator

from tvmedge.rewrites.mutate import channels_last_conv2d, rewrite_functions

# Block names the schedule rules recognize (FuseTIR keeps them).
INPUT, GEMM, OUTPUT = "wino_input", "wino_gemm", "wino_output"
INPUT_ROWS, OUTPUT_ROWS = "wino_rows_in", "wino_rows_out"  # the transforms' first passes
OPAQUE, INJECTIVE = 8, 2  # relay OpPatternKind values FuseOps reads from "op_pattern"

MIN_CHANNELS = 16  # below this the transforms outweigh the GEMM
MIN_TILES = 16  # output tiles per image: 4x4 tiles of a 7x7 output still win (ResNet-18)


def matrices(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cook-Toom A (m+2 x m), B (m+2 x m+2), G (m+2 x 3) for F(m, 3), as TVM's topi builds
    them (interpolation points 0, +-1, +-1/2, +-2, ..., infinity)."""
    from tvm.topi.nn.winograd_util import _cook_toom_convolution, _interpolation_points

    a, b, g = _cook_toom_convolution(_interpolation_points(m + 1), m, 3)
    return np.asarray(a, "float64"), np.asarray(b, "float64"), np.asarray(g, "float64")


def transform_weight(weight: np.ndarray, m: int) -> np.ndarray:
    """HWIO 3x3 weights -> U[(m+2)^2, I, O] = G g G^T, in the weight's dtype."""
    _, _, g = matrices(m)
    u = np.einsum("ia,abco,jb->ijco", g, weight.astype("float64"), g)
    alpha = m + 2
    return u.reshape(alpha * alpha, *weight.shape[2:]).astype(weight.dtype)


def _sparse_sum(terms, dtype: str):
    """sum(c * x for c, x in terms), zero coefficients dropped, +-1 as add/subtract."""
    out = None
    for coef, expr in terms:
        if coef == 0:
            continue
        term = expr if abs(coef) == 1 else expr * tirx.const(float(abs(coef)), dtype)
        negative = coef < 0
        if out is None:
            out = -term if negative else term
        else:
            out = out - term if negative else out + term
    return out if out is not None else tirx.const(0.0, dtype)


def _select(index, exprs):
    """exprs[index] as a chain of selects (folded once ``index`` is a constant)."""
    out = exprs[-1]
    for i in range(len(exprs) - 2, -1, -1):
        out = tirx.Select(index == i, exprs[i], out)
    return out


def _tiles(n_img, out_h, out_w, m):
    n_h, n_w = -(-out_h // m), -(-out_w // m)
    return n_h, n_w, n_img * n_h * n_w


def input_transform(x: te.Tensor, m: int, pad_top: int, pad_left: int, out_h: int, out_w: int):
    """V[e, p, c]: the B^T d B transform of every (m+2)^2 input tile, zero padding included,
    in two passes: T = d B along each tile's rows, then V = B^T T along its columns. Each pass
    is a select over (m+2) short sums, so the kernel is small for the compiler and does
    2 (m+2)^3 multiply-adds per tile and channel where one dense sum over the tile did
    (m+2)^4."""
    n_img, height, width, channels = (int(d) for d in x.shape)
    _, b, _ = matrices(m)
    alpha = m + 2
    n_h, n_w, tiles = _tiles(n_img, out_h, out_w, m)
    dtype = x.dtype

    def tile(i, j, p, c):
        n, th, tw = p // (n_h * n_w), (p // n_w) % n_h, p % n_w
        y, xx = th * m + i - pad_top, tw * m + j - pad_left
        inside = tirx.all(y >= 0, y < height, xx >= 0, xx < width)
        return tirx.if_then_else(inside, x[n, y, xx, c], tirx.const(0.0, dtype))

    def rows(i, nu, p, c):
        sums = [
            _sparse_sum([(b[j, k], tile(i, j, p, c)) for j in range(alpha)], dtype)
            for k in range(alpha)
        ]
        return _select(nu, sums)

    t = te.compute((alpha, alpha, tiles, channels), rows, name=INPUT_ROWS)

    def value(e, p, c):
        nu = e % alpha
        sums = [
            _sparse_sum([(b[i, eps], t[i, nu, p, c]) for i in range(alpha)], dtype)
            for eps in range(alpha)
        ]
        return _select(e // alpha, sums)

    return te.compute((alpha * alpha, tiles, channels), value, name=INPUT)


def batched_gemm(v: te.Tensor, u: te.Tensor):
    """M[e, p, k] = sum_c V[e, p, c] U[e, c, k]."""
    e_count, tiles, channels = (int(d) for d in v.shape)
    out_channels = int(u.shape[2])
    c = te.reduce_axis((0, channels), "c")
    return te.compute(
        (e_count, tiles, out_channels),
        lambda e, p, k: te.sum(v[e, p, c] * u[e, c, k], axis=c),
        name=GEMM,
    )


def output_transform(mm: te.Tensor, m: int, n_img: int, out_h: int, out_w: int):
    """Y[n, h, w, k]: the A^T M A transform of each tile, cropped to the output size, in two
    passes like the input transform: Z = M A along rows, then Y = A^T Z along columns."""
    a, _, _ = matrices(m)
    alpha = m + 2
    n_h, n_w, tiles = _tiles(n_img, out_h, out_w, m)
    out_channels = int(mm.shape[2])
    dtype = mm.dtype

    def rows(i, vw, p, k):
        sums = [
            _sparse_sum([(a[j, col], mm[i * alpha + j, p, k]) for j in range(alpha)], dtype)
            for col in range(m)
        ]
        return _select(vw, sums)

    z = te.compute((alpha, m, tiles, out_channels), rows, name=OUTPUT_ROWS)

    def value(n, h, w, k):
        p = n * n_h * n_w + (h // m) * n_w + (w // m)
        sums = [
            _sparse_sum([(a[i, row], z[i, w % m, p, k]) for i in range(alpha)], dtype)
            for row in range(m)
        ]
        return _select(h % m, sums)

    return te.compute((n_img, out_h, out_w, out_channels), value, name=OUTPUT)


def tile_size(out_h: int, out_w: int) -> int:
    """4 where whole 4x4 tiles cover the output with little waste, else 2."""
    waste4 = (-(-out_h // 4) * 4 * -(-out_w // 4) * 4) / (out_h * out_w)
    return 4 if waste4 <= 1.15 and min(out_h, out_w) >= 8 else 2


def plan(call: relax.Call) -> int | None:
    """The tile size m for a conv2d this rewrite takes, or None to keep it direct."""
    if not channels_last_conv2d(call):
        return None
    attrs = call.attrs
    data, weight = call.args
    if not isinstance(weight, tvm.ir.GenericConst):
        return None
    if (
        int(attrs.groups) != 1
        or any(int(s) != 1 for s in attrs.strides)
        or any(int(d) != 1 for d in attrs.dilation)
    ):
        return None
    dtype = str(call.ty.dtype)
    if dtype != "float32" or str(data.ty.dtype) != dtype or str(weight.ty.dtype) != dtype:
        return None
    shape = data.ty.shape
    if shape is None or not all(isinstance(d, tirx.IntImm) for d in shape.values):
        return None  # a symbolic batch: the tile count must be a constant
    kh, kw, cin, cout = (int(d) for d in weight.value.shape)
    if (kh, kw) != (3, 3) or cin < MIN_CHANNELS or cout < MIN_CHANNELS:
        return None
    _, out_h, out_w, _ = (int(d) for d in call.ty.shape.values)
    m = tile_size(out_h, out_w)
    if _tiles(1, out_h, out_w, m)[2] < MIN_TILES:
        return None
    return m


@mutator
class _Winograd(PyExprMutator):
    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)

    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        m = plan(call)
        if m is None:
            return call
        data, weight = call.args
        pad_top, pad_left = (int(p) for p in call.attrs.padding[:2])
        n_img, out_h, out_w, _ = (int(d) for d in call.ty.shape.values)
        u = relax.const(transform_weight(weight.value.numpy(), m))
        v = self.builder_.emit_te(
            input_transform,
            data,
            m,
            pad_top,
            pad_left,
            out_h,
            out_w,
            primfunc_name_hint="winograd_input",
            primfunc_attrs={"op_pattern": OPAQUE},
        )
        mm = self.builder_.emit_te(
            batched_gemm,
            v,
            u,
            primfunc_name_hint="winograd_gemm",
            primfunc_attrs={"op_pattern": OPAQUE},
        )
        return self.builder_.call_te(
            output_transform,
            mm,
            m,
            n_img,
            out_h,
            out_w,
            primfunc_name_hint="winograd_output",
            primfunc_attrs={"op_pattern": INJECTIVE},
        )


@tvm.transform.module_pass(opt_level=0, name="tvmedge.Winograd")
def winograd_convolutions(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
    return rewrite_functions(_Winograd(mod), mod)
