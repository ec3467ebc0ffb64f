"""The worst-case background search: a budgeted, seeded, reproducible search over the
background families of the threat model (docs/threat-model.md), for any classifier; torch-free.

>>> from bgbench.attack import attack
>>> [result] = attack("model.onnx", budget=100)               # doctest: +SKIP
>>> result.worst_case.adaptive_accuracy                       # doctest: +SKIP

Names are imported on first use, so that ``bgbench.attack.protocol`` and ``families`` load
without onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"attack": "api", "attack_predictor": "api", "WorstCase": "search",
            "FAMILIES": "families", "NAMES": "families", "Family": "families",
            "Param": "families", "background": "families", "DEFAULT_BUDGET": "protocol",
            "PROTOCOL": "protocol"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bgbench.attack' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bgbench.attack.{_EXPORTS[name]}"), name)
