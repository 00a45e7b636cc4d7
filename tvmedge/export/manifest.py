"""The manifest: everything needed to know what an artifact is and to check it is intact."""

from __future__ import annotations

import datetime
import os
import platform
from importlib import metadata

from tvmedge.frontend.load import LoadedModel
from tvmedge.layout import SCHEMA, SCHEMA_VERSION, TensorSpec
from tvmedge.targets import Target

# The only manifest fields that differ between two compiles of the same model with the same
# tools, options and logs (dotted paths): when the build ran and how long its steps took.
# ``created`` is fixed by SOURCE_DATE_EPOCH when set (the reproducible-builds convention).
# model.so is byte-identical, and so is sbom.cdx.json (its timestamp is ``created``), except
# that TVM's shape functions for symbolic dims are not (docs/trust.md).
VOLATILE = ("created", "build.seconds", "check.seconds")


def created() -> str:
    """The build time, UTC, in seconds: SOURCE_DATE_EPOCH when set, else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    when = (
        datetime.datetime.fromtimestamp(int(epoch), datetime.UTC)
        if epoch.isdigit()
        else datetime.datetime.now(datetime.UTC)
    )
    return when.isoformat(timespec="seconds")


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
        "created": created(),
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
