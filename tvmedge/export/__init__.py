"""Artifact writing: the compiled library plus a self-describing, hash-checked manifest."""

from tvmedge.export.artifact import write_artifact
from tvmedge.export.manifest import build_manifest

__all__ = ["build_manifest", "write_artifact"]
