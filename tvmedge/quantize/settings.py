"""What a quantized compile was asked for: one frozen record, checked before any work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from tvmedge.errors import CalibrationError
from tvmedge.quantize.floor import Floor, parse_floor

SCHEMES = ("int8",)
METHODS = ("minmax", "percentile", "entropy")
ACTIVATION_TYPES = ("u8", "s8")
# The activation type the integer kernels of each target family take: x86's vpdpbusd and
# vpmaddubsw multiply unsigned by signed bytes; ARM's sdot and CUDA's dp4a signed by signed.
FAMILY_ACTIVATIONS = MappingProxyType({"x86": "u8", "aarch64": "s8", "armv7": "s8", "cuda": "s8"})


@dataclass(frozen=True)
class QuantizeSettings:
    """``tvmedge compile --quantize int8`` and its options (see tvmedge.api.compile)."""

    scheme: str
    calibration: object  # .npz path, folder of them, name -> array dict, or a get_next() reader
    validation: object = None  # the same kinds; None: the calibration set's last fifth
    labels: object = None  # .npy/.npz path or array: one class index per validation sample
    method: str = "minmax"
    activation_type: str | None = None  # None: the target family's
    keep_float: tuple[str, ...] = ()
    floor: Floor | None = None
    max_float_layers: int | None = None  # None: half of the layers with int8 weights
    save_quantized: str | None = None  # also write the QDQ model compiled here

    def activations_for(self, family: str) -> str:
        return self.activation_type or FAMILY_ACTIVATIONS[family]

    def to_json(self, family: str) -> dict:
        return {
            "scheme": self.scheme,
            "method": self.method,
            "format": "QDQ (onnxruntime.quantization.quantize_static)",
            "activations": f"{self.activations_for(family)}, per tensor",
            "weights": "s8, per output channel, symmetric",
            "keep_float": list(self.keep_float),
            "accuracy_floor": self.floor.describe() if self.floor else None,
            "max_float_layers": self.max_float_layers,
        }


def from_options(
    quantize: str | None,
    *,
    calibration=None,
    validation=None,
    labels=None,
    method: str = "minmax",
    activation_type: str | None = None,
    keep_float=(),
    accuracy_floor=None,
    max_float_layers: int | None = None,
    save_quantized=None,
) -> QuantizeSettings | None:
    """The checked settings, or None when ``quantize`` is None (and no option of it given)."""
    if quantize is None:
        given = {
            "--calibration": calibration,
            "--validation": validation,
            "--labels": labels,
            "--activation-type": activation_type,
            "--keep-float": keep_float or None,
            "--accuracy-floor": accuracy_floor,
            "--max-float-layers": max_float_layers,
            "--save-quantized": save_quantized,
        }
        stray = [flag for flag, value in given.items() if value is not None]
        if stray:
            verb = "only applies" if len(stray) == 1 else "only apply"
            raise CalibrationError(f"{', '.join(stray)} {verb} with --quantize int8; add it")
        return None
    if quantize not in SCHEMES:
        raise CalibrationError(
            f"--quantize {quantize!r} is not supported; valid: {', '.join(SCHEMES)}"
        )
    if calibration is None:
        raise CalibrationError(
            "--quantize int8 needs --calibration DATA: an .npz whose keys are the model's input "
            "names and whose first axis is the sample (or a folder of them)"
        )
    if method not in METHODS:
        raise CalibrationError(
            f"--calibration-method {method!r} is not one of {', '.join(METHODS)}"
        )
    if activation_type is not None and activation_type not in ACTIVATION_TYPES:
        raise CalibrationError(
            f"--activation-type {activation_type!r} is not one of {', '.join(ACTIVATION_TYPES)}"
        )
    if max_float_layers is not None and (
        isinstance(max_float_layers, bool)
        or not isinstance(max_float_layers, int)
        or max_float_layers < 0
    ):
        raise CalibrationError(f"--max-float-layers must be >= 0, not {max_float_layers!r}")
    if save_quantized is not None and not Path(save_quantized).parent.is_dir():
        raise CalibrationError(
            f"--save-quantized '{save_quantized}': its folder does not exist; create it first"
        )
    if isinstance(keep_float, str):
        keep_float = (keep_float,)
    return QuantizeSettings(
        scheme=quantize,
        calibration=calibration,
        validation=validation,
        labels=labels,
        method=method,
        activation_type=activation_type,
        keep_float=tuple(keep_float),
        floor=None if accuracy_floor is None else parse_floor(accuracy_floor),
        max_float_layers=max_float_layers,
        save_quantized=None if save_quantized is None else str(save_quantized),
    )
