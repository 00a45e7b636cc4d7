"""Read an ONNX file and prove it is a model we can work on, before anything expensive."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx.external_data_helper import load_external_data_for_model

from tvmedge.errors import ModelFileError
from tvmedge.frontend.external_data import check_external_data, external_tensors
from tvmedge.frontend.gradient import expand_gradients
from tvmedge.layout import sha256_file

# A serialized ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
_MODEL_PROTO_FIRST_BYTE = 0x08


@dataclass(frozen=True)
class LoadedModel:
    """A checked, shape-inferred ONNX model and where it came from.

    ``proto`` is the model tvmedge compiles, which can differ from the file's: training-preview
    Gradient nodes are expanded into ordinary ops (see frontend/gradient.py). ``sha256`` and
    ``size`` are the file's."""

    proto: onnx.ModelProto
    path: Path
    sha256: str
    size: int

    @property
    def opset(self) -> int:
        for entry in self.proto.opset_import:
            if entry.domain in ("", "ai.onnx"):
                return entry.version
        return 0


def load_onnx(path: str | Path) -> LoadedModel:
    """Load, check, expand Gradient nodes in and shape-infer an ONNX model; a file that fails is
    a one-line ModelFileError, a Gradient that cannot be expanded a GradientError."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file '{path}' does not exist; check the path")
    if not path.is_file():
        raise ModelFileError(f"model path '{path}' is not a file; pass an .onnx file")
    size = path.stat().st_size
    if size == 0:
        raise ModelFileError(f"model file '{path}' is empty; re-export the model")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except DecodeError:
        with open(path, "rb") as f:
            first = f.read(1)
        if first and first[0] == _MODEL_PROTO_FIRST_BYTE:
            raise ModelFileError(
                f"model file '{path}' is a truncated or corrupt ONNX file ({size} bytes); "
                "copy or export it again"
            ) from None
        raise ModelFileError(
            f"'{path}' is not an ONNX model (it does not parse as an ONNX ModelProto); "
            "pass a .onnx file exported by PyTorch, tf2onnx or similar"
        ) from None
    except (OSError, ValueError) as e:
        raise ModelFileError(f"cannot read model '{path}': {_one_line(e)}") from None
    if external_tensors(proto):
        check_external_data(proto, path)
        try:
            load_external_data_for_model(proto, str(path.resolve().parent))
        except Exception as e:  # onnx raises its ValidationError and OSErrors here
            raise ModelFileError(
                f"cannot read the external data of '{path}': {_one_line(e)}"
            ) from None
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        raise ModelFileError(
            f"model '{path}' fails the ONNX checker: {_one_line(e)}; fix or re-export it"
        ) from None
    # Before shape inference, which then types the expansion's tensors, and before any other
    # stage: everything after load sees only default-domain ops where Gradient nodes were.
    proto = expand_gradients(proto)
    if not proto.graph.output:
        raise ModelFileError(f"model '{path}' has no graph outputs; nothing to compile")
    try:
        proto = onnx.shape_inference.infer_shapes(proto)
    except onnx.shape_inference.InferenceError as e:
        raise ModelFileError(f"ONNX shape inference failed on '{path}': {_one_line(e)}") from None
    return LoadedModel(proto=proto, path=path, sha256=sha256_file(path), size=size)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 300 else text[:297] + "..."
