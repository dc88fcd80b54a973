"""The command line, in process: what a user types and what they get back."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repro.cli_app import app
from tests.conftest import SUITE, write_suite

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent


def invoke(workspace, *args):
    return runner.invoke(app, [*args], catch_exceptions=False)


def _one_line_error(result, code=2):
    assert result.exit_code == code, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    # one error line, last; before it at most the progress of fetching data ("trying source 1/3 ..."),
    # a full run's cost estimate, and the units that finished before the error ("toy (full): 7 (run, seed)
    # unit(s)", "  toy shape seed 0 ...")
    assert len(errors) == 1 and lines[-1] == errors[0], result.output
    # (and the cost estimate a full run prints before it starts)
    assert all("source" in ln or ln.lstrip().startswith(("toy ", "estimate:", "No committed timing"))
               for ln in lines[:-1]), result.output
    assert "Traceback" not in result.output
    return errors[0]


def test_run_then_list_then_compare(workspace):
    res = invoke(workspace, "run", "toy", "--profile", "quick", "--results", str(workspace / "results"))
    assert res.exit_code == 0, res.output
    assert "TOY-SCORE" in res.output and "reproduced" in res.output
    record = next((workspace / "results" / "testbox").glob("toy-quick-*.json"))
    assert json.loads(record.read_text())["claims"]["TOY-SCORE"]["n_seeds"] == 2

    listed = invoke(workspace, "list", "--results", str(workspace / "results"))
    assert listed.exit_code == 0 and "TOY-PAIRED" in listed.output and "reproduced" in listed.output

    same = invoke(workspace, "compare", str(record), str(record), "--fail-on-regression")
    assert same.exit_code == 0 and "no regressions" in same.output

    # plant a regression: the score drops below the claim on every seed
    rec = json.loads(record.read_text())
    e = rec["claims"]["TOY-SCORE"]
    for r in rec["runs"]["score"]["results"].values():
        r["metrics"]["score"] -= 0.2
    from repro import record as records
    records.judge_claim(e, rec["runs"])
    planted = workspace / "planted.json"
    planted.write_text(json.dumps(rec))
    res = invoke(workspace, "compare", str(record), str(planted), "--fail-on-regression")
    assert res.exit_code == 1, res.output
    assert "TOY-SCORE" in res.output and "regression" in res.output
    assert invoke(workspace, "compare", str(record), str(planted)).exit_code == 0   # reports, does not gate


def test_unknown_claim_suggests_the_closest(workspace):
    line = _one_line_error(invoke(workspace, "run", "TOY-SCOR", "--results", str(workspace / "results")))
    assert "TOY-SCORE" in line
    line = _one_line_error(invoke(workspace, "list", "tyo"))
    assert "'toy'" in line


def test_invalid_profile(workspace):
    line = _one_line_error(invoke(workspace, "run", "toy", "--profile", "quik"))
    assert "did you mean 'quick'" in line


def test_malformed_yaml_and_bad_field(workspace):
    write_suite(workspace, "suite: toy\nclaims: [\n")
    line = _one_line_error(invoke(workspace, "run", "toy", "--results", str(workspace / "results")))
    assert "toy.yaml" in line and "YAML" in line
    write_suite(workspace, SUITE.replace("experiment: fake_measure", "experiment: no_such_thing", 1))
    line = _one_line_error(invoke(workspace, "run", "--results", str(workspace / "results")))
    assert "run shape" in line and "field 'experiment'" in line
    assert not any((workspace / "results").rglob("*"))   # nothing written


def test_missing_record_for_compare(workspace):
    line = _one_line_error(invoke(workspace, "compare", str(workspace / "a.json"), str(workspace / "b.json")))
    assert "no record at" in line


def test_unknown_dataset(workspace):
    line = _one_line_error(invoke(workspace, "data", "fetch", "mnsit"))
    assert "mnsit" in line


def test_env_shows_versions_and_devices():
    res = runner.invoke(app, ["env"])
    assert res.exit_code == 0 and "tensorflow" in res.output and "device" in res.output


def test_python_cli_py_works_like_the_script():
    res = subprocess.run([sys.executable, "cli.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "compare" in res.stdout


def _needs_data(*, seed: int) -> "registry.Result":
    from repro import data
    data.load("toy-unreachable")
    raise AssertionError("the run should have stopped before the experiment")


def test_dataset_that_cannot_be_had_stops_the_run_before_anything_is_written(workspace, monkeypatch):
    import numpy as np
    from repro import data, registry

    class Wrong:
        def describe(self):
            return "fake: gives the wrong bytes"

        def fetch(self, workdir):
            return {"x": np.zeros(3, dtype=np.uint8)}

    class Offline:
        def describe(self):
            return "fake: offline"

        def fetch(self, workdir):
            raise data.SourceError("cannot resolve host (offline?)")

    monkeypatch.setenv("REPRO_DATA_DIR", str(workspace / "cache"))
    monkeypatch.setitem(registry.EXPERIMENTS, "needs_data", _needs_data)
    monkeypatch.setitem(registry.NEEDS, "needs_data", ("toy-unreachable",))
    write_suite(workspace, SUITE.replace("experiment: fake_measure\n    version: 1\n    params: {tag: shape}",
                                         "experiment: needs_data\n    version: 1\n    params: {}", 1))
    ds = data.Dataset(name="toy-unreachable", description="nowhere to be had", sources=[Wrong(), Offline()],
                      checksum="0" * 64)
    with data.registered(ds):
        res = invoke(workspace, "run", "toy", "--results", str(workspace / "results"))
    line = _one_line_error(res)
    assert "checksum" in line and "offline" in line and "toy-unreachable" in line
    assert not any((workspace / "results").rglob("*"))


def test_bad_suite_input_is_one_error_line_and_nothing_written(workspace):
    """Issue 11's bad input: a claim naming no run, a criterion without a reason, a seed maximum below
    the minimum, a judged metric the run does not return: one error line, exit 2, nothing in results/."""
    cases = [
        ("    runs: [paired]\n", "", "claim TOY-PAIRED: field 'runs'"),
        ("score: {claimed: 0.5, rule: {at_least: 0.5}, better: higher}",
         "score: {claimed: 0.5, criterion: {rule: {at_least: 0.4}}, better: higher}", "criterion.reason"),
        ("full: {seeds: 3}", "full: {seeds: 3, max_seeds: 2}", "max_seeds"),
        ("      baseline: {}\n  - id: TOY-PAIRED", "      baseline: {}\n      scor: {criterion: {rule: {at_least: 0}, reason: t}}\n  - id: TOY-PAIRED",
         "run 'score' (experiment fake_measure) returns no metric 'scor'"),
    ]
    for old, new, expected in cases:
        write_suite(workspace, SUITE.replace(old, new, 1))
        res = invoke(workspace, "run", "toy", "-p", "full", "--results", str(workspace / "results"))
        line = _one_line_error(res)
        assert expected in line, line
        assert not list((workspace / "results").rglob("*.json"))


def test_rejudge_rewrites_a_record_under_the_current_suite(workspace):
    res = invoke(workspace, "run", "toy", "--profile", "full", "--results", str(workspace / "results"))
    assert res.exit_code == 0, res.output
    record = next((workspace / "results" / "testbox").glob("toy-full-*.json"))
    # the claim's line changes in the suite: re-judging the stored values flips its verdict, no re-run
    write_suite(workspace, SUITE.replace("score: {claimed: 0.5, rule: {at_least: 0.5}, better: higher}",
                                         "score: {claimed: 0.5, criterion: {rule: {at_least: 0.9}, reason: t}, better: higher}"))
    res = invoke(workspace, "rejudge", str(record))
    assert res.exit_code == 0, res.output
    rec = json.loads(record.read_text())
    assert rec["claims"]["TOY-SCORE"]["verdict"] == "contradicted" and rec["rejudged"]


def test_rejudge_keeps_a_claim_whose_run_changed_as_it_was_judged(workspace):
    """A claim whose run's parameters changed since the record cannot be re-judged from its values;
    its stored entry and run stay in the record, marked, instead of vanishing from the history."""
    res = invoke(workspace, "run", "toy", "--profile", "full", "--results", str(workspace / "results"))
    assert res.exit_code == 0, res.output
    record = next((workspace / "results" / "testbox").glob("toy-full-*.json"))
    before = json.loads(record.read_text())
    write_suite(workspace, SUITE.replace("params: {base: 0.55, tag: score}", "params: {base: 0.7, tag: score}"))
    res = invoke(workspace, "rejudge", str(record))
    assert res.exit_code == 0, res.output
    rec = json.loads(record.read_text())
    assert "TOY-SCORE" in rec["not_rejudged"]
    kept = rec["claims"]["TOY-SCORE"]
    assert kept["verdict"] == before["claims"]["TOY-SCORE"]["verdict"] and kept["not_rejudged"]
    assert rec["runs"]["score"]["results"] == before["runs"]["score"]["results"]
    assert rec["claims"]["TOY-SHAPE"]["verdict"] == before["claims"]["TOY-SHAPE"]["verdict"]


def test_show_prints_one_claim_in_full_and_an_unknown_id_is_one_error_line(workspace):
    res = invoke(workspace, "run", "toy", "--profile", "full", "--results", str(workspace / "results"))
    assert res.exit_code == 0, res.output
    res = invoke(workspace, "show", "toy-score", "--results", str(workspace / "results"))
    assert res.exit_code == 0, res.output
    out = res.output
    assert out.startswith("TOY-SCORE the score is at least 0.5 and beats the baseline (toy, claim version 1)")
    assert "verdict: reproduced (3 seeds; full record at commit" in out and "why: every judged part passes (score)" in out
    assert "key: score: the chapter 0.5; ours 0.56 [" in out and "evidence: empirical" in out
    assert "history (`repro history TOY-SCORE` in full): v1 " in out
    # every judged part, a row each
    assert "│ TOY-SCORE │ score " in out and "≥ 0.5" in out
    missing = invoke(workspace, "show", "TOY-SCOR", "--results", str(workspace / "results"))
    assert "did you mean 'TOY-SCORE'" in _one_line_error(missing)
    none_yet = invoke(workspace, "show", "TOY-SHAPE", "-p", "quick", "--results", str(workspace / "results"))
    assert none_yet.exit_code == 0 and "no quick-profile record holds TOY-SHAPE yet: `repro run TOY-SHAPE -p quick`" \
        in none_yet.output
