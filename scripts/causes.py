"""Known causes of conformance failures, for both suites (scripts/model_sets.py and
scripts/node_suite.py), so that each cause and what it would take to fix reads once.

Each entry is (pattern, cause, what it would take). Patterns are searched, in order, in the
failure's text (node suite: "<kind>: <reason>", e.g. "refused: TVM's ONNX importer failed
..."; model sets: their reason); the first match wins. ``cause`` may use the pattern's groups
({1}); {0} is the whole match.
"""

from __future__ import annotations

import re

_CONVERTER = "tvmedge/frontend/converters/<family>.py"

KNOWN_CAUSES: tuple[tuple[str, str, str], ...] = (
    (
        r"StringNormalizer|StringConcat|StringSplit|RegexFullMatch",
        "string op",
        "Known TVM limitation: Relax tensors have no string dtype and the VM cannot take numpy "
        "object arrays, so string ops cannot be compiled. Fixing it means running string "
        "pre-processing outside the compiled model (in the caller, or a host-side packed "
        "function for tvmedge's runtime to call before `main`).",
    ),
    (
        r"ai\.onnx\.preview\.training::(\w+)",
        "training-only op {1}",
        "Training-only op (domain ai.onnx.preview.training). tvmedge expands `Gradient` "
        "(frontend/gradient.py); optimizers (Adam, Adagrad, Momentum) would need converters "
        "outside the default domain, which the unsupported-op scan (frontend/ops.py) rejects "
        "today. Worth it only if training graphs become a goal.",
    ),
    (
        r"unsupported ONNX operator\(s\): (ai\.onnx\.ml)::",
        "ai.onnx.ml op (traditional ML)",
        "ONNX-ML ops (LabelEncoder, TreeEnsemble, ...): tvmedge rejects every op outside the "
        "default domain; each would need a converter and the scan to accept its domain.",
    ),
    (
        r"unsupported ONNX operator\(s\): (\S+) \(",
        "unsupported op {1}",
        f"Add a converter for the op as {_CONVERTER} (`@register`), tested against ONNX Runtime.",
    ),
    (
        r"unsupported ONNX operator\(s\)",
        "several unsupported ops",
        f"Add converters for the ops the reason lists ({_CONVERTER}).",
    ),
    (
        r"is not a tensor \(sequences, maps and optionals",
        "sequence/optional graph input",
        "tvmedge compiles tensor inputs and outputs only; a sequence or optional at the graph "
        "boundary would need the runtime to pass TVM ADT objects.",
    ),
    (
        r"\((\w+)\): .*(requires the input new shape to be Shape|must be a constant"
        r"|must be constant|only supports constant|should be constant|to be constant"
        r"|Dynamic .* not supported|is not a constant|Only constant"
        r"|The node's value inputs come at run time)",
        "run-time shape/axes input ({1})",
        "The op's shape-like input (shape, axes, pads, k, ...) is a graph input, not a "
        "constant, and TVM's converter needs it at compile time. Exported models carry these "
        "as initializers (see the frozen run); a tvmedge converter that reads the value at "
        "run time would fix it.",
    ),
    (
        r"\(Attention\): 'num_heads'",
        "Attention: no 'num_heads' attribute",
        "TVM's Attention converter is the com.microsoft one and reads `num_heads`, which "
        "opset-23 Attention (4-D q/k/v) does not need: a tvmedge converter for opset-23 "
        f"Attention ({_CONVERTER}). Its `_expanded` twins (plain ops) show the math works.",
    ),
    (
        r"\(Constant\): no value in Constant",
        "Constant with value_float(s)/value_int(s)/sparse_value",
        "TVM's importer reads only Constant's `value` attribute; a tvmedge converter for "
        "Constant's other attributes.",
    ),
    (
        r"Unsupported dtype in DLTensor|DLPack only supports"
        r"|bfloat16|float8|float4|int4|uint4|e4m3|e5m2",
        "low-precision dtype (bfloat16, float8, int4)",
        "The dtype has no numpy <-> DLPack path in tvmedge.runtime, or no TVM lowering; "
        "support it in the runtime's feeds and outputs (ml_dtypes arrays).",
    ),
    (
        r"'SeqStmt' object has no attribute 'indices'",
        "internal error: a CPU schedule rule fails on a SeqStmt body",
        "One of tvmedge's CPU schedule rules (tvmedge/schedules) assumes a block body is a "
        "single BufferStore; ArgMax/ArgMin reductions (two stores) break it. Make the rule "
        "skip or handle such blocks.",
    ),
    (
        r"^wrong: .*NaN in one and not the other",
        "wrong: NaN where a number is expected, or a number where NaN is",
        "Usually a fully masked row (softmax over only -inf) or a 0/0: compare the op's "
        "handling of that edge with the ONNX reference (onnx/reference/ops).",
    ),
    (
        r"^wrong: .*\(float16\)",
        "wrong: float16 rounding",
        "float16 outputs beyond rtol 1e-3: check whether tvmedge's kernels accumulate float16 "
        "MatMul/reductions in float16 where ONNX Runtime uses float32.",
    ),
    (r"^wrong: .*: shape ", "wrong: output shape", "Fix the op's shape rule in its converter."),
    (r"^wrong: .*: dtype ", "wrong: output dtype", "Fix the op's output dtype in its converter."),
    (
        r"^wrong: ",
        "wrong: values differ",
        "Reduce the case to the op, compare with ONNX Runtime, fix the op's converter.",
    ),
)


def match(text: str) -> tuple[str, str] | None:
    """(cause, what it would take) of the first known cause found in ``text``, or None."""
    for pattern, cause, note in KNOWN_CAUSES:
        m = re.search(pattern, text)
        if m:
            return cause.format(m.group(0), *m.groups()), note
    return None
