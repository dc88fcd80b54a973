"""Verdict rules: does a metric measured over seeds satisfy what the document claims?

A rule is a one-key mapping from a suite file:
  {equal: X}                 exact (numbers, bools, lists): every seed must give X
  {at_most: x} / {at_least: x}
  {approx: x, tol: t}        |mean - x| <= t
  {between: [lo, hi]}
  {paired: {than: M, better: higher|lower}}   this metric beats metric M on the per-seed paired
                                              difference, judged by its 95% interval

Numeric rules judge the mean over seeds. Each metric gets a status:
  pass / fail, or weak (a paired difference in the claimed direction whose interval still
  includes zero, or that rests on a single seed), or info (reported, no rule).

A metric marked `precondition: true` in the suite checks that the experiment reached the state the
claim is about (a GAN whose samples land on the data at all, a generator that draws digits). When a
precondition does not pass, the claim is `inconclusive`: the measurement says nothing either way.
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

RULE_KINDS = ("equal", "at_most", "at_least", "approx", "between", "paired")


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


def _same(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def judge(rule: dict | None, values: list, others: dict[str, list] | None = None) -> dict:
    """Judge one metric's per-seed ``values``; ``others`` holds the values of the other metrics."""
    if not rule:
        return {"status": "info", "detail": ""}
    kind = rule_kind(rule)
    target = rule[kind]
    if kind == "equal":
        bad = [v for v in values if not _same(v, target)]
        if bad:
            return {"status": "fail", "detail": f"measured {bad[0]!r}, claimed {target!r}"}
        return {"status": "pass", "detail": f"measured {values[0]!r}"}

    if not all(_is_number(v) for v in values):
        return {"status": "fail", "detail": f"rule {kind} needs numbers, measured {values!r}"}
    m = stats.mean(values)
    if kind == "paired":
        other = (others or {}).get(target["than"])
        if other is None:
            return {"status": "fail", "detail": f"paired metric {target['than']!r} was not measured"}
        diffs = stats.paired_differences(values, other)
        if target["better"] == "lower":
            diffs = [-d for d in diffs]
        s = stats.summary(diffs)
        d = s["mean"]
        sign = "+" if target["better"] == "higher" else "-"
        if s["ci95"] is None:
            status = "weak" if d > 0 else "fail"
            return {"status": status, "detail": f"advantage {d:+.4g} on one seed (no interval)",
                    "advantage": s}
        lo, hi = s["ci95"]
        if lo > 0:
            status = "pass"
        elif d > 0:
            status = "weak"
        else:
            status = "fail"
        return {"status": status, "advantage": s,
                "detail": f"advantage ({sign}) {d:+.4g}, 95% CI [{lo:+.4g}, {hi:+.4g}] over {s['n']} seeds"}
    ok = {
        "at_most": lambda: m <= target,
        "at_least": lambda: m >= target,
        "approx": lambda: abs(m - target) <= rule["tol"],
        "between": lambda: target[0] <= m <= target[1],
    }[kind]()
    return {"status": "pass" if ok else "fail", "detail": f"mean {m:.4g} {'meets' if ok else 'misses'} {describe(rule)}"}


def combine(statuses: list[str], checkable: bool = True, preconditions: list[str] = ()) -> str:
    """A claim's verdict from its metrics' statuses: inconclusive when a precondition does not pass;
    reproduced when every judged part passes; contradicted when no part passes and at least one fails
    (a trend that is not significant does not rescue a claim); partially reproduced otherwise (some
    parts pass, or all merely trend the right way)."""
    if not checkable:
        return NOT_CHECKABLE
    if any(s != "pass" for s in preconditions):
        return INCONCLUSIVE
    judged = [s for s in statuses if s != "info"]
    if not judged:
        return NOT_CHECKABLE
    if all(s == "pass" for s in judged):
        return REPRODUCED
    if "pass" not in judged and "fail" in judged:
        return CONTRADICTED
    return PARTIAL
