"""External data: tensors stored in files next to the model, checked before any is read.

A location must be a plain relative path inside the model's folder (no absolute path, no
``..``, no symlink out of it), name an existing regular file, and its offset and length must
lie within that file. Anything else is a one-line ModelFileError naming the tensor, before a
byte of it is read: onnx's own loader raises a ValidationError with a traceback instead, and
reads whatever path the model names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

import onnx

from tvmedge.errors import ModelFileError


def _tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for g in attr.graphs:
                yield from _tensors(g)


def external_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    return [t for t in _tensors(model.graph) if t.data_location == onnx.TensorProto.EXTERNAL]


def check_external_data(model: onnx.ModelProto, model_path: Path) -> None:
    """Refuse external-data references that leave the model's folder or the file's bounds."""
    folder = model_path.resolve().parent
    for tensor in external_tensors(model):
        info = {entry.key: entry.value for entry in tensor.external_data}
        where = f"tensor '{tensor.name}' of '{model_path}'"
        location = info.get("location", "")
        if not location:
            raise ModelFileError(f"{where} is stored externally but names no file; re-export it")
        if (
            PurePosixPath(location).is_absolute()
            or PureWindowsPath(location).is_absolute()
            or PureWindowsPath(location).drive
        ):
            raise ModelFileError(
                f"{where} points to the absolute path '{location}'; external data must be a "
                "file in the model's own folder: re-save the model with a relative location"
            )
        parts = PurePosixPath(location.replace("\\", "/")).parts
        if ".." in parts:
            raise ModelFileError(
                f"{where} points outside the model's folder ('{location}'); external data must "
                "be a file in the model's own folder: move it there and re-save the model"
            )
        file = folder.joinpath(*parts)
        if not file.resolve().is_relative_to(folder):
            raise ModelFileError(
                f"{where} points outside the model's folder through a symbolic link "
                f"('{location}'); copy the data file into the model's folder"
            )
        if not file.is_file():
            raise ModelFileError(
                f"{where} names the data file '{location}', which does not exist next to the "
                "model; copy it there"
            )
        size = os.stat(file).st_size
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else size - offset
        except ValueError:
            raise ModelFileError(
                f"{where} has a non-integer offset or length; re-export it"
            ) from None
        if offset < 0 or length < 0 or offset + length > size:
            raise ModelFileError(
                f"{where} claims bytes {offset}..{offset + length} of '{location}', which has "
                f"{size}; the data file is truncated or not this model's"
            )
