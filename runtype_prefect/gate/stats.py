"""The few exact tests the gate needs, without SciPy: binomial tails in log space, and the
test of a night's count of bad things against its baseline nights."""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Bad records a baseline night must expect before the nights' dispersion is estimated.
MIN_EXPECTED_FOR_DISPERSION = 5.0


def binomial_sf(k: int, n: int, p: float) -> float:
    """Return P(X ≥ k) for X ~ Binomial(n, p): the one-sided p-value of ``k`` or more
    events in ``n`` trials. Exact (a sum of log-space terms), for any n the gate sees."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n_fact = math.lgamma(n + 1)
    logs = [
        log_n_fact - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q
        for i in range(k, n + 1)
    ]
    top = max(logs)
    return min(1.0, math.exp(top) * math.fsum(math.exp(x - top) for x in logs))


def _kept(baseline: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The baseline nights but the worst in seven."""
    return sorted(baseline, key=lambda n: n[0] / n[1])[: len(baseline) - len(baseline) // 7]


def baseline_rate(baseline: list[tuple[int, int]], *, trim: bool = True) -> float:
    """Return the pooled rate of ``baseline`` nights given as (bad, total), with half a bad
    one of prior (a spotless history does not make one bad one significant) and, with
    ``trim``, leaving out the worst in seven (one bad night missed does not raise the bar for
    the next)."""
    kept = _kept(baseline) if trim else baseline
    return (sum(b for b, _ in kept) + 0.5) / (sum(n for _, n in kept) + 1)


def varying_rate_test(
    bad: int, total: int, baseline: list[tuple[int, int]], c2: float
) -> ExcessTest:
    """Return the one-sided test of ``bad`` of ``total`` against the `baseline_rate` of
    ``baseline`` nights, for a rate that varies from night to night by ``c2`` (the squared
    coefficient of variation, `rate_variation`): the negative binomial tail. Unlike
    `excess_test` it models the variation even where a night expects one bad execution, and
    so takes every baseline night's count: leaving the worst out would understate both the
    rate and its variation."""
    rate = baseline_rate(baseline, trim=False)
    p_value = negative_binomial_sf(bad, total * rate, c2)
    return ExcessTest(base_rate=rate, dispersion=1 + total * rate * c2, p_value=p_value)


@dataclass(frozen=True)
class ExcessTest:
    """Tonight's count of bad records against the baseline nights' rate of them."""

    base_rate: float
    dispersion: float
    p_value: float


def excess_test(bad: int, records: int, baseline: list[tuple[int, int]]) -> ExcessTest:
    """Return the one-sided test of ``bad`` of ``records`` against ``baseline`` nights given
    as (bad, records): the pooled rate of the nights but the worst in seven (plus half a bad
    record of prior, so a spotless history does not make one failure significant), and the
    exact binomial tail of tonight's count scaled by the nights' dispersion (Pearson's χ²/df
    over the same nights, at least 1, when the nights expect at least
    `MIN_EXPECTED_FOR_DISPERSION` bad records)."""
    kept = _kept(baseline)
    rate = baseline_rate(baseline)
    dispersion = 1.0
    # Only where nights expect a handful of bad records: below that the χ² of a few nights is
    # mostly the counts' own discreteness, and one missed bad night would blunt the test.
    expected = rate * sum(n for _, n in kept) / max(1, len(kept))
    if len(kept) >= 3 and expected >= MIN_EXPECTED_FOR_DISPERSION:
        chi2 = sum((b - n * rate) ** 2 / (n * rate * (1 - rate)) for b, n in kept)
        dispersion = max(1.0, chi2 / (len(kept) - 1))
    p_value = binomial_sf(int(bad / dispersion), max(1, round(records / dispersion)), rate)
    return ExcessTest(base_rate=rate, dispersion=dispersion, p_value=p_value)


def negative_binomial_sf(k: int, mean: float, c2: float) -> float:
    """Return P(X ≥ k) for a count X with the given ``mean`` whose underlying rate varies from
    night to night with squared coefficient of variation ``c2`` (a gamma-Poisson mixture: the
    negative binomial with variance mean + c2·mean²). ``c2`` = 0 is the Poisson tail."""
    if k <= 0:
        return 1.0
    if mean <= 0.0:
        return 0.0
    if c2 <= 0.0:

        def log_pmf(i: int) -> float:
            return i * math.log(mean) - mean - math.lgamma(i + 1)

    else:
        r = 1.0 / c2
        log_p, log_q = math.log(r / (r + mean)), math.log(mean / (r + mean))

        def log_pmf(i: int) -> float:
            return math.lgamma(i + r) - math.lgamma(r) - math.lgamma(i + 1) + r * log_p + i * log_q

    below = math.fsum(math.exp(log_pmf(i)) for i in range(k))
    if below < 0.999:
        return max(0.0, 1.0 - below)
    # Far in the tail 1 - below loses every digit: sum the tail's own terms instead.
    tail, i = [], k
    while True:
        tail.append(log_pmf(i))
        if i > mean and tail[-1] < max(tail) - 40:
            break
        i += 1
    return min(1.0, math.fsum(math.exp(x) for x in tail))


def rate_variation(nights_by_unit: list[list[tuple[int, int]]]) -> float:
    """Return how much the units' rates vary from night to night beyond chance: the squared
    coefficient of variation c² shared by the units, each given as its (bad, total) nights
    (method of moments: a night's squared deviation from the unit's pooled rate, less its
    binomial variance, over its expected count squared; at least 0)."""
    excess = scale = 0.0
    for nights in nights_by_unit:
        total = sum(n for _, n in nights)
        if len(nights) < 2 or not total:
            continue
        rate = sum(b for b, _ in nights) / total
        for bad, n in nights:
            expected = n * rate
            excess += (bad - expected) ** 2 - expected * (1 - rate)
            scale += expected**2
    return max(0.0, excess / scale) if scale else 0.0
