"""The manifest's record of a ``--prune`` compile, beside the rewrite records."""

from __future__ import annotations

from tvmedge.rewrites.prune.options import PruneSpec

NAME = "prune-channels"
DESCRIPTION = (
    "zero the lowest-norm filters of each layer (channels coupled through adds together), "
    "before import; shrink-channels then removes them"
)


def prune_record(spec: PruneSpec, zeroed: dict, shrunk: dict) -> dict:
    """``{name, description, options, applied, report}``: what was zeroed (``zeroed``, from
    prune_model) and what shrinking made of it (``shrunk``, shrink-channels' report)."""
    report = {
        **zeroed,
        "filters_zeroed": sum(count for _, count in zeroed["layers"].values()),
        "params": shrunk.get("params"),
        "macs": shrunk.get("macs"),
        "zero_kept": shrunk.get("zero_kept", 0),
    }
    return {
        "name": NAME,
        "description": DESCRIPTION,
        "options": spec.to_json(),
        "applied": True,
        "report": report,
    }


def summary(record: dict) -> str:
    """One line for logs and `tvmedge inspect`."""
    r, o = record["report"], record["options"]
    how = f"{o['channels']:.0%} of filters" if o["channels"] else "named layers"
    text = (
        f"{how} by {o['criterion']} norm: {r['filters_zeroed']} filters in "
        f"{len(r['layers'])} layers ({r['coupled_groups']} coupled groups)"
    )
    if r.get("params"):
        text += f"; params {_n(r['params'][0])} -> {_n(r['params'][1])}"
        text += f", MACs {_n(r['macs'][0])} -> {_n(r['macs'][1])}"
    if r.get("zero_kept"):
        text += f"; {r['zero_kept']} zeroed filters could not be removed"
    return text


def _n(value: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return str(value)
