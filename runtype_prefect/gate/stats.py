"""The few exact tests the gate needs, without SciPy: binomial tails in log space."""

from __future__ import annotations

import math


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
