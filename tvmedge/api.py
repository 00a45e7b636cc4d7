"""The library surface: everything the CLI does, callable with keyword arguments."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tvmedge import rewrites as _rewrites
from tvmedge import targets as _targets
from tvmedge.bench.agreement import DEFAULT_ATOL, DEFAULT_RTOL
from tvmedge.errors import BuildError, FeedError, InternalError, PruneError, TvmedgeError

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class CompileResult:
    path: Path
    manifest: dict
    seconds: float


def default_output(model: str | Path) -> Path:
    return Path(Path(model).stem + ".tvmedge")


def compile(
    model: str | Path,
    *,
    target: str = "host",
    output: str | Path | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    force: bool = False,
    rewrites=_rewrites.DEFAULT,
    bundle: bool = False,
    runtime_dir: str | Path | None = None,
    tuning_logs: str | Path | None = None,
    use_tuning_logs: bool = True,
    error_on_untuned: bool = False,
    transfer: bool = True,
    check: bool = True,
    quantize: str | None = None,
    calibration=None,
    validation=None,
    labels=None,
    calibration_method: str = "minmax",
    activation_type: str | None = None,
    keep_float: tuple[str, ...] = (),
    accuracy_floor: str | float | None = None,
    max_float_layers: int | None = None,
    save_quantized: str | Path | None = None,
    allow_external_data: bool = False,
    release: int | None = None,
    golden: bool = False,
    prune: str | None = None,
    log: Log = _stderr,
) -> CompileResult:
    """Compile an ONNX model for ``target`` into an artifact directory and return where it is.

    ``rewrites``: names or ``(name, {option: value})`` pairs (tvmedge.rewrites.plan).
    ``prune``: ``"channels=0.3,criterion=l1,NODE=0.5,skip=NODE"`` (or a PruneSpec): zero the
    lowest-norm filters before import; shrink-channels removes them, the compile check compares
    with ONNX Runtime on the zeroed model, and the manifest records what was pruned.
    ``check``: before the artifact is moved into place, load and run it once in a child
    process and compare it with ONNX Runtime (host-runnable CPU artifacts; cross-compiled ones
    are checked with `tvmedge verify-bundle`).

    ``quantize="int8"``: post-training static int8 (tvmedge.quantize). ``calibration``: an
    .npz (keys: input names, first axis the sample; optional ``labels``), a folder of them, a
    dict of arrays or an object with ``get_next()`` (ONNX Runtime's CalibrationDataReader).
    ``validation``: the same kinds (default: the calibration set's last 20%, not used to
    calibrate); ``labels``: class indices of the validation samples. ``calibration_method``:
    minmax, percentile or entropy; ``activation_type``: u8 or s8 (default: the target's,
    u8 on x86, s8 on ARM); ``keep_float``: node names left in float; ``accuracy_floor``: e.g.
    0.99, "top1=0.99", "sqnr=25" (tvmedge.quantize.floor), held by returning up to
    ``max_float_layers`` layers (default: half of those with weights) to float;
    ``save_quantized``: also write the QDQ model that was compiled there. The manifest's
    ``quantize`` rewrite record holds the accuracy report against the float model.

    ``allow_external_data``: read tensors stored in files next to the model (off by default:
    frontend/gate.py). ``release``: the release
    counter a device's update slots require to increase (runtime/slots.py); ``golden``: bundle
    golden inputs and ONNX Runtime's outputs on them (export/golden.py)."""
    from tvmedge import machine, pipeline
    from tvmedge import quantize as _quantize
    from tvmedge.build import build
    from tvmedge.export import build_manifest, io_table, write_artifact
    from tvmedge.export import check as _check
    from tvmedge.export import toolchain as _toolchain
    from tvmedge.export.artifact import check_output_path
    from tvmedge.export.bundle import bundle_writer
    from tvmedge.export.cuda import kernels_writer
    from tvmedge.export.golden import golden_writer
    from tvmedge.export.sbom import sbom_writer
    from tvmedge.frontend.shapes import format_shape

    start = time.perf_counter()
    if release is not None and (isinstance(release, bool) or not isinstance(release, int)
                                or release < 0):  # fmt: skip
        raise TvmedgeError(f"--release must be a whole number >= 0, not {release!r}")
    quant_settings = _quantize.from_options(
        quantize,
        calibration=calibration,
        validation=validation,
        labels=labels,
        method=calibration_method,
        activation_type=activation_type,
        keep_float=keep_float,
        accuracy_floor=accuracy_floor,
        max_float_layers=max_float_layers,
        save_quantized=save_quantized,
    )
    out = Path(output) if output is not None else default_output(model)
    check_output_path(out, force=force)  # fail before minutes of compiling, not after
    resolved = _targets.get(target)
    toolchain = _toolchain.resolve(resolved)  # a missing cross compiler fails before any work
    cuda = _toolchain.resolve_nvcc(resolved) if resolved.family == "cuda" else None
    extras = [bundle_writer(resolved, toolchain, runtime_dir)] if bundle else []
    features = machine.required_features(resolved.tvm_target())
    pruning = _Pruning(prune, rewrites, _rewrites.lanes(resolved))
    if pruning.spec is not None and quant_settings is not None:
        raise PruneError(
            "--prune and --quantize in one compile are not supported yet: prune first "
            "(compile --prune ... --save-pruned is not there either), or drop one of them"
        )
    with contextlib.ExitStack() as stack:
        quant = None
        if quant_settings is not None:  # bad data fails here, before anything is logged
            from tvmedge.quantize.flow import start as start_quantization

            quant = stack.enter_context(
                start_quantization(
                    model, quant_settings, resolved, input_shapes, log, allow_external_data
                )
            )
        imported = pipeline.import_model(
            quant.model if quant else model,
            input_shapes,
            allow_external_data=allow_external_data,
            prepare=pruning.prepare,
        )
        log(f"target {resolved.describe()}")
        logs = _find_logs(resolved, tuning_logs, log) if use_tuning_logs else None
        while True:  # a quantized build that misses its accuracy floor is built again
            loaded, inputs, outputs = imported.loaded, imported.inputs, imported.outputs
            log(
                f"imported {loaded.path.name} (opset {loaded.opset}, inputs "
                + ", ".join(f"{s.name}{format_shape(s.shape)}" for s in inputs)
                + ")"
            )
            mod = io_table.attach(imported.mod, io_table.format_io_table(inputs, outputs))
            built = build(
                mod,
                resolved,
                rewrite_specs=rewrites,
                database=logs and logs.database,
                transfer=transfer,
                log=log,
            )
            if quant is None or quant.accept(
                built.executable, toolchain.fcompile(), inputs, outputs, features
            ):
                break
            imported = pipeline.import_model(
                quant.model, input_shapes, allow_external_data=allow_external_data
            )
        coverage = _coverage(built, log)
        if error_on_untuned and built.untuned:
            raise BuildError(
                f"{len(built.untuned)} of {built.kernels} kernels have no tuning record "
                f"({', '.join(built.untuned[:5])}{', ...' if len(built.untuned) > 5 else ''}); "
                f"tune them with `tvmedge tune {model} --target {target}` or drop "
                "--error-on-untuned"
            )
        executable, seconds = built.executable, built.seconds
        manifest = build_manifest(  # a quantized artifact's source is the user's float model
            model=quant.source if quant else loaded,
            inputs=inputs,
            outputs=outputs,
            target=resolved,
            rewrites=([quant.record()] if quant else [])
            + pruning.records(built.rewrites, log)
            + [c.to_json() for c in built.rewrites],
            build_seconds=seconds,
            toolchain=toolchain.to_json() | ({"nvcc": cuda} if cuda else {}),
            tuning={
                "applied": bool(logs and logs.database is not None),
                "logs": logs.to_json() if logs else None,
                "coverage": coverage,
            },
        )
        if resolved.family != "cuda":  # the ISA features the kernels may use: load refuses a CPU
            manifest["cpu"] = {  # without them instead of stopping on an illegal instruction
                "arch": resolved.runtime_arch,
                "mcpu": resolved.tvm.get("mcpu"),
                "features": features,
            }
        # per-call FLOPs of each kernel: `tvmedge profile` turns its measured times into GFLOP/s.
        # TVM miscounts loops over symbolic dims, so a model with any is not counted at all.
        symbolic = any(isinstance(d, str) for s in inputs for d in s.shape)
        manifest["build"]["kernel_flops"] = {} if symbolic else built.flops
        if cuda:
            extras.append(kernels_writer(executable, cuda))
        if release is not None:
            manifest["release"] = release
        reference = stack.enter_context(pruning.reference(loaded))  # what ORT checks against
        if golden:
            extras.append(golden_writer(reference, inputs, outputs))
        extras.append(sbom_writer(manifest))  # last: it lists the files the others wrote
        checker = _check.checker(resolved, reference, enabled=check, log=log)
        manifest = write_artifact(
            out,
            executable=executable,
            manifest=manifest,
            force=force,
            fcompile=toolchain.fcompile(),
            extras=tuple(extras),
            check=checker,
        )
        if quant is not None:
            quant.save()
        elapsed = time.perf_counter() - start
        log(f"wrote {out} in {elapsed:.1f} s")
        return CompileResult(path=out, manifest=manifest, seconds=elapsed)


class _Pruning:
    """``--prune`` within one compile: checked before any work, applied to the loaded graph,
    recorded in the manifest, and the zeroed model written for the compile check."""

    def __init__(self, prune, rewrite_specs, round_to: int):
        from tvmedge.errors import PruneError
        from tvmedge.rewrites.prune import PruneSpec, parse_prune

        self.spec = parse_prune(prune) if isinstance(prune, str) else prune
        if self.spec is not None and not isinstance(self.spec, PruneSpec):
            raise PruneError(f"prune must be a string like 'channels=0.3', not {prune!r}")
        names = [s if isinstance(s, str) else s[0] for s in rewrite_specs]
        if self.spec is not None and "shrink-channels" not in names:
            raise PruneError(
                "--prune zeroes filters that the shrink-channels rewrite removes: keep it "
                "in the rewrites (it is in the default ones)"
            )
        self.zeroed: dict | None = None
        self.proto = None
        self.round_to = round_to
        self.prepare = None if self.spec is None else self._prepare

    def _prepare(self, proto):
        from tvmedge.rewrites.prune import prune_model

        self.proto, self.zeroed = prune_model(proto, self.spec, self.round_to)
        return self.proto

    def records(self, chosen, log: Log) -> list[dict]:
        if self.spec is None:
            return []
        from tvmedge.rewrites.prune import prune_record
        from tvmedge.rewrites.prune.record import summary

        shrunk = next((c.report for c in chosen if c.name == "shrink-channels"), {})
        record = prune_record(self.spec, self.zeroed, shrunk)
        log(f"pruned {summary(record)}")
        return [record]

    def zeroed_copy(self, model, allow_external_data: bool = False):
        """(a temporary folder, the zeroed model's file in it), None without --prune; the
        folder is removed when it is garbage."""
        if self.spec is None:
            return None
        import onnx

        from tvmedge.frontend import load_onnx

        folder = tempfile.TemporaryDirectory(prefix="tvmedge-prune-")
        path = Path(folder.name) / Path(model).name
        proto = load_onnx(model, allow_external_data=allow_external_data).proto
        onnx.save(self._prepare(proto), str(path))
        return folder, path

    @contextlib.contextmanager
    def reference(self, loaded):
        if self.proto is None:
            yield loaded.file  # the input gate's private copy
            return
        import onnx

        with tempfile.TemporaryDirectory(prefix="tvmedge-prune-") as tmp:
            path = Path(tmp) / f"{loaded.path.stem}.pruned.onnx"
            onnx.save(self.proto, str(path))
            yield path


def _find_logs(target, tuning_logs, log: Log):
    from tvmedge.tune import logs

    roots = [Path(tuning_logs) if tuning_logs else logs.user_cache(), logs.SHIPPED]
    found = logs.find(target, roots, lambda msg: log(f"warning: {msg}"))
    if found.database is not None:
        log(f"tuning logs: {found.records} records from {', '.join(found.folders)}")
    return found


def _coverage(built, log: Log) -> dict:
    tuned = built.kernels - len(built.untuned)
    transferred = len(built.transferred)
    default = len(built.untuned) - transferred - len(built.unscheduled)
    shown = ", ".join(built.untuned[:6]) + (", ..." if len(built.untuned) > 6 else "")
    log(
        f"{tuned} of {built.kernels} kernels tuned, {transferred} with schedules transferred "
        f"from similar tuned kernels, {default} with default schedules, "
        f"{len(built.unscheduled)} with plain loops" + (f"; untuned: {shown}" if shown else "")
    )
    for kernel, source in sorted(built.transferred.items()):
        log(f"  {kernel}: schedule of {source}")
    return {
        "kernels": built.kernels,
        "tuned": tuned,
        "transferred": dict(built.transferred),
        "default_scheduled": default,
        "untuned": built.untuned,
        "unscheduled": built.unscheduled,
    }


def random_inputs(specs, *, seed: int = 0, dims: dict[str, int] | None = None) -> dict:
    """Seeded inputs for specs (runtime IOInfo or TensorSpec); symbolic dims from ``dims`` or 1."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        shape = tuple(d if isinstance(d, int) else (dims or {}).get(d, 1) for d in spec.shape)
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            feeds[spec.name] = rng.integers(0, 10, size=shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[spec.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise FeedError(f"cannot generate random data for input '{spec.name}' of {dtype}")
    return feeds


def load_inputs(path: str | Path) -> dict:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise FeedError(f"inputs file '{path}' does not exist") from None
    except (OSError, ValueError, EOFError):
        raise FeedError(
            f"inputs file '{path}' is not a .npz archive of arrays; write one with "
            "numpy.savez(path, input_name=array, ...)"
        ) from None


def run(
    artifact: str | Path,
    *,
    inputs: dict | str | Path | None = None,
    seed: int = 0,
    dims: dict[str, int] | None = None,
    public_key: str | Path | None = None,
) -> tuple[dict, dict]:
    """Run an artifact once; returns (feeds, outputs) as name -> numpy array dicts.
    ``public_key``: verify its signature first (runtime.load)."""
    from tvmedge import runtime

    model = runtime.load(artifact, public_key=public_key)
    if inputs is None:
        feeds = random_inputs(model.get_inputs(), seed=seed, dims=dims)
    elif isinstance(inputs, dict):
        feeds = inputs
    else:
        feeds = load_inputs(inputs)
    names = [o.name for o in model.get_outputs()]
    return feeds, dict(zip(names, model.run(None, feeds), strict=True))


def inspect(artifact: str | Path, *, verify: bool = True) -> dict:
    """The artifact's manifest; with ``verify`` its file hashes are checked too."""
    from tvmedge.runtime import read_manifest, verify_files

    manifest = read_manifest(artifact)
    if verify:
        verify_files(artifact, manifest)
    return manifest


def sign(artifact: str | Path, *, key: str | Path) -> dict:
    """Sign ``artifact`` with an ECDSA P-256 private key (model.sig, OpenSSF model-signing
    format); returns the signed in-toto statement."""
    from tvmedge.export.sign import sign as _sign

    return _sign(artifact, key)


def verify(artifact: str | Path, *, public_key: str | Path) -> dict:
    """Verify ``artifact``'s signature with ``public_key`` and every file against it; returns
    the verified statement, or raises ArtifactError naming what is wrong."""
    from tvmedge.runtime.signature import verify_signature

    return verify_signature(artifact, public_key)


def keygen(*, key: str | Path, pub: str | Path, force: bool = False) -> None:
    """Write a new ECDSA P-256 key pair: ``key`` (private, mode 0600) and ``pub``."""
    from tvmedge.export.sign import keygen as _keygen

    _keygen(key, pub, force=force)


def tune(
    model: str | Path,
    *,
    target: str = "host",
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    tuning_logs: str | Path | None = None,
    trials: int | None = None,
    time_budget: float | None = None,
    trials_per_task: int | None = None,
    trials_per_iter: int = 16,
    population: int = 64,
    builder_workers: int | None = None,
    builder_timeout: float = 120.0,
    runner_timeout: float = 60.0,
    rpc_tracker: str | None = None,
    rpc_key: str | None = None,
    dry_run: bool = False,
    seeds_only: bool = False,
    ship: str | Path | None = None,
    rewrites: tuple[str, ...] = _rewrites.DEFAULT,
    allow_external_data: bool = False,
    prune: str | None = None,
    progress: Callable[[dict], None] | None = None,
    log: Log = _stderr,
) -> dict:
    """Tune the model's kernels for ``target`` into the tuning-log cache; returns a report.

    ``prune``: as compile's: the kernels of the model pruned the same way (compile with the
    same setting to use them).

    ``trials`` and ``time_budget`` (minutes) bound this run; ``trials_per_task`` caps each
    kernel over all runs (the target's default), so repeated runs resume and never redo work.
    ``seeds_only``: measure the default schedules and their variants (the search's seeds) for
    every kernel, then stop: minutes where the search takes hours. ``ship``: afterwards, write
    the best record of every kernel in the cache (lean logs, what tvmedge ships in
    tuning-logs/) under that folder. ``population``: candidates the evolutionary search keeps
    per round; MetaSchedule's default of 512 spends minutes of one core per task before the
    first measurement, so a short tune on a small machine measures nothing.
    """
    from tvmedge import machine, pipeline
    from tvmedge.export import toolchain as _toolchain
    from tvmedge.tune import driver, logs
    from tvmedge.tune import tasks as _tasks
    from tvmedge.tune.cache import TuningCache

    resolved = _targets.get(target)
    rpc = _rpc_settings(rpc_tracker, rpc_key, builder_workers)
    if rpc is None and (resolved.family == "cuda" or resolved.runtime_arch != machine.arch()):
        raise TvmedgeError(
            f"kernels for '{resolved.name}' cannot be measured on this machine; register the "
            "device with a TVM RPC tracker and pass --rpc-tracker HOST:PORT --rpc-key KEY"
        )
    _toolchain.resolve(resolved)  # the builder links every candidate with it
    tvm_target = resolved.tvm_target()
    # the zeroed model's file, for the tuning worker; its folder goes when tune returns
    zeroed = _Pruning(prune, rewrites, _rewrites.lanes(resolved)).zeroed_copy(
        model, allow_external_data
    )
    model = zeroed[1] if zeroed is not None else model
    try:
        mod = pipeline.tuning_module(
            model, input_shapes or {}, resolved, rewrites, allow_external_data=allow_external_data
        )
        extracted = _tasks.extract(mod, pipeline.search_target(resolved))
    except TvmedgeError:
        raise
    except Exception as e:  # TVM raises builtin types
        raise InternalError(
            f"TVM failed to extract the tuning tasks of '{model}' for '{resolved.name}': "
            f"{(str(e).strip().splitlines() or [type(e).__name__])[0][:300]} (an internal "
            "failure: please report it; TVMEDGE_DEBUG=1 for the trace)"
        ) from e
    cache = TuningCache(
        Path(tuning_logs) if tuning_logs else logs.user_cache(), resolved.name, tvm_target
    )
    warn = lambda m: log(f"warning: {m}")  # noqa: E731
    before = _tasks.states(extracted, cache.load(warn))
    cap = trials_per_task or resolved.tuning.trials_per_task
    budget = trials if trials is not None else (None if time_budget else resolved.tuning.max_trials)
    planned = driver.plan_trials(before, cap, budget)
    if seeds_only:
        planned = {s.name: 0 for s in before}
    report = {
        "target": resolved.name,
        "cache": str(cache.folder),
        "trials_per_task": cap,
        "planned": planned,
        "before": [s.__dict__ for s in before],
        "stopped": None,
    }
    if dry_run or not planned:
        report["after"] = report["before"]
        return _ship(report, cache, ship, log) if not dry_run else report
    workers = builder_workers or max(1, (os.cpu_count() or 2) - 1)
    plan = {
        "model": str(Path(model).resolve()),
        "input_shapes": input_shapes or {},
        "target": resolved.name,
        "cache_root": str(cache.root),
        "tasks": sorted(planned),
        "trials": sum(planned.values()),
        "trials_per_task": max(planned.values()),
        "seeds_only": seeds_only,
        "rewrites": list(rewrites),
        "allow_external_data": allow_external_data,
        "trials_per_iter": trials_per_iter,
        "population": population,
        "builder_workers": workers,
        "builder_timeout": builder_timeout,
        "runner_timeout": runner_timeout,
        "rpc": rpc,
        "work_dir": str(driver.new_work_dir()),
    }
    log(
        f"tuning {len(planned)} of {len(extracted)} tasks for {resolved.describe()}: "
        + ("default-schedule seeds only" if seeds_only else f"{plan['trials']} trials")
        + (f", at most {time_budget:g} min" if time_budget else "")
        + f"; logs in {cache.folder}"
    )
    outcome = driver.run_worker(plan, minutes=time_budget, progress=progress or (lambda e: None))
    report["stopped"] = outcome["stopped"]
    report["log"] = outcome["log"]
    report["errors"] = outcome["last"].get("errors", {"build": 0, "run": 0})
    report["first_error"] = outcome["last"].get("first_error")
    report["after"] = [s.__dict__ for s in _tasks.states(extracted, cache.load(warn))]
    return _ship(report, cache, ship, log)


def _ship(report: dict, cache, ship, log: Log) -> dict:
    """Write the cache's lean logs (best record per kernel) under ``ship``, if asked."""
    from tvmedge.tune.cache import write_lean

    if ship is None or not cache.exists():
        return report
    records, size = write_lean(cache, Path(ship))
    folder = Path(ship) / cache.target_name / cache.key
    log(f"shipped {records} records ({size / 1024:.0f} KiB) to {folder}")
    report["shipped"] = {"folder": str(folder), "records": records, "bytes": size}
    return report


def _rpc_settings(tracker: str | None, key: str | None, workers: int | None) -> dict | None:
    if tracker is None and key is None:
        return None
    host, _, port = (tracker or "").rpartition(":")
    if not host or not port.isdigit() or not key:
        raise TvmedgeError("remote tuning needs --rpc-tracker HOST:PORT and --rpc-key KEY")
    return {"host": host, "port": int(port), "key": key, "workers": workers or 1}


def _artifact_of(artifact, model) -> dict:
    """The artifact's verified manifest, refused unless it was compiled from ``model``:
    comparing an artifact with another model than its own would prove nothing."""
    from tvmedge.errors import ModelFileError
    from tvmedge.layout import sha256_file

    manifest = inspect(artifact)
    if not Path(model).is_file():
        raise ModelFileError(f"model file '{model}' does not exist; check the path")
    own = {manifest["source"]["sha256"]}  # and a quantized artifact's QDQ model (--save-quantized)
    own |= {
        r["report"]["int8_model_sha256"] for r in manifest["rewrites"] if r["name"] == "quantize"
    }
    if sha256_file(Path(model)) not in own:
        raise TvmedgeError(
            f"artifact '{artifact}' was compiled from a different model than '{model}' "
            "(sha256 differs); pass the model it was compiled from"
        )
    return manifest


def _feeds(manifest: dict, *, inputs=None, seed: int = 0, dims=None) -> dict:
    """Inputs from an .npz, or seeded random ones shaped by the manifest."""
    from tvmedge.layout import TensorSpec

    if inputs is not None:
        return load_inputs(inputs)
    specs = [TensorSpec.from_json(s) for s in manifest["inputs"]]
    return random_inputs(specs, seed=seed, dims=dims)


def default_threads() -> int:
    """The threads bench and profile use by default: the runtime's own default (physical
    cores, or TVM_NUM_THREADS when set), so a benchmark measures what a user's run gets."""
    from tvmedge.runtime.model import default_threads as runtime_default

    return runtime_default()


def bench(
    model: str | Path,
    *,
    target: str = "host",
    artifact: str | Path | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    threads: int | None = None,
    warmup: int = 20,
    repeat: int = 50,
    rounds: int = 1,
    use_tuning_logs: bool = True,
    rewrites: tuple[str, ...] = _rewrites.DEFAULT,
    seed: int = 0,
    dims: dict[str, int] | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    max_cv: float | None = None,
    ort_model: str | Path | None = None,
    allow_external_data: bool = False,
    log: Log = _stderr,
) -> dict:
    """Compile (unless ``artifact`` is given) and compare with ONNX Runtime; returns the report.
    ``rounds`` > 1 alternates the engines that many times and pools the timings. The report
    warns of an engine whose latency's coefficient of variation exceeds ``max_cv``
    (default ``tvmedge.bench.compare.SPREAD_WARN_CV``). ``ort_model``: ONNX Runtime runs this
    model instead of ``model`` (e.g. its own int8 QDQ model of it, against tvmedge's int8
    artifact of ``model``); outputs are compared with it."""
    import tempfile

    from tvmedge.bench.compare import SPREAD_WARN_CV, check_reference, run_bench

    reference = Path(ort_model) if ort_model is not None else Path(model)
    if ort_model is not None:
        check_reference(reference, model)

    if warmup < 0 or repeat < 1 or rounds < 1:
        raise TvmedgeError("--warmup must be >= 0, --repeat and --rounds >= 1")
    max_cv = SPREAD_WARN_CV if max_cv is None else max_cv
    if max_cv < 0:
        raise TvmedgeError(f"--max-cv must be >= 0 (a fraction: 0.1 is 10%), not {max_cv:g}")
    threads = threads or default_threads()
    if threads < 1:
        raise TvmedgeError("--threads must be >= 1")
    with tempfile.TemporaryDirectory(prefix="tvmedge-bench-") as tmp:
        if artifact is None:
            artifact = compile(
                model,
                target=target,
                output=Path(tmp) / default_output(model),
                input_shapes=input_shapes,
                use_tuning_logs=use_tuning_logs,
                rewrites=rewrites,
                allow_external_data=allow_external_data,
                log=log,
            ).path
        manifest = _artifact_of(artifact, model)
        feeds = _feeds(manifest, seed=seed, dims=dims)
        log(
            f"benchmarking tvmedge and onnxruntime: {threads} threads, "
            f"{warmup} warm-up + {repeat} timed runs each, separate processes"
            + (f", {rounds} alternating rounds" if rounds > 1 else "")
        )
        return run_bench(
            model=Path(model),
            reference=reference,
            artifact=Path(artifact),
            manifest=manifest,
            feeds=feeds,
            threads=threads,
            warmup=warmup,
            repeat=repeat,
            rtol=rtol,
            atol=atol,
            rounds=rounds,
            max_cv=max_cv,
        )


def verify_bundle(
    artifact: str | Path,
    *,
    model: str | Path,
    inputs: str | Path | None = None,
    seed: int = 0,
    dims: dict[str, int] | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> dict:
    """Run the bundle's tvmedge-run (emulated if needed) and compare with ONNX Runtime here."""
    from tvmedge.export.verify import verify

    manifest = _artifact_of(artifact, model)
    feeds = _feeds(manifest, inputs=inputs, seed=seed, dims=dims)
    return verify(Path(artifact), manifest, Path(model), feeds, rtol=rtol, atol=atol)


def profile(
    artifact: str | Path,
    *,
    repeat: int = 10,
    seed: int = 0,
    dims: dict[str, int] | None = None,
    threads: int | None = None,
    alone: bool = False,
) -> dict:
    """Time each kernel of a host CPU artifact on seeded random inputs; returns the report.

    Kernel rows (sorted by time, per run), totals, and this machine's fp32 peak with its formula.
    FLOPs come from the manifest (counted at compile time) and are absent for symbolic shapes.
    ``threads``: TVM's thread pool size, by default the physical cores as in ``bench`` (TVM's
    own default here was 1, so the profile ran about twice as long as ``bench``). ``alone``: also
    time each kernel run by itself with its data in the caches (``alone_us``).
    """
    from tvmedge import machine, runtime
    from tvmedge import profile as _profile

    if repeat < 1:
        raise TvmedgeError("--repeat must be >= 1")
    threads = threads or default_threads()
    if threads < 1:
        raise TvmedgeError("--threads must be >= 1")
    manifest = inspect(artifact)
    target = manifest["target"]
    if manifest["runtime"]["device"] != "cpu" or target["runtime_arch"] != machine.arch():
        raise TvmedgeError(
            f"cannot profile '{artifact}' here: it runs on {target['runtime_arch']} "
            f"{manifest['runtime']['device']} (target '{target['name']}') and profiling measures "
            f"on this {machine.arch()} CPU; compile it with --target host"
        )
    model = runtime.load(artifact, verify=False, threads=threads)  # inspect() checked hashes
    feeds = random_inputs(model.get_inputs(), seed=seed, dims=dims)
    # the profiler drives the VM itself: it needs the instrument hook, which Model keeps inside
    arrays = model._check_feeds(feeds)
    peak = _profile.machine_peak(target, threads)
    flops = manifest["build"].get("kernel_flops", {})
    result = _profile.report(
        model._vm, arrays, repeat=repeat, flops=flops, peak=peak["peak_gflops"], alone=alone
    )
    return {
        "artifact": str(artifact),
        "target": target["name"],
        "inputs": {name: list(a.shape) for name, a in feeds.items()},
        "flops_source": "manifest build.kernel_flops" if flops else None,
        "threads": threads,
        "machine": peak,
        **result,
    }


__all__ = [
    "CompileResult",
    "TvmedgeError",
    "bench",
    "compile",
    "inspect",
    "profile",
    "random_inputs",
    "run",
    "verify_bundle",
]
