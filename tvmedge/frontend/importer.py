"""ONNX -> Relax IRModule through TVM's importer, with inputs bound as the user asked."""

from __future__ import annotations

import contextlib
import io
import os
import sys

import tvm
from tvm import relax
from tvm.relax.frontend.onnx import from_onnx

from tvmedge.errors import BuildError
from tvmedge.frontend import converters
from tvmedge.frontend.load import LoadedModel
from tvmedge.frontend.shapes import TensorSpec, with_input_shapes


def import_onnx(model: LoadedModel, inputs: list[TensorSpec]) -> tvm.IRModule:
    """Import with weights embedded as constants; ``inputs`` give the (bound) input shapes,
    and dims they leave symbolic stay symbolic."""
    proto = with_input_shapes(model.proto, inputs)
    chatter = io.StringIO()  # the importer prints its own report of a failing node to stdout
    try:
        with converters.installed(), contextlib.redirect_stdout(chatter):
            mod = from_onnx(
                proto,
                dtype_dict={s.name: s.dtype for s in inputs},
                opset=model.opset or None,
                keep_params_in_input=False,
            )
    except Exception as e:  # the importer raises many types; all mean "could not import"
        if os.environ.get("TVMEDGE_DEBUG"):
            sys.stderr.write(chatter.getvalue())
        raise BuildError(
            f"TVM's ONNX importer failed on '{model.path.name}': {_first_line(e)}"
        ) from e
    params = mod["main"].params
    if len(params) != len(inputs):
        raise BuildError(
            f"importer produced {len(params)} inputs for a model with {len(inputs)}; "
            "this is a tvmedge bug, please report it with the model"
        )
    return mod


def output_specs(mod: tvm.IRModule, names: list[str]) -> list[TensorSpec]:
    """Output names from ONNX, dtypes and (possibly symbolic) shapes from Relax."""
    ret = mod["main"].ret_ty
    fields = list(ret.fields) if isinstance(ret, relax.TupleType) else [ret]
    if len(fields) != len(names):
        raise BuildError(f"model has {len(names)} outputs but Relax returns {len(fields)}")
    return [
        TensorSpec(name, str(ty.dtype), _shape_of(ty))
        for name, ty in zip(names, fields, strict=True)
    ]


def _shape_of(ty) -> tuple[int | str, ...]:
    if ty.shape is None:
        return ("?",) * max(int(ty.ndim), 0)
    dims = []
    for d in ty.shape.values:
        dims.append(int(d) if isinstance(d, tvm.tirx.IntImm) else str(d))
    return tuple(dims)


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = lines[-1] if lines else type(e).__name__
    return text[:300]
