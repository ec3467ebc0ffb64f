"""Matplotlib without a display, and PNG figures written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bgbench.fileio import atomic_path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: str | Path, dpi: int = 80) -> Path:
    """Write ``fig`` to ``path`` as a PNG atomically, close it, and return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    pyplot().close(fig)
    return path
