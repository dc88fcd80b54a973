"""Verdict rules: does a metric measured over seeds satisfy the line it is judged against?

A rule is a one-key mapping from a suite file:
  {equal: X}                 exact (numbers, bools, lists): every seed must give X
  {at_most: x} / {at_least: x}
  {approx: x, tol: t}        inside the band [x - t, x + t]
  {between: [lo, hi]}
  {paired: {than: M, better: higher|lower}}   this metric beats metric M, judged on the per-seed
                                              paired difference against zero

Every judged metric ends in one of three outcomes, decided by an interval, not by a mean:
  pass       the interval lies wholly on the claimed side of the line (or inside the band);
  fail       it lies wholly on the other side (or wholly outside the band);
  undecided  it straddles the line, or there is no interval (one seed of an empirical run).
A metric from a deterministic run (an architecture fact, a formula on fixed input) is compared exactly.
Reported metrics (no rule) are ``info``.

A claim's verdict from its parts (``combine``): ``reproduced`` when every judged part passes;
``contradicted`` when at least one fails and none passes; ``partially reproduced`` when some pass and
some fail; ``inconclusive`` when what is left is undecided, when a precondition (the experiment reached
the state the claim is about) did not pass, or when a trained model did not converge.
"""
from __future__ import annotations

import math
from typing import Any

from repro import stats

REPRODUCED = "reproduced"
PARTIAL = "partially reproduced"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
NOT_CHECKABLE = "not checkable here"
ERROR = "error"
VERDICTS = (REPRODUCED, PARTIAL, CONTRADICTED, INCONCLUSIVE, NOT_CHECKABLE, ERROR)

PASS, FAIL, UNDECIDED, INFO = "pass", "fail", "undecided", "info"
RULE_KINDS = ("equal", "at_most", "at_least", "approx", "between", "paired")
ALPHA = 0.05   # the error rate of one claim's judged part over all the looks a run may take


class RuleError(ValueError):
    """A malformed rule; the message names what is wrong (the caller adds file/claim/field)."""


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_rule(rule: Any) -> None:
    """Raise RuleError if ``rule`` is not one of the forms above."""
    if not isinstance(rule, dict) or not rule:
        raise RuleError(f"a rule is a mapping such as {{at_most: 0.01}}, got {rule!r}")
    kinds = [k for k in rule if k in RULE_KINDS]
    if len(kinds) != 1:
        raise RuleError(f"a rule needs exactly one of {', '.join(RULE_KINDS)}; got keys {sorted(rule)}")
    kind = kinds[0]
    extra = set(rule) - {kind} - ({"tol"} if kind == "approx" else set())
    if extra:
        raise RuleError(f"unknown key(s) {sorted(extra)} in rule {kind!r}")
    value = rule[kind]
    if kind in ("at_most", "at_least") and not _is_number(value):
        raise RuleError(f"{kind} needs a number, got {value!r}")
    if kind == "approx":
        if not _is_number(value) or not _is_number(rule.get("tol")) or rule["tol"] < 0:
            raise RuleError(f"approx needs a number and a non-negative 'tol', got {rule!r}")
    if kind == "between":
        if (not isinstance(value, list) or len(value) != 2 or not all(map(_is_number, value))
                or value[0] > value[1]):
            raise RuleError(f"between needs [low, high] with low <= high, got {value!r}")
    if kind == "paired":
        if not isinstance(value, dict) or set(value) != {"than", "better"} or \
                value.get("better") not in ("higher", "lower") or not isinstance(value.get("than"), str):
            raise RuleError(f"paired needs {{than: METRIC, better: higher|lower}}, got {value!r}")


def rule_kind(rule: dict) -> str:
    return next(k for k in rule if k in RULE_KINDS)


def describe(rule: dict | None) -> str:
    if not rule:
        return ""
    kind = rule_kind(rule)
    v = rule[kind]
    return {
        "equal": lambda: f"= {v}",
        "at_most": lambda: f"≤ {v}",
        "at_least": lambda: f"≥ {v}",
        "approx": lambda: f"≈ {v} ± {rule['tol']}",
        "between": lambda: f"in [{v[0]}, {v[1]}]",
        "paired": lambda: f"{'>' if v['better'] == 'higher' else '<'} {v['than']} (paired)",
    }[kind]()


def direction(rule: dict | None) -> str | None:
    """Which way is better for this rule: 'higher', 'lower' or None (no order)."""
    if not rule:
        return None
    kind = rule_kind(rule)
    if kind == "at_most":
        return "lower"
    if kind == "at_least":
        return "higher"
    if kind == "paired":
        return rule["paired"]["better"]
    return None


def same(a: Any, b: Any) -> bool:
    """Equal as values (3 and 3.0, [28, 28, 6] and (28, 28, 6)), as an exact rule compares them."""
    if _is_number(a) and _is_number(b):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def side(rule: dict, lo: float, hi: float) -> str:
    """Where the interval [lo, hi] lies against a numeric rule: pass, fail or undecided."""
    kind = rule_kind(rule)
    t = rule[kind]
    if kind == "at_most":
        return PASS if hi <= t else FAIL if lo > t else UNDECIDED
    if kind == "at_least":
        return PASS if lo >= t else FAIL if hi < t else UNDECIDED
    band = (t - rule["tol"], t + rule["tol"]) if kind == "approx" else tuple(t)
    if band[0] <= lo and hi <= band[1]:
        return PASS
    if hi < band[0] or lo > band[1]:
        return FAIL
    return UNDECIDED


