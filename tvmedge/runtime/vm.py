"""Run a compiled Relax VM library with only ``libtvm_runtime`` and ``tvm_ffi``.

Deployed hosts need neither TVM's compiler (libtvm_compiler, ~250 MB with LLVM) nor its Python
package: loading this way takes a fraction of the time and memory of ``import tvm``.
"""

from __future__ import annotations

import ctypes
import importlib.util
from functools import cache
from pathlib import Path

import numpy as np

from tvmedge.errors import ArtifactError

_KDL_CPU = 1
_POOLED_ALLOCATOR = 2
_ALIGNMENT = 64  # TVM allocates tensors 64-byte aligned; kernels may rely on it


@cache
def _runtime_library() -> ctypes.CDLL:
    spec = importlib.util.find_spec("tvm")  # locate the wheel without importing the compiler
    if spec is None or spec.origin is None:
        raise ArtifactError(
            "the TVM runtime is not installed: pip install apache-tvm==0.27.0.post1"
        )
    path = Path(spec.origin).parent / "lib" / "libtvm_runtime.so"
    if not path.is_file():
        raise ArtifactError(f"libtvm_runtime.so not found at {path}; reinstall apache-tvm")
    # RTLD_GLOBAL: the model library resolves the VM's symbols from it.
    return ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)


class VirtualMachine:
    """The ``main`` function of one loaded artifact library, on the CPU."""

    def __init__(self, library: Path):
        import tvm_ffi

        _runtime_library()
        self._ffi = tvm_ffi
        self._module = tvm_ffi.load_module(str(library))
        self._vm = self._module["vm_load_executable"]()
        self._vm["vm_initialization"](
            _KDL_CPU, 0, _POOLED_ALLOCATOR, _KDL_CPU, 0, _POOLED_ALLOCATOR
        )
        self._main = self._vm["main"]

    def set_instrument(self, callback) -> None:
        """Call ``callback(func, symbol, before, ret, *args)`` around every VM call instruction
        (TIR kernels and VM builtins); `tvmedge profile` times kernels with it. None removes it."""
        self._vm["set_instrument"](None if callback is None else self._ffi.convert(callback))

    def __call__(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        result = self._main(*(self._ffi.from_dlpack(_aligned(a)) for a in arrays))
        values = result if isinstance(result, self._ffi.Array) else [result]
        return [np.from_dlpack(v) for v in values]


def _aligned(array: np.ndarray) -> np.ndarray:
    """The array itself when it is C-contiguous, writeable and aligned; else an aligned copy."""
    if array.flags.c_contiguous and array.flags.writeable and array.ctypes.data % _ALIGNMENT == 0:
        return array
    raw = np.empty(array.nbytes + _ALIGNMENT, dtype=np.uint8)
    offset = -raw.ctypes.data % _ALIGNMENT
    copy = raw[offset : offset + array.nbytes].view(array.dtype).reshape(array.shape)
    copy[...] = array
    return copy
