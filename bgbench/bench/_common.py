"""What the benchmarks share: interleaved timing (torch is imported only to sync CUDA) and
the check of figures against their targets."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def sync(device: str) -> None:
    """Wait for queued GPU work on ``cuda``; nothing to wait for on ``cpu``."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def time_interleaved(cands: dict[str, Callable[[], object]], device: str, rounds: int,
                     block_s: float) -> dict[str, float]:
    """Median seconds per call of each candidate, timed in alternating rounds, so that on a
    shared machine every candidate sees the same load."""
    iters, samples = {}, {name: [] for name in cands}
    for name, fn in cands.items():  # warm up, and size a block to about block_s
        fn()
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        iters[name] = max(1, int(block_s / max(time.perf_counter() - start, 1e-7)))
    for _ in range(rounds):
        for name, fn in cands.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(iters[name]):
                fn()
            sync(device)
            samples[name].append((time.perf_counter() - start) / iters[name])
    return {name: float(np.median(s)) for name, s in samples.items()}


def check_targets(ratios: dict[str, float], targets: dict[str, float]) -> int:
    """Print each target (a minimum ratio) beside its figure; returns how many were missed.

    A target whose figure was not measured is listed as such and not counted as missed.
    """
    missed = 0
    print("targets:")
    for label, want in targets.items():
        if label not in ratios:
            print(f"  {label:<44} >= {want:<5} not measured")
            continue
        ok = ratios[label] >= want
        missed += not ok
        print(f"  {label:<44} >= {want:<5} got {ratios[label]:6.2f}  {'ok' if ok else 'MISSED'}")
    return missed
