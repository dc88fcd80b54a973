import json
import shutil

import pytest

from repro import compare, record, runner
from repro import suite as suites
from tests import conftest

ENV = {"machine": "testbox", "commit": "abc1234567", "python": "3", "tensorflow": "t", "keras": "k",
       "device": "CPU:0"}


def _run(workspace, profile="full", claims=None, **kw):
    s = suites.load(workspace / "suites" / "toy.yaml")
    chosen = [c for c in s.claims if claims is None or c.id in claims]
    return runner.run_suite(s, chosen, profile=profile, env=dict(ENV), results_dir=workspace / "results", **kw)


def test_record_has_stats_verdicts_tables_and_artifacts(workspace):
    path = _run(workspace)
    assert path == workspace / "results" / "testbox" / "toy-full-abc1234567.json"
    rec = record.load(path)
    assert rec["complete"] and rec["finished"] and rec["env"]["machine"] == "testbox"
    score = rec["claims"]["TOY-SCORE"]
    assert score["seeds"] == [0, 1, 2]
    assert score["metrics"]["score"]["values"] == pytest.approx([0.5, 0.51, 0.52])
    assert score["metrics"]["score"]["mean"] == pytest.approx(0.51)
    assert score["metrics"]["score"]["status"] == "pass" and score["verdict"] == "reproduced"
    assert rec["claims"]["TOY-SHAPE"]["seeds"] == [0] and rec["claims"]["TOY-SHAPE"]["verdict"] == "reproduced"
    assert rec["claims"]["TOY-PAIRED"]["metrics"]["score"]["status"] == "pass"
    assert path.with_suffix(".csv").read_text().startswith("claim,section,metric")
    assert "| TOY-SCORE | score |" in path.with_suffix(".md").read_text()
    art = workspace / "results" / "testbox" / score["runs"]["2"]["artifacts"][0]
    assert art.read_bytes() == b"seed 2"
    # nothing is left in the state folder once the record is in results/
    assert not list(runner.state_dir(workspace / "results").rglob("*.json"))


def test_done_units_are_not_run_again_unless_forced(workspace):
    _run(workspace)
    n = len(conftest.CALLS)
    assert n == 1 + 3 + 3  # one analytic run, two claims of three seeds
    _run(workspace)
    assert len(conftest.CALLS) == n
    _run(workspace, force=True)
    assert len(conftest.CALLS) == 2 * n


def test_changed_parameters_invalidate_the_stored_result(workspace):
    _run(workspace, claims={"TOY-SCORE"})
    conftest.CALLS.clear()
    text = (workspace / "suites" / "toy.yaml").read_text().replace("params: {base: 0.5, tag: score}",
                                                                   "params: {base: 0.4, tag: score}")
    (workspace / "suites" / "toy.yaml").write_text(text)
    rec = record.load(_run(workspace, claims={"TOY-SCORE"}))
    assert len(conftest.CALLS) == 3 and rec["claims"]["TOY-SCORE"]["verdict"] == "contradicted"


def test_interrupted_run_resumes_and_leaves_nothing_in_results(workspace):
    conftest.INTERRUPT_AT["score"] = 2
    with pytest.raises(KeyboardInterrupt):
        _run(workspace)
    assert not list((workspace / "results").rglob("*.json"))          # nothing half-written there
    assert list(runner.state_dir(workspace / "results").rglob("*.json"))
    done_before = list(conftest.CALLS)
    conftest.INTERRUPT_AT.clear()
    conftest.CALLS.clear()
    rec = record.load(_run(workspace))
    assert ("score", 0) in done_before and ("score", 0) not in conftest.CALLS   # resumed, not restarted
    assert ("score", 2) in conftest.CALLS
    assert rec["complete"] and rec["claims"]["TOY-SCORE"]["seeds"] == [0, 1, 2]


