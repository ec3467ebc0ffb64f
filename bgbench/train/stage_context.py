"""What a stage's epochs and validation work with: the data, the networks, the options, the
process context and the progress display, with the helpers every stage shares (batches,
inputs, sampling uniforms, averaged metrics, accuracy). The trainer builds one per run and
hands it to each stage; the training benchmark builds one around its synthetic batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from bgbench.train.accuracy import EVAL_BATCH, count_correct
from bgbench.train.config import TrainOptions
from bgbench.train.data import Split, batch_order, shift, shift_offsets
from bgbench.train.distributed import Context
from bgbench.train.meters import Meters
from bgbench.train.steps import uniforms

Networks = dict[str, nn.Module]


class EpochProgress(Protocol):
    """How an epoch shows its progress (the trainer's ``Progress``)."""

    def iterate(self, batches: list[Tensor], desc: str) -> Iterator[Tensor]:
        """Yield the epoch's batches."""
        ...

    def postfix(self, meters: Meters, **shown: str) -> None:
        """Show running means of ``meters`` (``shown``: label to metric name)."""
        ...


@dataclass
class StageContext:
    """One run's data (on the device), networks, options, process context and progress, as
    every stage's epochs and validation see them."""

    data: Split
    models: Networks
    opts: TrainOptions
    dist: Context
    progress: EpochProgress
    dataset: str
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()``, computed once per run (e.g. a stage's fixed masks)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def batches(self, generator: torch.Generator) -> list[Tensor]:
        """The epoch's shuffled global batches of training indices."""
        return batch_order(self.data.x_train.shape[0], self.opts.batch_size, generator)

    def inputs(self, idx: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """This rank's images and labels of global batch ``idx``, augmented if asked."""
        offsets = (shift_offsets(idx.shape[0], generator)
                   if self.opts.augment == "shift" else None)
        local = self.dist.shard(idx).to(self.dist.device)
        x, y = self.data.x_train[local], self.data.y_train[local]
        if offsets is not None:
            x = shift(x, self.dist.shard(offsets))
        # A no-op for one channel (the two layouts are then the same memory).
        return x.contiguous(memory_format=torch.channels_last), y

    def uniforms(self, n: int, size: int, generator: torch.Generator) -> Tensor | None:
        """This rank's uniforms for sampling binary ``size`` x ``size`` backgrounds for
        global batch of ``n`` (None with ``bg_sample=none``), drawn for the whole global
        batch like all stage randomness."""
        u = uniforms(n, size, self.opts.bg_sample, generator)
        return None if u is None else self.dist.shard(u).to(self.dist.device)

    def finish(self, meters: Meters, batches: list[Tensor]) -> dict[str, float]:
        """An epoch's training metrics averaged over all processes, rounded, with the number
        of images it trained on (``images``)."""
        out = {k: round(v, 6) for k, v in meters.averages(self.dist).items()}
        out["images"] = len(batches) * self.opts.batch_size
        return out

    def val_chunks(self) -> Iterator[tuple[int, int]]:
        """This rank's ``[lo, hi)`` chunks of the validation images."""
        start, stop = self.dist.split(self.data.x_val.shape[0])
        for lo in range(start, stop, EVAL_BATCH):
            yield lo, min(lo + EVAL_BATCH, stop)

    def accuracy(self, model: nn.Module, x: Tensor, y: Tensor,
                 transform: Callable[[int, int, Tensor], Tensor] | None = None) -> float:
        """Accuracy of ``model`` on the validation images ``x`` (sharded over processes);
        ``transform(lo, hi, xb)`` replaces each batch ``x[lo:hi]`` first."""
        start, stop = self.dist.split(x.shape[0])
        shifted = None if transform is None else (
            lambda lo, hi, xb: transform(start + lo, start + hi, xb))
        meters = Meters("acc", device=self.dist.device)
        meters.add(stop - start, acc=count_correct(model, x[start:stop], y[start:stop], shifted))
        return round(meters.averages(self.dist)["acc"], 6)

    def validate_clean(self, model: nn.Module) -> tuple[float, dict[str, float]]:
        """Score and metrics: ``model``'s clean validation accuracy."""
        acc = self.accuracy(model, self.data.x_val, self.data.y_val)
        return acc, {"val_acc": acc}
