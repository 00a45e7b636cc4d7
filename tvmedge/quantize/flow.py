"""One quantized compile: data -> QDQ model -> (fallback) -> accepted build -> manifest record.

:func:`start` reads and checks the data, quantizes with ONNX Runtime and, with a floor, falls
back with ONNX Runtime's measure until the floor holds; ``model`` is then the QDQ model to
build. ``accept`` measures the build itself (its library run here, on this CPU) against the
float model; when that misses the floor the next layer goes back to float and ``model``
changes: the caller builds again. Cross-compiled artifacts cannot run here: their report is
measured with ONNX Runtime on the same QDQ model, and says so.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tvmedge import accuracy, machine
from tvmedge.errors import CalibrationError
from tvmedge.frontend import check_supported, graph_inputs, graph_output_names, load_onnx
from tvmedge.frontend.shapes import bind
from tvmedge.layout import sha256_file
from tvmedge.quantize import data
from tvmedge.quantize.fallback import Fallback
from tvmedge.quantize.settings import QuantizeSettings
from tvmedge.quantize.static import StaticQuantizer

ORT_ENGINE = "onnxruntime on the quantized model"


def _ort_runner(model: Path) -> accuracy.Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise CalibrationError(
            f"ONNX Runtime cannot run '{model.name}' ({first}); quantization calibrates with it"
        ) from e
    return lambda feeds: session.run(None, feeds)


class Quantization:
    def __init__(self, source, settings: QuantizeSettings, target, specs, names, work, log):
        self.settings, self.target, self.work, self.log = settings, target, work, log
        self.source = source  # the float model as the gate loaded it: the artifact's source
        model = self.float_model = source.file  # the gate's private copy, not the user's file
        self.library_bytes: int | None = None
        calib, valid = _datasets(settings, specs)
        self.calibration, self.validation = calib, valid
        self.feeds = data.batches(valid, specs)  # what each engine runs to be measured
        self.labels = valid.all_labels()
        self.floor = settings.floor.resolve(self.labels is not None) if settings.floor else None
        self.names = names  # the model's outputs, in order
        self.reference = accuracy.collect(_ort_runner(model), self.feeds)
        self.quantizer = StaticQuantizer(model, work, settings, target.family, log)
        if settings.method == "minmax":  # histograms (percentile, entropy) need equal batches
            calib = data.Samples(data.batches(calib, specs), None, calib.origin)
        self.model = self.quantizer.quantize(calib)
        layers = [n for n in self.quantizer.layer_names() if n not in settings.keep_float]
        limit = settings.max_float_layers
        self.fallback = Fallback(
            layers,
            lambda float_nodes: self.quantizer.quantize(calib, float_nodes),
            self.measure_ort,
            self.floor,
            len(layers) // 2 if limit is None else limit,
        )
        self.report = self.measure_ort(self.model)
        self.engine = ORT_ENGINE
        if self.floor is not None:
            self.floor.values(self.report)  # a floor of a metric these outputs lack: refused
        log(
            f"quantized to int8 ({settings.method} calibration on {len(self.calibration)} "
            f"samples, {settings.activations_for(target.family)} activations); validating on "
            f"{len(valid)} samples"
        )
        if self.floor is not None:
            self.model, self.report = self.fallback.search(self.model, self.report)
            if self.fallback.float_layers:
                log(f"accuracy floor: kept float {', '.join(self.fallback.float_layers)}")

    def measure_ort(self, model: Path) -> dict:
        outputs = accuracy.collect(_ort_runner(model), self.feeds)
        return self._compare(outputs)

    def _compare(self, outputs) -> dict:
        return accuracy.compare(self.names, self.reference, outputs, labels=self.labels)

    def runs_here(self, features: list[str]) -> bool:
        return (
            self.target.family != "cuda"
            and self.target.runtime_arch == machine.arch()
            and not machine.missing_features(features)
        )

    def accept(self, executable, fcompile, inputs, outputs, features: list[str]) -> bool:
        """Measure a build of ``model``; False (and a new ``model``) when it misses the floor."""
        from tvmedge.runtime.model import Model, default_threads
        from tvmedge.runtime.vm import VirtualMachine

        library = self.work / f"measure-{self.model.stem}.so"
        executable.export_library(str(library), fcompile=fcompile)
        self.library_bytes = library.stat().st_size
        if not self.runs_here(features):  # measured on the QDQ model instead, as built
            self.engine = f"{ORT_ENGINE} (the artifact runs on {self.target.runtime_arch})"
            self.report = self.measure_ort(self.model)
            return self._floor_holds(self.report)
        io = {"inputs": [s.to_json() for s in inputs], "outputs": [s.to_json() for s in outputs]}
        model = Model(library, io, VirtualMachine(library, threads=default_threads()))
        self.log(
            f"measuring the int8 build against the float model on {len(self.validation)} samples"
        )
        self.report = self._compare(accuracy.collect(lambda f: model.run(None, f), self.feeds))
        self.engine = "tvmedge (this build, run here)"
        return self._floor_holds(self.report)

    def _floor_holds(self, report: dict) -> bool:
        if self.floor is None or self.floor.met(report):
            return True
        values = self.floor.values(report)
        if self.fallback.exhausted():
            raise self.fallback.failure(
                (self.floor.score(report), values, self.fallback.float_layers), self.engine
            )
        self.fallback.record(values, self.engine)
        self.model = self.fallback.step()
        self.log(
            f"accuracy floor missed by the build ({values}); also keeping float "
            f"{self.fallback.float_layers[-1]}"
        )
        return False

    def record(self) -> dict:
        """The manifest's rewrite record: ``{name, description, options, applied, report}``."""
        kept = list(self.settings.keep_float)
        fallen = list(self.fallback.float_layers)
        int8 = [n for n in self.quantizer.layer_names() if n not in kept and n not in fallen]
        report = {
            "calibration": {"samples": len(self.calibration), "from": self.calibration.origin},
            "validation": {
                "samples": len(self.validation),
                "from": self.validation.origin,
                "labels": self.labels is not None,
            },
            "layers": {"int8": int8, "kept_float": kept, "fallback_float": fallen},
            "int8_model_sha256": sha256_file(self.model),  # the QDQ model compiled
            "accuracy": {"measured_with": self.engine, **self.report},
            "size": {
                "float_model_bytes": self.float_model.stat().st_size,
                "int8_model_bytes": self.model.stat().st_size,
                "library_bytes": self.library_bytes,
            },
        }
        if self.floor is not None:
            report["floor"] = {
                "floor": self.floor.describe(),
                "values": self.floor.values(self.report),
                "met": True,
                "steps": self.fallback.steps,
                "ranking": self.fallback.ranking,
            }
        return {
            "name": "quantize",
            "description": "post-training static int8: ONNX Runtime quantize_static (QDQ), "
            "compiled through the normal pipeline",
            "options": self.settings.to_json(self.target.family),
            "applied": True,
            "report": report,
        }

    def save(self) -> None:
        """``save_quantized``: a copy of the QDQ model that was compiled."""
        if self.settings.save_quantized:
            shutil.copyfile(self.model, self.settings.save_quantized)


