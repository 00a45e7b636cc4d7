"""ONNX -> Relax IRModule through TVM's importer, with inputs bound as the user asked."""

from __future__ import annotations

import contextlib
import gc
import io
import os
import sys
import tempfile
import traceback
from collections.abc import Iterator

import onnx
import tvm
from tvm import relax
from tvm.relax.frontend.onnx import from_onnx, onnx_frontend

from tvmedge.errors import BuildError
from tvmedge.frontend import converters
from tvmedge.frontend.fold_shapes import fold_shapes, symbolic_dims_behind
from tvmedge.frontend.load import LoadedModel
from tvmedge.frontend.shapes import TensorSpec, with_input_shapes


def import_onnx(model: LoadedModel, inputs: list[TensorSpec]) -> tvm.IRModule:
    """Import with weights embedded as constants; ``inputs`` give the (bound) input shapes,
    and dims they leave symbolic stay symbolic. Shape computations that the bound shapes make
    constant are folded first (see fold_shapes)."""
    proto = with_input_shapes(model.proto, inputs)
    _name_nodes(proto)
    proto = fold_shapes(proto)
    chatter = io.StringIO()  # the importer prints its own report of a failing node to stdout
    failed: list[str] = []
    error: BuildError | None = None
    with _native_stderr_captured() as native:
        try:
            with (
                converters.installed(),
                _zero_dims_recorded(),
                _failing_node_recorded(failed),
                contextlib.redirect_stdout(chatter),
            ):
                mod = from_onnx(
                    proto,
                    dtype_dict={s.name: s.dtype for s in inputs},
                    opset=model.opset or None,
                    keep_params_in_input=False,
                )
        except Exception as e:  # the importer raises many types; all mean "could not import"
            if os.environ.get("TVMEDGE_DEBUG"):
                sys.stderr.write(chatter.getvalue() + traceback.format_exc())
            # A converter that refuses an op (NotImplementedError) is not helped by freezing.
            refused = isinstance(e, NotImplementedError)
            where, hint = _failed_node(proto, failed[0], inputs, refused) if failed else ("", "")
            reason = _first_line(e).rstrip(".") if hint else _first_line(e)
            error = BuildError(
                f"TVM's ONNX importer failed on '{model.path.name}'{where}: {reason}{hint}"
            )
        # Free the failed import now: TVM's C++ side warns on stderr when it is destroyed.
        gc.collect()
    if error is not None:
        if os.environ.get("TVMEDGE_DEBUG"):
            sys.stderr.write("".join(native))
        raise error
    params = mod["main"].params
    if len(params) != len(inputs):
        raise BuildError(
            f"importer produced {len(params)} inputs for a model with {len(inputs)}; "
            "this is a tvmedge bug, please report it with the model"
        )
    return mod


@contextlib.contextmanager
def _native_stderr_captured():
    """Send file descriptor 2 (where TVM's C++ logs go) to a temporary file meanwhile; the
    list it yields holds what was written once the block has ended."""
    sys.stderr.flush()
    saved = os.dup(2)
    written: list[str] = []
    with tempfile.TemporaryFile(mode="w+") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield written
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            written.append(capture.read())


def output_specs(mod: tvm.IRModule, names: list[str]) -> list[TensorSpec]:
    """Output names from ONNX, dtypes and (possibly symbolic) shapes from Relax."""
    ret = mod["main"].ret_ty
    fields = list(ret.fields) if isinstance(ret, relax.TupleType) else [ret]
    if len(fields) != len(names):
        raise BuildError(f"model has {len(names)} outputs but Relax returns {len(fields)}")
    for name, ty in zip(names, fields, strict=True):
        if not isinstance(ty, relax.TensorType):  # e.g. Shape of a tensor with symbolic dims
            raise BuildError(
                f"output '{name}' is a shape value computed from symbolic dims, not a tensor; "
                "bind the input shapes with --input-shape so that it becomes a constant"
            )
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


def _name_nodes(proto: onnx.ModelProto) -> None:
    """Give unnamed nodes the names the unsupported-op scan reports (``Op#index``), before
    folding removes nodes, so an import error can name the node it failed on."""
    for index, node in enumerate(proto.graph.node):
        node.name = node.name or f"{node.op_type}#{index}"


