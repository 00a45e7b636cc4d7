"""Run one ONNX test case through tvmedge and through ONNX Runtime, in isolation.

A case is a model, its input data and the outputs it must give (ONNX's per-operator node
suite, the backend-test model sets, or a hand-made graph). ``run_case`` compiles it for the
host with ``tvmedge.api.compile`` at the shapes of its inputs, runs it with
``tvmedge.runtime``, compares under the onnx backend runner's rule, and does the same through
ONNX Runtime, so that a tvmedge failure can be told apart from a case no engine passes.

Each engine runs in a forked child of the calling process (which imports TVM once, so a
child costs only its own compile), with a timeout: a crash in native code or a hang is a
result (``crash``, ``timeout``), not the end of a run of 2,000 cases.

Result kinds, worst first:
    wrong    ran and gave outputs that differ from the expected ones (shape, dtype or value)
    crash    the child died by a signal
    timeout  the child gave no answer within the limit
    error    any other exception: an internal failure (tvmedge.errors.InternalError, or not a
             TvmedgeError at all), or a failure while running a compiled model
    refused  compile raised a TvmedgeError that says the input is not supported (an op, an
             attribute, a run-time shape input): an honest no
    pass     every output matches
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import re
import signal
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from tvmedge.errors import InternalError, TvmedgeError

# The onnx backend runner's defaults (onnx/backend/test/loader) for a case that sets none.
RUNNER_RTOL, RUNNER_ATOL = 1e-3, 1e-7
KINDS = ("pass", "refused", "error", "timeout", "crash", "wrong")
# --freeze-small-int-inputs: integer inputs of at most this many elements, rank 0 or 1
# (axes, shapes, pads, starts/ends, k, repeats), become initializers.
SMALL_INT_ELEMENTS = 64


@dataclass(frozen=True)
class Case:
    """A model and its data sets: each a list of inputs (in graph-input order) and the list
    of outputs it must give. Inputs are numpy arrays, lists (sequences) or None (absent)."""

    name: str
    model: onnx.ModelProto
    data_sets: tuple[tuple[list, list], ...]
    rtol: float = RUNNER_RTOL
    atol: float = RUNNER_ATOL
    frozen: tuple[str, ...] = field(default=())  # inputs made initializers, if any


def as_value(value):
    """Test data as an engine takes it: TensorProtos (float8, int4, ...) and numpy scalars
    become arrays; lists (sequences) and None (an absent optional) stay what they are."""
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, list):
        return [as_value(v) for v in value]
    return None if value is None else np.asarray(value)


def node_cases(pattern: str | None = None) -> list[Case]:
    """ONNX's per-operator node suite (onnx.backend.test.case.node), in its own order;
    ``pattern`` is a regex searched in the case name."""
    import warnings

    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():  # the generators overflow casts on purpose
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    return [
        Case(
            c.name,
            c.model,
            tuple(([as_value(v) for v in i], [as_value(v) for v in o]) for i, o in c.data_sets),
            c.rtol,
            c.atol,
        )
        for c in cases
        if pattern is None or re.search(pattern, c.name)
    ]


def graph_input_names(model: onnx.ModelProto) -> list[str]:
    weights = {t.name for t in model.graph.initializer}
    return [v.name for v in model.graph.input if v.name not in weights]


def freeze_small_int_inputs(case: Case) -> Case:
    """The case with its small integer inputs (rank <= 1, at most SMALL_INT_ELEMENTS) turned
    into initializers with the case's own values, as exported models carry axes, shapes and
    pads; both engines then get the same model and are fed the remaining inputs. A case with
    several data sets is left as it is (its sets could hold different values)."""
    if len(case.data_sets) != 1:
        return case
    inputs, outputs = case.data_sets[0]
    names = graph_input_names(case.model)
    frozen = {
        n: v
        for n, v in zip(names, inputs, strict=True)
        if isinstance(v, np.ndarray)
        and v.dtype.kind in "iu"
        and v.ndim <= 1
        and v.size <= SMALL_INT_ELEMENTS
    }
    if not frozen:
        return case
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    if model.ir_version >= 4:  # before IR 4 every initializer must also be a graph input
        kept = [v for v in model.graph.input if v.name not in frozen]
        del model.graph.input[:]
        model.graph.input.extend(kept)
    model.graph.initializer.extend(numpy_helper.from_array(v, n) for n, v in frozen.items())
    rest = [v for n, v in zip(names, inputs, strict=True) if n not in frozen]
    return replace(case, model=model, data_sets=((rest, outputs),), frozen=tuple(frozen))


# --- comparing ---------------------------------------------------------------------------


def compare(got, want, rtol: float, atol: float) -> dict:
    """One output under the onnx backend runner's rule (Runner.assert_similar_outputs): same
    shape and dtype, then np.testing.assert_allclose (NaN equal to NaN, at the same places);
    bfloat16 with rtol at least two of its ULPs. Sequences compare element by element."""
    if isinstance(want, list):
        if not isinstance(got, list | tuple) or len(got) != len(want):
            return {"ok": False, "error": f"expected a sequence of {len(want)} tensors"}
        parts = [compare(g, w, rtol, atol) for g, w in zip(got, want, strict=True)]
        return {"ok": all(p["ok"] for p in parts), "sequence": parts}
    got, want = np.asarray(got), np.asarray(want)
    row = {"shape": list(want.shape), "dtype": str(want.dtype)}
    if got.shape != want.shape:
        return {**row, "ok": False, "error": f"shape {list(got.shape)}, expected {row['shape']}"}
    if got.dtype != want.dtype:
        return {**row, "ok": False, "error": f"dtype {got.dtype}, expected {want.dtype}"}
    if want.dtype == object or want.dtype.kind in "SU":  # strings: exactly equal
        mismatches = int(np.count_nonzero(got != want))
        return {**row, "ok": mismatches == 0, "mismatches": mismatches}
    if want.dtype.name == "bfloat16":
        rtol = max(rtol, 2**-6)
    if want.dtype.kind not in "biufc":  # ml_dtypes (bfloat16, float8, int4): numpy can't promote
        got, want = got.astype(np.float32), want.astype(np.float32)
    close = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    bad = int(np.count_nonzero(~close))
    if want.dtype.kind in "fc" and want.size:
        row["nan_mismatches"] = int(np.count_nonzero(np.isnan(got) != np.isnan(want)))
        diff = np.abs(got.astype(np.complex128) - want.astype(np.complex128))
        finite = diff[np.isfinite(diff)]
        row["max_abs"] = float(finite.max()) if finite.size else 0.0
    return {**row, "ok": bad == 0, "mismatches": bad}


def compare_all(outputs: Sequence, expected: Sequence, rtol: float, atol: float) -> list[dict]:
    if len(outputs) != len(expected):
        return [{"ok": False, "error": f"{len(outputs)} outputs, expected {len(expected)}"}]
    return [
        {"output": i} | compare(g, w, rtol, atol)
        for i, (g, w) in enumerate(zip(outputs, expected, strict=True))
    ]


def mismatch_reason(checks: list[dict]) -> str:
    """One line naming what differs in each failing output."""
    parts = []
    for c in checks:
        if c["ok"]:
            continue
        where = f"output {c.get('output', '?')}" + (f" ({c['dtype']})" if "dtype" in c else "")
        if "error" in c:
            parts.append(f"{where}: {c['error']}")
        elif "sequence" in c:
            parts.append(f"{where}: sequence elements differ")
        else:
            n = int(np.prod(c["shape"]))
            worst = f", max abs error {c['max_abs']:.3g}" if "max_abs" in c else ""
            if c.get("nan_mismatches"):
                worst += f", {c['nan_mismatches']} of them NaN in one and not the other"
            parts.append(f"{where}: {c['mismatches']} of {n} elements differ{worst}")
    return "; ".join(parts)


# --- the two engines ---------------------------------------------------------------------


def input_shapes(model: onnx.ModelProto, inputs: list) -> dict[str, tuple[int, ...]]:
    """The data's shape for each input whose declared shape has symbolic dims, so the case
    compiles at the shapes it runs at (fixed dims are the model's already)."""
    shapes = {}
    declared = {v.name: v.type for v in model.graph.input}
    for name, value in zip(graph_input_names(model), inputs, strict=True):
        t = declared[name]
        if not isinstance(value, np.ndarray) or not t.HasField("tensor_type"):
            continue
        dims = t.tensor_type.shape.dim
        if len(dims) == value.ndim and any(not d.HasField("dim_value") for d in dims):
            shapes[name] = tuple(value.shape)
    return shapes


def compile_model(
    model: onnx.ModelProto, workdir: Path, shapes: dict | None = None, **options
) -> Path:
    """Compile for the host with no compile check (callers compare outputs themselves);
    returns the artifact's path."""
    from tvmedge import api

    path = workdir / "model.onnx"
    onnx.save(model, path)
    return api.compile(
        path,
        target="host",
        output=workdir / "model.tvmedge",
        input_shapes=shapes or None,
        force=True,
        check=False,
        log=lambda _m: None,
        **options,
    ).path


def tvmedge_outputs(artifact: Path, inputs: list) -> list[np.ndarray]:
    """Run a compiled artifact once; ``inputs`` in the model's input order."""
    from tvmedge import runtime

    model = runtime.load(artifact)
    names = [i.name for i in model.get_inputs()]
    if len(inputs) != len(names):  # a harness bug, not the model's: say so loudly
        raise RuntimeError(f"{len(inputs)} inputs for a model with {len(names)}")
    return model.run(None, dict(zip(names, inputs, strict=True)))


def ort_outputs(model: onnx.ModelProto, inputs: list) -> list:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {
        name: value
        for name, value in zip(graph_input_names(model), inputs, strict=True)
        if value is not None  # an absent optional input is not fed
    }
    return session.run(None, feeds)


def evaluate_tvmedge(case: Case, workdir: Path) -> dict:
    """Compile, run and compare; every failure is a result with its kind, never raised."""
    times: dict[str, float] = {}
    stage = "compile"
    try:
        start = time.perf_counter()
        artifact = compile_model(
            case.model, workdir, input_shapes(case.model, case.data_sets[0][0])
        )
        times["compile_s"] = time.perf_counter() - start
        stage = "run"
        start = time.perf_counter()
        checks = []
        for inputs, expected in case.data_sets:
            outputs = tvmedge_outputs(artifact, inputs)
            checks += compare_all(outputs, expected, case.rtol, case.atol)
        times["run_s"] = time.perf_counter() - start
    except Exception as e:  # every failure is a row in the report, with its text
        refused = stage == "compile" and isinstance(e, TvmedgeError)
        kind = "refused" if refused and not isinstance(e, InternalError) else "error"
        return failure(kind, e, stage) | times
    ok = all(c["ok"] for c in checks)
    reason = "" if ok else mismatch_reason(checks)
    return {"result": "pass" if ok else "wrong", "reason": reason, "checks": checks} | times


def evaluate_ort(case: Case, _workdir: Path) -> dict:
    start = time.perf_counter()
    try:
        checks = []
        for inputs, expected in case.data_sets:
            checks += compare_all(ort_outputs(case.model, inputs), expected, case.rtol, case.atol)
    except Exception as e:  # ORT's own refusals and failures alike
        row = failure("error", e, "run") | {"run_s": time.perf_counter() - start}
        row["traceback"] = None  # ONNX Runtime's, not ours: its message says enough
        # '... FAIL : /onnxruntime_src/x.cc:256 ns::Class::Method(args) What went wrong'
        row["reason"] = re.sub(r"/onnxruntime_src/\S+ (\S.*?\) )?", "", str(e).strip())[:300]
        return row
    ok = all(c["ok"] for c in checks)
    return {
        "result": "pass" if ok else "wrong",
        "reason": "" if ok else mismatch_reason(checks),
        "run_s": time.perf_counter() - start,
    }


def failure(kind: str, e: BaseException, stage: str) -> dict:
    return {
        "result": kind,
        "stage": stage,
        "error_type": type(e).__name__,
        "reason": first_line(e),
        "traceback": traceback.format_exc(limit=-3) if kind == "error" else None,
    }


def first_line(e: BaseException, limit: int = 300) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = lines[0] if lines else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- isolation ---------------------------------------------------------------------------


def isolated(fn: Callable[..., dict], *args, timeout: float) -> dict:
    """``fn(*args, workdir)`` in a forked child with its own temporary folder, killed after
    ``timeout`` seconds; the child's answer, or a ``timeout``/``crash`` result with the tail
    of what it printed. The child's fds 1 and 2 go to a log file: native code (TVM, LLVM)
    writes there, and its tail says where a dead child was."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    with tempfile.TemporaryDirectory(prefix="tvmedge-case-") as tmp:
        workdir = Path(tmp)
        child = ctx.Process(target=_child, args=(fn, args, workdir, send), daemon=True)
        start = time.perf_counter()
        child.start()
        send.close()
        answer, timed_out = None, False
        try:
            if receive.poll(timeout):
                answer = receive.recv()
            else:
                timed_out = True
        except EOFError:  # the child died before answering
            pass
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join()
        wall_s = time.perf_counter() - start
        if answer is not None:
            return answer | {"wall_s": wall_s}
        log = (workdir / "child.log").read_text(errors="replace")[-4000:]
    if timed_out:
        reason = f"killed after {timeout:g} s without a result"
        return {"result": "timeout", "reason": reason, "log": log, "wall_s": wall_s}
    code = child.exitcode
    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    kind = "crash" if code < 0 else "error"
    return {"result": kind, "reason": f"the process died ({how})", "log": log, "wall_s": wall_s}


def _child(fn, args, workdir: Path, send) -> None:
    log = os.open(workdir / "child.log", os.O_WRONLY | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    # Python's stack at a fatal signal goes to the log too (and not to a caller's faulthandler
    # file, such as pytest's): a crash's log then says where it was.
    faulthandler.enable(file=2)
    send.send(fn(*args, workdir))
    send.close()
    os._exit(0)  # no atexit handlers or TVM teardown in a fork of the caller


def run_case(case: Case, timeout: float = 120.0) -> dict:
    """Both engines on one case: {"tvmedge": result, "onnxruntime": result}."""
    return {
        "tvmedge": isolated(evaluate_tvmedge, case, timeout=timeout),
        "onnxruntime": isolated(evaluate_ort, case, timeout=timeout),
    }
