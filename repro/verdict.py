"""Verdict rules: does a metric measured over seeds satisfy the line it is judged against?

A rule is a one-key mapping from a suite file:
  {equal: X}                 exact (numbers, bools, lists): every seed must give X
  {at_most: x} / {at_least: x}
  {approx: x, tol: t}        inside the band [x - t, x + t]
  {between: [lo, hi]}
  {paired: {than: M, better: higher|lower}}   this metric beats metric M, judged on the per-seed
                                              paired difference against zero
  {paired_within: {than: M, margin: D}}       equivalence (two one-sided tests): the paired difference
                                              to metric M lies within [-D, D]; D stated before the run
  {in_seeds: {where: RULE, min_share: q}}     existence over seeds ("X can happen"): the share of
                                              seeds whose own value satisfies RULE (at_most, at_least,
                                              equal or between) is at least q

Every judged metric ends in one of three outcomes, decided by an interval, not by a mean:
  pass       the interval lies wholly on the claimed side of the line (or inside the band);
  fail       it lies wholly on the other side (or wholly outside the band);
  undecided  it straddles the line, or there is no interval (one seed of an empirical run).
A metric from a deterministic run (an architecture fact, a formula on fixed input) is compared exactly.
Reported metrics (no rule) are ``info``.

The new kinds in detail:
  paired_within  the deciding interval of the mean paired difference (this − M, per seed, on the
                 metric's scale) must lie inside [-D, D] to pass (each side of the band is then
                 excluded at half the interval's error rate: two one-sided tests, conservatively at
                 the two-sided level); it fails when it lies wholly outside the band; otherwise
                 undecided. Without a margin a true "no difference" could never pass.
  in_seeds       k of the n seeds satisfy RULE on their own value; the exact (Clopper-Pearson)
                 interval on the share k/n at the deciding level passes when its lower bound is at
                 least q and fails when its upper bound is below q (3 of 3 seeds at 98.3% give
                 [0.20, 1]). For "X *can* happen" claims, which a seed mean misreads.

Options a suite metric may add (passed to :func:`judge` by the record):
  scale: log10   judge log10 of the per-seed values (ratios): lines stay in the metric's units and
                 are mapped; a paired difference becomes a log ratio, a paired_within margin is in
                 decades; test-sampling errors are mapped by the delta method.
  resolution: R  the smallest step of a discrete metric: its seed variance is at least R²/n, so n
                 equal values never give a point interval (stats.interval); integer-valued metrics
                 get R = 1 unless they state one.
  variance: seeds  only the seed spread enters the interval (no test-sampling error), e.g. against a
                 published number measured on the same fixed test set: its sampling error is common
                 to both sides.

A claim's verdict from its parts (``combine``): ``reproduced`` when every judged part passes;
``contradicted`` when at least one fails and none passes; ``partially reproduced`` when some pass and
some fail; ``inconclusive`` when what is left is undecided, when a precondition (the experiment reached
the state the claim is about) did not pass, or when a trained model did not converge. Such a gate does
not hide a part that failed decisively (by its interval) or deterministically: ``decisive_fails`` lists
them and ``name_fails`` puts them first in the deciding line ("chapter's number not reached: ...").

Levels: a claim's decisions hold jointly at the family level 1 − α (α = 0.05). A pass is decided by
an interval at 1 − α/L (L: the looks its run may take), a fail at 1 − α/(L·k) (k: the claim's judged
parts, ``fail_level``): with k parts, one spurious fail would otherwise turn a claim on ~k·α. The
record keeps, per part, the interval that decided (``decision_interval``), its own level
(``interval_level``) and the family level (``level``).
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
RULE_KINDS = ("equal", "at_most", "at_least", "approx", "between", "paired", "paired_within", "in_seeds")
WHERE_KINDS = ("equal", "at_most", "at_least", "between")   # what in_seeds may test each seed against
PAIRED_KINDS = ("paired", "paired_within")                  # rules on the difference to another metric
SCALES = ("log10",)
ALPHA = 0.05   # the error rate of one claim's judged part over all the looks a run may take


def fail_level(pass_level: float, alpha: float, parts: int) -> float:
    """The level of the interval that decides a fail in a claim of ``parts`` judged parts: the pass
    level's error rate (α over the run's looks) split again over the parts (Bonferroni), so that one
    spurious fail among k parts has probability at most α over the run; a pass ("every part
    passes") needs no split and stays at ``pass_level``."""
    return 1 - (1 - pass_level) / max(1, parts)


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
    if kind == "paired_within":
        if not isinstance(value, dict) or set(value) != {"than", "margin"} or not isinstance(value.get("than"), str) \
                or not _is_number(value.get("margin")) or value["margin"] <= 0:
            raise RuleError(f"paired_within needs {{than: METRIC, margin: D}} with D > 0, got {value!r}")
    if kind == "in_seeds":
        if not isinstance(value, dict) or set(value) != {"where", "min_share"}:
            raise RuleError(f"in_seeds needs {{where: {{at_most: X}}, min_share: q}}, got {value!r}")
        q = value["min_share"]
        if not _is_number(q) or not 0 < q <= 1:
            raise RuleError(f"in_seeds: min_share is a share of the seeds in (0, 1], got {q!r}")
        where = value["where"]
        if not isinstance(where, dict) or not where or any(k not in WHERE_KINDS for k in where):
            raise RuleError(f"in_seeds: where is one of {', '.join(WHERE_KINDS)} (a seed's own value is "
                            f"tested), got {where!r}")
        check_rule(where)


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
        "paired_within": lambda: f"within ±{v['margin']} of {v['than']} (paired)",
        "in_seeds": lambda: f"{describe(v['where'])} on ≥ {v['min_share']:.0%} of seeds",
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
    if kind == "in_seeds":
        return direction(rule["in_seeds"]["where"])
    return None


def other_metric(rule: dict | None) -> str | None:
    """The metric a paired or paired_within rule compares with (None for other rules)."""
    if not rule:
        return None
    kind = rule_kind(rule)
    return rule[kind]["than"] if kind in PAIRED_KINDS else None


def check_options(rule: dict | None, *, scale: str | None = None, resolution: float | None = None) -> None:
    """Raise RuleError if a metric's ``scale`` / ``resolution`` do not fit its rule."""
    if scale is not None:
        if scale not in SCALES:
            raise RuleError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
        if resolution is not None:
            raise RuleError("a log10 scale has no resolution (give one or the other)")
        if rule:
            kind = rule_kind(rule)
            if kind in ("equal", "in_seeds"):
                raise RuleError(f"a scale applies to an interval, not to a rule '{kind}' (each seed is compared as it is)")
            if kind in ("at_most", "at_least", "approx", "between"):
                low = {"at_most": rule.get("at_most"), "at_least": rule.get("at_least"),
                       "approx": (rule.get("approx") or 0) - (rule.get("tol") or 0),
                       "between": (rule.get("between") or [0])[0]}[kind]
                if low <= 0:
                    raise RuleError(f"on a log10 scale the line must be positive, got {describe(rule)}")
    if resolution is not None and (not _is_number(resolution) or resolution <= 0):
        raise RuleError(f"resolution is the metric's smallest step, a positive number; got {resolution!r}")


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


def meets(where: dict, value: Any) -> bool:
    """Does one seed's own value satisfy ``where`` (an in_seeds condition)?"""
    kind = rule_kind(where)
    t = where[kind]
    if kind == "equal":
        return same(value, t)
    if not _is_number(value):
        return False
    if kind == "at_most":
        return value <= t
    if kind == "at_least":
        return value >= t
    return t[0] <= value <= t[1]


def _log_rule(rule: dict) -> dict:
    """A numeric rule's lines on the log10 scale (approx becomes the band it stands for)."""
    kind = rule_kind(rule)
    t = rule[kind]
    if kind in ("at_most", "at_least"):
        return {kind: math.log10(t)}
    lo, hi = (t - rule["tol"], t + rule["tol"]) if kind == "approx" else tuple(t)
    return {"between": [math.log10(lo), math.log10(hi)]}


def _counts(xs: list) -> bool:
    return bool(xs) and all(isinstance(x, int) and not isinstance(x, bool) for x in xs)


def decide(rule_side: Any, xs: list[float], *, level: float, fail_level: float, se: list | None = None,
           resolution: float | None = None) -> dict:
    """Pass or fail by the interval of the mean of ``xs``: a pass needs the interval at ``level``
    wholly on the claimed side; a fail needs the (wider) interval at ``fail_level`` wholly on the
    other side. ``rule_side(lo, hi)`` says where an interval lies. Returns status, the interval that
    decided (for an undecided part the fail-level one, which straddles the line) and its level,
    and both intervals when the levels differ."""
    ivp = stats.interval(xs, level, se, resolution=resolution)
    if ivp is None:
        return {"status": UNDECIDED}
    ivf = ivp if fail_level == level else stats.interval(xs, fail_level, se, resolution=resolution)
    if rule_side(*ivp) == PASS:
        status, iv, lvl = PASS, ivp, level
    else:
        status, iv, lvl = (FAIL if rule_side(*ivf) == FAIL else UNDECIDED), ivf, fail_level
    out = {"status": status, "decision_interval": list(iv), "interval_level": lvl}
    if fail_level != level:
        out["intervals"] = {"pass": {"level": level, "interval": list(ivp)},
                            "fail": {"level": fail_level, "interval": list(ivf)}}
    return out


def judge(rule: dict | None, values: list, others: dict[str, list] | None = None, *, exact: bool = False,
          level: float = 0.95, fail_level: float | None = None, stderr: list | None = None,
          other_stderr: dict[str, list] | None = None, paired_se: dict[str, list] | None = None,
          scale: str | None = None, resolution: float | None = None) -> dict:
    """Judge one metric's per-seed ``values``; ``others`` holds the values of the other metrics.

    ``exact``: the values come from a deterministic run (compared as they are, no interval).
    ``level``: the confidence level of the interval that decides a pass (the family's 95% split over
    the run's looks); ``fail_level`` (default ``level``): that of the interval that decides a fail
    (split over the claim's judged parts too). The outcome stores the interval that decided and its
    level (``decision_interval``, ``interval_level``), inside ``advantage`` for a paired rule.
    ``stderr``/``other_stderr``: per-seed test-sampling standard errors, added as a known variance
    (the caller passes None where the seed spread already holds them or the comparison excludes them).
    ``paired_se``: other metric -> per-seed standard errors of (this − other) from the same test
    items; a paired rule uses them instead of hypot(stderr, other's stderr).
    ``scale``: 'log10' judges log10 of the values. ``resolution``: see stats.interval; integer
    values get 1 unless given.
    """
    if not rule:
        return {"status": INFO, "detail": ""}
    fail_level = level if fail_level is None else fail_level
    kind = rule_kind(rule)
    target = rule[kind]
    if kind == "equal":
        bad = [v for v in values if not same(v, target)]
        if bad:
            return {"status": FAIL, "detail": f"measured {bad[0]!r}, claimed {target!r}"}
        return {"status": PASS, "detail": f"measured {values[0]!r}"}
    if kind == "in_seeds":
        return _judge_in_seeds(target, values, exact=exact, level=level, fail_level=fail_level)
    if not all(_is_number(v) for v in values):
        return {"status": FAIL, "detail": f"rule {kind} needs numbers, measured {values!r}"}
    extra: dict[str, Any] = {"scale": scale} if scale else {}

    if kind in PAIRED_KINDS:
        other = (others or {}).get(target["than"])
        if other is None or any(not _is_number(v) for v in other):
            return {"status": FAIL, "detail": f"paired metric {target['than']!r} was not measured"}
        mine, theirs = list(values), list(other)
        se_a, se_b = stderr, (other_stderr or {}).get(target["than"])
        pse = (paired_se or {}).get(target["than"])
        if scale:
            try:
                mine, se_a = stats.log10_values(mine, se_a)
                theirs, se_b = stats.log10_values(theirs, se_b)
            except ValueError as e:
                return {"status": UNDECIDED, "detail": str(e), **extra}
            pse = None   # a paired error of the raw difference does not map onto the log ratio
        diffs = stats.paired_differences(mine, theirs)
        if kind == "paired" and target["better"] == "lower":
            diffs = [-d for d in diffs]
        se = None
        if pse and all(_is_number(e) for e in pse):
            se, extra["test_variance"] = list(pse), "paired (same test items)"
        elif se_a and se_b:   # no per-item pairing stored: both variances added (ignores their correlation)
            se, extra["test_variance"] = [math.hypot(a, b) for a, b in zip(se_a, se_b)], "hypot of both sides"
        res = None if scale else resolution or (1 if _counts(values) and _counts(other) else None)
        if res:
            extra["resolution"] = res
        s = stats.summary(diffs, se, resolution=res)
        d = s["mean"]
        word = "log10 ratio" if scale else "advantage" if kind == "paired" else "difference"
        if kind == "paired_within":
            band = {"between": [-target["margin"], target["margin"]]}
            if exact:
                status = PASS if all(abs(x) <= target["margin"] for x in diffs) else FAIL
                return {"status": status, "advantage": s, **extra, "detail": f"{word} {d:+.4g} (exact)"}
            got = decide(lambda lo, hi: side(band, lo, hi), diffs, level=level, fail_level=fail_level, se=se,
                         resolution=res)
        else:
            if exact:
                status = PASS if all(x > 0 for x in diffs) else FAIL
                return {"status": status, "advantage": s, **extra, "detail": f"{word} {d:+.4g} (exact)"}
            got = decide(lambda lo, hi: side({"at_least": 0.0}, lo, hi), diffs, level=level, fail_level=fail_level,
                         se=se, resolution=res)
        if got["status"] == UNDECIDED and "decision_interval" not in got:
            return {"status": UNDECIDED, "advantage": s, **extra, "detail": f"{word} {d:+.4g} on one seed: no interval"}
        iv = got["decision_interval"]
        if kind == "paired" and got["status"] == PASS and iv[0] == 0.0:
            got["status"] = UNDECIDED   # a tie on every seed is no advantage
        s.update(decision_interval=iv, level=got["interval_level"])
        against = f" against ±{target['margin']:g}" if kind == "paired_within" else ""
        return {**got, "advantage": s, **extra,
                "detail": f"{word} {d:+.4g}, {got['interval_level']:.1%} interval {_fmt_iv(iv)}{against} over {s['n']} seeds"}

    m = stats.mean(values)
    if exact:
        lo, hi = min(values), max(values)
        status = side(rule, lo, hi)
        return {"status": status, "detail": f"measured {m:.4g} (exact) against {describe(rule)}"}
    xs, se, judged_rule = list(values), stderr, rule
    resolution = None if scale else resolution or (1 if _counts(values) else None)
    if resolution:
        extra["resolution"] = resolution
    if scale:
        try:
            xs, se = stats.log10_values(xs, se)
        except ValueError as e:
            return {"status": UNDECIDED, "detail": f"{e}: no interval against {describe(rule)}", **extra}
        judged_rule = _log_rule(rule)
    got = decide(lambda lo, hi: side(judged_rule, lo, hi), xs, level=level, fail_level=fail_level, se=se,
                 resolution=resolution)
    if "decision_interval" not in got:
        return {"status": UNDECIDED, "detail": f"{m:.4g} on one seed: no interval against {describe(rule)}", **extra}
    if scale:
        got["decision_interval"] = [10 ** v for v in got["decision_interval"]]
        for part in got.get("intervals", {}).values():
            part["interval"] = [10 ** v for v in part["interval"]]
        shown = f"geometric mean {10 ** stats.mean(xs):.4g}"
    else:
        shown = f"mean {m:.4g}"
    iv = got["decision_interval"]
    return {**got, **extra, "detail": f"{shown}, {got['interval_level']:.1%} interval {_fmt_iv(iv)} against {describe(rule)}"}


def _judge_in_seeds(target: dict, values: list, *, exact: bool, level: float, fail_level: float) -> dict:
    where, q = target["where"], target["min_share"]
    n = len(values)
    k = sum(1 for v in values if meets(where, v))
    out = {"count": k, "n": n, "share": k / n if n else None}
    text = f"{k} of {n} seed{'s' if n != 1 else ''} {describe(where)}"
    if exact or n == 0:
        status = PASS if n and k / n >= q else FAIL
        return {**out, "status": status, "detail": f"{text} (exact) against a share ≥ {q:g}"}
    ivp, ivf = stats.clopper_pearson(k, n, level), stats.clopper_pearson(k, n, fail_level)
    if ivp[0] >= q:
        status, iv, lvl = PASS, ivp, level
    else:
        status, iv, lvl = (FAIL if ivf[1] < q else UNDECIDED), ivf, fail_level
    out.update(status=status, decision_interval=list(iv), interval_level=lvl,
               detail=f"{text}: share {k / n:.2f}, {lvl:.1%} exact interval {_fmt_iv(iv)} against ≥ {q:g}")
    if fail_level != level:
        out["intervals"] = {"pass": {"level": level, "interval": list(ivp)},
                            "fail": {"level": fail_level, "interval": list(ivf)}}
    return out


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


def _iv_text(iv: list, scale_fmt: str = ".3g") -> str:
    return f"[{iv[0]:{scale_fmt}}, {iv[1]:{scale_fmt}}]"


def fail_text(name: str, m: dict, spec: dict) -> tuple[str, str]:
    """(kind, words) for one judged part that failed. kind: "fails deterministically" (an exact
    comparison), "our criterion not met" (a line the suite chose), "chapter's comparison does not
    hold" (the chapter's "A beats B") or "chapter's number not reached" (the chapter's own line);
    words: what was measured, with the interval that decided and its level, against what."""
    rule = spec.get("rule") or {}
    adv = m.get("advantage") if isinstance(m.get("advantage"), dict) else {}
    iv = (adv or {}).get("decision_interval") or m.get("decision_interval")
    lvl = (adv or {}).get("level") if adv else m.get("interval_level")
    if iv is None:   # no interval: an exact comparison (a deterministic run, an 'equal' rule)
        return "fails deterministically", f"{name} {m.get('detail', '')}".strip()
    at = f" at {lvl:.1%}" if isinstance(lvl, float) else ""
    kind = rule_kind(rule) if rule else ""
    if kind == "paired":
        what = (f"{name}'s advantage over {rule[kind]['than']} {_iv_text(iv)}{at} "
                f"(claimed {rule[kind]['better']})")
    elif kind == "paired_within":
        what = f"{name} − {rule[kind]['than']} {_iv_text(iv)}{at} vs ±{rule[kind]['margin']}"
    elif kind == "in_seeds":
        what = f"{name} in {m.get('count')} of {m.get('n')} seeds, share {_iv_text(iv)}{at} vs {describe(rule)}"
    else:
        what = f"{name} {_iv_text(iv)}{at} vs {describe(rule)}"
    if spec.get("criterion"):
        return "our criterion not met", what
    return ("chapter's comparison does not hold" if kind in PAIRED_KINDS else "chapter's number not reached"), what


def decisive_fails(metrics: dict, specs: dict) -> list[dict]:
    """Every judged part (not a precondition) that failed, decisively by its interval or
    deterministically: [{part, kind, text}], in the claim's order. A gate (a precondition that did
    not pass, an unconverged arm) makes the verdict inconclusive but must not hide these."""
    out = []
    for name, m in metrics.items():
        spec = specs.get(name) or {}
        if m.get("status") != FAIL or spec.get("precondition") or not spec.get("rule"):
            continue
        kind, text = fail_text(name, m, spec)
        out.append({"part": name, "kind": kind, "text": text})
    return out


def name_fails(verdict_: str, deciding: str, fails: list[dict]) -> str:
    """The deciding line of an inconclusive verdict with the parts that failed all the same named
    first: "chapter's number not reached: lstm_accuracy [0.487, 0.543] at 97.5% vs ≥ 0.65; not
    decided because precondition ... did not pass: ...". Other verdicts name their fails already."""
    if verdict_ != INCONCLUSIVE or not fails:
        return deciding
    groups: dict[str, list[str]] = {}
    for f in fails:
        groups.setdefault(f["kind"], []).append(f["text"])
    named = "; ".join(f"{kind}: {', '.join(texts)}" for kind, texts in groups.items())
    return f"{named}; not decided because {deciding}"
