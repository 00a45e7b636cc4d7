"""BENCHMARKS.md and the plots from run files alone (nothing is run): a section per machine,
the newest run of each, every figure from its file; malformed files refused by name; the
tuning-progress curve from a log with search history."""

from __future__ import annotations

import copy
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import plots, render, tuning_progress
from benchmarks.model_set import ROOT
from benchmarks.schema import SCHEMA, RunFileError, validate
from tvmedge.tune.cache import META, RECORDS, WORKLOADS


def _engine(p50: float, spread: float, threads: int = 2) -> dict:
    runs = [p50 - spread, p50, p50 + spread, p50, p50 - spread / 2, p50 + spread / 2]
    return {
        "latency": {"p50_ms": p50, "cv": spread / p50, "runs": len(runs)},
        "latencies_ms": runs,
        "memory": {"peak_rss_bytes": 80 << 20},
        "threads_applied": threads,
    }


def _report(tvm_ms: float, ort_ms: float, size: int, top1: float = 1.0) -> dict:
    return {
        "engines": {"tvmedge": _engine(tvm_ms, 0.1), "onnxruntime": _engine(ort_ms, 0.2)},
        "agree": True,
        "agreement": [{"output": "y", "ok": True}],
        "artifact": {"bytes": size, "target": "host", "tuned": True},
        "model": {"onnx_bytes": 4 << 20},
        "ratio_p50": tvm_ms / ort_ms,
        "accuracy": {"inputs": 8, "top1_agreement": top1, "max_rel": 2e-6},
        "warnings": [],
    }


def _run(cpu: str, mcpu: str, date: str, commit: str, tvm_ms: float) -> dict:
    return {
        "schema": SCHEMA,
        "date": date,
        "commit": commit * 40,
        "dirty": False,
        "command": "python -m benchmarks",
        "machine": {
            "cpu": cpu,
            "mcpu": mcpu,
            "cores": 2,
            "arch": "x86_64",
            "governor": None,
            "flags_used": ["avx2", "fma"],
            "target": "host",
            "logical_cores": 2,
            "target_mcpu": mcpu,
        },
        "versions": {
            "tvmedge": "0.1.0",
            "apache-tvm": "0.27.0.post1",
            "onnxruntime": "1.31.1",
            "onnx": "1.23.2",
            "numpy": "2.4.6",
            "python": "3.11.7",
        },
        "settings": {
            "target": "host",
            "threads": 2,
            "warmup": 20,
            "repeat": 30,
            "rounds": 3,
            "max_cv": 0.1,
            "accuracy_inputs": 8,
        },
        "techniques": {"fp32": "baseline", "int8": "int8"},
        "techniques_unavailable": {},
        "models": {
            "squeezenet": {
                "file": "squeezenet.onnx",
                "source": "onnx wheel",
                "onnx_bytes": 4 << 20,
                "techniques": {
                    "fp32": _report(tvm_ms, 2.0, 8 << 20),
                    "int8": _report(tvm_ms / 2, 1.6, 2 << 20, top1=0.875)
                    | {
                        "technique": {"name": "int8", "ort_model": "ONNX Runtime's own int8"},
                        "ort_accuracy": {"top1_agreement": 0.75, "max_rel": 0.05},
                        "ort_model_bytes": 1 << 20,
                    },
                },
                "errors": {},
            },
        },
        "tuning_progress": [],
    }


def _write(folder: Path, run: dict) -> Path:
    from benchmarks.provenance import machine_key

    path = folder / machine_key(run["machine"]) / f"{run['date'][:10]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run))
    return path


def test_each_machine_gets_its_section_from_its_newest_run(tmp_path):
    old = _write(tmp_path, _run("AMD EPYC", "znver4", "2026-12-01T10:00:00+00:00", "a", 1.50))
    new = _write(tmp_path, _run("AMD EPYC", "znver4", "2026-12-04T10:00:00+00:00", "b", 1.25))
    arm = _write(tmp_path, _run("Cortex-A72", "cortex-a72", "2026-12-02T10:00:00+00:00", "c", 9))
    text = render.render(render.load_runs(tmp_path), tmp_path, tmp_path / "plots")
    assert text.count("\n## AMD EPYC: znver4, 2 cores") == 1
    assert "\n## Cortex-A72: cortex-a72, 2 cores" in text
    # the newer run of a machine replaces its figures; the other machine keeps its section
    epyc = text.split("## AMD EPYC")[1].split("\n## ")[0]
    assert f"commit {'b' * 10}" in epyc and "| squeezenet | 1.250 (" in epyc
    assert (
        "1.500" not in epyc and f"Earlier runs on this machine: {old.relative_to(tmp_path)}" in epyc
    )
    assert str(new.relative_to(tmp_path)) in epyc
    assert "| 9.000 (" in text.split("## Cortex-A72")[1] and str(arm.relative_to(tmp_path)) in text
    # the technique table: size and latency against fp32, accuracy against ORT fp32
    assert "| int8 | tvmedge | 2.0 | 4.00x | 0.625 | 2.00x | 3.20x | top-1 88%" in epyc
    assert "| fp32 | onnxruntime | 4.0 | 1.00x | 2.000 | 1.00x | 1.00x | reference |" in epyc
    # ONNX Runtime's own int8 model, timed in the int8 bench: against ORT's fp32
    assert "| int8 | onnxruntime | 1.0 | 4.00x | 1.600 | 1.25x | 1.25x | top-1 75%" in epyc
    # p10-p90 of the latencies in the file (numpy's linear percentiles of the six runs)
    assert "| 1.250 (1.175-1.325) |" in epyc


