"""The cost said before a long run: the records' per-unit seconds, less the units this commit has."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from repro import cost, env, record, runner
from repro import suite as suites
from tests import conftest

ENV = {"machine": "testbox", "commit": "old0000000", "python": "3", "tensorflow": "t", "keras": "k",
       "device": "CPU:0"}


def _timed_record(workspace, per_unit: dict[str, float], drop=()):
    """A full record of the toy suite at another commit whose units took ``per_unit`` seconds."""
    s = suites.load(workspace / "suites" / "toy.yaml")
    path = runner.run_suite(s, list(s.claims), profile="full", env=dict(ENV), results_dir=workspace / "results")
    rec = record.load(path)
    for rid, secs in per_unit.items():
        for o in rec["runs"][rid]["results"].values():
            o["seconds"] = secs
    for rid in drop:
        del rec["runs"][rid]
    record.save(path, rec)
    return s


def test_the_estimate_uses_the_records_timings_less_what_this_commit_has(workspace):
    s = _timed_record(workspace, {"shape": 1.0, "score": 100.0, "paired": 10.0}, drop=["paired"])
    conftest.INTERRUPT_AT["score"] = 2          # this commit's run stopped in score's third seed
    with pytest.raises(KeyboardInterrupt):
        runner.run_suite(s, list(s.claims), profile="full", env=dict(ENV, commit="new0000000"),
                         results_dir=workspace / "results")
    est = cost.estimate([(s, list(s.claims))], profile="full", machine="testbox", commit="new0000000",
                        results_dir=workspace / "results")
    by = {r.run: r for r in est.runs}
    assert (by["shape"].cached, by["score"].cached, by["paired"].cached) == (1, 2, 0)
    assert by["score"].per_unit == 100.0 and by["paired"].per_unit is None
    assert est.seconds == pytest.approx(100.0) and est.cached_seconds == pytest.approx(201.0)
    text = est.text()
    assert "about 2 min on this machine" in text and "3 min cached (3 finished unit(s)" in text
    assert "No committed timing for toy/paired" in text
    # at a commit with nothing stored, everything is still to run
    fresh = cost.estimate([(s, list(s.claims))], profile="full", machine="testbox", commit="other00000",
                          results_dir=workspace / "results")
    assert fresh.seconds == pytest.approx(3 * 1.0 + 3 * 100.0 - 2 * 1.0) and "nothing cached" in fresh.text()


def test_timings_with_other_parameters_or_from_another_machine_are_named(workspace):
    s = _timed_record(workspace, {"shape": 1.0, "score": 60.0, "paired": 60.0})
    est = cost.estimate([(s, list(s.claims))], profile="full", machine="elsewhere", commit="x",
                        results_dir=workspace / "results")
    assert "timed on testbox" in est.text()
    changed = suites.load(conftest.write_suite(workspace, conftest.SUITE.replace(
        "params: {base: 0.55, tag: score}", "params: {base: 0.4, tag: score}")))
    est = cost.estimate([(changed, list(changed.claims))], profile="full", machine="testbox", commit="x",
                        results_dir=workspace / "results")
    assert {r.run for r in est.runs if r.other_params} == {"score"}
    assert "Timed with other parameters than today's: toy/score" in est.text()


@pytest.mark.parametrize("seconds, text", [(45, "45 s"), (600, "10 min"), (9600, "2 h 40 min"), (7200, "2 h")])
def test_durations_read_as_people_say_them(seconds, text):
    assert cost.duration(seconds) == text


def test_a_full_run_says_its_cost_before_it_starts(workspace, monkeypatch):
    from repro.cli_app import app

    _timed_record(workspace, {"shape": 1.0, "score": 1200.0, "paired": 600.0})
    monkeypatch.setattr(env, "commit", lambda: "new0000000")
    res = CliRunner().invoke(app, ["run", "toy", "-p", "full", "--results", str(workspace / "results")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = res.output
    assert "estimate: full profile: about 1 h 30 min on this machine" in out, out
    assert out.index("estimate:") < out.index("toy shape seed 0")
    quick = CliRunner().invoke(app, ["run", "toy", "-p", "quick", "--results", str(workspace / "results")],
                               catch_exceptions=False)
    assert "estimate:" not in quick.output
