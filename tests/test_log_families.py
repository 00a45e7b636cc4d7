"""Which logs `--target host` uses when it has none of its own: only logs measured on this CPU's
microarchitecture (their meta.json's measured_on), a target of the same mcpu first."""

from __future__ import annotations

import dataclasses
import json
from types import MappingProxyType

import pytest

from tvmedge import machine, targets
from tvmedge.tune import logs
from tvmedge.tune.cache import META, TuningCache

ZEN5 = {"cpu": "AMD EPYC 9R45", "mcpu": "znver5", "cores": 2}
ZEN2 = {"cpu": "AMD EPYC 7R32", "mcpu": "znver2", "cores": 2}


def _host(mcpu: str, simd: int = 256):
    host = targets.resolve_host()
    caps = dataclasses.replace(host.capabilities, simd_width=simd)
    tvm = MappingProxyType({**host.tvm, "mcpu": mcpu})
    return dataclasses.replace(
        host, family="x86", runtime_arch="x86_64", tvm=tvm, capabilities=caps
    )


def _logs(root, name: str, measured_on):
    target = targets.get(name)
    with TuningCache(root, name, target.tvm_target(), measured_on).writing():
        pass  # an empty, valid database with its meta.json


def _find(root, host):
    notes = []
    return logs.find(host, [root], notes.append), notes


def test_portable_logs_measured_on_this_microarchitecture_are_used(tmp_path):
    _logs(tmp_path, "x86-64-avx2", ZEN5)
    found, notes = _find(tmp_path, _host("znver5"))
    assert found.fallback == "x86-64-avx2" and found.measured_on == [ZEN5]
    assert notes == [
        "host has no tuning logs of its own; using x86-64-avx2's, measured on "
        "AMD EPYC 9R45 (znver5)"
    ]


@pytest.mark.parametrize("measured_on", [ZEN5, None], ids=["other-cpu", "unrecorded"])
def test_logs_of_another_microarchitecture_are_not_applied(tmp_path, measured_on):
    _logs(tmp_path, "x86-64-avx2", measured_on)
    found, notes = _find(tmp_path, _host("rocketlake"))
    assert found.database is None and found.fallback is None
    assert len(notes) == 1 and notes[0].startswith("not applying x86-64-avx2's tuning logs")
    assert "this CPU is rocketlake" in notes[0] and "tvmedge tune MODEL --target host" in notes[0]


def test_a_target_of_the_same_mcpu_comes_before_the_portable_one(tmp_path):
    _logs(tmp_path, "x86-64-avx2", ZEN2)
    _logs(tmp_path, "x86-64-zen2", ZEN2)
    host = _host("znver2")
    assert logs.host_fallbacks(host) == ["x86-64-zen2", "x86-64-avx2"]
    found, _ = _find(tmp_path, host)
    assert found.fallback == "x86-64-zen2"


def test_an_avx512_host_falls_back_to_the_avx512_logs(tmp_path):
    _logs(tmp_path, "x86-64-avx512", ZEN5)
    found, _ = _find(tmp_path, _host("znver5", simd=512))
    assert found.fallback == "x86-64-avx512"


def test_explicit_targets_use_their_own_logs_wherever_measured(tmp_path):
    _logs(tmp_path, "x86-64-avx2", ZEN5)
    found, notes = _find(tmp_path, targets.get("x86-64-avx2"))
    assert found.database is not None and notes == []


def test_shipped_logs_say_where_they_were_measured():
    metas = sorted(logs.SHIPPED.glob(f"*/*/{META}"))
    assert metas
    for path in metas:
        measured = json.loads(path.read_text()).get("measured_on")
        assert measured and measured.get("mcpu") and measured.get("cpu"), path


def test_fingerprint_names_this_cpu():
    here = machine.fingerprint()
    assert here["mcpu"] == targets.resolve_host().tvm["mcpu"]
    assert here["cores"] == machine.physical_cores() and here["cpu"]
