"""One real run of the suite on a tiny model: its JSON holds the commit, the machine, the
versions and the settings, its CSV one row per engine, and BENCHMARKS.md renders from it."""

from __future__ import annotations

import csv
import re

from benchmarks import render, suite
from benchmarks.__main__ import write_run
from benchmarks.schema import validate
from tvmedge import machine
from tvmedge.bench.report import CSV_FIELDS


def test_a_suite_run_is_a_complete_json_and_csv(tiny_cnn, tmp_path):
    run = suite.run(
        {"tiny": tiny_cnn},
        threads=1,
        warmup=1,
        repeat=3,
        rounds=2,
        accuracy_inputs=3,
        technique_names=["fp32"],
        tuning_folders=[],
        command="test",
        log=print,
    )
    validate(run)
    assert re.fullmatch(r"[0-9a-f]{40}", run["commit"]) and isinstance(run["dirty"], bool)
    assert {k: run["machine"][k] for k in ("cpu", "mcpu", "cores")} == machine.fingerprint()
    assert set(run["machine"]["flags_used"]) <= machine.cpu_flags()
    assert run["settings"] | {"threads": 1, "repeat": 3, "rounds": 2} == run["settings"]
    report = run["models"]["tiny"]["techniques"]["fp32"]
    assert report["agree"] is True and run["models"]["tiny"]["errors"] == {}
    for engine in report["engines"].values():
        assert engine["threads_applied"] == 1 and len(engine["latencies_ms"]) == 6
    assert report["accuracy"] == {
        "inputs": 3,
        "seeds": [1000, 1002],
        "top1_agreement": 1.0,
        "max_rel": report["accuracy"]["max_rel"],
    }
    assert 0 <= report["accuracy"]["max_rel"] < 1e-3

    path = write_run(run, tmp_path / "runs")
    with open(path.with_suffix(".csv"), newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == ("technique", *CSV_FIELDS)
    assert [(r["technique"], r["model"], r["engine"]) for r in rows] == [
        ("fp32", "tiny", "onnxruntime"),
        ("fp32", "tiny", "tvmedge"),
    ]
    text = render.render(render.load_runs(tmp_path / "runs"), tmp_path, tmp_path / "plots")
    p50 = report["engines"]["tvmedge"]["latency"]["p50_ms"]
    assert f"| tiny | {render._ms(p50)} (" in text
    assert f"commit {run['commit'][:10]}" in text
