"""A run's configuration, typed: what defines what the run computes. ``config.json`` holds it
as a flat record (with the run's stages and provenance beside it); ``as_dict`` and
``from_dict`` are the only ways between the two. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bgbench.train.config import TrainOptions


@dataclass(frozen=True)
class RunConfig:
    """The dataset, method, preset, seed and resolved options of one training run."""

    dataset: str
    method: str
    preset: str
    seed: int
    options: TrainOptions

    def as_dict(self) -> dict[str, Any]:
        """The configuration as ``config.json`` records it (options flat, by name)."""
        return {"dataset": self.dataset, "method": self.method, "preset": self.preset,
                "seed": self.seed, "options": self.options.as_dict()}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> RunConfig:
        """The configuration of a ``config.json`` record; its other entries (stages,
        provenance) are left out."""
        return cls(record["dataset"], record["method"], record["preset"], record["seed"],
                   TrainOptions.from_dict(record["options"]))
