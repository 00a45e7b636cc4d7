"""The pinned TVM stack: apache-tvm-ffi 0.1.15.post2 segfaults when MetaSchedule starts
(tvm::ffi::ToJSONGraph). These tests fail if the pin drifts or tuning stops starting."""

import subprocess
import sys
import textwrap
from importlib import metadata

TINY_TUNE = textwrap.dedent(
    """
    import tempfile
    import tvm
    from tvm import te
    from tvm.s_tir import meta_schedule as ms

    a = te.placeholder((64, 64), name="a")
    b = te.placeholder((64, 64), name="b")
    k = te.reduce_axis((0, 64), name="k")
    c = te.compute((64, 64), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="c")
    func = te.create_prim_func([a, b, c])
    target = tvm.target.Target({"kind": "llvm", "num-cores": 1})
    with tempfile.TemporaryDirectory() as work:
        db = ms.tune_tir(
            mod=func, target=target, work_dir=work, max_trials_global=4, num_trials_per_iter=2,
            builder=ms.builder.LocalBuilder(max_workers=1, timeout_sec=300),
            runner=ms.runner.LocalRunner(timeout_sec=120),
        )
        sch = db.query_schedule(tvm.IRModule({"main": func}), target=target, workload_name="main")
    print("TUNED", sch is not None)
    """
)


def test_pinned_versions():
    assert metadata.version("apache-tvm") == "0.27.0.post1"
    assert metadata.version("apache-tvm-ffi") == "0.1.14.post1"


def test_metaschedule_tuning_starts_and_finishes():
    proc = subprocess.run(
        [sys.executable, "-c", TINY_TUNE], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"tuning crashed (exit {proc.returncode}): {proc.stderr[-2000:]}"
    assert "TUNED True" in proc.stdout
