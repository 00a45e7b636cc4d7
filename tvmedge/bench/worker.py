"""A fresh process that loads one engine, times it, and reports latency and memory.

Run as ``python -m tvmedge.bench.worker ENGINE MODEL INPUTS.npz RESULT.json OUTPUTS.npz
--threads N --warmup W --repeat R``. Thread settings go into the environment before any
engine is imported, so both engines start from the same state.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from tvmedge import no_torch


def _args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("engine", choices=("tvmedge", "onnxruntime"))
    p.add_argument("model")
    p.add_argument("inputs")
    p.add_argument("result")
    p.add_argument("outputs")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--warmup", type=int, required=True)
    p.add_argument("--repeat", type=int, required=True)
    return p.parse_args(argv)


def _session(engine: str, model: str, threads: int):
    if engine == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    from tvmedge import runtime

    return runtime.load(model, threads=threads)


def threads_applied(engine: str, session) -> int:
    """The thread count the engine itself reports it runs with (not the one asked for)."""
    if engine == "onnxruntime":
        return session.get_session_options().intra_op_num_threads
    import tvm_ffi

    return int(tvm_ffi.get_global_func("runtime.NumThreads")())  # the pool's size after a run


def peak_rss_bytes() -> int:
    """VmHWM: the peak resident set of this address space. (ru_maxrss is not usable here:
    Linux keeps the pre-exec peak, so a child would report its parent's.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _import_engine(engine: str) -> None:
    if engine == "onnxruntime":
        import onnxruntime  # noqa: F401
    else:
        import tvmedge.runtime  # noqa: F401


def main(argv=None) -> int:
    args = _args(argv)
    for var in ("OMP_NUM_THREADS", "TVM_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    no_torch.block()  # tvm_ffi imports torch when installed; nothing here needs it
    import numpy as np
    import psutil

    from tvmedge.bench.timing import summarize, time_runs

    _import_engine(args.engine)
    baseline = psutil.Process().memory_info().rss
    with np.load(args.inputs) as data:
        feeds = {k: data[k] for k in data.files}
    start = time.perf_counter()
    session = _session(args.engine, args.model, args.threads)
    load_s = time.perf_counter() - start
    outputs = session.run(None, feeds)
    latencies = time_runs(lambda: session.run(None, feeds), warmup=args.warmup, repeat=args.repeat)
    peak = peak_rss_bytes()
    names = [o.name for o in session.get_outputs()]
    np.savez(args.outputs, **dict(zip(names, outputs, strict=True)))
    result = {
        "engine": args.engine,
        "threads": args.threads,
        "threads_applied": threads_applied(args.engine, session),
        "load_s": load_s,
        "latency": summarize(latencies),
        "latencies_ms": [x * 1e3 for x in latencies],
        "memory": {
            "baseline_rss_bytes": baseline,
            "peak_rss_bytes": peak,
            "model_peak_bytes": max(peak - baseline, 0),
        },
    }
    with open(args.result, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
