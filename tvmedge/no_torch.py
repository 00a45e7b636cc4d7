"""Keep PyTorch out of worker processes that never need it.

tvm_ffi imports torch whenever it is installed (+~250 MB, +2 s per process). Setting
``sys.modules["torch"] = None`` stops that, but libraries that look torch up in sys.modules
(scikit-learn's array-API support, which xgboost imports for MetaSchedule's cost model) then
find ``None`` and fail with "'NoneType' object has no attribute 'Tensor'". A finder that
refuses the import leaves sys.modules alone: ``import torch`` raises ImportError, as if it
were not installed, and everything else sees no torch at all.
"""

from __future__ import annotations

import importlib.abc
import sys


class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"{name} is not imported in this worker process", name=name)
        return None


def block() -> None:
    """Make ``import torch`` fail in this process (call before importing tvm)."""
    if "torch" in sys.modules:
        return  # already imported: nothing to save
    if not any(isinstance(f, _NoTorch) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoTorch())