def test_a_failing_experiment_is_recorded_as_error(workspace):
    text = (workspace / "suites" / "toy.yaml").read_text().replace("params: {tag: paired}", "params: {tag: paired, fail: true}")
    (workspace / "suites" / "toy.yaml").write_text(text)
    rec = record.load(_run(workspace))
    e = rec["claims"]["TOY-PAIRED"]
    assert e["verdict"] == "error" and "told to fail" in e["error"]
    assert rec["claims"]["TOY-SCORE"]["verdict"] == "reproduced"


def test_a_failed_precondition_makes_the_claim_inconclusive(workspace):
    # TOY-PAIRED's score beats its baseline (pass), but the baseline must reach 0.9 first, and does not
    head, _ = (workspace / "suites" / "toy.yaml").read_text().rstrip().rsplit("baseline: {}", 1)
    text = head + "baseline: {rule: {at_least: 0.9}, precondition: true}\n"
    (workspace / "suites" / "toy.yaml").write_text(text)
    path = _run(workspace)
    rec = record.load(path)
    e = rec["claims"]["TOY-PAIRED"]
    assert e["metrics"]["score"]["status"] == "pass" and e["metrics"]["baseline"]["status"] == "fail"
    assert "| TOY-PAIRED | baseline | precondition: ≥ 0.9 |" in path.with_suffix(".md").read_text()
    assert e["verdict"] == "inconclusive" and e["metric_specs"]["baseline"]["precondition"] is True
    assert rec["claims"]["TOY-SCORE"]["verdict"] == "reproduced"


def test_fewer_seeds_later_drop_the_extra_seeds_from_statistics(workspace):
    _run(workspace, seeds=3, profile="quick")
    rec = record.load(_run(workspace, seeds=2, profile="quick"))
    assert rec["claims"]["TOY-SCORE"]["seeds"] == [0, 1]


def test_corrupt_record_is_a_clear_error(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(record.RecordError, match="not a valid record"):
        record.load(p)
    with pytest.raises(record.RecordError, match="no record at"):
        record.load(tmp_path / "missing.json")


# ---- compare ---------------------------------------------------------------------------------

def _plant(rec: dict, claim: str, metric: str, values: list[float]) -> dict:
    rec = json.loads(json.dumps(rec))
    e = rec["claims"][claim]
    for seed, v in zip(sorted(e["runs"], key=int), values):
        e["runs"][seed]["metrics"][metric] = v
    record.summarize(e)
    return rec


def test_compare_marks_each_kind_of_change(workspace):
    base = record.load(_run(workspace))
    same = compare.compare(base, base)
    assert all(r.mark == " " for r in same) and not compare.regressions(same)

    failing = _plant(base, "TOY-SCORE", "score", [0.30, 0.31, 0.32])     # verdict flips, metric drops
    rows = compare.compare(base, failing)
    marks = {(r.claim, r.metric): r.mark for r in rows}
    assert marks[("TOY-SCORE", "")] == "!" and marks[("TOY-SCORE", "score")] == "-"
    assert {r.claim for r in compare.regressions(rows)} == {"TOY-SCORE"}

    fixed = compare.compare(failing, base)
    assert {(r.claim, r.mark) for r in fixed if r.mark != " "} == {("TOY-SCORE", "*"), ("TOY-SCORE", "+")}

    worse_but_passing = _plant(base, "TOY-SCORE", "score", [0.60, 0.61, 0.62])
    drift = compare.compare(worse_but_passing, base)
    assert [(r.claim, r.metric, r.mark) for r in drift if r.mark != " "] == [("TOY-SCORE", "score", "-")]

    within_noise = _plant(base, "TOY-SCORE", "score", [0.495, 0.515, 0.52])
    assert not compare.regressions(compare.compare(base, within_noise))

    changed = json.loads(json.dumps(base))
    changed["claims"]["TOY-SHAPE"]["version"] = 2
    assert {r.claim: r.mark for r in compare.compare(base, changed)}["TOY-SHAPE"] == "~"
    del changed["claims"]["TOY-PAIRED"]
    assert {r.claim: r.mark for r in compare.compare(base, changed)}["TOY-PAIRED"] == "?"
