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
    assert score["n_seeds"] == 3 and list(rec["runs"]["score"]["results"]) == ["0", "1", "2"]
    assert score["metrics"]["score"]["values"] == pytest.approx([0.55, 0.56, 0.57])
    assert score["metrics"]["score"]["mean"] == pytest.approx(0.56)
    assert score["metrics"]["score"]["status"] == "pass" and score["verdict"] == "reproduced"
    assert "every judged part passes" in score["deciding"]
    assert rec["claims"]["TOY-SHAPE"]["n_seeds"] == 1 and rec["claims"]["TOY-SHAPE"]["verdict"] == "reproduced"
    assert rec["claims"]["TOY-PAIRED"]["metrics"]["score"]["status"] == "pass"
    assert path.with_suffix(".csv").read_text().startswith("claim,section,metric")
    assert "| TOY-SCORE | score |" in path.with_suffix(".md").read_text()
    art = workspace / "results" / "testbox" / rec["runs"]["score"]["results"]["2"]["artifacts"][0]
    assert art.read_bytes() == b"seed 2"
    # nothing is left in the state folder once the record is in results/
    assert not list(runner.state_dir(workspace / "results").rglob("*.json"))


def test_done_units_are_not_run_again_unless_forced(workspace):
    _run(workspace)
    n = len(conftest.CALLS)
    assert n == 1 + 3 + 3  # one analytic run, two runs of three seeds
    _run(workspace)
    assert len(conftest.CALLS) == n
    _run(workspace, force=True)
    assert len(conftest.CALLS) == 2 * n


