"""Tuning and the tuning-log cache, with real MetaSchedule runs on tiny models.

Each tune here measures only a few candidates (seconds to a minute on 2 cores); the point is
the cache's behaviour: reuse across models, no repeated work, concurrent writers, damaged
lines, logs of another target, resume after a kill, and remote measurement over RPC.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import cli
from onnx import TensorProto, helper, numpy_helper

from tvmedge import api
from tvmedge.tune.cache import RECORDS

# A few candidates per batch keep each tuning run short.
FAST = ("--trials-per-task", "4", "--trials-per-iter", "4", "--builder-workers", "1")


def dense_model(path: Path, *, softmax: bool, width: int = 64) -> Path:
    """x[1, width] -> MatMul -> Add -> Relu (-> Softmax): the dense kernel is shared."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Relu", ["a"], ["r" if softmax else "y"]),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["r"], ["y"], axis=-1))
    graph = helper.make_graph(
        nodes,
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])],
        [
            numpy_helper.from_array(rng.standard_normal((width, width)).astype(np.float32), "w"),
            numpy_helper.from_array(rng.standard_normal(width).astype(np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def tune(model: Path, logs: Path, *extra: str) -> subprocess.CompletedProcess:
    return cli("tune", model, "--tuning-logs", logs, *FAST, *extra, timeout=900)


def record_lines(logs: Path) -> list[str]:
    plain = [ln for f in logs.rglob(RECORDS) for ln in f.read_text().splitlines()]
    packed = [gzip.decompress(f.read_bytes()).decode() for f in logs.rglob(f"{RECORDS}.gz")]
    return plain + [ln for text in packed for ln in text.splitlines()]


@pytest.fixture(autouse=True, scope="module")
def private_tmpdir(tmp_path_factory):
    """Tuning runs use a TMPDIR of their own, with a file in it that must survive them.

    (MetaSchedule deletes the folder holding each measured artifact; an artifact written
    straight into the temp folder once took the whole of /tmp with it.)
    """
    tmp = tmp_path_factory.mktemp("tmpdir")
    sentinel = tmp / "sentinel"
    sentinel.write_text("still here")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(tmp))
        yield
    assert sentinel.read_text() == "still here"


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """Model A tuned once into a fresh cache."""
    root = tmp_path_factory.mktemp("tune")
    model = dense_model(root / "a.onnx", softmax=False)
    proc = tune(model, root / "logs")
    assert proc.returncode == 0, proc.stderr
    return root, model


def test_tuned_records_are_reused_by_another_model(tuned, tmp_path):
    root, _ = tuned
    other = dense_model(tmp_path / "b.onnx", softmax=True)  # shares the dense kernel
    result = api.compile(
        other, output=tmp_path / "b.tvmedge", tuning_logs=root / "logs", log=lambda _m: None
    )
    coverage = result.manifest["tuning"]["coverage"]
    assert result.manifest["tuning"]["applied"]
    assert coverage["tuned"] >= 1 and coverage["kernels"] == coverage["tuned"] + len(
        coverage["untuned"]
    )
    assert not any("matmul" in name for name in coverage["untuned"])
    x = np.random.default_rng(1).standard_normal((1, 64)).astype(np.float32)
    _, ours = api.run(result.path, inputs={"x": x})
    (ref,) = ort.InferenceSession(str(other)).run(None, {"x": x})
    np.testing.assert_allclose(ours["y"], ref, rtol=1e-4, atol=1e-6)


def test_the_cache_records_the_machine_it_was_measured_on(tuned):
    """A portable target's logs are applied to host only where they were measured on the
    same microarchitecture (tvmedge.tune.logs): the tune must record it."""
    from tvmedge import machine, targets
    from tvmedge.tune.cache import TuningCache

    root, _ = tuned
    host = targets.get("host")
    meta = TuningCache(root / "logs", host.name, host.tvm_target()).meta()
    assert meta["measured_on"] == machine.fingerprint()


def test_every_task_is_seeded_with_its_default_schedule(tuned):
    """A tune measures the default schedule of each task first and keeps it as a record, so
    the best record is never slower than an untuned compile and the search starts there."""
    from tvmedge import targets
    from tvmedge.pipeline import default_rules, search_target, tuning_module
    from tvmedge.schedules import default_schedule
    from tvmedge.tune.cache import TuningCache
    from tvmedge.tune.tasks import extract

    root, model = tuned
    target = targets.get("host")
    tvm_target = search_target(target)
    database = TuningCache(root / "logs", target.name, target.tvm_target()).load(print)
    seeded = 0
    for task in extract(tuning_module(model, {}, target), tvm_target):
        workload = task.dispatched[0]
        sch = default_schedule(workload["main"], default_rules(target), tvm_target)
        if sch is None:
            continue
        records = database.get_top_k(database.commit_workload(workload), 1 << 30)
        assert any(str(r.trace) == str(sch.trace) for r in records), task.task_name
        seeded += 1
    assert seeded >= 1


def test_shipped_logs_keep_the_best_record_of_each_kernel_and_still_apply(tuned, tmp_path):
    root, model = tuned
    proc = tune(model, root / "logs", "--ship", tmp_path / "shipped")
    assert proc.returncode == 0, proc.stderr
    assert "shipped" in proc.stderr
    full = [json.loads(ln) for ln in record_lines(root / "logs")]
    lean = [json.loads(ln) for ln in record_lines(tmp_path / "shipped")]
    assert 0 < len(lean) < len(full)
    workloads = [rec[0] for rec in lean]
    assert len(workloads) == len(set(workloads))  # one record per kernel

    def mean(rec):
        return sum(rec[1][1]) / len(rec[1][1])

    best_full = sorted(mean(r) for r in full)
    assert all(mean(r) in best_full for r in lean)
    assert min(mean(r) for r in lean) == best_full[0]
    result = api.compile(
        model, output=tmp_path / "a.tvmedge", tuning_logs=tmp_path / "shipped", log=print
    )
    assert result.manifest["tuning"]["applied"]
    assert result.manifest["tuning"]["coverage"]["tuned"] >= len(lean)


def test_ship_script_keeps_only_the_kernels_of_the_given_models(tuned, tmp_path):
    """scripts/ship_logs.py: a model's kernels are kept, a cache's other workloads are not."""
    root, model = tuned
    other = dense_model(tmp_path / "b.onnx", softmax=True, width=32)  # no kernel in the cache
    script = Path(__file__).parents[1] / "scripts" / "ship_logs.py"

    def ship(*models, dest, cache=root / "logs", extra=()):
        args = [sys.executable, script, "--target", "host", "--cache", cache, *extra]
        proc = subprocess.run(
            [*map(str, args), "--dest", str(dest), *map(str, models)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        return [json.loads(ln) for ln in record_lines(dest)]

    kept = ship(model, dest=tmp_path / "a")
    full = {json.loads(ln)[0] for ln in record_lines(root / "logs")}
    assert len(kept) == len(full) > 0  # every kernel of the tuned model, one record each
    assert ship(other, dest=tmp_path / "b") == []
    # --prefer: the model's kernels from another cache (here the only one that has them)
    empty = tmp_path / "empty"
    preferred = ship(
        model, dest=tmp_path / "c", cache=empty, extra=("--prefer", f"{model}={root / 'logs'}")
    )
    assert len(preferred) == len(full)
    assert ship(model, dest=tmp_path / "d", cache=empty) == []


def test_second_tune_does_no_repeated_work(tuned):
    root, model = tuned
    before = record_lines(root / "logs")
    proc = tune(model, root / "logs")
    assert proc.returncode == 0, proc.stderr
    assert "nothing to tune: every task has its trials in the cache" in proc.stdout
    assert record_lines(root / "logs") == before


def test_damaged_record_line_is_skipped_with_a_warning(tuned, tmp_path):
    root, model = tuned
    logs = tmp_path / "logs"
    subprocess.run(["cp", "-r", str(root / "logs"), str(logs)], check=True)
    records = next(logs.rglob(RECORDS))
    good = records.read_text().splitlines()
    records.write_text("\n".join([good[0][: len(good[0]) // 2], *good[1:], "{not json"]) + "\n")
    proc = cli("compile", model, "-o", tmp_path / "a.tvmedge", "--tuning-logs", logs)
    assert proc.returncode == 0, proc.stderr
    assert f"{records}:1: damaged record line skipped" in proc.stderr
    assert f"{records}:{len(good) + 1}: damaged record line skipped" in proc.stderr
    manifest = json.loads((tmp_path / "a.tvmedge" / "manifest.json").read_text())
    assert manifest["tuning"]["coverage"]["tuned"] >= 1  # the intact records still apply


def test_logs_of_another_target_definition_are_refused(tmp_path, monkeypatch):
    targets = tmp_path / "targets"
    targets.mkdir()
    shipped = (Path(__file__).parents[1] / "targets" / "x86-64-avx2.toml").read_text()
    board = shipped.replace('name = "x86-64-avx2"', 'name = "my-cpu"')
    (targets / "my-cpu.toml").write_text(board)
    monkeypatch.setenv("TVMEDGE_TARGETS_PATH", str(targets))
    model = dense_model(tmp_path / "a.onnx", softmax=False)
    proc = tune(model, tmp_path / "logs", "--target", "my-cpu")
    assert proc.returncode == 0, proc.stderr
    # The engineer changes the CPU of the target: the old logs must not apply to it.
    (targets / "my-cpu.toml").write_text(board.replace('mcpu = "haswell"', 'mcpu = "skylake"'))
    proc = cli(
        "compile",
        model,
        "--target",
        "my-cpu",
        "-o",
        tmp_path / "a.tvmedge",
        "--tuning-logs",
        tmp_path / "logs",
    )
    assert proc.returncode == 0, proc.stderr
    assert "not applying tuning logs in" in proc.stderr and "mcpu=haswell" in proc.stderr
    assert "0 of " in proc.stderr  # nothing tuned


@pytest.mark.slow  # minutes of real tuning on 2 cores: `make test-slow` (the default run's budget)
def test_two_concurrent_tuners_share_one_cache(tmp_path):
    logs = tmp_path / "logs"
    models = [dense_model(tmp_path / f"m{w}.onnx", softmax=False, width=w) for w in (32, 48)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tvmedge", "tune", str(m), "--tuning-logs", str(logs), *FAST],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in models
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
    for model in models:  # both tuners' records are there and the files load cleanly
        proc = cli(
            "compile", model, "-o", tmp_path / f"{model.stem}.tvmedge", "--tuning-logs", logs
        )
        assert proc.returncode == 0, proc.stderr
        assert "damaged" not in proc.stderr
        manifest = json.loads((tmp_path / f"{model.stem}.tvmedge/manifest.json").read_text())
        assert manifest["tuning"]["coverage"]["tuned"] >= 1


def test_killed_tuner_keeps_its_trials_and_resumes(tmp_path):
    logs = tmp_path / "logs"
    model = dense_model(tmp_path / "a.onnx", softmax=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tvmedge",
            "tune",
            str(model),
            "--tuning-logs",
            str(logs),
            "--trials-per-task",
            "64",
            "--trials-per-iter",
            "4",
            "--builder-workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while not record_lines(logs) and time.monotonic() < deadline:
        time.sleep(2)
    os.killpg(proc.pid, signal.SIGKILL)  # no chance to clean up
    proc.wait()
    kept = record_lines(logs)
    assert kept, "no batch was written before the kill"
    report = api.tune(
        model, tuning_logs=logs, trials_per_task=64, dry_run=True, log=lambda _m: None
    )
    done = {s["name"]: s["records"] for s in report["before"]}
    assert sum(done.values()) == len(kept)
    assert sum(report["planned"].values()) == 64 * len(done) - len(kept)  # resumes, no redo


def test_error_on_untuned(tmp_path):
    model = dense_model(tmp_path / "a.onnx", softmax=False)
    proc = cli(
        "compile", model, "-o", tmp_path / "a.tvmedge", "--no-tuning-logs", "--error-on-untuned"
    )
    assert proc.returncode == 2
    assert "kernels have no tuning record" in proc.stderr and "tvmedge tune" in proc.stderr
    assert not (tmp_path / "a.tvmedge").exists()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_servers(port: int, key: str, count: int, timeout: float = 60) -> None:
    from tvm import rpc

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            summary = rpc.connect_tracker("127.0.0.1", port).summary()
            free = [q for q in summary["queue_info"].items() if q[0] == key]
            if free and free[0][1]["free"] >= count:
                return
        except (RuntimeError, ConnectionError, OSError):
            pass
        time.sleep(1)
    raise TimeoutError(f"{count} RPC servers did not register with the tracker")


@pytest.mark.slow  # minutes of real tuning on 2 cores: `make test-slow` (the default run's budget)
def test_remote_tuning_through_a_loopback_rpc_tracker(tmp_path):
    """A tracker and two device servers on 127.0.0.1, as a device farm would have them."""
    key, port = "tvmedge-loopback", _free_port()
    python = sys.executable
    procs = [
        subprocess.Popen(
            [
                python,
                "-m",
                "tvm.exec.rpc_tracker",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--port-end",
                str(port + 1),
                "--silent",
            ]
        )
    ]
    try:
        time.sleep(2)
        for _ in range(2):
            server_port = _free_port()
            procs.append(
                subprocess.Popen(
                    [
                        python,
                        "-m",
                        "tvm.exec.rpc_server",
                        "--tracker",
                        f"127.0.0.1:{port}",
                        "--key",
                        key,
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(server_port),
                        "--port-end",
                        str(server_port + 1),
                        "--silent",
                    ]
                )
            )
        _wait_for_servers(port, key, count=2)
        model = dense_model(tmp_path / "a.onnx", softmax=False)
        proc = tune(
            model, tmp_path / "logs", "--rpc-tracker", f"127.0.0.1:{port}", "--rpc-key", key
        )
        assert proc.returncode == 0, proc.stderr
        assert "run errors 0" in proc.stdout, proc.stdout
        assert record_lines(tmp_path / "logs")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_local_runner_measures_with_the_thread_count_bench_uses(monkeypatch):
    """TVM's default pool here is 1 thread; kernels must be ranked as `bench` runs them."""
    from tvmedge.tune import worker

    monkeypatch.setenv("TVM_NUM_THREADS", "7")  # restored after the test
    worker.local_runner(10)
    probe = "import tvm, tvm_ffi; print(tvm_ffi.get_global_func('runtime.NumThreads')())"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert int(out.stdout) == api.default_threads()
