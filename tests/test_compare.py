"""`repro compare` on schema-2 records: verdict and outcome flips, tolerances, what is comparable."""
import copy

import pytest

from repro import compare as cmp
from repro import record, runner
from repro import suite as suites

ENV = {"machine": "testbox", "commit": "abc1234567", "python": "3", "tensorflow": "2.x", "keras": "3.x",
       "device": "CPU:0"}


def _metric(values, status, **extra):
    m = {"values": values, "claimed": None, "status": status, "detail": ""}
    if all(isinstance(v, (int, float)) for v in values):
        from repro import stats
        m.update(stats.summary(values))
    m.update(extra)
    return m


def _spec(run="r", key=None, rule=None, better=None, unit="", tolerance=None):
    return {"claimed": None, "rule": rule, "criterion": None, "better": better, "tolerance": tolerance,
            "unit": unit, "precondition": False, "literature": None, "run": run, "key": key}


def _record(claims: dict) -> dict:
    return {"schema": 2, "suite": "toy", "profile": "full", "machine": "m", "commit": "c", "complete": True,
            "env": dict(ENV), "runs": {}, "claims": claims}


def _claim(cid, kind, specs, metrics, verdict, params_hash="aaa+bbb", version=1):
    return {"id": cid, "kind": kind, "version": version, "params_hash": params_hash, "verdict": verdict,
            "metric_specs": specs, "metrics": metrics}


def test_a_part_going_from_pass_to_fail_is_newly_failing():
    specs = {"a": _spec(rule={"at_least": 0.5}, better="higher"), "b": _spec(rule={"at_most": 0.2}, better="lower")}
    # the verdict stays 'partially reproduced', but the parts swap: a now fails
    ea = _claim("X", "E", specs, {"a": _metric([0.6, 0.61, 0.62], "pass"), "b": _metric([0.3, 0.31, 0.32], "fail")},
                "partially reproduced")
    eb = _claim("X", "E", specs, {"a": _metric([0.3, 0.31, 0.32], "fail"), "b": _metric([0.1, 0.11, 0.12], "pass")},
                "partially reproduced")
    rows = cmp.compare(_record({"X": ea}), _record({"X": eb}))
    by_metric = {r.metric: r for r in rows}
    assert by_metric["a"].mark == "!" and "pass → fail" in by_metric["a"].note
    assert by_metric["b"].mark == "*" and "fail → pass" in by_metric["b"].note
    assert [r.metric for r in cmp.regressions(rows)] == ["a"]


def test_a_flip_of_a_non_numeric_exact_part_is_shown_and_gates():
    specs = {"shape": _spec(rule={"equal": [28, 28, 6]})}
    ea = _claim("S", "A", specs, {"shape": _metric([[28, 28, 6]], "pass")}, "reproduced")
    eb = _claim("S", "A", specs, {"shape": _metric([[28, 28, 5]], "fail")}, "contradicted")
    rows = cmp.compare(_record({"S": ea}), _record({"S": eb}))
    assert {(r.metric, r.mark) for r in cmp.regressions(rows)} == {("", "!"), ("shape", "!")}


def test_a_timing_without_spread_is_shown_but_never_gates():
    specs = {"train_seconds": _spec(better="lower", unit="s"),
             "ms_per_step": _spec(rule={"at_most": 50.0}, better="lower"), "params": _spec(better="lower")}
    ea = _claim("T", "A", specs, {"train_seconds": _metric([10.0], "info"), "ms_per_step": _metric([20.0], "pass"),
                                  "params": _metric([1000.0], "info")}, "reproduced")
    eb = _claim("T", "A", specs, {"train_seconds": _metric([14.0], "info"), "ms_per_step": _metric([31.0], "pass"),
                                  "params": _metric([1001.0], "info")}, "reproduced")
    rows = {r.metric: r for r in cmp.compare(_record({"T": ea}), _record({"T": eb}))}
    assert rows["train_seconds"].mark == " " and "timing" in rows["train_seconds"].note
    assert rows["ms_per_step"].mark == " " and "timing" in rows["ms_per_step"].note
    assert rows["params"].mark == "-" and "tolerance 1e-06" in rows["params"].note   # a deterministic value is exact
    assert cmp.regressions(list(rows.values())) == []


