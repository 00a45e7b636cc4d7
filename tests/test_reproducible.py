"""Reproducible builds: the same model, tools, options and logs compiled twice give a
byte-identical model.so and SBOM, and manifests that differ only in the fields
tvmedge.export.manifest.VOLATILE documents (with SOURCE_DATE_EPOCH set, only in timings)."""

from __future__ import annotations

import copy
import json

from tvmedge import api
from tvmedge.export.manifest import VOLATILE


def _without(manifest: dict, paths) -> dict:
    out = copy.deepcopy(manifest)
    for path in paths:
        *parents, leaf = path.split(".")
        node = out
        for key in parents:
            node = node.get(key, {})
        node.pop(leaf, None)
    return out


def test_two_compiles_are_identical_but_for_the_volatile_fields(tiny_cnn, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01
    built = [
        api.compile(
            tiny_cnn,
            output=tmp_path / f"{name}.tvmedge",
            input_shapes={"image": (1, 3, 32, 32)},  # static: see docs/trust.md for symbolic
            log=lambda _m: None,
        )
        for name in ("a", "b")
    ]
    a, b = (r.path for r in built)
    assert (a / "model.so").read_bytes() == (b / "model.so").read_bytes()
    assert (a / "sbom.cdx.json").read_bytes() == (b / "sbom.cdx.json").read_bytes()
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (a, b))
    assert ma["created"] == mb["created"] == "2026-01-01T00:00:00+00:00"
    assert _without(ma, VOLATILE) == _without(mb, VOLATILE)
    assert ma["build"]["seconds"].keys() == mb["build"]["seconds"].keys()
