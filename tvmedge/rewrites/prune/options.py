"""``--prune channels=0.3,criterion=l1,NODE=0.5,skip=NODE``: what to prune, checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from tvmedge.errors import PruneError

CRITERIA = ("l1", "l2")


@dataclass(frozen=True)
class PruneSpec:
    """Zero ``channels`` of every prunable layer's filters (or ``layers[node]`` of that
    node's), the lowest by ``criterion`` norm; nodes in ``skip`` keep theirs."""

    channels: float | None = None
    criterion: str = "l1"
    layers: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    skip: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {
            "channels": self.channels,
            "criterion": self.criterion,
            "layers": dict(self.layers),
            "skip": list(self.skip),
        }


def _ratio(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 < value < 1.0:
        raise PruneError(
            f"--prune {key}={text}: a prune ratio must be a number strictly between 0 and 1 "
            "(the fraction of filters to zero), e.g. channels=0.3"
        )
    return value


def parse_prune(text: str) -> PruneSpec:
    """``channels=R,criterion=l1|l2,NODE=R,skip=NODE,...`` (``skip`` may repeat)."""
    channels, criterion, layers, skip = None, "l1", {}, []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise PruneError(
                f"--prune: '{item}' is not KEY=VALUE; write e.g. "
                "--prune channels=0.3,criterion=l1,conv1=0.5,skip=fc"
            )
        if key == "channels":
            channels = _ratio(key, value)
        elif key == "criterion":
            if value not in CRITERIA:
                raise PruneError(
                    f"--prune: unknown criterion '{value}'; valid: {', '.join(CRITERIA)}"
                )
            criterion = value
        elif key == "skip":
            skip.append(value)
        else:
            layers[key] = _ratio(key, value)
    if channels is None and not layers:
        raise PruneError(
            "--prune: give a ratio for every layer (channels=0.3) or for named nodes (NODE=0.5)"
        )
    return PruneSpec(channels, criterion, MappingProxyType(layers), tuple(skip))
