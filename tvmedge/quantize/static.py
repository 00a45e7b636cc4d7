"""Post-training static quantization with ONNX Runtime's quantize_static, on a private copy.

Everything is written under a work folder of our own: the pre-processed model (shape
inference and ONNX Runtime's basic graph optimizations, `quant_pre_process`), the calibration
ranges (a cache, so that re-quantizing with other layers kept float skips calibration) and each
QDQ model. The user's model is only read.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

import onnx

from tvmedge.errors import CalibrationError
from tvmedge.quantize.data import Samples
from tvmedge.quantize.settings import QuantizeSettings

_QDQ = ("QuantizeLinear", "DequantizeLinear")


class _Reader:
    """ONNX Runtime's CalibrationDataReader over our checked samples."""

    def __init__(self, samples: Samples):
        self._feeds = iter(samples.feeds)

    def get_next(self):
        return next(self._feeds, None)


class StaticQuantizer:
    """Quantizes one model again and again with different layers kept float."""

    def __init__(
        self, model: Path, work: Path, settings: QuantizeSettings, family: str, log: Callable
    ):
        self.work = work
        self.settings = settings
        self.activations = settings.activations_for(family)
        self.source = self._preprocess(model, log)
        self.graph = onnx.load(self.source, load_external_data=False).graph
        self._cache = work / "calibration-ranges.json"
        self._count = 0
        names = {n.name for n in self.graph.node}
        missing = [n for n in settings.keep_float if n not in names]
        if missing:
            shown = ", ".join(self.layer_names()[:8]) or "none"
            raise CalibrationError(
                f"--keep-float {missing[0]!r} is not a node of the model (as pre-processed for "
                f"quantization); nodes with weights: {shown}"
            )

    def _preprocess(self, model: Path, log: Callable) -> Path:
        from onnxruntime.quantization import quant_pre_process

        out = self.work / "preprocessed.onnx"
        try:
            quant_pre_process(str(model), str(out))
            return out
        except Exception as e:  # a model its shape inference cannot follow: quantize as it is
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            log(f"warning: quantization pre-processing skipped ({first})")
            return model

    def layer_names(self) -> list[str]:
        """Nodes whose weights are constants (Conv, MatMul, Gemm, ...), in graph order: the
        layers the fallback may return to float."""
        constants = {t.name for t in self.graph.initializer}
        producers = {o: n for n in self.graph.node for o in n.output}
        for n in self.graph.node:
            if n.op_type == "Constant":
                constants.update(n.output)
        compute = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Attention", "LSTM", "GRU")
        return [
            n.name
            for n in self.graph.node
            if n.op_type in compute
            and any(
                i in constants or _is_transposed_constant(i, producers, constants)
                for i in n.input[1:2]
            )
        ]

    def quantize(self, samples: Samples, float_nodes: tuple[str, ...] = ()) -> Path:
        """A QDQ model with ``float_nodes`` (and --keep-float) left in float."""
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        methods = {
            "minmax": CalibrationMethod.MinMax,
            "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy,
        }
        self._count += 1
        out = self.work / f"quantized-{self._count}.onnx"
        excluded = [*self.settings.keep_float, *float_nodes]
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # its progress prints
                quantize_static(
                    str(self.source),
                    str(out),
                    None if self._cache.exists() else _Reader(samples),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=QuantType.QUInt8
                    if self.activations == "u8"
                    else QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                    nodes_to_exclude=excluded or None,
                    calibrate_method=methods[self.settings.method],
                    calibration_cache_path=str(self._cache),
                    extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
                )
        except CalibrationError:
            raise
        except Exception as e:  # ORT raises builtin types on models it cannot quantize
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise CalibrationError(
                f"ONNX Runtime could not quantize the model: {first}; --keep-float the nodes it "
                "names, or compile without --quantize"
            ) from e
        return out


def _is_transposed_constant(name: str, producers: dict, constants: set) -> bool:
    node = producers.get(name)
    return (
        node is not None
        and node.op_type in ("Transpose", "Reshape")
        and (node.input[0] in constants)
    )
