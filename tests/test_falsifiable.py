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
    lo, hi = t
    return (lo + hi) / 2, hi + (hi - lo) + 1e-3


def _measure(value, n: int) -> list:
    """n seeds of a measurement: a tight spread around ``value`` (exact values stay exact)."""
    if isinstance(value, (bool, list, str)) or n == 1:
        return [value] * n
    eps = max(abs(value), 1.0) * 1e-6
    return [value - eps, value, value + eps][:n] + [value] * max(0, n - 3)


def _synthetic(claim: suites.Claim, suite: suites.Suite, flip: str | None) -> dict:
    """A judged claim entry from made-up run results: every judged part on its claimed side, except
    ``flip``, which is put on the other side."""
    values: dict[str, object] = {}
    for m in claim.metrics:                     # paired baselines sit at 0
        if m.rule and verdict.rule_kind(m.rule) == "paired":
            values.setdefault(m.rule["paired"]["than"], 0.0)
    for m in claim.metrics:
        if m.rule is None:
            continue
        if verdict.rule_kind(m.rule) == "paired":
            sign = 1 if m.rule["paired"]["better"] == "higher" else -1
            base = values[m.rule["paired"]["than"]]
            values[m.name] = base + sign * (1.0 if m.name != flip else -1.0)
        else:
            good, bad = _sides(m.rule)
            values[m.name] = bad if m.name == flip else good
    runs = {}
    for rid in claim.runs:
        run = suite.run(rid)
        n = 1 if run.deterministic else 3
        results = {str(s): {"metrics": {}, "seconds": 1.0, "error": None} for s in range(n)}
        for m in claim.metrics:
            if m.run == rid and m.name in values:
                for s, v in enumerate(_measure(values[m.name], n)):
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
