"""Benchmarks that print their figures in one run: ``python -m bgbench.bench NAME [args]``.

Each ``bgbench.bench.NAME`` module has ``main(argv) -> int`` and exits non-zero when a figure
misses its target (``train``, which has none: when a figure is not finite); modules named
``_*`` hold shared helpers. The asv suites in
``benchmarks/`` time the same things for tracking across commits.
"""

from __future__ import annotations

import importlib
import pkgutil


def available() -> list[str]:
    """Names of the benchmark modules in this package."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__)
                  if not info.ispkg and not info.name.startswith("_"))


def run(name: str, argv: list[str]) -> int:
    """Import ``bgbench.bench.<name>`` and return its ``main(argv)``."""
    if name not in available():
        raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(available())}")
    return int(importlib.import_module(f"bgbench.bench.{name}").main(argv) or 0)