def _fmt_iv(iv: tuple[float, float] | list[float]) -> str:
    return f"[{iv[0]:.4g}, {iv[1]:.4g}]"


def judge(rule: dict | None, values: list, others: dict[str, list] | None = None, *, exact: bool = False,
          level: float = 0.95, stderr: list | None = None, other_stderr: dict[str, list] | None = None) -> dict:
    """Judge one metric's per-seed ``values``; ``others`` holds the values of the other metrics.

    ``exact``: the values come from a deterministic run (compared as they are, no interval).
    ``level``: the confidence level of the deciding interval (0.95 split over the run's looks).
    ``stderr``/``other_stderr``: per-seed test-sampling standard errors, widening the interval.
    """
    if not rule:
        return {"status": INFO, "detail": ""}
    kind = rule_kind(rule)
    target = rule[kind]
    if kind == "equal":
        bad = [v for v in values if not same(v, target)]
        if bad:
            return {"status": FAIL, "detail": f"measured {bad[0]!r}, claimed {target!r}"}
        return {"status": PASS, "detail": f"measured {values[0]!r}"}
    if not all(_is_number(v) for v in values):
        return {"status": FAIL, "detail": f"rule {kind} needs numbers, measured {values!r}"}

    if kind == "paired":
        other = (others or {}).get(target["than"])
        if other is None or any(not _is_number(v) for v in other):
            return {"status": FAIL, "detail": f"paired metric {target['than']!r} was not measured"}
        diffs = stats.paired_differences(values, other)
        if target["better"] == "lower":
            diffs = [-d for d in diffs]
        se = None
        ose = (other_stderr or {}).get(target["than"])
        if stderr and ose:   # both sides measured on a finite test set: their variances add (conservative)
            se = [math.hypot(a, b) for a, b in zip(stderr, ose)]
        s = stats.summary(diffs, se)
        d = s["mean"]
        if exact:
            status = PASS if all(x > 0 for x in diffs) else FAIL
            return {"status": status, "advantage": s, "detail": f"advantage {d:+.4g} (exact)"}
        iv = stats.interval(diffs, level, se)
        if iv is None:
            return {"status": UNDECIDED, "advantage": s,
                    "detail": f"advantage {d:+.4g} on one seed: no interval"}
        status = side({"at_least": 0.0}, *iv)
        if status == PASS and iv[0] == 0.0:
            status = UNDECIDED   # a tie on every seed is no advantage
        s["decision_interval"], s["level"] = list(iv), level
        return {"status": status, "advantage": s,
                "detail": f"advantage {d:+.4g}, {level:.1%} interval {_fmt_iv(iv)} over {s['n']} seeds"}

    m = stats.mean(values)
    if exact:
        lo, hi = min(values), max(values)
        status = side(rule, lo, hi)
        return {"status": status, "detail": f"measured {m:.4g} (exact) against {describe(rule)}"}
    iv = stats.interval(values, level, stderr)
    if iv is None:
        return {"status": UNDECIDED, "detail": f"{m:.4g} on one seed: no interval against {describe(rule)}"}
    status = side(rule, *iv)
    return {"status": status, "decision_interval": list(iv), "level": level,
            "detail": f"mean {m:.4g}, {level:.1%} interval {_fmt_iv(iv)} against {describe(rule)}"}


def combine(parts: dict[str, str], *, checkable: bool = True, preconditions: dict[str, str] | None = None,
            unconverged: list[str] = ()) -> tuple[str, str]:
    """(verdict, the deciding part in one line) from the judged parts' outcomes (name -> status)."""
    if not checkable:
        return NOT_CHECKABLE, "not checkable here"
    bad_pre = [n for n, s in (preconditions or {}).items() if s != PASS]
    if bad_pre:
        return INCONCLUSIVE, f"precondition {', '.join(bad_pre)} did not pass: the experiment did not reach the state the claim is about"
    if unconverged:
        return INCONCLUSIVE, f"not converged: {'; '.join(unconverged)}"
    judged = {n: s for n, s in parts.items() if s != INFO}
    if not judged:
        return NOT_CHECKABLE, "no judged part: nothing independent to judge against"
    passed = [n for n, s in judged.items() if s == PASS]
    failed = [n for n, s in judged.items() if s == FAIL]
    open_ = [n for n, s in judged.items() if s == UNDECIDED]
    if len(passed) == len(judged):
        return REPRODUCED, f"every judged part passes ({', '.join(passed)})"
    if failed and not passed:
        return CONTRADICTED, f"{', '.join(failed)} fail{'s' if len(failed) == 1 else ''} decisively; none passes"
    if failed and passed:
        return PARTIAL, f"{', '.join(passed)} pass{'es' if len(passed) == 1 else ''}; {', '.join(failed)} fail{'s' if len(failed) == 1 else ''}"
    return INCONCLUSIVE, f"undecided: {', '.join(open_)} (interval straddles the line)" + \
        (f"; {', '.join(passed)} pass{'es' if len(passed) == 1 else ''}" if passed else "")
