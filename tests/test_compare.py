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


# ---- the gate (`repro check`): baselines, tolerance sources, what it prints --------------------

from repro import gate  # noqa: E402


@pytest.fixture
def toy_baseline(workspace):
    """A 3-seed baseline of the toy suite (score 0.55, 0.56, 0.57: sd 0.01) at commit abc1234567."""
    s = suites.load(workspace / "suites" / "toy.yaml")
    path = runner.run_suite(s, list(s.claims), profile="full", env=dict(ENV), results_dir=workspace / "results")
    return gate.Baseline("toy", record.load(path), path)


def _ci_run(base: dict, change=None, code_changed=(), env=None) -> dict:
    """This commit's one-seed run (seed 0 of the baseline's runs), with a change planted before judging."""
    cur = copy.deepcopy(base)
    cur["commit"] = "new0000000"
    if env:
        cur["env"] = dict(cur["env"], **env)
    for rid, r in cur["runs"].items():
        r["results"] = {"0": r["results"]["0"]}
        r["looks"] = [1]
        if rid in code_changed:
            r["code_hash"] = "changed00000"
    if change:
        change(cur)
    for e in cur["claims"].values():
        record.judge_claim(e, cur["runs"])
    return cur


def _score(delta):
    def change(cur):
        cur["runs"]["score"]["results"]["0"]["metrics"]["score"] += delta
    return change


def _rows(comp):
    return {(r.claim, r.metric): r for r in comp.rows}


def test_gate_same_code_is_exact_and_a_one_seed_run_is_no_regression_of_a_decided_baseline(toy_baseline):
    assert toy_baseline.record["claims"]["TOY-SCORE"]["verdict"] == "reproduced"   # 3 seeds decide
    cur = _ci_run(toy_baseline.record)
    assert cur["claims"]["TOY-SCORE"]["verdict"] == "inconclusive"                  # one seed cannot
    comp = gate.compare(toy_baseline, cur)
    assert comp.regressions() == []
    rows = _rows(comp)
    assert rows[("TOY-SCORE", "score")].source == gate.EXACT
    assert rows[("TOY-SCORE", "score")].tolerance == "0 (exact)"
    assert rows[("TOY-SHAPE", "shape")].source == gate.EXACT


def test_gate_any_change_with_the_same_code_is_a_finding(toy_baseline):
    comp = gate.compare(toy_baseline, _ci_run(toy_baseline.record, _score(+1e-12)))   # even a better value
    (bad,) = comp.regressions()
    assert (bad.claim, bad.metric, bad.mark, bad.source) == ("TOY-SCORE", "score", "#", gate.EXACT)


def test_gate_changed_code_is_held_to_the_baselines_spread_in_the_bad_direction(toy_baseline):
    base = toy_baseline.record
    m, sd, tol = gate.spread_tolerance([0.55, 0.56, 0.57])
    assert tol == pytest.approx(4 * 0.01)
    within = gate.compare(toy_baseline, _ci_run(base, _score(-0.025), code_changed=["score"]))
    assert within.regressions() == []
    assert _rows(within)[("TOY-SCORE", "score")].source == gate.SPREAD
    better = gate.compare(toy_baseline, _ci_run(base, _score(+0.2), code_changed=["score"]))
    assert better.regressions() == [] and _rows(better)[("TOY-SCORE", "score")].mark == "+"
    worse = gate.compare(toy_baseline, _ci_run(base, _score(-0.06), code_changed=["score"]))
    (bad,) = worse.regressions()
    assert (bad.claim, bad.metric, bad.mark, bad.source) == ("TOY-SCORE", "score", "-", gate.SPREAD)
    assert "0.04" in bad.tolerance


def test_gate_another_environment_is_never_exact(toy_baseline):
    comp = gate.compare(toy_baseline, _ci_run(toy_baseline.record, _score(+1e-9), env={"tensorflow": "9.9"}))
    assert not comp.same_env and comp.regressions() == []
    assert _rows(comp)[("TOY-SCORE", "score")].source == gate.SPREAD


