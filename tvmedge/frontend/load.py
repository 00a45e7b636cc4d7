"""Read an ONNX file and prove it is a model we can work on, before anything expensive."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from onnx.external_data_helper import load_external_data_for_model

from tvmedge.errors import ModelFileError
from tvmedge.frontend.external_data import (
    copy_external_data,
    external_tensors,
    refuse_external_data,
)
from tvmedge.frontend.gate import ENV, Limits, check_graph, human
from tvmedge.frontend.gradient import expand_gradients

# A serialized ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
_MODEL_PROTO_FIRST_BYTE = 0x08


@dataclass(frozen=True)
class LoadedModel:
    """A gated, checked, shape-inferred ONNX model and where it came from.

    ``proto`` is the model tvmedge compiles, which can differ from the file's: training-preview
    Gradient nodes are expanded into ordinary ops (see frontend/gradient.py). ``path`` is the
    file the user named; ``sha256`` and ``size`` are of the bytes read from it, and ``file``
    is a private copy of those bytes (with ``data_files``, the external data files copied
    beside it, ``{location: {sha256, size}}``) that later readers such as ONNX Runtime use.
    It is removed when this object is. ``checker``: "full" (onnx's checker with strict shape
    inference) or "basic: REASON" where strict inference failed on a model the checker passed.
    """

    proto: onnx.ModelProto
    path: Path
    sha256: str
    size: int
    file: Path
    data_files: dict = field(default_factory=dict)
    checker: str = "full"

    @property
    def opset(self) -> int:
        for entry in self.proto.opset_import:
            if entry.domain in ("", "ai.onnx"):
                return entry.version
        return 0


def load_onnx(
    path: str | Path, *, allow_external_data: bool = False, limits: Limits | None = None
) -> LoadedModel:
    """Pass the input gate (frontend/gate.py), check, expand Gradient nodes in and shape-infer
    an ONNX model; a file that fails is a one-line ModelFileError, a Gradient that cannot be
    expanded a GradientError. ``limits``: the gate's caps (default: Limits.from_env())."""
    path = Path(path)
    limits = limits or Limits.from_env()
    data = _read_capped(path, limits)
    sha256, size = hashlib.sha256(data).hexdigest(), len(data)
    proto = _parse(data, path)
    where = f"'{path}'"
    check_graph(proto, where, limits)
    private = Path(tempfile.mkdtemp(prefix="tvmedge-model-"))
    try:
        data_files = {}
        if external_tensors(proto):
            if not allow_external_data:
                refuse_external_data(proto, path)
            data_files = copy_external_data(proto, path, private, limits)
            data = proto.SerializeToString()  # the copy names the locations as checked
        file = private / (path.name if path.suffix == ".onnx" else "model.onnx")
        file.write_bytes(data)
        if data_files:
            try:
                load_external_data_for_model(proto, str(private))
            except Exception as e:  # onnx raises its ValidationError and OSErrors here
                raise ModelFileError(
                    f"cannot read the external data of '{path}': {_one_line(e)}"
                ) from None
        checker = _check(proto, path)
        # Before shape inference, which then types the expansion's tensors, and before any
        # other stage: everything after load sees only default-domain ops where Gradient
        # nodes were.
        proto = expand_gradients(proto)
        if not proto.graph.output:
            raise ModelFileError(f"model '{path}' has no graph outputs; nothing to compile")
        try:
            proto = onnx.shape_inference.infer_shapes(proto)
        except Exception as e:  # InferenceError, or a C++ error raised as a builtin
            raise ModelFileError(
                f"ONNX shape inference failed on '{path}': {_one_line(e)}"
            ) from None
        check_graph(proto, where, limits)  # the sizes shape inference derived, too
    except BaseException:
        shutil.rmtree(private, ignore_errors=True)
        raise
    loaded = LoadedModel(
        proto=proto,
        path=path,
        sha256=sha256,
        size=size,
        file=file,
        data_files=data_files,
        checker=checker,
    )
    weakref.finalize(loaded, shutil.rmtree, private, True)
    return loaded


def _read_capped(path: Path, limits: Limits) -> bytes:
    """The file's bytes, read once: what is hashed, parsed and copied."""
    if not path.exists():
        raise ModelFileError(f"model file '{path}' does not exist; check the path")
    if not path.is_file():
        raise ModelFileError(f"model path '{path}' is not a file; pass an .onnx file")
    cap = limits.model_bytes
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            data = f.read(cap + 1) if size <= cap else b""
    except OSError as e:
        raise ModelFileError(f"cannot read model '{path}': {e.strerror or e}") from None
    if size > cap or len(data) > cap:
        raise ModelFileError(
            f"model file '{path}' has {human(max(size, len(data)))}, over the {human(cap)} cap "
            f"on a model file; if it is right, raise the cap with {ENV['model_bytes']}=BYTES"
        )
    if not data:
        raise ModelFileError(f"model file '{path}' is empty; re-export the model")
    return data


def _parse(data: bytes, path: Path) -> onnx.ModelProto:
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception:  # DecodeError, or RecursionError-like errors of deeply nested messages
        if data[0] == _MODEL_PROTO_FIRST_BYTE:
            raise ModelFileError(
                f"model file '{path}' is a truncated or corrupt ONNX file ({len(data)} bytes); "
                "copy or export it again"
            ) from None
        raise ModelFileError(
            f"'{path}' is not an ONNX model (it does not parse as an ONNX ModelProto); "
            "pass a .onnx file exported by PyTorch, tf2onnx or similar"
        ) from None
    if not proto.HasField("graph"):
        raise ModelFileError(
            f"'{path}' is not an ONNX model (it parses, but holds no graph); pass a .onnx file"
        )
    return proto


def _check(proto: onnx.ModelProto, path: Path) -> str:
    """onnx's full checker (strict shape inference too); where only strict inference fails on
    a model the plain checker passes (a few valid models, e.g. ONNX's own test_mvn), the plain
    one, said so in the returned record."""
    try:
        onnx.checker.check_model(proto, full_check=True)
        return "full"
    except onnx.shape_inference.InferenceError as e:
        reason = _one_line(e)
    except Exception as e:  # ValidationError, or a C++ error raised as a builtin
        raise _checker_error(e, path) from None
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise _checker_error(e, path) from None
    return f"basic: strict shape inference failed: {reason}"


def _checker_error(e: BaseException, path: Path) -> ModelFileError:
    return ModelFileError(
        f"model '{path}' fails the ONNX checker: {_one_line(e)}; fix or re-export it"
    )


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 300 else text[:297] + "..."