def test_render_only_rewrites_benchmarks_md_from_the_files(tmp_path):
    _write(tmp_path / "runs", _run("AMD EPYC", "znver4", "2026-12-04T10:00:00+00:00", "d", 1.4))
    out = tmp_path / "BENCHMARKS.md"
    cmd = [sys.executable, "-m", "benchmarks", "--render-only", "--no-plots"]
    cmd += ["--results", str(tmp_path / "runs"), "--output", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "| squeezenet | 1.400 (" in out.read_text()

    broken = _run("AMD EPYC", "znver4", "2026-12-05T10:00:00+00:00", "e", 1.0)
    del broken["models"]["squeezenet"]["techniques"]["fp32"]["engines"]["tvmedge"]["latencies_ms"]
    _write(tmp_path / "runs", broken)
    before = out.read_text()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "techniques.fp32.engines.tvmedge lacks latencies_ms" in line
    assert out.read_text() == before  # nothing half-written


def test_validate_names_what_is_missing():
    run = _run("AMD EPYC", "znver4", "2026-12-04T10:00:00+00:00", "f", 1.0)
    assert validate(copy.deepcopy(run)) == run
    del run["machine"]["governor"]
    with pytest.raises(RunFileError, match="machine lacks governor"):
        validate(run)
    with pytest.raises(RunFileError, match="schema 'other/1'"):
        validate({**_run("x", "y", "2026", "g", 1.0), "schema": "other/1"})


def _log_with_history(folder: Path) -> Path:
    """A log folder of two real shipped workloads, with trials in a known order."""
    shipped = next((ROOT / "tuning-logs" / "x86-64-avx512").glob(f"*/{META}")).parent
    workloads = gzip.decompress((shipped / f"{WORKLOADS}.gz").read_bytes()).decode().splitlines()
    records = gzip.decompress((shipped / f"{RECORDS}.gz").read_bytes()).decode().splitlines()
    template = {int(json.loads(r)[0]): json.loads(r)[1] for r in records[:2]}
    order = [(0, 3.0), (1, 5.0), (0, 2.0), (0, 2.5), (1, 4.0), (0, 1.0)]  # ms per trial
    lines = []
    for index, ms in order:
        record = copy.deepcopy(template[index])
        record[1] = [ms / 1e3]
        lines.append(json.dumps([index, record]))
    folder.mkdir(parents=True)
    (folder / WORKLOADS).write_text("\n".join(workloads[:2]) + "\n")
    (folder / RECORDS).write_text("\n".join(lines) + "\n")
    (folder / META).write_text(json.dumps({"target_name": "x86-64-avx512"}))
    return folder


def test_tuning_curve_is_the_sum_of_best_times_so_far(tmp_path):
    curve = tuning_progress.curve(_log_with_history(tmp_path / "log"))
    assert curve["kernels"] == 2 and curve["trials"] == 6
    # before any improvement: 3 + 5 ms; then 2 + 5, 2 + 5, 2 + 4, 1 + 4
    totals = [round(ms, 9) for _, ms in curve["points"]]
    assert totals == [8.0, 8.0, 7.0, 7.0, 6.0, 5.0]
    # the shipped logs keep one record per kernel: no history, no curve
    shipped = next((ROOT / "tuning-logs" / "x86-64-avx512").glob(f"*/{META}")).parent
    assert tuning_progress.curve(shipped) is None


def test_plots_are_drawn_from_the_files(tmp_path):
    run = _run("AMD EPYC", "znver4", "2026-12-04T10:00:00+00:00", "h", 1.25)
    run["tuning_progress"] = [tuning_progress.curve(_log_with_history(tmp_path / "log"))]
    path = _write(tmp_path / "runs", run)
    made = plots.draw([(path, run)], tmp_path / "plots")
    assert sorted(p.name for p in made) == ["latency.png", "tuning-progress.png"]
    for png in made:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    text = render.render([(path, run)], tmp_path, tmp_path / "plots")
    assert "![latency per model, AMD EPYC](plots/znver4-2c-amd-epyc/latency.png)" in text
    assert "![tuning progress](plots/tuning-progress.png)" in text
    assert "x86-64-avx512" in text and "8.000 -> 5.000 ms" in text
