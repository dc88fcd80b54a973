"""Statistics over seeds: mean, sample standard deviation, Student-t intervals at any level, paired
differences, and intervals that also carry the test set's sampling error.

An interval over seeds alone leaves out the error of measuring on a finite test set when every seed
scores the same test items (that error is common to all seeds and does not average away). Where an
experiment reports a per-seed standard error ``se`` from sampling the test set, the variance of the
mean is taken as s²/n + mean(se²): the seeds' spread plus the test-sampling variance, not divided by n.
"""
from __future__ import annotations

import math
from typing import Sequence


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
            last = d * c
        if abs(last - 1.0) < 1e-14:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * betainc(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t >= 0 else tail


def t_quantile(level: float, df: float) -> float:
    """The two-sided quantile: P(|T| <= q) = level for Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError("a t interval needs at least 2 values")
    p = 0.5 + level / 2
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def t975(df: int) -> float:
    return t_quantile(0.95, df)


def mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def std(xs: Sequence[float]) -> float | None:
    """Sample standard deviation (ddof=1); None for a single value."""
    if len(xs) < 2:
        return None
    m = mean(xs)
    return math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def interval(xs: Sequence[float], level: float = 0.95, se: Sequence[float] | None = None
             ) -> tuple[float, float] | None:
    """Interval of the mean at ``level`` (Student t, n−1 degrees of freedom), widened by the
    test-sampling standard errors ``se`` (one per seed) when given; None for a single value."""
    s = std(xs)
    if s is None:
        return None
    n = len(xs)
    var = s * s / n
    if se:
        var += mean([e * e for e in se])
    half = t_quantile(level, n - 1) * math.sqrt(var)
    m = mean(xs)
    return (m - half, m + half)


def ci95(xs: Sequence[float], se: Sequence[float] | None = None) -> tuple[float, float] | None:
    return interval(xs, 0.95, se)


def summary(xs: Sequence[float], se: Sequence[float] | None = None) -> dict:
    iv = ci95(xs, se)
    out = {"n": len(xs), "mean": mean(xs), "std": std(xs), "ci95": list(iv) if iv else None}
    if se:
        out["test_se"] = math.sqrt(mean([e * e for e in se]))
    return out


def paired_differences(a: Sequence[float], b: Sequence[float]) -> list[float]:
    if len(a) != len(b):
        raise ValueError(f"paired comparison needs equal seed counts, got {len(a)} and {len(b)}")
    return [x - y for x, y in zip(a, b)]


def binomial_se(p: float, n: int) -> float:
    """Standard error of a proportion measured on n independent test items (accuracy, error rate)."""
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n > 0 else float("nan")


def looks(start: int, maximum: int) -> list[int]:
    """The seed counts at which a sequential run looks at its intervals: ``start``, then doubling,
    capped at ``maximum`` (3, 6, 10 for start 3 and maximum 10)."""
    out = [start]
    while out[-1] < maximum:
        out.append(min(maximum, out[-1] * 2))
    return out
