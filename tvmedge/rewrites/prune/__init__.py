"""Pruning-aware rewrites: channel shrinking (exact: zeroed filters really removed)."""

from tvmedge.rewrites.prune.shrink import shrink_channels

__all__ = ["shrink_channels"]
