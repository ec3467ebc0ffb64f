"""Running averages of an epoch's metrics, each accumulated under its name."""

from __future__ import annotations

import torch

from bgbench.train.distributed import Context


class AverageMeter:
    """The running sum and sample count of one metric (timm's ``AverageMeter``, fed sums
    so counts of correct predictions stay exact integers)."""

    def __init__(self) -> None:
        self.sum = 0.0
        self.count = 0.0

    def add(self, total: float, n: float) -> None:
        """Add ``total``, the metric summed over ``n`` samples."""
        self.sum += total
        self.count += n

    @property
    def avg(self) -> float:
        """The mean over the samples added so far on this process."""
        return self.sum / max(self.count, 1.0)


class Meters:
    """One ``AverageMeter`` per metric name, averaged over every process at the end."""

    def __init__(self, *names: str) -> None:
        self.meters = {name: AverageMeter() for name in names}

    def add(self, n: float, **totals: float) -> None:
        """Add each metric's sum over the same ``n`` samples; every name must be a meter."""
        for name, total in totals.items():
            self.meters[name].add(total, n)

    def running(self) -> dict[str, float]:
        """This process's means so far (for progress display)."""
        return {name: meter.avg for name, meter in self.meters.items()}

    def averages(self, ctx: Context) -> dict[str, float]:
        """Each metric's mean over the samples of every process (one all-reduce)."""
        values = [m.sum for m in self.meters.values()] + [m.count for m in self.meters.values()]
        totals = ctx.sum(torch.tensor(values, dtype=torch.float64, device=ctx.device)).tolist()
        k = len(self.meters)
        return {name: totals[i] / max(totals[k + i], 1.0) for i, name in enumerate(self.meters)}
