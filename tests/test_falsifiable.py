"""Rules that can fail, proven (issue 11 item 8): for every judged metric of every shipped suite, a
measurement on the claimed side of its line gives one verdict and a plausible measurement on the other
side gives another. Generated from the suite files, so a new claim is covered the day it is added."""
from __future__ import annotations

import copy

import pytest

from repro import record, verdict
from repro import suite as suites


def _other(x):
    """A value that an exact rule does not accept (one more, the other truth value, a changed entry)."""
    if isinstance(x, bool):
        return not x
    if isinstance(x, (int, float)):
        return x + max(1, abs(x))
    if isinstance(x, list):
        return [_other(x[0])] + x[1:] if x else [0]
    return f"{x} (not)"


def _sides(rule: dict) -> tuple:
    """(a value on the claimed side, a value on the other side) of a numeric rule."""
    kind = verdict.rule_kind(rule)
    t = rule[kind]
    if kind == "equal":
        return t, _other(t)
    if kind == "at_most":
        d = max(abs(t) * 0.5, 1e-3)
        return t - d, t + d
    if kind == "at_least":
        d = max(abs(t) * 0.5, 1e-3)
        return t + d, t - d
    if kind == "approx":
        return t, t + 3 * rule["tol"] + 1e-3
    if kind == "in_seeds":          # every seed meets the condition, or none does
        return _sides(t["where"])
    lo, hi = t
    return (lo + hi) / 2, hi + (hi - lo) + 1e-3


def _measure(value, n: int) -> list:
    """n seeds of a measurement: a tight spread around ``value`` (exact values stay exact)."""
    if isinstance(value, (bool, list, str)) or n == 1:
        return [value] * n
    eps = max(abs(value), 1.0) * 1e-6
    return [value - eps, value, value + eps][:n] + [value] * max(0, n - 3)


def _seeds_needed(claim: suites.Claim) -> int:
    """3 seeds, or as many as an in_seeds rule needs to pass when every seed meets its condition
    (the exact interval of n of n seeds at 95% has lower bound 0.025^(1/n))."""
    n = 3
    for m in claim.metrics:
        if m.rule and verdict.rule_kind(m.rule) == "in_seeds":
            while 0.025 ** (1 / n) < m.rule["in_seeds"]["min_share"] and n < 200:
                n += 1
    return n


def _synthetic(claim: suites.Claim, suite: suites.Suite, flip: str | None) -> dict:
    """A judged claim entry from made-up run results: every judged part on its claimed side, except
    ``flip``, which is put on the other side."""
    values: dict[str, object] = {}
    for m in claim.metrics:                     # paired baselines sit at 1 (positive: a log scale takes them)
        if verdict.other_metric(m.rule):
            values.setdefault(verdict.other_metric(m.rule), 1.0)
    # lines against values first, then rules against another metric (that metric may itself be judged,
    # e.g. a precondition: the comparison is placed relative to the value it got)
    order = sorted((m for m in claim.metrics if m.rule is not None), key=lambda m: bool(verdict.other_metric(m.rule)))
    for m in order:
        kind = verdict.rule_kind(m.rule)
        if kind == "paired":
            sign = 1 if m.rule["paired"]["better"] == "higher" else -1
            base = values[m.rule["paired"]["than"]]
            step = 0.5 if m.scale else 1.0          # on a log scale: ×1.5 against ×0.5
            values[m.name] = base + sign * (step if m.name != flip else -step)
        elif kind == "paired_within":            # the same as the other metric, or 3 margins away
            margin = m.rule[kind]["margin"]
            base = values[m.rule[kind]["than"]]
            values[m.name] = base * 10 ** (3 * margin) if m.scale and m.name == flip else \
                base + 3 * margin if m.name == flip else base
        else:
            good, bad = _sides(m.rule)
            values[m.name] = bad if m.name == flip else good
    runs = {}
    for rid in claim.runs:
        run = suite.run(rid)
        n = 1 if run.deterministic else _seeds_needed(claim)
        results = {str(s): {"metrics": {}, "seconds": 1.0, "error": None} for s in range(n)}
        for m in claim.metrics:
            if m.run == rid and m.name in values:
                # an existence rule over seeds that asks each seed for an exact value (an indicator):
                # every seed gives it exactly
                exact = m.rule and verdict.rule_kind(m.rule) == "in_seeds" and "equal" in m.rule["in_seeds"]["where"]
                for s, v in enumerate([values[m.name]] * n if exact else _measure(values[m.name], n)):
                    results[str(s)]["metrics"][m.key] = v
        runs[rid] = {"id": rid, "experiment": run.experiment, "params": {}, "params_hash": "x", "seconds": 3.0,
                     "deterministic": run.deterministic, "looks": [3], "results": results, "seeds_why": ""}
    entry = record.claim_entry(claim)
    record.judge_claim(entry, runs)
    return entry


def _judged():
    out = []
    for s in suites.load_all(suites.SUITES_DIR, check=False):
        for c in s.claims:
            if not c.checkable:
                continue
            for m in c.metrics:
                if m.rule is not None:
                    out.append(pytest.param(s, c, m.name, id=f"{s.name}-{c.id}-{m.name}"))
    return out


JUDGED = _judged()


def test_every_suite_has_judged_metrics():
    assert len(JUDGED) >= 20


@pytest.mark.parametrize("suite,claim,metric", JUDGED)
def test_a_measurement_across_the_line_changes_the_verdict(suite, claim, metric):
    good = _synthetic(claim, suite, flip=None)
    assert good["verdict"] == verdict.REPRODUCED, good["deciding"]
    bad = _synthetic(claim, suite, flip=metric)
    assert bad["metrics"][metric]["status"] in (verdict.FAIL, verdict.UNDECIDED)
    assert bad["verdict"] != good["verdict"], f"{claim.id}.{metric}: the verdict does not depend on it"


NEW_KINDS = """\
suite: kinds
version: 1
runs:
  - {id: r, experiment: fake_measure, version: 1}
claims:
  - id: K-EXIST
    section: s
    kind: E
    source: "can collapse"
    claim: a run can collapse to at most 6 modes
    version: 1
    runs: [r]
    metrics:
      modes:
        criterion: {rule: {in_seeds: {where: {at_most: 6}, min_share: 0.5}}, reason: "ours"}
  - id: K-NULL
    section: s
    kind: E
    source: "no difference"
    claim: a and b do equally well; the ratio vanishes; the count stays at most 7
    version: 1
    runs: [r]
    metrics:
      a:
        criterion: {rule: {paired_within: {than: b, margin: 0.02}}, reason: "ours"}
      b: {}
      ratio:
        criterion: {rule: {at_most: 0.1}, reason: "ours"}
        scale: log10
      logratio:
        criterion: {rule: {paired: {than: b, better: higher}}, reason: "ours"}
        scale: log10
      count:
        criterion: {rule: {at_most: 7}, reason: "ours"}
        resolution: 1
"""


def _new_kinds(tmp_path_factory=None):
    import pathlib
    import tempfile

    path = pathlib.Path(tempfile.mkdtemp()) / "kinds.yaml"
    path.write_text(NEW_KINDS, encoding="utf-8")
    s = suites.load(path, check=False)
    return [pytest.param(s, c, m.name, id=f"{c.id}-{m.name}") for c in s.claims for m in c.metrics if m.rule]


@pytest.mark.parametrize("suite,claim,metric", _new_kinds())
def test_the_new_rule_kinds_and_scales_can_fail(suite, claim, metric):
    test_a_measurement_across_the_line_changes_the_verdict(suite, claim, metric)
