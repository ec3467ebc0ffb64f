"""Where data lives: ``--data-root``, else ``$BGBENCH_DATA``, else ``~/.cache/bgbench/data``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def data_root(arg: str | os.PathLike | None = None) -> Path:
    """Resolve the data root from an explicit argument, the environment or the default."""
    if arg:
        return Path(arg).expanduser()
    env = os.environ.get("BGBENCH_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "bgbench" / "data"


def add_data_root_argument(parser: argparse.ArgumentParser) -> None:
    """Add the ``--data-root`` option every data-reading command shares."""
    parser.add_argument(
        "--data-root", metavar="DIR", default=None,
        help="dataset folder (default: $BGBENCH_DATA, else ~/.cache/bgbench/data)",
    )
