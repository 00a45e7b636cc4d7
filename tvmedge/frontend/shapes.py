"""Graph inputs/outputs as plain specs, and --input-shape bindings applied to them."""

from __future__ import annotations

import numpy as np
import onnx

from tvmedge.errors import ShapeError
from tvmedge.layout import Dim, TensorSpec, format_shape


def _dim(text: str) -> Dim:
    text = text.strip()
    if text.isidentifier():
        return text
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def parse_bindings(items: list[str] | None) -> dict[str, tuple[Dim, ...]]:
    """Parse repeated ``name=1,3,224,224`` strings into a dict of shapes.

    A dim may be a name instead of a number (``tokens=batch,128``): it stays symbolic.
    """
    bindings: dict[str, tuple[Dim, ...]] = {}
    for item in items or []:
        name, sep, dims = item.rpartition("=")
        if not sep or not name:
            raise ShapeError(
                f"--input-shape '{item}' is not NAME=D1,D2,...; e.g. input=1,3,224,224"
            )
        try:
            shape = tuple(_dim(d) for d in dims.split(","))
        except ValueError:
            raise ShapeError(
                f"--input-shape '{item}': each dim must be a positive integer or a name "
                "(which stays symbolic), separated by commas"
            ) from None
        if name in bindings:
            raise ShapeError(f"--input-shape binds '{name}' twice; give it once")
        bindings[name] = shape
    return bindings


def _elem_dtype(name: str, type_proto: onnx.TypeProto) -> str:
    if not type_proto.HasField("tensor_type"):
        raise ShapeError(
            f"'{name}' is not a tensor (sequences, maps and optionals are not supported)"
        )
    return str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(type_proto.tensor_type.elem_type)))


def _dims(name: str, type_proto: onnx.TypeProto) -> tuple[Dim, ...]:
    dims: list[Dim] = []
    for i, d in enumerate(type_proto.tensor_type.shape.dim):
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.dim_param:
            dims.append(d.dim_param)
        else:
            dims.append(f"{name}_dim{i}")
    return tuple(dims)


def graph_inputs(model: onnx.ModelProto) -> list[TensorSpec]:
    """The real inputs of the graph (initializers listed as inputs are weights, not inputs)."""
    weights = {t.name for t in model.graph.initializer}
    return [
        TensorSpec(v.name, _elem_dtype(v.name, v.type), _dims(v.name, v.type))
        for v in model.graph.input
        if v.name not in weights
    ]


def graph_output_names(model: onnx.ModelProto) -> list[str]:
    """The graph's output names; a ShapeError if one is not a tensor. TVM's importer returns a
    sequence output as its tensors, one output per element, which the runtime would hand back
    as if they were the model's outputs (a sequence of one came back as a bare tensor)."""
    for v in model.graph.output:
        if not v.type.HasField("tensor_type"):
            kind = v.type.WhichOneof("value").removesuffix("_type")
            raise ShapeError(
                f"output '{v.name}' is not a tensor (sequences, maps and optionals are not "
                f"supported as graph inputs or outputs; this one is a {kind}): return its "
                "elements as tensor outputs (e.g. with SequenceAt or ConcatFromSequence)"
            )
    return [v.name for v in model.graph.output]


def bind(inputs: list[TensorSpec], bindings: dict[str, tuple[Dim, ...]]) -> list[TensorSpec]:
    """Apply shape bindings; unbound symbolic dims stay symbolic."""
    by_name = {spec.name: spec for spec in inputs}
    unknown = sorted(set(bindings) - set(by_name))
    if unknown:
        raise ShapeError(
            f"--input-shape names unknown input(s) {', '.join(map(repr, unknown))}; "
            f"the model's inputs are: {', '.join(repr(s.name) for s in inputs)}"
        )
    bound = []
    for spec in inputs:
        shape = bindings.get(spec.name)
        if shape is None:
            bound.append(spec)
            continue
        if len(shape) != len(spec.shape):
            raise ShapeError(
                f"--input-shape {spec.name}: model input has {len(spec.shape)} dims "
                f"{format_shape(spec.shape)}, binding has {len(shape)}"
            )
        for i, (want, got) in enumerate(zip(spec.shape, shape, strict=True)):
            if isinstance(want, int) and want != got:
                if isinstance(got, str):
                    raise ShapeError(
                        f"--input-shape {spec.name}: dim {i} is fixed at {want} in the model, "
                        f"it cannot become symbolic '{got}'"
                    )
                raise ShapeError(
                    f"--input-shape {spec.name}: dim {i} is fixed at {want} in the model, "
                    f"cannot bind it to {got}"
                )
        bound.append(TensorSpec(spec.name, spec.dtype, shape))
    return bound


def with_input_shapes(model: onnx.ModelProto, inputs: list[TensorSpec]) -> onnx.ModelProto:
    """A copy of ``model`` whose graph inputs carry ``inputs``' shapes, re-shape-inferred, so
    every consumer of a bound input sees the bound sizes. The input model is not changed."""
    by_name = {s.name: s for s in inputs}
    bound = onnx.ModelProto()
    bound.CopyFrom(model)
    for value in bound.graph.input:
        spec = by_name.get(value.name)
        if spec is None:
            continue  # an initializer listed as an input: a weight
        dims = value.type.tensor_type.shape.dim
        for d, size in zip(dims, spec.shape, strict=True):
            if isinstance(size, int):
                d.dim_value = size
            else:
                d.dim_param = size
    del bound.graph.value_info[:]  # inferred from the unbound shapes
    return onnx.shape_inference.infer_shapes(bound)
