"""`tvmedge profile`: per-kernel times and FLOPs of a host artifact, through the real CLI."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import cli


@pytest.fixture(scope="module")
def static_artifact(tiny_cnn, tmp_path_factory):
    """Compiled here, not the shared fixture: FLOPs are only counted for static shapes."""
    out = tmp_path_factory.mktemp("profile") / "tiny_static.tvmedge"
    done = cli("compile", tiny_cnn, "-o", out, "--input-shape", "image=1,3,32,32")
    assert done.returncode == 0, done.stderr
    return out


def test_profile_table_and_json(static_artifact, tmp_path):
    report_path = tmp_path / "profile.json"
    done = cli(
        "profile", static_artifact, "--repeat", "20", "--threads", "1", "--json", report_path
    )
    assert done.returncode == 0, done.stderr
    assert "20 runs, 1 threads" in done.stdout
    table = [ln for ln in done.stdout.splitlines() if ln.startswith("| fused_conv2d")]
    assert len(table) == 2, done.stdout  # both Conv-BN-ReLU kernels, listed by name
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert float(cells[2]) > 0 and float(cells[5]) > 0  # ms/run and MFLOP/call
    assert "peak fp32" in done.stdout and "not boost" in done.stdout

    report = json.loads(report_path.read_text())
    assert report["threads"] == 1
    convs = [k for k in report["kernels"] if k["name"].startswith("fused_conv2d")]
    # Conv 3->16, 3x3 on 32x32: 2 * 16*32*32 * 27 multiply-adds, plus bias and ReLU
    assert any(k["flops_per_call"] == 2 * 16 * 32 * 32 * 27 + 2 * 16 * 32 * 32 for k in convs)
    # the peak takes the reported clock and CPUs boost above it (this one by ~1.3x), so a
    # fraction may pass 1; twice the peak would mean FLOPs or cores counted wrong
    assert all(k["gflops"] > 0 and 0 < k["peak_fraction"] < 2 for k in convs)
    times = [k["ms_per_run"] for k in report["kernels"]]
    assert times == sorted(times, reverse=True)
    assert abs(sum(k["percent"] for k in report["kernels"]) - 100) < 1e-6
    totals = report["totals"]
    # the kernels are nearly the whole run: their sum is within a loose factor of a plain run
    # (loose: other jobs share this machine's cores)
    assert 0.3 < totals["kernel_ms_per_run"] / totals["uninstrumented_run_ms"] < 3
    assert totals["flops_per_run"] > 2e6 and totals["kernels_without_flops"] == []
    machine = report["machine"]
    assert machine["peak_gflops"] > 0 and "FMA pipes" in machine["formula"]
    assert machine["cores"] == 1 and machine["formula"].startswith("1 cores x")  # the threads used
    assert report["inputs"] == {"image": [1, 3, 32, 32]}


def test_peak_counts_the_cores_the_run_used(static_artifact, tmp_path):
    """The host's portable target names no core count: the peak must come from the threads the
    profile ran with (capped by the physical cores), or a 2-thread run reads as 2x "peak"."""
    import psutil

    physical = psutil.cpu_count(logical=False)
    report_path = tmp_path / "profile.json"
    done = cli(
        "profile",
        static_artifact,
        "--repeat",
        "3",
        "--threads",
        str(physical + 1),
        "--json",
        report_path,
    )
    assert done.returncode == 0, done.stderr
    machine = json.loads(report_path.read_text())["machine"]
    assert machine["cores"] == physical  # more threads than cores still run on the cores
    assert machine["formula"].startswith(f"{machine['cores']} cores x")


def test_symbolic_artifact_profiles_without_flops(tiny_cnn, tmp_path):
    out = tmp_path / "tiny_sym.tvmedge"
    assert cli("compile", tiny_cnn, "-o", out).returncode == 0
    done = cli("profile", out, "--dim", "batch=2", "--repeat", "2", "--top", "3")
    assert done.returncode == 0, done.stderr
    assert "top 3 of" in done.stdout and "FLOPs not counted" in done.stdout


@pytest.mark.skipif(not shutil.which("aarch64-linux-gnu-g++"), reason="no aarch64 cross compiler")
def test_foreign_artifact_is_refused(tiny_cnn, tmp_path):
    out = tmp_path / "tiny_a72.tvmedge"
    done = cli("compile", tiny_cnn, "--target", "cortex-a72", "-o", out)
    assert done.returncode == 0, done.stderr
    done = cli("profile", out)
    assert done.returncode == 2
    assert done.stderr.startswith("tvmedge: error: cannot profile")
    assert len(done.stderr.strip().splitlines()) == 1


def test_profile_alone_times_each_kernel_by_itself(static_artifact, tmp_path):
    report_path = tmp_path / "alone.json"
    done = cli(
        "profile", static_artifact, "--alone", "--repeat", "5", "--threads", "1",
        "--json", report_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "alone us" in done.stdout and "in model / alone" in done.stdout
    assert "if every kernel found its data in the caches" in done.stdout
    report = json.loads(report_path.read_text())
    kernels, totals = report["kernels"], report["totals"]
    for k in kernels:
        # a real kernel run: positive, and the same order of time as its call in the model
        # (a tiny model's data stays in the caches anyway; loose: other jobs share the cores)
        assert k["alone_us"] > 0, k
        assert 0.02 < k["alone_us"] / k["mean_us"] < 50, k
    expected = sum(k["alone_us"] * k["calls_per_run"] for k in kernels) / 1e3
    assert abs(totals["alone_ms_per_run"] - expected) < 1e-9


def test_profile_without_alone_has_no_alone_figures(static_artifact, tmp_path):
    report_path = tmp_path / "plain.json"
    done = cli("profile", static_artifact, "--repeat", "2", "--json", report_path)
    assert done.returncode == 0, done.stderr
    assert "alone us" not in done.stdout and "found its data in the caches" not in done.stdout
    report = json.loads(report_path.read_text())
    assert report["totals"]["alone_ms_per_run"] is None
    assert all("alone_us" not in k for k in report["kernels"])


def test_time_calls_follow_the_executable(static_artifact):
    """Per-call times come in the order of the VM's call instructions, one row per call."""
    import re

    import tvm
    from tvm import relax

    from tvmedge import api, profile, runtime

    model = runtime.load(static_artifact, verify=False)
    arrays = model._check_feeds(api.random_inputs(model.get_inputs(), seed=0))
    calls = profile.time_calls(model._vm, arrays, 3)
    text = relax.VMExecutable(tvm.runtime.load_module(str(static_artifact / "model.so"))).as_text()
    main = text[text.index("@main:") :]
    expected = [n for n in re.findall(r"call\s+(\S+)", main) if not n.startswith("vm.")]
    assert [name for name, _ in calls] == expected
    assert len(expected) >= 2 and all(seconds > 0 for _, seconds in calls)
