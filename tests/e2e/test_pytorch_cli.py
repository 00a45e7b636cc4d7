"""A CNN exported from PyTorch in the test round-trips through the real CLI."""

import json

import numpy as np
import onnx
import onnxruntime as ort
from conftest import cli

from tvmedge import api


def test_compile_run_inspect_roundtrip(tiny_cnn, tmp_path):
    artifact = tmp_path / "tiny.tvmedge"
    proc = cli("compile", tiny_cnn, "-o", artifact)
    assert proc.returncode == 0, proc.stderr
    assert "target host -> llvm" in proc.stderr  # the resolved target is printed
    assert sorted(p.name for p in artifact.iterdir()) == [
        "manifest.json",
        "model.so",
        "sbom.cdx.json",
    ]

    session = ort.InferenceSession(str(tiny_cnn), providers=["CPUExecutionProvider"])
    for batch in (1, 8):  # one artifact, symbolic batch
        x = np.random.default_rng(batch).standard_normal((batch, 3, 32, 32)).astype(np.float32)
        np.savez(tmp_path / "in.npz", image=x)
        proc = cli(
            "run", artifact, "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "o.npz"
        )
        assert proc.returncode == 0, proc.stderr
        assert f"probs: float32 [{batch}, 10]" in proc.stdout
        with np.load(tmp_path / "o.npz") as out:
            np.testing.assert_allclose(
                out["probs"], session.run(None, {"image": x})[0], rtol=1e-4, atol=1e-6
            )

    proc = cli("inspect", artifact)
    assert proc.returncode == 0, proc.stderr
    assert "image: float32[batch,3,32,32]" in proc.stdout
    assert "integrity  ok" in proc.stdout
    manifest = json.loads(cli("inspect", artifact, "--json").stdout)
    assert manifest["shapes"] == {"static": False, "symbolic_dims": ["batch"]}
    assert manifest["target"]["name"] == "host"


def test_run_with_seeded_random_inputs_is_reproducible(tiny_artifact, tmp_path):
    outs = []
    for i in range(2):
        proc = cli(
            "run",
            tiny_artifact,
            "--seed",
            "3",
            "--dim",
            "batch=2",
            "--outputs",
            tmp_path / f"o{i}.npz",
        )
        assert proc.returncode == 0, proc.stderr
        with np.load(tmp_path / f"o{i}.npz") as out:
            outs.append(out["probs"])
    assert outs[0].shape == (2, 10)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_bench_reports_latency_memory_size_and_agreement(tiny_cnn, tiny_artifact, tmp_path):
    report_path = tmp_path / "bench.json"
    proc = cli(
        "bench",
        tiny_cnn,
        "--artifact",
        tiny_artifact,
        "--repeat",
        "5",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--json",
        report_path,
    )
    assert proc.returncode == 0, proc.stderr
    for row in ("latency p50 (ms)", "latency p99 (ms)", "throughput", "peak RSS", "size on disk"):
        assert row in proc.stdout
    report = json.loads(report_path.read_text())
    assert report["agree"] is True
    assert report["settings"]["threads"] == 1
    for engine in ("tvmedge", "onnxruntime"):
        assert report["engines"][engine]["latency"]["runs"] == 5
        assert report["engines"][engine]["memory"]["peak_rss_bytes"] > 0
    (row,) = report["agreement"]
    assert row["output"] == "probs" and row["top1_agreement"] == 1.0
    assert report["ratio_p50"] > 0


def test_bench_rounds_alternate_fresh_processes_and_pool_timings(tiny_artifact, tiny_cnn):
    report = api.bench(
        tiny_cnn, artifact=tiny_artifact, repeat=4, warmup=1, rounds=3, threads=1, log=print
    )
    assert report["settings"]["rounds"] == 3
    for engine in ("tvmedge", "onnxruntime"):
        assert report["engines"][engine]["latency"]["runs"] == 12  # 4 runs in each of 3 rounds
        assert len(report["engines"][engine]["latencies_ms"]) == 12
    assert len(report["ratio_p50_rounds"]) == 3 and all(r > 0 for r in report["ratio_p50_rounds"])
    assert report["agree"] is True


def test_bench_refuses_an_artifact_of_another_model(tiny_cnn, tiny_artifact, tmp_path):
    proto = onnx.load(str(tiny_cnn))
    proto.producer_version = "changed"  # a different file: the artifact's sha256 no longer fits
    onnx.save(proto, str(tmp_path / "other.onnx"))
    proc = cli("bench", tmp_path / "other.onnx", "--artifact", tiny_artifact, "--repeat", "1")
    assert proc.returncode == 2
    assert "compiled from a different model" in proc.stderr
