"""`tvmedge` entry point: parse, dispatch, and turn user errors into one line and an exit code."""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from tvmedge import __version__
from tvmedge.cli import bench, compile, inspect, profile, run, targets, tune, verify_bundle
from tvmedge.errors import TvmedgeError

COMMANDS = (compile, tune, run, inspect, profile, bench, verify_bundle, targets)


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


if __name__ == "__main__":
    sys.exit(main())
