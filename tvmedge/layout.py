"""What an artifact is made of: file names, manifest schema, tensor specs, hashing.

Shared by the writer (export/) and the reader (runtime/). Imports nothing heavy, so loading an
artifact needs neither the compiler nor onnx.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

LIBRARY = "model.so"
MANIFEST = "manifest.json"
SCHEMA = "tvmedge.artifact"
SCHEMA_VERSION = 1

Dim = int | str  # a static size, or the name of a symbolic dimension


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[Dim, ...]

    def to_json(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, data: dict) -> TensorSpec:
        return cls(data["name"], data["dtype"], tuple(data["shape"]))

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)


def format_shape(shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