def test_gate_a_timing_never_gets_an_exact_tolerance(toy_baseline):
    base = copy.deepcopy(toy_baseline.record)
    spec = base["claims"]["TOY-SCORE"]["metric_specs"]["baseline"]
    spec.update(unit="s", better="lower")                      # 'baseline' read as a timing in seconds
    b = gate.Baseline("toy", base, toy_baseline.path)

    def slower(cur):
        cur["runs"]["score"]["results"]["0"]["metrics"]["baseline"] += 100.0
    cur = _ci_run(base, slower)
    comp = gate.compare(b, cur)
    row = _rows(comp)[("TOY-SCORE", "baseline")]
    assert row.source.startswith(gate.NOT_GATING) and "timing" in row.source and row.tolerance == ""
    assert comp.regressions() == []


def test_gate_stated_tolerance_and_deterministic_runs_whose_code_changed(toy_baseline):
    base = copy.deepcopy(toy_baseline.record)
    base["claims"]["TOY-SCORE"]["metric_specs"]["score"]["tolerance"] = 0.1
    b = gate.Baseline("toy", base, toy_baseline.path)
    comp = gate.compare(b, _ci_run(base, _score(-0.08), code_changed=["score"]))
    assert comp.regressions() == [] and _rows(comp)[("TOY-SCORE", "score")].source == gate.STATED

    def wrong_shape(cur):
        cur["runs"]["shape"]["results"]["0"]["metrics"]["shape"] = [28, 28, 5]
    comp = gate.compare(b, _ci_run(base, wrong_shape, code_changed=["shape"]))
    rows = _rows(comp)
    assert rows[("TOY-SHAPE", "shape")].source == gate.SNAPSHOT     # a deterministic run's value: a snapshot
    assert {(r.claim, r.metric, r.mark) for r in comp.regressions()} == {("TOY-SHAPE", "", "!"),
                                                                         ("TOY-SHAPE", "shape", "!")}


def test_gate_a_changed_deterministic_value_fails_like_a_snapshot(toy_baseline):
    """A value that does not depend on the seed (every value of a deterministic run; a count or shape
    every baseline seed gave alike) is compared as a snapshot when the code changed: any change fails
    the gate until the baseline is regenerated, though every judged part still passes."""
    base = toy_baseline.record

    def recount(cur):   # the deterministic run's reported-only value moves, its judged shape does not
        cur["runs"]["shape"]["results"]["0"]["metrics"]["baseline"] += 1.0
    comp = gate.compare(toy_baseline, _ci_run(base, recount, code_changed=["shape"]))
    (bad,) = comp.regressions()
    assert (bad.claim, bad.metric, bad.mark, bad.source) == ("TOY-SHAPE", "shape.baseline", "=", gate.SNAPSHOT)
    assert "regenerated on purpose" in bad.note
    assert comp.current["claims"]["TOY-SHAPE"]["verdict"] == "reproduced"

    def reshape(cur):   # a shape the non-deterministic run gave alike on its 3 baseline seeds
        cur["runs"]["score"]["results"]["0"]["metrics"]["shape"] = [28, 28, 8]
    comp = gate.compare(toy_baseline, _ci_run(base, reshape, code_changed=["score"], env={"tensorflow": "9.9"}))
    assert [(r.claim, r.metric, r.mark) for r in comp.regressions()] == [("TOY-SCORE", "score.shape", "=")]
    assert "snapshots" in "\n".join(gate.header_lines(comp))

    # unchanged values pass, whether the code changed or not; a measurement (a float varying by seed) is no snapshot
    assert gate.compare(toy_baseline, _ci_run(base, code_changed=["shape", "score"])).regressions() == []
    assert gate.snapshot_of(base["runs"]["score"], "score", True) is gate._NO
    assert gate.snapshot_of(base["runs"]["score"], "shape", False) == [28, 28, 6]