@contextlib.contextmanager
def _zero_dims_recorded() -> Iterator[None]:
    """TVM's importer reads a graph input's dim of 0 as unknown (a fresh symbolic dim; TVM's
    kernels fail to build for a static 0). Record those dims in ``converters.ZERO_DIMS`` for
    the converters that must know a size is 0 (a reduction over it is over an empty set)."""
    original = onnx_frontend.get_info

    def get_info(info_proto, value_dict):
        name, shape, dtype, shape_name, value_dict = original(info_proto, value_dict)
        for d, s in zip(info_proto.type.tensor_type.shape.dim, shape or (), strict=True):
            if d.HasField("dim_value") and d.dim_value == 0 and isinstance(s, tvm.tirx.Var):
                converters.ZERO_DIMS.add(s)
        return name, shape, dtype, shape_name, value_dict

    onnx_frontend.get_info = get_info
    try:
        yield
    finally:
        onnx_frontend.get_info = original
        converters.ZERO_DIMS.clear()


@contextlib.contextmanager
def _failing_node_recorded(failed: list[str]) -> Iterator[None]:
    """TVM's importer reports a failing node by op type only; record the node's name (the
    innermost first, for a node inside a sub-graph)."""
    importer = onnx_frontend.ONNXGraphImporter
    original = importer._convert_operator

    def convert(self, op_name, inputs, attrs, opset):
        try:
            return original(self, op_name, inputs, attrs, opset)
        except Exception:
            if attrs["tvm_custom"]["name"]:  # unnamed nodes inside sub-graphs have none
                failed.append(attrs["tvm_custom"]["name"])
            raise

    importer._convert_operator = convert
    try:
        yield
    finally:
        importer._convert_operator = original


def _failed_node(
    proto: onnx.ModelProto, node_name: str, inputs: list[TensorSpec], refused: bool = False
) -> tuple[str, str]:
    """(' at node NAME (Op)', and when the node's shape argument is computed from symbolic
    input dims, a hint naming the --input-shape binding that makes it a constant)."""
    node = next((n for n in proto.graph.node if n.name == node_name), None)
    where = f" at node '{node_name}'" + (f" ({node.op_type})" if node else "")  # None: sub-graph
    axes = {d: (s, i) for s in inputs for i, d in enumerate(s.shape) if isinstance(d, str)}
    needed = sorted(d for d in symbolic_dims_behind(proto, node_name) if d in axes)
    if not needed:
        return where, _run_time_hint(proto, node) if node and not refused else ""
    dims = ", ".join(f"'{d}' (input '{axes[d][0].name}' dim {axes[d][1]})" for d in needed)
    binding = " ".join(
        f"--input-shape {s.name}=" + ",".join(str(1 if d in needed else d) for d in s.shape)
        for s in inputs
        if set(needed) & set(s.shape)
    )
    dim, it = ("dims", "them") if len(needed) > 1 else ("dim", "it")
    return where, (
        f". The node needs a static shape, computed from symbolic {dim} {dims}: "
        f"bind {it}, e.g. {binding} (any size works)"
    )


# Ops whose every input is a value TVM needs at compile time; others' first input is data.
_ALL_VALUE_INPUTS = frozenset({"ConstantOfShape", "Range"})


def _run_time_hint(proto: onnx.ModelProto, node: onnx.NodeProto) -> str:
    """When the node's shape-like inputs (axes, shape, sizes, pads, k, ...) come from small
    graph inputs, a hint that names them: TVM's converters need such values at compile time,
    and a graph input is only known at run time."""
    weights = {t.name for t in proto.graph.initializer}
    small = {
        v.name: v
        for v in proto.graph.input
        if v.name not in weights and len(v.type.tensor_type.shape.dim) <= 1
    }
    producer = {out: n for n in proto.graph.node for out in n.output}
    first = 0 if node.op_type in _ALL_VALUE_INPUTS else 1
    found, todo, seen = [], [name for name in node.input[first:] if name], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in small:
            found.append(name)
        elif name in producer:
            todo.extend(i for i in producer[name].input if i)
    if not found:
        return ""
    names = ", ".join(f"'{n}' ({_type_text(small[n])})" for n in sorted(found))
    them, kind = ("them", "initializers") if len(found) > 1 else ("it", "an initializer")
    return (
        f". The node's value inputs come at run time from graph input(s) {names}, which "
        f"TVM needs at compile time: freeze {them} into the model as {kind} with the values "
        "it will always get (as exported models carry axes, shapes, pads and k)"
    )


def _type_text(value: onnx.ValueInfoProto) -> str:
    tensor = value.type.tensor_type
    dims = ",".join(str(d.dim_value) if d.HasField("dim_value") else "?" for d in tensor.shape.dim)
    return f"{onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)}[{dims}]"


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = lines[-1] if lines else type(e).__name__
    return text[:300]
