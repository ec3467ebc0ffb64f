"""Training: the three-stage background-invariant method, its baselines and ablations.

``train`` runs one configuration (``make_config``, a ``RunConfig``) into a run directory;
``load_config``, ``load_classifier`` and ``load_generators`` read a run back. They are
imported lazily so that ``bgbench.train.config`` (which the CLI reads to build its options)
does not import torch.
A method is an ordered tuple of stages (``bgbench.train.stages``); the trainer runs them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_classifier", "load_config", "load_generators", "make_config", "read_config",
           "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bgbench.train import run

        return getattr(run, name)
    raise AttributeError(f"module 'bgbench.train' has no attribute {name!r}")
