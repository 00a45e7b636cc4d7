"""The child process of compile's check: load an artifact, run it once, then ONNX Runtime.

Run as ``python -m tvmedge.runtime.selftest ARTIFACT MODEL.onnx INPUTS.npz WORKDIR``. It loads
the artifact exactly as a user would (``tvmedge.runtime.load``: hashes, CPU features, the VM),
runs it on the inputs and writes ``tvmedge.npz``; then runs the ONNX model through ONNX
Runtime into ``onnxruntime.npz``. Before each step it prints ``step NAME`` so that the parent
knows where a crash happened; at the end one JSON line with what happened. A process of its
own, so that a library that crashes in native code cannot take the compiler down.
"""

from __future__ import annotations

import json
import sys
import time

from tvmedge import no_torch


def _step(name: str) -> None:
    print(f"step {name}", flush=True)


def main(argv: list[str]) -> int:
    artifact, model, inputs, work = argv
    no_torch.block()  # tvm_ffi imports torch when installed; nothing here needs it
    import numpy as np

    from tvmedge import runtime
    from tvmedge.errors import TvmedgeError

    with np.load(inputs) as data:
        feeds = {k: data[k] for k in data.files}
    result: dict = {"seconds": {}}
    for step in ("load", "run"):
        _step(step)
        start = time.perf_counter()
        try:
            if step == "load":
                session = runtime.load(artifact)
            else:
                outputs = session.run(None, feeds)
        except TvmedgeError as e:
            print(json.dumps({"failed": step, "error": str(e)}), flush=True)
            return 1
        result["seconds"][step] = round(time.perf_counter() - start, 4)
    names = [o.name for o in session.get_outputs()]
    np.savez(f"{work}/tvmedge.npz", **dict(zip(names, outputs, strict=True)))
    _step("reference")
    try:
        import onnxruntime as ort

        ref = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(names, feeds)
        np.savez(f"{work}/onnxruntime.npz", **dict(zip(names, ref, strict=True)))
    except Exception as e:  # ORT cannot run every model tvmedge can: no comparison then
        lines = [ln for ln in str(e).splitlines() if ln.strip()] or [type(e).__name__]
        result["reference_error"] = lines[0][:300]
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
