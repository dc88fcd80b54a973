"""Statistics over seeds: mean, sample standard deviation, Student-t 95% interval, paired differences."""
from __future__ import annotations

import math
from typing import Sequence

# Two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30; beyond that the normal 1.96 is
# within 2% (kept as a table: scipy is not a dependency).
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t975(df: int) -> float:
    if df < 1:
        raise ValueError("a t interval needs at least 2 values")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def std(xs: Sequence[float]) -> float | None:
    """Sample standard deviation (ddof=1); None for a single value."""
    if len(xs) < 2:
        return None
    m = mean(xs)
    return math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def ci95(xs: Sequence[float]) -> tuple[float, float] | None:
    """95% confidence interval of the mean (Student t); None for a single value."""
    s = std(xs)
    if s is None:
        return None
    m, half = mean(xs), t975(len(xs) - 1) * s / math.sqrt(len(xs))
    return (m - half, m + half)


def summary(xs: Sequence[float]) -> dict:
    interval = ci95(xs)
    return {"n": len(xs), "mean": mean(xs), "std": std(xs),
            "ci95": list(interval) if interval else None}


def paired_differences(a: Sequence[float], b: Sequence[float]) -> list[float]:
    if len(a) != len(b):
        raise ValueError(f"paired comparison needs equal seed counts, got {len(a)} and {len(b)}")
    return [x - y for x, y in zip(a, b)]
