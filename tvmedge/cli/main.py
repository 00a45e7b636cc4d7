"""`tvmedge` entry point: parse, dispatch, and turn user errors into one line and an exit code."""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from tvmedge import __version__
from tvmedge.cli import (
    bench,
    compile,
    inspect,
    profile,
    run,
    sign,
    targets,
    tune,
    verify_bundle,
)
from tvmedge.errors import InternalError, TvmedgeError

COMMANDS = (compile, tune, run, inspect, profile, bench, verify_bundle, sign, targets)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tvmedge",
        description="Compile ONNX models with Apache TVM for a device; compare with ONNX Runtime.",
    )
    p.add_argument("--version", action="version", version=f"tvmedge {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except TvmedgeError as e:
        if os.environ.get("TVMEDGE_DEBUG"):
            traceback.print_exc()
        print(f"tvmedge: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("tvmedge: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as e:  # not a user error: a bug, said as one, with its own exit code
        if os.environ.get("TVMEDGE_DEBUG"):
            traceback.print_exc()
        first = (str(e).strip().splitlines() or [""])[0][:300]
        print(
            f"tvmedge: internal error: {type(e).__name__}: {first} (a tvmedge bug: please "
            "report it; TVMEDGE_DEBUG=1 prints the trace)",
            file=sys.stderr,
        )
        return InternalError.exit_code


if __name__ == "__main__":
    sys.exit(main())
