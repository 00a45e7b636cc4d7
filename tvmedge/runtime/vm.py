"""Run a compiled Relax VM library with only ``libtvm_runtime`` and ``tvm_ffi``.

Deployed hosts need neither TVM's compiler (libtvm_compiler, ~250 MB with LLVM) nor its Python
package: loading this way takes a fraction of the time and memory of ``import tvm``.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from functools import cache
from pathlib import Path

import numpy as np

from tvmedge.errors import ArtifactError, FeedError, InternalError

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


_pool_threads: int | None = None  # what this process's TVM thread pool was last sized to


def set_threads(threads: int) -> None:
    """Size this process's TVM CPU thread pool (one pool per process, shared by every model):
    the environment for a pool not started yet, TVM's config call for one that is."""
    global _pool_threads
    if threads == _pool_threads:
        return
    import tvm_ffi

    _runtime_library()
    os.environ["TVM_NUM_THREADS"] = str(threads)
    tvm_ffi.get_global_func("runtime.config_threadpool")(0, threads)
    _pool_threads = threads


def _cause(e: Exception) -> str:
    """The first line of a TVM error, without its C++ frames."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else 'no message'}"[:400]


class VirtualMachine:
    """The ``main`` function of one loaded artifact library, on the CPU, with ``threads``
    threads. Every call into tvm_ffi is wrapped: a library that passed its hash check but
    cannot be loaded, initialized or run is an InternalError (a bug) with TVM's cause."""

    def __init__(self, library: Path, *, threads: int):
        import tvm_ffi

        _runtime_library()
        self._ffi = tvm_ffi
        self.threads = threads
        try:
            self._module = tvm_ffi.load_module(str(library))
            self._vm = self._module["vm_load_executable"]()
        except Exception as e:
            raise InternalError(
                f"{library} passes its hash check but the TVM runtime cannot load it "
                f"({_cause(e)}); the compiler wrote a library this runtime cannot read: "
                "report it as a tvmedge bug, and recompile with the same tvmedge and TVM"
            ) from e
        try:
            self._vm["vm_initialization"](
                _KDL_CPU, 0, _POOLED_ALLOCATOR, _KDL_CPU, 0, _POOLED_ALLOCATOR
            )
            self._main = self._vm["main"]
        except Exception as e:
            raise InternalError(
                f"the TVM runtime loaded {library} but could not initialize its VM "
                f"({_cause(e)}); a tvmedge bug: please report it"
            ) from e

    def set_instrument(self, callback) -> None:
        """Call ``callback(func, symbol, before, ret, *args)`` around every VM call instruction
        (TIR kernels and VM builtins); `tvmedge profile` times kernels with it. None removes it."""
        self._vm["set_instrument"](None if callback is None else self._ffi.convert(callback))

    def __call__(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        set_threads(self.threads)  # another model in this process may have resized the pool
        try:
            result = self._main(*(self._ffi.from_dlpack(_aligned(a)) for a in arrays))
        except Exception as e:
            if "match_cast error" in str(e):  # a shape rule of the model, checked at run time
                raise FeedError(
                    "these input shapes break a shape rule of the model, checked when it ran "
                    f"({_cause(e)}); give inputs of shapes the model accepts (ONNX Runtime "
                    "refuses them too)"
                ) from e
            raise InternalError(
                f"the model failed inside the TVM runtime ({_cause(e)}); the inputs passed "
                "every check against the manifest, so this is a tvmedge bug: please report it"
            ) from e
        values = result if isinstance(result, self._ffi.Array) else [result]
        return [np.from_dlpack(v) for v in values]


def _aligned(array: np.ndarray) -> np.ndarray:
    """The array itself when it is C-contiguous, writeable and aligned; else an aligned copy.
    An array with no elements gets the compact strides TVM's kernels check for: numpy reports
    0 for every stride of such an array ("Mismatched strides" inside the VM otherwise)."""
    if array.size == 0:
        strides, step = [], array.dtype.itemsize
        for dim in reversed(array.shape):
            strides.append(step)
            step *= dim
        base = np.empty(1, dtype=array.dtype)
        return np.lib.stride_tricks.as_strided(base, array.shape, tuple(reversed(strides)))
    if array.flags.c_contiguous and array.flags.writeable and array.ctypes.data % _ALIGNMENT == 0:
        return array
    raw = np.empty(array.nbytes + _ALIGNMENT, dtype=np.uint8)
    offset = -raw.ctypes.data % _ALIGNMENT
    copy = raw[offset : offset + array.nbytes].view(array.dtype).reshape(array.shape)
    copy[...] = array
    return copy
