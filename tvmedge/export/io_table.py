"""The I/O table a compiled library carries about itself, for runtimes without Python or JSON.

``model.so`` exports a VM function ``tvmedge_io`` returning one line per tensor:

    input<TAB>image<TAB>float32<TAB>batch,3,224,224
    output<TAB>probs<TAB>float32<TAB>batch,1000

Dims are integers or the names of symbolic dims. The C API (tvmedge_model.h) parses this.
"""

from __future__ import annotations

import tvm
from tvm import relax
from tvm.relax.expr import String

from tvmedge.layout import TensorSpec

FUNCTION = "tvmedge_io"


def format_io_table(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> str:
    lines = []
    for kind, specs in (("input", inputs), ("output", outputs)):
        for s in specs:
            if any(c in s.name for c in "\t\n"):
                raise ValueError(f"tensor name {s.name!r} contains a tab or newline")
            lines.append(f"{kind}\t{s.name}\t{s.dtype}\t{','.join(map(str, s.shape))}")
    return "\n".join(lines) + "\n"


def attach(mod: tvm.IRModule, table: str) -> tvm.IRModule:
    """A copy of ``mod`` with the ``tvmedge_io`` function added (the input is not changed)."""
    func = relax.Function([], String(table)).with_attr("global_symbol", FUNCTION)
    out = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
    out[FUNCTION] = func
    return out