def test_changed_parameters_invalidate_the_stored_result(workspace):
    _run(workspace, claims={"TOY-SCORE"})
    conftest.CALLS.clear()
    text = (workspace / "suites" / "toy.yaml").read_text().replace("params: {base: 0.55, tag: score}",
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
    assert rec["complete"] and list(rec["runs"]["score"]["results"]) == ["0", "1", "2"]


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
    text = head + "baseline: {criterion: {rule: {at_least: 0.9}, reason: test}, precondition: true}\n"
    (workspace / "suites" / "toy.yaml").write_text(text)
    path = _run(workspace)
    rec = record.load(path)
    e = rec["claims"]["TOY-PAIRED"]
    assert e["metrics"]["score"]["status"] == "pass" and e["metrics"]["baseline"]["status"] == "fail"
    assert "| TOY-PAIRED | baseline |  | precondition: criterion (ours): ≥ 0.9 |" in path.with_suffix(".md").read_text()
    assert e["verdict"] == "inconclusive" and e["metric_specs"]["baseline"]["precondition"] is True
    assert rec["claims"]["TOY-SCORE"]["verdict"] == "reproduced"


def test_fewer_seeds_later_drop_the_extra_seeds_from_statistics(workspace):
    _run(workspace, seeds=3, profile="quick")
    rec = record.load(_run(workspace, seeds=2, profile="quick"))
    assert rec["claims"]["TOY-SCORE"]["n_seeds"] == 2 and list(rec["runs"]["score"]["results"]) == ["0", "1"]


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
    run = rec["runs"][e["metric_specs"][metric]["run"]]
    for seed, v in zip(sorted(run["results"], key=int), values):
        run["results"][seed]["metrics"][metric] = v
    record.judge_claim(e, rec["runs"])
    return rec


def test_compare_marks_each_kind_of_change(workspace):
    base = record.load(_run(workspace))
    same = compare.compare(base, base)
    assert all(r.mark == " " for r in same) and not compare.regressions(same)

    failing = _plant(base, "TOY-SCORE", "score", [0.30, 0.31, 0.32])     # verdict flips, metric drops
    rows = compare.compare(base, failing)
    marks = {(r.claim, r.metric): r.mark for r in rows}
    assert marks[("TOY-SCORE", "")] == "!" and marks[("TOY-SCORE", "score")] in ("-", "!")
    assert {r.claim for r in compare.regressions(rows)} == {"TOY-SCORE"}

    fixed = compare.compare(failing, base)
    assert ("TOY-SCORE", "*") in {(r.claim, r.mark) for r in fixed if r.mark != " "}
    assert not compare.regressions(fixed)

    worse_but_passing = _plant(base, "TOY-SCORE", "score", [0.65, 0.66, 0.67])
    drift = compare.compare(worse_but_passing, base)
    assert [(r.claim, r.metric, r.mark) for r in drift if r.mark != " "] == [("TOY-SCORE", "score", "-")]

    within_noise = _plant(base, "TOY-SCORE", "score", [0.545, 0.565, 0.57])
    assert not compare.regressions(compare.compare(base, within_noise))

    changed = json.loads(json.dumps(base))
    changed["claims"]["TOY-SHAPE"]["version"] = 2
    assert {r.claim: r.mark for r in compare.compare(base, changed)}["TOY-SHAPE"] == "~"
    del changed["claims"]["TOY-PAIRED"]
    assert {r.claim: r.mark for r in compare.compare(base, changed)}["TOY-PAIRED"] == "?"


# ---- runs apart from claims, sequential seeds, artifacts, code hash --------------------------

SHARED = conftest.SUITE.replace("full: {seeds: 3}", "full: {seeds: 3, max_seeds: 10}").replace(
    "  - id: TOY-PAIRED\n", """  - id: TOY-SHARED
    section: 分数
    kind: E
    source: "同一运行"
    claim: a second claim judging the score run
    version: 1
    runs: [score]
    metrics:
      baseline: {criterion: {rule: {at_least: 0.1}, reason: test}}
  - id: TOY-PAIRED
""")


def test_two_claims_judging_one_run_run_it_once(workspace):
    conftest.write_suite(workspace, SHARED)
    rec = record.load(_run(workspace))
    assert conftest.CALLS.count(("score", 0)) == 1
    assert rec["claims"]["TOY-SHARED"]["verdict"] == "reproduced"
    assert rec["claims"]["TOY-SHARED"]["seconds"] == rec["claims"]["TOY-SCORE"]["seconds"] > 0 or \
        rec["runs"]["score"]["seconds"] >= 0


def test_undecided_parts_get_more_seeds_up_to_the_maximum(workspace):
    # score 0.50 + 0.01·seed against ≥ 0.5: undecided at 3 seeds, so the run looks again at 6 and 10
    text = SHARED.replace("params: {base: 0.55, tag: score}", "params: {base: 0.5, tag: score}")
    conftest.write_suite(workspace, text)
    looks = []
    rec = record.load(_run(workspace, on_event=lambda e: looks.append(e.total) if e.kind == "look" else None))
    assert looks == [6, 10]
    assert list(rec["runs"]["score"]["results"]) == [str(i) for i in range(10)]       # never past the maximum
    assert "added after 6" in rec["claims"]["TOY-SCORE"]["seeds_why"]
    score = rec["claims"]["TOY-SCORE"]["metrics"]["score"]
    assert score["interval_level"] == pytest.approx(1 - 0.05 / 3)     # the interval's own level ...
    assert score["level"] == pytest.approx(0.95)                        # ... and the family's, over 3 looks
    assert ("paired", 3) not in conftest.CALLS       # a decided run gets no extra seeds


# TOY-SHARED judges the score run beside the paired run: baseline 0.40 + 0.005·seed against ≥ 0.4 is
# undecided at 3 seeds, so both runs may look again, and TOY-SCORE (decided) asks for nothing
PARTNERS = SHARED.replace("""    runs: [score]
    metrics:
      baseline: {criterion: {rule: {at_least: 0.1}, reason: test}}""", """    runs: [score, paired]
    metrics:
      score.baseline: {criterion: {rule: {at_least: 0.4}, reason: test}}""")


def test_a_claim_grows_all_its_runs_together(workspace):
    conftest.write_suite(workspace, PARTNERS)
    rec = record.load(_run(workspace))
    assert list(rec["runs"]["score"]["results"]) == list(rec["runs"]["paired"]["results"]) == \
        [str(i) for i in range(10)]
    assert rec["claims"]["TOY-SHARED"]["n_seeds"] == 10


def test_no_seed_a_partner_run_cannot_reach(workspace):
    # the paired run stops at 3 seeds, and the claim is judged on the seeds both runs share: seeds 3-9
    # of the score run would decide nothing (the full transformer run spent 13 min on such seeds)
    text = PARTNERS.replace("    params: {tag: paired}\n", "    params: {tag: paired}\n    max_seeds: {full: 3}\n")
    conftest.write_suite(workspace, text)
    rec = record.load(_run(workspace))
    assert ("score", 3) not in conftest.CALLS and ("paired", 3) not in conftest.CALLS
    assert list(rec["runs"]["score"]["results"]) == ["0", "1", "2"]
    assert "run paired stops at 3" in rec["runs"]["score"]["seeds_why"]
    assert rec["claims"]["TOY-SHARED"]["verdict"] == "inconclusive"


def test_a_decided_run_stops_at_the_first_look(workspace):
    conftest.write_suite(workspace, SHARED)
    looks = []
    _run(workspace, on_event=lambda e: looks.append(e) if e.kind == "look" else None)
    assert looks == [] and ("score", 3) not in conftest.CALLS


PRODUCER = conftest.SUITE.replace("runs:\n", """runs:
  - id: model
    experiment: fake_produce
    version: 1
    params: {size: 2}
  - id: use
    experiment: fake_consume
    version: 1
    uses: {model_dir: model}
""", 1).replace("claims:\n", """claims:
  - id: TOY-USE
    section: s
    kind: E
    source: "x"
    claim: y
    version: 1
    runs: [use]
    metrics:
      total: {criterion: {rule: {at_least: 0}, reason: test}}
""", 1)


def test_a_run_loads_the_artifact_another_run_saved(workspace):
    conftest.write_suite(workspace, PRODUCER)
    rec = record.load(_run(workspace, claims={"TOY-USE"}))
    assert [c for c in conftest.CALLS if c[0] in ("produce", "consume")] == \
        [("produce", 0), ("produce", 1), ("produce", 2), ("consume", 0), ("consume", 1), ("consume", 2)]
    assert [o["metrics"]["loaded"] for o in rec["runs"]["use"]["results"].values()] == ["0 1", "1 2", "2 3"]
    assert rec["runs"]["model"]["results"]["0"]["seconds"] >= 0 and rec["runs"]["use"]["uses"] == {"model_dir": "model"}
    # a fresh checkout has the record but not the artifacts: a consumer that must run again re-makes them
    shutil.rmtree(runner.cache_dir(workspace / "results") / "artifacts")
    conftest.CALLS.clear()
    _run(workspace, claims={"TOY-USE"})
    assert conftest.CALLS == []                      # nothing to run: the record holds every seed
    conftest.CALLS.clear()
    _run(workspace, claims={"TOY-USE"}, force=True)
    assert ("produce", 0) in conftest.CALLS and ("consume", 0) in conftest.CALLS


def test_a_judged_metric_the_run_does_not_return_is_a_config_error(workspace):
    conftest.write_suite(workspace, conftest.SUITE.replace("      baseline: {}\n  - id: TOY-PAIRED",
                                                           "      baseline: {}\n      scor: {criterion: {rule: {at_least: 0}, reason: t}}\n  - id: TOY-PAIRED"))
    with pytest.raises(runner.ConfigError, match=r"claim TOY-SCORE: field 'metrics.scor': run 'score'"):
        _run(workspace)
    assert not list((workspace / "results").rglob("*.json"))


def test_code_hash_sees_modules_the_experiment_imports(tmp_path):
    """Editing repro/models/transformer.py changes the hash of the translation experiment (which
    imports it), and not the hash of an experiment that does not."""
    import subprocess
    import sys
    from pathlib import Path

    src = Path(runner.__file__).resolve().parent
    shutil.copytree(src, tmp_path / "repro", ignore=shutil.ignore_patterns("__pycache__"))
    probe = ("import sys; from repro import codehash; "
             "print(codehash.code_hash('repro.experiments.translation'), codehash.code_hash('repro.experiments.lenet_mnist'))")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def hashes():
        out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    before = hashes()
    model = tmp_path / "repro" / "models" / "transformer.py"
    model.write_text(model.read_text() + "\n# an edit\n")
    after = hashes()
    assert after[0] != before[0] and after[1] == before[1]


def test_an_edited_model_module_is_not_reused(workspace, monkeypatch):
    """The runner keys a stored run by that hash: a changed imported module re-runs it."""
    _run(workspace, claims={"TOY-SCORE"})
    conftest.CALLS.clear()
    monkeypatch.setattr(runner, "code_hash", lambda experiment: "edited")
    _run(workspace, claims={"TOY-SCORE"})
    assert conftest.CALLS == [("score", 0), ("score", 1), ("score", 2)]


def test_a_run_of_some_claims_makes_a_record_that_says_it_is_partial(workspace):
    rec = record.load(_run(workspace, claims={"TOY-SCORE"}))
    assert not rec["complete"] and list(rec["claims"]) == ["TOY-SCORE"]
    rec = record.load(_run(workspace))
    assert rec["complete"]
