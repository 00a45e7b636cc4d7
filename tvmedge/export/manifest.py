"""The manifest: everything needed to know what an artifact is and to check it is intact."""

from __future__ import annotations

import datetime
import platform
from importlib import metadata

from tvmedge.frontend.load import LoadedModel
from tvmedge.layout import SCHEMA, SCHEMA_VERSION, TensorSpec
from tvmedge.targets import Target


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    from tvm.target import codegen

    return {
        "tvmedge": _version("tvmedge"),
        "tvm": _version("apache-tvm"),
        "tvm_ffi": _version("apache-tvm-ffi"),
        "llvm": codegen.llvm_version_major(),
        "onnx": _version("onnx"),
        "python": platform.python_version(),
    }


def build_manifest(
    *,
    model: LoadedModel,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    target: Target,
    rewrites: list[dict],
    build_seconds: dict[str, float],
    toolchain: dict,
    tuning: dict,
) -> dict:
    """The manifest without its ``files`` table (the writer adds hashes of what it wrote)."""
    symbolic = sorted({d for s in inputs for d in s.shape if isinstance(d, str)})
    producer = " ".join(p for p in (model.proto.producer_name, model.proto.producer_version) if p)
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "source": {
            "file": model.path.name,
            "sha256": model.sha256,
            "size": model.size,
            "opset": model.opset,
            "ir_version": model.proto.ir_version,
            "producer": producer or None,
            "data_files": model.data_files,
            "checker": model.checker,
        },
        "inputs": [s.to_json() for s in inputs],
        "outputs": [s.to_json() for s in outputs],
        "shapes": {"static": not symbolic, "symbolic_dims": symbolic},
        "target": target.to_json(),
        "rewrites": rewrites,
        "tuning": tuning,
        "runtime": {
            "kind": "relax-vm",
            "entry": "main",
            "io_table": "tvmedge_io",
            "device": "cuda" if target.family == "cuda" else "cpu",
        },
        "build": {
            "seconds": {k: round(v, 3) for k, v in build_seconds.items()},
            "toolchain": toolchain,
        },
        "versions": versions(),
    }
