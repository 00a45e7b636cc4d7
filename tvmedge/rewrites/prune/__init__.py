"""Pruning-aware rewrites: channel shrinking (exact: zeroed filters really removed) and
``--prune`` (zero a trained model's lowest-norm filters, then shrink)."""

from tvmedge.rewrites.prune.options import PruneSpec, parse_prune
from tvmedge.rewrites.prune.record import prune_record
from tvmedge.rewrites.prune.select import prune_model
from tvmedge.rewrites.prune.shrink import shrink_channels

__all__ = ["PruneSpec", "parse_prune", "prune_model", "prune_record", "shrink_channels"]
