"""Resize: nearest mode as a gather at indices computed to ONNX's formulas; antialias refused.

- mode="nearest" (static shapes, constant scales or sizes): TVM computes the source coordinate
  from the inverse ratio in float32, so a coordinate that ONNX puts exactly on .5 lands just
  above it and rounds the other way (test_resize_upsample_sizes_nearest, 2x2 -> 7x8: a row
  of the wrong pixels). Where a scale or its inverse is not exact in float32, each axis's
  source indices are computed in float64 with ONNX's coordinate transformation and
  nearest_mode, and the output is a ``take`` along each resized axis. Power-of-two scales (the
  x2 upsampling of exported U-Nets and detectors), tf_crop_and_resize, ``axes`` and
  keep_aspect_ratio_policy stay TVM's.
- antialias=1 (opset 18): TVM's resize ignores it and returns the plain filter's values
  (test_resize_downsample_sizes_linear_antialias: 8 of 9 values off); refused.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from tvmedge.frontend.converters import register


def _text(attr, name: str, default: str) -> str:
    value = attr.get(name, default)
    return value.decode() if isinstance(value, bytes) else value


def _source(mode: str, out: int, size: int, scale: float) -> np.ndarray:
    """ONNX's x_original for each output index x (Resize's coordinate_transformation_mode)."""
    x = np.arange(out, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adjustment = out / (scale * size)
        return size / 2 * (1 - adjustment) + (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out > 1 else np.zeros_like(x)
    if mode == "align_corners":
        return x * (size - 1) / (out - 1) if out > 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    raise NotImplementedError(mode)


def _nearest(rounding: str, v: np.ndarray) -> np.ndarray:
    if rounding == "floor":
        return np.floor(v)
    if rounding == "ceil":
        return np.ceil(v)
    half = v - np.floor(v) == 0.5
    if rounding == "round_prefer_floor":
        return np.where(half, np.floor(v), np.round(v))
    if rounding == "round_prefer_ceil":
        return np.where(half, np.ceil(v), np.round(v))
    raise NotImplementedError(rounding)


def _exact(size: int, out: int, ratio: float) -> bool:
    """Are the scale and its inverse exact in float32 (x2, x4, /2: powers of two), so that
    float32 source coordinates are exact too?"""
    return all(float(np.float32(v)) == v for v in (ratio, 1 / ratio, size / out))


def _static_nearest(bb, inputs, attr) -> relax.Expr | None:
    coord = _text(attr, "coordinate_transformation_mode", "half_pixel")
    if (
        _text(attr, "mode", "nearest") != "nearest"
        or coord == "tf_crop_and_resize"
        or "axes" in attr
        or _text(attr, "keep_aspect_ratio_policy", "stretch") != "stretch"
    ):
        return None
    x = inputs[0]
    if x.ty.shape is None or not all(isinstance(d, tvm.tirx.IntImm) for d in x.ty.shape.values):
        return None
    dims = [int(d) for d in x.ty.shape.values]
    scales = inputs[2] if len(inputs) > 2 else None
    sizes = inputs[3] if len(inputs) > 3 else None
    given = sizes if sizes is not None else scales
    if not isinstance(given, tvm.ir.GenericConst):
        return None
    values = given.value.numpy()
    if values.size != len(dims):
        return None
    if sizes is not None:
        outs = [int(v) for v in values]
        ratios = [o / d for o, d in zip(outs, dims, strict=True)]
    else:
        ratios = [float(v) for v in values]
        outs = [int(np.floor(d * r)) for d, r in zip(dims, ratios, strict=True)]
    if all(_exact(d, n, r) for d, n, r in zip(dims, outs, ratios, strict=True)):
        return None  # TVM's float32 coordinates are exact: keep its resize (layout-aware)
    rounding = _text(attr, "nearest_mode", "round_prefer_floor")
    try:
        out = x
        for axis, (size, n, r) in enumerate(zip(dims, outs, ratios, strict=True)):
            if n == size and r == 1:
                continue
            index = _nearest(rounding, _source(coord, n, size, r))
            index = np.clip(index, 0, size - 1).astype("int64")
            out = bb.normalize(relax.op.take(out, relax.const(index), axis=axis))
    except NotImplementedError:
        return None
    return out


@register("Resize")
class Resize(onnx_frontend.Resize):
    @classmethod
    def _impl_v18(cls, bb, inputs, attr, params):
        if attr.get("antialias", 0):
            raise NotImplementedError(
                "Resize with antialias=1 is not supported (TVM's resize has no antialiasing "
                "filter); resize without it, or downscale in the caller"
            )
        exact = _static_nearest(bb, inputs, attr)
        if exact is not None:
            return exact
        return onnx_frontend.Resize._impl_v18(bb, inputs, attr, params)