def test_gate_takes_the_committed_baseline_and_says_when_one_cannot_gate(toy_baseline, workspace):
    """In a git checkout the automatic baseline is the newest committed record: a local one-seed record
    (newer, not committed) is left out, and named; a one-seed baseline named on purpose is said to gate
    nothing where the code changed."""
    import subprocess

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=workspace, check=True,
                       capture_output=True)
    git("init", "-q")
    git("add", "results")
    git("commit", "-q", "-m", "baseline")
    one = _ci_run(toy_baseline.record)
    one.update(commit="def0000000", finished="2999-01-01T00:00:00+00:00")
    local = toy_baseline.path.with_name("toy-full-def0000000.json")
    record.save(local, one)
    found = gate.plan(["toy"], "full", workspace / "results", machine="testbox", commit="new0000000")
    assert found["toy"].path == toy_baseline.path
    assert any("left out" in n and local.name in n and "not committed" in n for n in found["toy"].notes)
    named = gate.plan(["toy"], "full", workspace / "results", [local], machine="testbox", commit="new0000000")
    comp = gate.compare(named["toy"], _ci_run(toy_baseline.record, code_changed=["score", "paired"]))
    text = "\n".join(gate.header_lines(comp))
    assert "one seed of" in text and "cannot gate" in text
    git("rm", "-q", "--cached", str(toy_baseline.path.relative_to(workspace)))
    with pytest.raises(gate.GateError, match="no committed baseline.*--baseline"):
        gate.plan(["toy"], "full", workspace / "results", machine="testbox", commit="new0000000")


def test_gate_finds_baselines_and_refuses_bad_input(toy_baseline, workspace):
    results = workspace / "results"
    found = gate.plan(["toy"], "full", results, machine="testbox", commit="new0000000")
    assert found["toy"].path == toy_baseline.path
    with pytest.raises(gate.GateError, match="no baseline for suite 'toy' at profile 'smoke'"):
        gate.plan(["toy"], "smoke", results, machine="testbox", commit="new0000000")
    with pytest.raises(gate.GateError, match="same machine and commit"):
        gate.plan(["toy"], "full", results, [toy_baseline.path], machine=ENV["machine"], commit=ENV["commit"])
    with pytest.raises(gate.GateError, match="not 'smoke'"):
        gate.plan(["toy"], "smoke", results, [toy_baseline.path], machine="testbox", commit="new0000000")


def test_gate_prints_what_it_compared_then_one_line_per_regression_then_the_table(toy_baseline):
    cur = _ci_run(toy_baseline.record, _score(-0.3), code_changed=["score"])
    lines = gate.check({"toy": toy_baseline}, [(cur, None)]).lines()
    text = "\n".join(lines)
    assert str(toy_baseline.path.name) in lines[0] and "abc1234567" in lines[0]
    assert "tolerance sources:" in text and "baseline spread" in text and "exact" in text
    i = lines.index("REGRESSIONS (1):")
    assert lines[i + 1].split()[:2] == ["-", "TOY-SCORE.score:"]
    assert "baseline 0.56 ± 0.01 (n=3) → now 0.25" in lines[i + 1] and "tolerance 0.04" in lines[i + 1]
    assert any(line.startswith("toy full: baseline abc1234567") for line in lines[i + 2:])   # the table after
    assert lines[-1] == "1 regression(s), listed above"
    clean = gate.check({"toy": toy_baseline}, [(_ci_run(toy_baseline.record), None)]).lines()
    assert clean[-1] == "no regressions" and not any(line.startswith("REGRESSIONS") for line in clean)


def test_values_read_off_a_wall_clock_are_timings():
    for name in ("train_seconds", "relu_ms_per_step", "transformer_tokens_per_s", "minibatch_loss_at_time",
                 "minibatch_loss_at_equal_time", "transformer_time_exponent", "speedup_transformer_over_lstm"):
        assert cmp.is_timing(name, {}), name
    assert cmp.is_timing("step_time", {"unit": "ms"})
    # the training suite's judged timings that once got an exact tolerance in the smoke gate
    assert cmp.is_timing("bn3.batchnorm_cpu_s_to_target", {})
    assert cmp.is_timing("relu_speed.sigmoid_over_relu", {"unit": "s/s"})
    assert cmp.is_timing("parallel_headroom", {"unit": "s/s"})
    for name in ("test_error", "conv3d_keeps_time", "adam_mnist_steps", "c1_params"):
        assert not cmp.is_timing(name, {}), name
