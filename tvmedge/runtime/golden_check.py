"""The child process of an update's golden check: load an artifact, run its golden inputs,
compare with its golden outputs (export/golden.py) under the compile check's rule.

Run as ``python -m tvmedge.runtime.golden_check ARTIFACT``; prints one JSON line
(``{"ok": true}`` or ``{"ok": false, "error": ...}``). A process of its own, so that an
artifact that crashes in native code fails the update instead of taking the updater down.
"""

from __future__ import annotations

import json
import sys


def check(artifact: str) -> dict:
    sys.modules["torch"] = None  # tvm_ffi imports torch when installed; nothing here needs it
    import numpy as np

    from tvmedge import runtime
    from tvmedge.errors import TvmedgeError
    from tvmedge.export.check import compare

    try:
        model = runtime.load(artifact, verify=False)  # the parent verified every file
        golden = model.manifest.get("golden") or {}
        with np.load(f"{artifact}/{golden['file']}", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        feeds = {s.name: arrays[f"input/{s.name}"] for s in model.get_inputs()}
        names = [o.name for o in model.get_outputs()]
        want = [arrays[f"output/{n}"] for n in names]
        got = model.run(None, feeds)
    except (TvmedgeError, KeyError, OSError, ValueError) as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    bad = [r for r in compare(names, got, want) if not r["ok"]]
    if bad:
        return {"ok": False, "error": f"output '{bad[0]['output']}' {bad[0]['error']}"}
    return {"ok": True}


if __name__ == "__main__":
    result = check(sys.argv[1])
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["ok"] else 1)
