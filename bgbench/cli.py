"""The ``bgbench`` command: one entry point, one module per subcommand in ``bgbench.commands``.

Subcommand modules import heavy libraries (torch) only inside their ``run``, so that
``bgbench eval`` works where torch is not installed; a command that needs an extra which is
not installed fails with one line naming it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bgbench import __version__
from bgbench.errors import BgbenchError
from bgbench.extras import missing_dependency_message

# Order is the order of the data flow, as ``bgbench --help`` shows it.
COMMANDS = ("data", "backgrounds", "train", "score", "export", "eval", "attack", "compare",
            "merge",
            "report", "reproduce")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="bgbench",
        description="Train background-invariant classifiers, export them to ONNX and "
        "measure how any ONNX classifier survives background changes.",
    )
    parser.add_argument("--version", action="version", version=f"bgbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"bgbench.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (2 for usage errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BgbenchError as err:
        print(f"bgbench {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except ModuleNotFoundError as err:
        message = missing_dependency_message(err)
        if message is None:
            raise
        print(f"bgbench {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bgbench {args.command}: interrupted", file=sys.stderr)
        return 130