def _datasets(settings: QuantizeSettings, specs) -> tuple[data.Samples, data.Samples]:
    labels = None if settings.labels is None else data.read_labels(settings.labels)
    if settings.validation is None:
        full = data.load(settings.calibration, specs, "calibration")
        return data.split(full if labels is None else data.with_labels(full, labels))
    calib = data.load(settings.calibration, specs, "calibration")
    valid = data.load(settings.validation, specs, "validation")
    return calib, valid if labels is None else data.with_labels(valid, labels)


@contextlib.contextmanager
def start(
    model,
    settings: QuantizeSettings,
    target,
    input_shapes: dict | None,
    log: Callable,
    allow_external_data: bool = False,
) -> Iterator[Quantization]:
    """A :class:`Quantization` whose work folder (private copies) lives as long as the with.
    The model passes the input gate first; quantization reads the gate's private copy."""
    loaded = load_onnx(model, allow_external_data=allow_external_data)
    check_supported(loaded.proto)  # unsupported ops are named before any calibration
    specs = bind(graph_inputs(loaded.proto), input_shapes or {})
    work = Path(tempfile.mkdtemp(prefix="tvmedge-quantize-"))
    try:
        names = graph_output_names(loaded.proto)
        yield Quantization(loaded, settings, target, specs, names, work, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
