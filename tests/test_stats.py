"""The statistics module against scipy and against independent formulas."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as sps

from bgbench.errors import ParameterError
from bgbench.harness.stats import (
    Z95,
    binomial_sd,
    holm,
    mcnemar_p,
    paired_difference,
    wilson,
)

COUNTS = [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (9894, 10000), (1, 10000), (5000, 10000),
          (17, 240), (239, 240)]


def wilson_by_roots(k: int, n: int, z: float) -> tuple[float, float]:
    """The Wilson interval as the roots in p of (k/n - p)^2 = z^2 p (1 - p) / n."""
    phat = k / n
    a = 1 + z * z / n
    b = -(2 * phat + z * z / n)
    c = phat * phat
    root = math.sqrt(max(0.0, b * b - 4 * a * c))
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


@pytest.mark.parametrize(("k", "n"), COUNTS)
def test_wilson_equals_scipy_and_the_quadratic(k, n):
    low, high = wilson(k, n)
    ci = sps.binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert (low, high) == pytest.approx(wilson_by_roots(k, n, Z95), abs=1e-12)
    assert 0 <= low <= k / n <= high <= 1
    assert Z95 == pytest.approx(sps.norm.ppf(0.975), abs=1e-15)


def test_binomial_sd():
    assert binomial_sd(9894, 10000) == pytest.approx(math.sqrt(0.9894 * 0.0106 / 10000))
    assert binomial_sd(0, 5) == 0


def exact_two_sided(b: int, c: int) -> float:
    """Sum, in exact fractions, of the Binomial(b + c, 1/2) probabilities no larger than
    that of the split observed (the binomial test's two-sided rule)."""
    n = b + c
    pmf = [Fraction(math.comb(n, i), 2 ** n) for i in range(n + 1)]
    return float(min(1, sum(p for p in pmf if p <= pmf[b])))


@pytest.mark.parametrize(("b", "c"), [(0, 0), (1, 0), (0, 1), (5, 3), (3, 5), (10, 10), (0, 25),
                                      (77, 6), (140, 160), (286, 0), (1, 49), (33, 34)])
def test_mcnemar_equals_scipy_binomtest_and_exact_fractions(b, c):
    p = mcnemar_p(b, c)
    if b + c:
        assert p == pytest.approx(sps.binomtest(b, b + c, 0.5).pvalue, rel=1e-9, abs=1e-300)
    assert p == pytest.approx(exact_two_sided(b, c), rel=1e-9, abs=1e-300)
    assert p == mcnemar_p(c, b)


def test_mcnemar_on_large_counts_does_not_overflow():
    p = mcnemar_p(4800, 5200)
    assert p == pytest.approx(sps.binomtest(4800, 10000, 0.5).pvalue, rel=1e-8)
    assert 0 < mcnemar_p(9000, 0) < 1e-300 or mcnemar_p(9000, 0) == 0.0


def test_paired_difference_is_newcombes_hybrid_score_interval():
    both, only_a, only_b, neither = 400, 77, 6, 17
    n = both + only_a + only_b + neither
    diff, low, high = paired_difference(both, only_a, only_b, neither)
    assert diff == pytest.approx((only_a - only_b) / n)
    # Method 10 written out from Newcombe (1998) with scipy's Wilson limits.
    ci_a = sps.binomtest(both + only_a, n).proportion_ci(method="wilson")
    ci_b = sps.binomtest(both + only_b, n).proportion_ci(method="wilson")
    p_a, p_b = (both + only_a) / n, (both + only_b) / n
    phi = (both * neither - only_a * only_b) / math.sqrt(
        (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither))
    delta = math.sqrt((p_a - ci_a.low) ** 2 - 2 * phi * (p_a - ci_a.low) * (ci_b.high - p_b)
                      + (ci_b.high - p_b) ** 2)
    eps = math.sqrt((ci_a.high - p_a) ** 2 - 2 * phi * (ci_a.high - p_a) * (p_b - ci_b.low)
                    + (p_b - ci_b.low) ** 2)
    assert (low, high) == pytest.approx((diff - delta, diff + eps), abs=1e-12)


def test_paired_difference_covers_about_95_percent():
    rng = np.random.default_rng(0)
    probs = np.array([0.6, 0.15, 0.05, 0.2])  # both, only A, only B, neither
    truth = probs[1] - probs[2]
    hits = 0
    trials = 2000
    for counts in rng.multinomial(300, probs, size=trials):
        _, low, high = paired_difference(*map(int, counts))
        hits += low <= truth <= high
    assert 0.93 <= hits / trials <= 0.97


def test_paired_difference_edges():
    # Both always right: no discordant pair, and the interval is as wide as the uncertainty
    # of each accuracy (a margin is empty, so the correlation term is 0).
    half = 1 - wilson(10, 10)[0]
    assert paired_difference(10, 0, 0, 0) == (0.0, pytest.approx(-half), pytest.approx(half))
    diff, low, high = paired_difference(0, 20, 0, 0)
    assert diff == 1 and low < 1 and high == 1


def test_holm_against_the_step_down_rule():
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    adjusted = holm(p)
    # Sorted: 0.005*5, 0.01*4, 0.03*3, 0.04*2 (monotone), 0.5*1.
    assert adjusted == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.5])
    assert holm([]) == []
    assert holm([0.9, 0.4]) == [0.9, 0.8]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: wilson(3, 0), "`n` must be positive"),
    (lambda: wilson(11, 10), "`k` must lie in 0..n"),
    (lambda: mcnemar_p(-1, 3), "non-negative"),
    (lambda: paired_difference(1, -2, 0, 0), "non-negative"),
])
def test_impossible_counts_are_refused(call, message):
    with pytest.raises(ParameterError, match=message):
        call()
