"""Threads like ONNX Runtime: a loaded model runs on the physical cores unless told otherwise,
and the count is the loader's, not the manifest's."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tvmedge import machine, runtime
from tvmedge.errors import FeedError
from tvmedge.layout import MANIFEST

PROBE = """
import json, sys
import numpy as np
from tvmedge import runtime
import tvm_ffi
x = {"image": np.zeros((1, 3, 32, 32), np.float32)}
a = runtime.load(sys.argv[1])
pool = tvm_ffi.get_global_func("runtime.NumThreads")  # libtvm_runtime is loaded now
a.run(None, x)
seen = [a.threads, pool()]
b = runtime.load(sys.argv[1], threads=1)
b.run(None, x)
seen += [pool()]
a.run(None, x)  # the pool is per process: running a resizes it back
seen += [pool()]
print(json.dumps(seen))
"""


def _probe(artifact, env_threads=None):
    import os

    env = {k: v for k, v in os.environ.items() if k != "TVM_NUM_THREADS"}
    if env_threads is not None:
        env["TVM_NUM_THREADS"] = env_threads
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(artifact)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_default_is_the_physical_cores_and_each_model_keeps_its_count(tiny_artifact):
    cores = machine.physical_cores()
    assert _probe(tiny_artifact) == [cores, cores, 1, cores]


def test_tvm_num_threads_overrides_the_default(tiny_artifact):
    assert _probe(tiny_artifact, env_threads="1")[:2] == [1, 1]


def test_the_manifest_does_not_fix_the_thread_count(tiny_artifact):
    manifest = json.loads((tiny_artifact / MANIFEST).read_text())
    assert "threads" not in json.dumps(manifest["runtime"])
    assert runtime.load(tiny_artifact, threads=3).threads == 3


@pytest.mark.parametrize("bad", [0, -2, 1.5, "4", True])
def test_bad_thread_counts_are_refused(tiny_artifact, bad):
    with pytest.raises(FeedError, match="threads must be a positive integer"):
        runtime.load(tiny_artifact, threads=bad)


def test_a_bad_tvm_num_threads_is_one_clear_error(tiny_artifact, monkeypatch):
    monkeypatch.setenv("TVM_NUM_THREADS", "many")
    with pytest.raises(FeedError, match="TVM_NUM_THREADS='many' is not a positive integer"):
        runtime.load(tiny_artifact)
    monkeypatch.delenv("TVM_NUM_THREADS")
    out = runtime.load(tiny_artifact).run(None, {"image": np.zeros((2, 3, 32, 32), np.float32)})
    assert out[0].shape == (2, 10)
