"""`tvmedge tune`: plan from what the cache already holds, tune in a child process, report.

The plan gives each task up to ``trials_per_task`` measured trials in all, minus what the cache
already has for it, so a second run does no repeated work and an interrupted run resumes. The
child writes every measured batch to the cache; a time budget or Ctrl-C stops it, and what it
measured stays.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tvmedge.errors import InternalError


class TuneError(InternalError):
    """The tuning process failed (a bug or a TVM failure, not the user's input)."""


def plan_trials(states, cap: int, budget: int | None) -> dict[str, int]:
    """Trials per task for this run: up to ``cap`` in all, minus what is already measured."""
    remaining = {s.name: max(cap - s.records, 0) for s in states}
    planned = {name: n for name, n in remaining.items() if n > 0}
    if budget is not None and sum(planned.values()) > budget:
        planned = _shrink(planned, budget)
    return planned


def _shrink(planned: dict[str, int], budget: int) -> dict[str, int]:
    # An even share first, so small tasks are not starved by big ones.
    share = max(budget // max(len(planned), 1), 1)
    out = {name: min(n, share) for name, n in planned.items()}
    spare = budget - sum(out.values())
    for name, n in sorted(planned.items(), key=lambda kv: -kv[1]):
        extra = min(n - out[name], max(spare, 0))
        out[name] += extra
        spare -= extra
    return {name: n for name, n in out.items() if n > 0}


def run_worker(plan: dict, *, minutes: float | None, progress: Callable[[dict], None]) -> dict:
    """Run the tuning process; returns {"stopped": why, "log": path, "last": last event}."""
    work = Path(plan["work_dir"])
    (work / "plan.json").write_text(json.dumps(plan, indent=2))
    log_path = work / "tune.log"
    deadline = time.monotonic() + minutes * 60 if minutes else None
    stopped, last, buffer = "finished", {}, b""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tvmedge.tune.worker", str(work / "plan.json")],
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            while True:
                wait = None if deadline is None else max(deadline - time.monotonic(), 0)
                ready, _, _ = select.select([proc.stdout], [], [], wait)
                if not ready:  # the time budget is spent
                    stopped = "time budget"
                    _stop(proc)
                    break
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    event = json.loads(line)
                    last = event if event.get("event") == "batch" else last
                    progress(event)
        except KeyboardInterrupt:
            stopped = "interrupted"
            _stop(proc)
        code = proc.wait()
    if stopped == "finished" and code != 0:
        tail = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
        raise TuneError(
            f"the tuning process failed (exit {code}): {(tail or ['no output'])[-1][:300]} "
            f"(full log: {log_path})"
        )
    return {"stopped": stopped, "log": str(log_path), "last": last}


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT first: the worker finishes writing the batch in hand; SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def new_work_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tvmedge-tune-"))
