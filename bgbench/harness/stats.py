"""The statistics behind bgbench's intervals and paired tests, in plain Python (no scipy).

- ``wilson``: the 95% Wilson score interval of an accuracy ``k / n``;
- ``mcnemar_p``: the exact McNemar test of two models on the same images, i.e. the two-sided
  binomial test of the discordant pairs against an even split;
- ``paired_difference``: a 95% interval for the difference of two accuracies measured on the
  same images (Newcombe's hybrid score interval for paired proportions, his method 10);
- ``holm``: Holm's step-down adjustment of several p-values.

Every function checks its counts and raises ``ParameterError`` on impossible ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from bgbench.errors import ParameterError

LEVEL = 0.95
Z95 = NormalDist().inv_cdf(0.5 + LEVEL / 2)


def _check_count(name: str, k: int, n: int) -> None:
    if n <= 0:
        raise ParameterError(f"`n` must be positive for an interval, got {n}; an accuracy "
                             "needs at least one image")
    if not 0 <= k <= n:
        raise ParameterError(f"`{name}` must lie in 0..n ({n}), got {k}")


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval ``(low, high)`` of the proportion ``k / n`` (95% by default)."""
    _check_count("k", k, n)
    p = k / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At k = 0 (k = n) the lower (upper) bound is exactly 0 (1); rounding would miss it.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def binomial_sd(k: int, n: int) -> float:
    """Standard deviation of an accuracy ``k / n`` from the finite test set alone."""
    _check_count("k", k, n)
    p = k / n
    return math.sqrt(p * (1 - p) / n)


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value: of ``only_a + only_b`` images that exactly one of two
    models gets right, the chance under an even split of a split at least this uneven."""
    if only_a < 0 or only_b < 0:
        raise ParameterError(f"discordant counts must be non-negative, got {only_a} and "
                             f"{only_b}")
    n = only_a + only_b
    k = min(only_a, only_b)
    if 2 * k == n:
        return 1.0
    # log C(n, i) - n log 2 for i = 0..k, summed in log space so that large n cannot
    # overflow; the two tails are equal because the null distribution is symmetric.
    log_terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                 for i in range(k + 1)]
    top = max(log_terms)
    log_tail = top + math.log(math.fsum(math.exp(t - top) for t in log_terms)) - n * math.log(2)
    return min(1.0, 2 * math.exp(log_tail))


def paired_difference(both: int, only_a: int, only_b: int, neither: int,
                      z: float = Z95) -> tuple[float, float, float]:
    """``(difference, low, high)``: accuracy of A minus accuracy of B on the same images, with
    Newcombe's hybrid score interval (method 10), from the 2x2 table of per-image outcomes."""
    counts = (both, only_a, only_b, neither)
    if min(counts) < 0:
        raise ParameterError(f"the 2x2 counts must be non-negative, got {counts}")
    n = sum(counts)
    p_a, p_b = (both + only_a) / n, (both + only_b) / n
    low_a, high_a = wilson(both + only_a, n, z)
    low_b, high_b = wilson(both + only_b, n, z)
    margins = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / math.sqrt(margins) if margins else 0.0
    delta = math.sqrt(max(0.0, (p_a - low_a) ** 2 - 2 * phi * (p_a - low_a) * (high_b - p_b)
                          + (high_b - p_b) ** 2))
    epsilon = math.sqrt(max(0.0, (high_a - p_a) ** 2 - 2 * phi * (high_a - p_a) * (p_b - low_b)
                            + (p_b - low_b) ** 2))
    diff = p_a - p_b
    return diff, max(-1.0, diff - delta), min(1.0, diff + epsilon)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: a set is significant at level ``a`` over
    the whole family when its adjusted p-value is at most ``a``."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
