"""Running averages of an epoch's metrics, each accumulated under its name.

The sums stay on the device as one float64 tensor and are read back once per epoch (and,
for a progress bar, every few steps): reading a GPU value waits for every queued kernel, so a
read per step would stall the GPU between tiny steps.
"""

from __future__ import annotations

import torch
from torch import Tensor

from bgbench.train.distributed import Context


class Meters:
    """The running sum and sample count of each named metric (fed sums, so counts of correct
    predictions stay exact integers), averaged over every process at the end."""

    def __init__(self, *names: str, device: torch.device | str = "cpu") -> None:
        self.index = {name: i for i, name in enumerate(names)}
        self.sums = torch.zeros(len(names), dtype=torch.float64, device=device)
        self.counts = [0.0] * len(names)

    def add(self, n: float, **totals: Tensor | float) -> None:
        """Add each metric's sum over the same ``n`` samples (a tensor on the meters' device,
        or a number); every name must be a meter. Nothing is read back from the device."""
        unknown = sorted(totals.keys() - self.index.keys())
        if unknown:
            raise KeyError(f"no meter named {', '.join(unknown)}; the meters are "
                           f"{', '.join(self.index)}")
        for name, total in totals.items():
            i = self.index[name]
            # In place into the float64 row: a float32 loss is widened before it is summed.
            self.sums[i].add_(total.detach() if isinstance(total, Tensor) else total)
            self.counts[i] += n

    def running(self) -> dict[str, float]:
        """This process's means so far (for progress display; waits for the device)."""
        means = self.sums.tolist()
        return {name: means[i] / max(self.counts[i], 1.0) for name, i in self.index.items()}

    def averages(self, ctx: Context) -> dict[str, float]:
        """Each metric's mean over the samples of every process (one all-reduce, one read)."""
        counts = torch.tensor(self.counts, dtype=torch.float64).to(self.sums.device)
        totals = ctx.sum(torch.cat([self.sums, counts])).tolist()
        k = len(self.index)
        return {name: totals[i] / max(totals[k + i], 1.0) for name, i in self.index.items()}
