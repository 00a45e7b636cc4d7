"""Artifact writing: the compiled library plus a self-describing, hash-checked manifest."""

from tvmedge.export.artifact import LIBRARY, MANIFEST, write_artifact
from tvmedge.export.manifest import SCHEMA_VERSION, build_manifest

__all__ = ["LIBRARY", "MANIFEST", "SCHEMA_VERSION", "build_manifest", "write_artifact"]
