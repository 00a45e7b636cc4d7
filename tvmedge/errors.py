"""One error hierarchy for everything a user can get wrong.

Each class also inherits the matching builtin, so library callers can catch ``ValueError`` or
``FileNotFoundError`` as usual. Messages say what was wrong and what to do next; the CLI prints
them on one line and exits non-zero, with no traceback.
"""


class TvmedgeError(Exception):
    """Base of every error caused by input (files, arguments, feeds), not by a tvmedge bug."""

    exit_code = 2


class ModelFileError(TvmedgeError, ValueError):
    """The model file is missing, unreadable, not ONNX, truncated or invalid."""


class UnsupportedOpError(TvmedgeError, NotImplementedError):
    """The model uses operators that the importer cannot convert; lists every one at once."""

    def __init__(self, unsupported: dict[str, list[str]]):
        self.unsupported = dict(unsupported)
        parts = []
        for op, nodes in sorted(self.unsupported.items()):
            shown = ", ".join(repr(n) for n in nodes[:5])
            more = f" and {len(nodes) - 5} more" if len(nodes) > 5 else ""
            parts.append(f"{op} (nodes {shown}{more})")
        super().__init__(
            f"{len(self.unsupported)} unsupported ONNX operator(s): {'; '.join(parts)}. "
            "Rewrite or remove these nodes, or export with a different opset."
        )


class ShapeError(TvmedgeError, ValueError):
    """An --input-shape binding or an input shape at run time is wrong."""


class TargetError(TvmedgeError, ValueError):
    """An unknown target name or an invalid target file."""


class ArtifactError(TvmedgeError, ValueError):
    """An artifact is missing, incomplete, tampered with, or built for another machine."""


class KeyFileError(TvmedgeError, ValueError):
    """A signing or verification key file is missing, unreadable or not an ECDSA P-256 key."""


class OutputExistsError(TvmedgeError, FileExistsError):
    """The output path exists and --force was not given."""


class FeedError(TvmedgeError, ValueError):
    """Inputs passed to Model.run have the wrong names, dtypes or shapes."""


class PruneError(TvmedgeError, ValueError):
    """A --prune setting is wrong: a ratio outside (0, 1), an unknown criterion, a node name
    that is no prunable layer of the model."""


class BuildError(TvmedgeError, RuntimeError):
    """TVM failed to compile a model that it imported; carries the compiler's message."""


class InternalError(TvmedgeError, RuntimeError):
    """A failure inside tvmedge or TVM on input that passed every check: a bug to report, not
    something the user got wrong. Exits with its own code."""

    exit_code = 70  # EX_SOFTWARE


class CheckError(InternalError):
    """The compiled artifact failed its check (load, run, or agreement with ONNX Runtime)
    before it was moved into place; nothing was written."""


class CompilerFailure(BuildError, InternalError):
    """TVM itself failed on a model that imported: an internal failure (exit 70), still a
    BuildError for callers that catch those."""


class CalibrationError(TvmedgeError, ValueError):
    """Calibration, validation or label data that is missing, unreadable, empty, or does not
    match the model's inputs; or quantization options that do not fit the model."""


class AccuracyFloorError(TvmedgeError, ValueError):
    """The quantized model misses --accuracy-floor even with layers returned to float; the
    message names the floor, the best reached and the layers that hurt most."""
