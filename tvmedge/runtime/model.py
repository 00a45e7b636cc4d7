"""The Model: feed validation and a Relax VM behind an InferenceSession-like surface."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tvmedge.errors import FeedError
from tvmedge.layout import LIBRARY, TensorSpec, format_shape
from tvmedge.machine import physical_cores
from tvmedge.runtime.artifact import check_runs_here, read_manifest, verify_files
from tvmedge.runtime.signature import configured_key, verify_signature
from tvmedge.runtime.vm import VirtualMachine

# ONNX Runtime's type strings, so code written against NodeArg.type keeps working.
_ORT_TYPES = {
    "float32": "tensor(float)",
    "float16": "tensor(float16)",
    "float64": "tensor(double)",
    "bfloat16": "tensor(bfloat16)",
    "int8": "tensor(int8)",
    "uint8": "tensor(uint8)",
    "int16": "tensor(int16)",
    "uint16": "tensor(uint16)",
    "int32": "tensor(int32)",
    "uint32": "tensor(uint32)",
    "int64": "tensor(int64)",
    "uint64": "tensor(uint64)",
    "bool": "tensor(bool)",
}


@dataclass(frozen=True)
class IOInfo:
    """Like onnxruntime.NodeArg: ``name``, ``shape`` (ints and symbolic names), ``type``."""

    name: str
    shape: list
    type: str
    dtype: str


def _info(spec: TensorSpec) -> IOInfo:
    return IOInfo(spec.name, list(spec.shape), _ORT_TYPES.get(spec.dtype, spec.dtype), spec.dtype)


class Model:
    """A loaded artifact. Construct with :func:`load`."""

    def __init__(self, path: Path, manifest: dict, vm: VirtualMachine):
        self.path = path
        self.manifest = manifest
        self._vm = vm
        self._inputs = [TensorSpec.from_json(d) for d in manifest["inputs"]]
        self._outputs = [TensorSpec.from_json(d) for d in manifest["outputs"]]

    @property
    def threads(self) -> int:
        """The CPU threads this model's kernels run on (``load``'s ``threads``)."""
        return self._vm.threads

    def get_inputs(self) -> list[IOInfo]:
        return [_info(s) for s in self._inputs]

    def get_outputs(self) -> list[IOInfo]:
        return [_info(s) for s in self._outputs]

    def run(self, output_names: list[str] | None, feeds: dict) -> list[np.ndarray]:
        """Run once; returns numpy arrays for ``output_names`` (all outputs when None)."""
        picks = self._pick_outputs(output_names)
        values = self._vm(self._check_feeds(feeds))
        return [values[i] for i in picks]

    def _pick_outputs(self, names: list[str] | None) -> list[int]:
        all_names = [s.name for s in self._outputs]
        if names is None:
            return list(range(len(all_names)))
        unknown = [n for n in names if n not in all_names]
        if unknown:
            raise FeedError(
                f"unknown output name(s) {', '.join(map(repr, unknown))}; "
                f"the model's outputs are: {', '.join(map(repr, all_names))}"
            )
        return [all_names.index(n) for n in names]

    def _check_feeds(self, feeds: dict) -> list[np.ndarray]:
        if not isinstance(feeds, dict):
            raise FeedError(
                f"feeds must be a dict of input name -> array, not {type(feeds).__name__}"
            )
        names = [s.name for s in self._inputs]
        unknown = sorted(set(feeds) - set(names))
        missing = [n for n in names if n not in feeds]
        if unknown or missing:
            parts = []
            if unknown:
                parts.append(f"unknown input(s) {', '.join(map(repr, unknown))}")
            if missing:
                parts.append(f"missing input(s) {', '.join(map(repr, missing))}")
            raise FeedError(
                f"{'; '.join(parts)}; the model's inputs are: {', '.join(map(repr, names))}"
            )
        symbols: dict[str, tuple[int, str]] = {}
        arrays = []
        for spec in self._inputs:
            value = feeds[spec.name]
            array = np.asarray(value, order="C")  # ascontiguousarray makes 0-d 1-d
            if str(array.dtype) != spec.dtype:
                raise FeedError(
                    f"input '{spec.name}' has dtype {array.dtype}, expected {spec.dtype}; "
                    f"convert it with .astype('{spec.dtype}')"
                )
            self._check_shape(spec, array.shape, symbols)
            arrays.append(array)
        return arrays

    @staticmethod
    def _check_shape(spec: TensorSpec, shape: tuple, symbols: dict) -> None:
        expected = format_shape(spec.shape)
        if len(shape) != len(spec.shape):
            raise FeedError(
                f"input '{spec.name}' has shape {format_shape(shape)}, expected {expected} "
                f"({len(spec.shape)} dims)"
            )
        for i, (want, got) in enumerate(zip(spec.shape, shape, strict=True)):
            if isinstance(want, int):
                if want != got:
                    raise FeedError(
                        f"input '{spec.name}' has shape {format_shape(shape)}, expected "
                        f"{expected}: dim {i} must be {want}"
                    )
            elif want in symbols and symbols[want][0] != got:
                seen, where = symbols[want]
                raise FeedError(
                    f"input '{spec.name}' dim {i} ('{want}') is {got}, but {where} set "
                    f"'{want}' to {seen}; symbolic dims must agree across inputs"
                )
            else:
                symbols.setdefault(want, (got, f"input '{spec.name}'"))


def default_threads() -> int:
    """Threads a model runs with when ``load`` is given none: ``TVM_NUM_THREADS`` when set,
    else the physical cores (ONNX Runtime's default, so a swapped-in model is not slower)."""
    value = os.environ.get("TVM_NUM_THREADS", "").strip()
    if value:
        try:
            threads = int(value)
        except ValueError:
            threads = 0
        if threads < 1:
            raise FeedError(f"TVM_NUM_THREADS={value!r} is not a positive integer; unset or fix it")
        return threads
    return physical_cores()


def load(
    path: str | Path,
    *,
    verify: bool = True,
    threads: int | None = None,
    public_key: str | Path | None = None,
) -> Model:
    """Verify the artifact's files against its manifest, then load it for this CPU.

    ``public_key``: an ECDSA P-256 public key (PEM file); when given, or when the
    ``TVMEDGE_PUBLIC_KEY`` environment variable names one, the artifact's signature
    (model.sig, tvmedge/runtime/signature.py) is verified first, whatever ``verify`` says:
    an unsigned artifact, another key's signature, or a changed, missing or extra file is an
    ArtifactError naming it. ``threads``: the CPU threads its kernels run on; None takes
    :func:`default_threads`. TVM has one thread pool per process, so models loaded with
    different counts resize it when they run."""
    path = Path(path)
    key = configured_key(public_key)
    if key is not None:
        verify_signature(path, key)
    if threads is None:
        threads = default_threads()
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise FeedError(f"threads must be a positive integer, not {threads!r}")
    manifest = read_manifest(path)
    if verify:
        verify_files(path, manifest)
    check_runs_here(path, manifest)
    return Model(path, manifest, VirtualMachine(path / LIBRARY, threads=threads))
