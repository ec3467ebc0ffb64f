"""A stage's checkpoint as a typed record, and reading checkpoints and weights safely."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bgbench.errors import BgbenchError
from bgbench.fileio import write_stream

StateDict = dict[str, Tensor]


@dataclass
class StageCheckpoint:
    """Where a stage stands after an epoch: its networks and optimizers now, and the best
    epoch so far (by validation score) with that epoch's networks and metrics."""

    stage: str
    epochs_done: int
    complete: bool
    modules: dict[str, StateDict]
    optimizers: list[dict[str, Any]]
    best_score: float
    best_epoch: int
    best_modules: dict[str, StateDict]
    best_metrics: dict[str, float]
    # With weight averaging: the running mean of the averaged networks over the last
    # ``averaged`` epochs (absent from checkpoints of runs that never averaged).
    average: dict[str, StateDict] = field(default_factory=dict)
    averaged: int = 0

    @property
    def summary(self) -> dict[str, float]:
        """The kept epoch (with averaging: the last one averaged, and how many were), its
        score and its validation metrics (``done.json``'s stages)."""
        averaged = {"averaged_epochs": self.averaged} if self.averaged else {}
        return {"best_epoch": self.best_epoch, **averaged, "best_score": self.best_score,
                **self.best_metrics}

    def add_to_average(self, modules: dict[str, StateDict]) -> None:
        """Fold ``modules`` (CPU state dicts) into the running mean of their weights."""
        self.averaged += 1
        for name, state in modules.items():
            mean = self.average.setdefault(name, state)
            if mean is not state:
                for key, value in state.items():
                    if value.is_floating_point():
                        mean[key] += (value - mean[key]) / self.averaged
                    else:  # counters and the like: the latest
                        mean[key] = value

    def save(self, path: Path) -> None:
        """Write atomically as a plain dictionary (readable with ``weights_only=True``)."""
        state = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        state["summary"] = self.summary
        write_stream(path, functools.partial(torch.save, state))

    @classmethod
    def load(cls, path: Path) -> StageCheckpoint:
        """Read ``path``; a broken or foreign file is an error naming it."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            return cls(**{f.name: state[f.name] for f in dataclasses.fields(cls)
                          if f.name in state or f.default is dataclasses.MISSING
                          and f.default_factory is dataclasses.MISSING})
        except Exception as err:
            raise BgbenchError(f"checkpoint {path} is corrupt or unreadable "
                               f"({type(err).__name__}); delete it or start the run over") from None


def clone_state(module: nn.Module) -> StateDict:
    """A CPU copy of ``module``'s state dict, detached from training."""
    return {k: v.detach().to("cpu", copy=True).contiguous()
            for k, v in module.state_dict().items()}


def load_state(module: nn.Module, state: StateDict, path: Path) -> None:
    """``module.load_state_dict(state)`` with a mismatch reported as an error naming ``path``."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()[0]
        raise BgbenchError(f"{path} does not match the model its config.json describes "
                           f"({first}); start the run over") from None
