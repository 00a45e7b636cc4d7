"""Schedules transferred from the nearest tuned workload of the same kind, with a real
MetaSchedule search record and real compiles checked against ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import cli
from onnx import TensorProto, helper, numpy_helper

from tvmedge import api, targets
from tvmedge.tune.transfer import Transfer, is_search_trace, kind_of, refit_tile

FAST = ("--trials-per-task", "4", "--trials-per-iter", "2", "--builder-workers", "1")


def conv_model(path: Path, *, cin: int, cout: int, size: int) -> Path:
    """x[1, cin, size, size] -> 3x3 Conv (pad 1) -> Relu: a direct conv kernel (fewer than 16
    input channels, so the winograd rewrite keeps it)."""
    rng = np.random.default_rng(cin * 100 + cout)
    w = (rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(9 * cin)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, size, size])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def conv_task(model: Path):
    from tvmedge.pipeline import search_target, tuning_module
    from tvmedge.tune.tasks import extract

    target = targets.get("host")
    tasks = extract(tuning_module(model, {}, target), search_target(target))
    (conv,) = [t for t in tasks if "conv2d" in t.task_name]
    return conv.dispatched[0]["main"]


def test_refit_tile_keeps_the_inner_factors_that_divide():
    assert refit_tile([7, 2, 4, 16], 896, 64) == [7, 2, 4, 16]  # same extent: unchanged
    assert refit_tile([7, 2, 4, 16], 3136, 64) == [49, 1, 4, 16]
    assert refit_tile([1, 1, 2, 30], 14, 64) == [1, 1, 1, 14]  # 14 % 30: largest divisor <= 30
    assert refit_tile([2, 8], 12, 4) == [3, 4]  # the innermost cap holds
    for factors, extent in (([3, 5, 7], 1000), ([1, 64], 7), ([4, 4, 4, 4], 96)):
        out = refit_tile(factors, extent, 64)
        assert int(np.prod(out)) == extent and len(out) == len(factors)


def test_kernels_differing_only_in_shape_are_one_kind(tmp_path):
    small = kind_of(conv_task(conv_model(tmp_path / "a.onnx", cin=8, cout=32, size=14)))
    large = kind_of(conv_task(conv_model(tmp_path / "b.onnx", cin=12, cout=48, size=10)))
    assert small.text == large.text
    assert small.shape != large.shape and len(small.shape) == len(large.shape)
    assert 8 in small.shape and 12 in large.shape


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A conv tuned with a short real search, then a cache that holds only its search
    records: the default-schedule seeds are dropped, so whatever transfers is a replayed
    MetaSchedule trace."""
    from tvmedge.tune.cache import TuningCache, copy_records

    root = tmp_path_factory.mktemp("transfer")
    model = conv_model(root / "a.onnx", cin=8, cout=32, size=14)
    proc = cli(
        "tune",
        model,
        "--tuning-logs",
        root / "full",
        "--trials-per-task",
        "6",
        "--trials-per-iter",
        "6",
        "--builder-workers",
        "1",
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    target = targets.get("host")
    full = TuningCache(root / "full", target.name, target.tvm_target()).load(print)
    searched = [r for r in full.get_all_tuning_records() if is_search_trace(r.trace)]
    assert searched, "the search measured no candidate"
    only = TuningCache(root / "searched", target.name, target.tvm_target())
    with only.writing() as db:
        copy_records(searched, db)
    return root


@pytest.mark.slow  # minutes of real tuning on 2 cores: `make test-slow` (the default run's budget)
def test_a_search_record_replays_on_a_kernel_of_other_shapes(searched):
    from tvmedge.pipeline import rule_variants, search_target
    from tvmedge.tune.cache import TuningCache

    target = targets.get("host")
    database = TuningCache(searched / "searched", target.name, target.tvm_target()).load(print)
    finder = Transfer(database, search_target(target), rule_variants(target))
    other = conv_task(conv_model(searched / "b.onnx", cin=12, cout=48, size=10))
    found = finder.candidates(other)
    assert found, "no schedule transferred to a conv of the same kind"
    source, sch = found[0]
    assert is_search_trace(source.record.trace) and "searched schedule" in source.describe()
    assert "conv2d" in source.describe()
    # the replayed schedule carries the source's sampled decisions, refitted to 24/48/10x10
    assert is_search_trace(sch.trace) and "T.parallel" in sch.mod.script()


def test_compile_uses_the_transferred_schedule_and_matches_onnxruntime(searched, tmp_path):
    model = conv_model(tmp_path / "b.onnx", cin=12, cout=48, size=10)
    messages: list[str] = []
    result = api.compile(
        model, output=tmp_path / "b.tvmedge", tuning_logs=searched / "searched", log=messages.append
    )
    coverage = result.manifest["tuning"]["coverage"]
    (kernel,) = [k for k in coverage["transferred"] if "conv2d" in k]
    assert "searched schedule" in coverage["transferred"][kernel]
    assert any("transferred from similar tuned kernels" in m for m in messages)
    assert kernel in coverage["untuned"]  # no record of its own: --error-on-untuned still fails
    x = np.random.default_rng(3).standard_normal((1, 12, 10, 10)).astype(np.float32)
    _, ours = api.run(result.path, inputs={"x": x})
    (ref,) = ort.InferenceSession(str(model)).run(None, {"x": x})
    np.testing.assert_allclose(ours["y"], ref, rtol=1e-4, atol=1e-5)

    plain = api.compile(
        model,
        output=tmp_path / "plain.tvmedge",
        tuning_logs=searched / "searched",
        transfer=False,
        log=lambda _m: None,
    )
    assert plain.manifest["tuning"]["coverage"]["transferred"] == {}


@pytest.mark.slow  # minutes of real tuning on 2 cores: `make test-slow` (the default run's budget)
def test_tune_seeds_a_new_kernel_with_transferred_schedules(searched, tmp_path):
    import shutil

    logs = tmp_path / "logs"
    shutil.copytree(searched / "searched", logs)
    model = conv_model(tmp_path / "b.onnx", cin=12, cout=48, size=10)
    # a short search after the seeds: it replays the measured records, transferred ones too
    proc = cli("tune", model, "--tuning-logs", logs, *FAST, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "seeded with the schedule of conv2d" in proc.stderr
    assert "transferred from similar tuned kernels" in proc.stderr
    assert "did not run" not in proc.stderr and "did not build" not in proc.stderr
    # the transferred seed was measured on the new kernel: it has a search trace of its own now
    from tvmedge.tune.cache import TuningCache

    target = targets.get("host")
    database = TuningCache(logs, target.name, target.tvm_target()).load(print)
    func = conv_task(model)
    own = [
        r
        for r in database.get_all_tuning_records()
        if kind_of(r.workload.mod["main"]).shape == kind_of(func).shape
    ]
    assert any(is_search_trace(r.trace) and r.run_secs for r in own)