def test_a_timing_with_spread_or_a_stated_tolerance_is_judged_by_it():
    specs = {"tokens_per_second": _spec(rule={"at_least": 100.0}, better="higher"),
             "acc": _spec(rule={"at_least": 0.5}, better="higher", tolerance=0.05)}
    ea = _claim("T", "E", specs, {"tokens_per_second": _metric([200.0, 202.0, 198.0], "pass"),
                                  "acc": _metric([0.9, 0.9, 0.9], "pass")}, "reproduced")
    eb = _claim("T", "E", specs, {"tokens_per_second": _metric([150.0, 151.0, 149.0], "pass"),
                                  "acc": _metric([0.87, 0.87, 0.87], "pass")}, "reproduced")
    rows = {r.metric: r for r in cmp.compare(_record({"T": ea}), _record({"T": eb}))}
    assert rows["tokens_per_second"].mark == "-"           # beyond twice the standard error of the difference
    assert rows["acc"].mark == " " and "tolerance 0.05" in rows["acc"].note
    assert [r.metric for r in cmp.regressions(list(rows.values()))] == ["tokens_per_second"]


def test_parameters_of_any_run_or_the_claim_version_make_it_not_comparable():
    specs = {"a": _spec(rule={"at_least": 0.5}, better="higher")}
    m = {"a": _metric([0.6, 0.61, 0.62], "pass")}
    a = _record({"X": _claim("X", "E", specs, m, "reproduced", params_hash="aaa+bbb"),
                 "Y": _claim("Y", "E", specs, m, "reproduced"), "Z": _claim("Z", "E", specs, m, "reproduced")})
    b = _record({"X": _claim("X", "E", specs, m, "contradicted", params_hash="aaa+ccc"),
                 "Y": _claim("Y", "E", specs, m, "contradicted", version=2)})
    rows = {r.claim: r for r in cmp.compare(a, b)}
    assert rows["X"].mark == "~" and rows["X"].note == "parameters differ"
    assert rows["Y"].mark == "~" and "claim version 1 → 2" in rows["Y"].note
    assert rows["Z"].mark == "?" and rows["Z"].note == "only in A"
    assert cmp.regressions(list(rows.values())) == []


def test_rank_of_verdicts():
    r = cmp._RANK
    assert r["reproduced"] == 3 and r["contradicted"] == 1 and r["error"] == 0
    assert r["partially reproduced"] == r["inconclusive"] == r["not checkable here"] == 2


@pytest.fixture
def toy_record(workspace):
    s = suites.load(workspace / "suites" / "toy.yaml")
    return record.load(runner.run_suite(s, list(s.claims), profile="full", env=dict(ENV),
                                        results_dir=workspace / "results"))


def test_records_from_the_runner_compare_clean_against_themselves_and_catch_a_planted_drop(toy_record):
    assert cmp.regressions(cmp.compare(toy_record, toy_record)) == []
    worse = copy.deepcopy(toy_record)
    for out in worse["runs"]["score"]["results"].values():
        out["metrics"]["score"] -= 0.3            # every seed now well below the line of 0.5
    record.judge_claim(worse["claims"]["TOY-SCORE"], worse["runs"])
    assert worse["claims"]["TOY-SCORE"]["metrics"]["score"]["status"] == "fail"
    rows = cmp.compare(toy_record, worse)
    bad = {(r.claim, r.metric) for r in cmp.regressions(rows)}
    assert ("TOY-SCORE", "") in bad and ("TOY-SCORE", "score") in bad
    assert not any(r.claim != "TOY-SCORE" for r in cmp.regressions(rows))


def test_find_baseline_prefers_this_machine_and_another_commit():
    recs = [(dict(_record({}), commit="old", machine="other"), "p1"),
            (dict(_record({}), commit="old", machine="m"), "p2"),
            (dict(_record({}), commit="new", machine="m"), "p3")]
    assert cmp.find_baseline(recs, "toy", "full", "m", "new")[1] == "p2"
    assert cmp.find_baseline(recs, "toy", "full", "x", "new")[1] == "p2"
    assert cmp.find_baseline(recs, "toy", "quick", "m", "new") is None
