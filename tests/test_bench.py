"""tvmedge bench: the CSV and JSON it writes, the spread warning, threads applied to both
engines, and agreement that fails on an artifact that computes the wrong thing."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import onnx
import pytest
from conftest import cli
from onnx import TensorProto, helper

from tvmedge import api
from tvmedge.bench.compare import spread_warnings
from tvmedge.bench.report import CSV_FIELDS
from tvmedge.layout import MANIFEST, sha256_file


def _engine(latencies_ms: list[float]) -> dict:
    from tvmedge.bench.timing import summarize

    return {"latency": summarize([ms / 1e3 for ms in latencies_ms])}


def test_spread_warning_names_the_noisy_engine_its_cv_and_what_to_do():
    steady = _engine([2.0, 2.0, 2.0, 2.02])  # cv 0.4%
    noisy = _engine([1.0, 3.0, 1.0, 3.0])  # cv 50%
    (warning,) = spread_warnings({"onnxruntime": steady, "tvmedge": noisy})
    assert warning.startswith("tvmedge latency varies")
    assert "coefficient of variation 50%, above 10%" in warning
    assert "--repeat" in warning and "--rounds" in warning
    assert spread_warnings({"onnxruntime": steady, "tvmedge": noisy}, max_cv=0.6) == []
    assert len(spread_warnings({"onnxruntime": steady, "tvmedge": noisy}, max_cv=0.0)) == 2


def test_bench_writes_csv_and_json_and_warns_past_max_cv(tiny_cnn, tiny_artifact, tmp_path):
    out_csv, out_json = tmp_path / "b.csv", tmp_path / "b.json"
    proc = cli(
        "bench", tiny_cnn, "--artifact", tiny_artifact, "--repeat", "5", "--warmup", "1",
        "--threads", "1", "--max-cv", "0", "--csv", out_csv, "--json", out_json,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # any real timing has some spread: with --max-cv 0 both engines are named
    for engine in ("tvmedge", "onnxruntime"):
        assert f"warning: {engine} latency varies a lot" in proc.stdout
    with open(out_csv, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == CSV_FIELDS
    assert [r["engine"] for r in rows] == ["onnxruntime", "tvmedge"]
    report = json.loads(out_json.read_text())
    for row in rows:
        engine = report["engines"][row["engine"]]
        assert float(row["p50_ms"]) == pytest.approx(engine["latency"]["p50_ms"])
        assert int(row["runs"]) == 5 and row["threads"] == row["threads_applied"] == "1"
        assert int(row["peak_rss_bytes"]) == engine["memory"]["peak_rss_bytes"] > 0
        assert float(row["cv"]) > 0
    assert rows[1]["size_bytes"] == str(report["artifact"]["bytes"])
    assert rows[0]["size_bytes"] == str(tiny_cnn.stat().st_size)
    assert report["settings"]["max_cv"] == 0.0
    assert len(report["warnings"]) == 2


def test_bench_refuses_a_csv_path_it_cannot_write_before_running(tiny_cnn, tiny_artifact, tmp_path):
    (tmp_path / "file").write_text("")
    for bad, why in ((tmp_path, "is a directory"), (tmp_path / "file" / "b.csv", "cannot write")):
        proc = cli("bench", tiny_cnn, "--artifact", tiny_artifact, "--csv", bad)
        assert proc.returncode == 2, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith("tvmedge: error: --csv") and why in line
        assert "benchmarking" not in proc.stderr


def test_bench_refuses_a_negative_max_cv(tiny_cnn, tiny_artifact):
    proc = cli("bench", tiny_cnn, "--artifact", tiny_artifact, "--max-cv", "-1")
    assert proc.returncode == 2
    assert "--max-cv must be >= 0" in proc.stderr and "Traceback" not in proc.stderr


def test_threads_are_applied_to_both_engines(tiny_cnn, tiny_artifact):
    for threads in (1, 2):
        report = api.bench(
            tiny_cnn, artifact=tiny_artifact, threads=threads, warmup=0, repeat=2, log=print
        )
        # what each engine reports it runs with: ORT's session options, TVM's pool size
        applied = {e: r["threads_applied"] for e, r in report["engines"].items()}
        assert applied == {"onnxruntime": threads, "tvmedge": threads}


def _scale_model(path, weight: float):
    """y = x * W, W a [4] constant: two of these differ only in the weight."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    w = helper.make_tensor("w", TensorProto.FLOAT, [4], np.full(4, weight, np.float32))
    graph = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["y"])], "scale", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def test_agreement_fails_on_an_artifact_that_computes_the_wrong_thing(tmp_path):
    right = _scale_model(tmp_path / "right.onnx", 2.0)
    wrong = _scale_model(tmp_path / "wrong.onnx", 2.5)
    built = api.compile(wrong, output=tmp_path / "wrong.tvmedge", log=lambda _m: None).path
    # relabel it as compiled from the right model: bench's sha256 gate no longer stops it,
    # so only the numbers can tell
    fake = tmp_path / "fake.tvmedge"
    shutil.copytree(built, fake)
    manifest = json.loads((fake / MANIFEST).read_text())
    manifest["source"]["sha256"] = sha256_file(right)
    (fake / MANIFEST).write_text(json.dumps(manifest))
    proc = cli("bench", right, "--artifact", fake, "--repeat", "2", "--json", tmp_path / "r.json")
    assert proc.returncode == 3, proc.stderr
    assert "MISMATCH" in proc.stdout
    assert "outputs differ from ONNX Runtime" in proc.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    (row,) = report["agreement"]
    assert report["agree"] is False and row["ok"] is False
    # |2.5x - 2x| / |2x| is 25% everywhere
    assert row["max_rel"] == pytest.approx(0.25, rel=1e-5)
