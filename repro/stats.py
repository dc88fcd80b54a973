"""Statistics over seeds: mean, sample standard deviation, Student-t intervals at any level, paired
differences, and intervals that also carry the test set's sampling error.

An interval over seeds alone leaves out the error of measuring on a finite test set when every seed
scores the same test items (that error is common to all seeds and does not average away). Where an
experiment reports a per-seed standard error ``se`` from sampling a test set that every seed shares
(Result.test_set 'fixed'), the variance of the mean is taken as s²/n + mean(se²): the seeds' spread
plus the test-sampling variance, not divided by n. That sum's quantile uses Welch-Satterthwaite
degrees of freedom, the test-sampling part being known rather than estimated (:func:`interval`).
Where each seed draws its own test items ('per_seed') the spread already holds that error and
nothing is added (:func:`known_se`). A discrete metric's seed variance has a floor (``resolution``),
a ratio can be judged on a log10 scale, and a share of seeds gets an exact interval
(:func:`clopper_pearson`).
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


def z_quantile(level: float) -> float:
    """The two-sided normal quantile: P(|Z| <= q) = level."""
    lo, hi = 0.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if math.erf(mid / math.sqrt(2)) < level else (lo, mid)
    return (lo + hi) / 2


def t_quantile(level: float, df: float) -> float:
    """The two-sided quantile: P(|T| <= q) = level for Student's t with ``df`` degrees of freedom
    (the normal quantile for infinite or very large df)."""
    if df < 1:
        raise ValueError("a t interval needs at least 2 values")
    if df > 1e7:
        return z_quantile(level)
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


def seed_variance(xs: Sequence[float], resolution: float | None = None) -> float | None:
    """The seeds' sample variance s², floored at R²/n for a metric of resolution R (see
    :func:`interval`); None for a single value."""
    s = std(xs)
    if s is None:
        return None
    var = s * s
    if resolution:
        var = max(var, resolution * resolution / len(xs))
    return var


def interval(xs: Sequence[float], level: float = 0.95, se: Sequence[float] | None = None, *,
             resolution: float | None = None) -> tuple[float, float] | None:
    """Interval of the mean at ``level``, widened by the test-sampling standard errors ``se`` (one
    per seed) when given; None for a single value.

    Half-width q·sqrt(s²/n + mean(se²)), q the t quantile at the Welch-Satterthwaite degrees of
    freedom of that sum (:func:`welch_df`): only the seed part is estimated from n values, the
    test-sampling part is known (a binomial variance), so it is not inflated by t with n − 1 df.
    The half-width is never below the seeds-only one, t(n − 1)·s/√n (at 2-3 seeds with the two
    parts about equal, Welch's df would undercut it: more variance must not narrow an interval).
    Without ``se`` this is the plain Student t interval with n − 1 df.

    ``resolution`` R: the smallest step the metric can take (1 for a count). Seeds that agree give
    s = 0 and a point interval, which would decide on 3 identical seeds although a fourth could
    differ by a step. So the seed variance is taken as at least R²/n: the sample variance the n
    seeds would show had one of them come out one step away from the others. The interval of n
    equal counts then has half-width t·R/n: it never collapses to a point, and narrows as seeds
    keep agreeing."""
    var_s = seed_variance(xs, resolution)
    if var_s is None:
        return None
    n = len(xs)
    seeds_part = var_s / n
    known = mean([e * e for e in se]) if se else 0.0
    half = t_quantile(level, welch_df(seeds_part, n, known)) * math.sqrt(seeds_part + known)
    if known:   # never narrower than the seeds alone would give (Welch's df can undercut it at tiny n)
        half = max(half, t_quantile(level, n - 1) * math.sqrt(seeds_part))
    m = mean(xs)
    return (m - half, m + half)


def welch_df(seeds_part: float, n: int, known: float = 0.0) -> float:
    """Welch-Satterthwaite degrees of freedom of the variance s²/n + K, where s²/n is estimated
    from n seeds (n − 1 df) and K, the test-sampling variance, is known (binomial: infinite df):
    df = (n − 1)·((s²/n + K) / (s²/n))². n − 1 when K = 0; large (towards the normal quantile) when
    K dominates; infinite when the seeds agree exactly."""
    if seeds_part <= 0:
        return math.inf
    return (n - 1) * ((seeds_part + known) / seeds_part) ** 2


def ci95(xs: Sequence[float], se: Sequence[float] | None = None, *, resolution: float | None = None
         ) -> tuple[float, float] | None:
    return interval(xs, 0.95, se, resolution=resolution)


def summary(xs: Sequence[float], se: Sequence[float] | None = None, *, resolution: float | None = None,
            scale: str | None = None) -> dict:
    """n, mean, std and a 95% interval of the mean (descriptive; the interval that decides a verdict
    is verdict.judge's). On a log10 scale (positive values) the interval is that of the mean log,
    mapped back, and ``gmean`` is the geometric mean."""
    out = {"n": len(xs), "mean": mean(xs), "std": std(xs)}
    if scale == "log10" and all(x > 0 for x in xs):
        logs, lse = log10_values(xs, se)
        iv = ci95(logs, lse)
        out["gmean"] = 10 ** mean(logs)
        out["ci95"] = [10 ** iv[0], 10 ** iv[1]] if iv else None
    else:
        iv = ci95(xs, se, resolution=resolution)
        out["ci95"] = list(iv) if iv else None
    if se:
        out["test_se"] = math.sqrt(mean([e * e for e in se]))
    return out


def known_se(stderr: Sequence | None, test_set: Sequence | None, variance: str | None = None
             ) -> tuple[list[float] | None, str]:
    """The per-seed test-sampling errors an interval adds as a known variance, and why, from a
    metric's per-seed ``stderr`` and its declared ``test_set`` (per seed: 'fixed' or 'per_seed').

    fixed:     every seed scores the same test items, so their sampling error is common to all seeds
               and does not average away: added (undivided by n) to the seed spread s²/n.
    per_seed:  each seed draws its own test items: the seed spread already holds that error; nothing
               is added (adding it would count it twice).
    ``variance='seeds'`` (a suite's choice, with its reason): nothing is added, e.g. against a
    published number measured on the same fixed test set. A stored stderr with no declaration (a
    record from before declarations existed) is taken as fixed, the conservative reading."""
    if variance == "seeds":
        return None, "seeds only (the suite's choice: the comparison shares the test set)"
    if not stderr or not all(isinstance(e, (int, float)) and not isinstance(e, bool) and math.isfinite(e)
                             for e in stderr):
        return None, "seeds only"
    kinds = set(test_set or [None])
    if kinds == {"per_seed"}:
        return None, "seeds only (test items drawn per seed: their sampling error is in the spread)"
    if kinds == {"fixed"}:
        return list(stderr), "seeds + test sampling (the same test items on every seed)"
    return list(stderr), "seeds + test sampling (test set undeclared: taken as fixed)"


def log10_values(xs: Sequence[float], se: Sequence[float] | None = None
                 ) -> tuple[list[float], list[float] | None]:
    """Values (and their test-sampling standard errors, by the delta method se / (x ln 10)) on a
    log10 scale; every value must be positive."""
    if any(x <= 0 for x in xs):
        raise ValueError(f"a log10 scale needs positive values, got {list(xs)}")
    logs = [math.log10(x) for x in xs]
    return logs, ([e / (x * math.log(10)) for e, x in zip(se, xs)] if se else None)


def beta_quantile(p: float, a: float, b: float) -> float:
    """x with I_x(a, b) = p (bisection on the regularised incomplete beta)."""
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if betainc(a, b, mid) < p else (lo, mid)
    return (lo + hi) / 2


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided interval at ``level`` for a share of k successes in n
    trials: it covers the true share with probability at least ``level`` for every share."""
    if not 0 <= k <= n or n < 1:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else beta_quantile(a, k, n - k + 1)
    hi = 1.0 if k == n else beta_quantile(1 - a, k + 1, n - k)
    return lo, hi


def paired_item_se(a: Sequence[float], b: Sequence[float]) -> float:
    """Standard error of mean(a) − mean(b) for two models scored on the same test items, from the
    per-item differences: for two classifiers' 0/1 correctness this is McNemar's discordant items
    (only the items one gets right and the other wrong contribute); for per-item losses, the spread
    of the loss differences. Much smaller than hypot(se_a, se_b) when the two models agree on most
    items, which is what scoring them on the same items buys."""
    if len(a) != len(b):
        raise ValueError(f"need two equally long per-item series, got {len(a)} and {len(b)}")
    if len(a) < 2:
        return float("nan")
    d = [float(x) - float(y) for x, y in zip(a, b)]
    return std(d) / math.sqrt(len(d))


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
