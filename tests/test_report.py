"""The generated report: Markdown tables, a self-contained HTML page that a browser renders, and the
regression gate `repro check`."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repro import record, report, runner
from repro import suite as suites
from repro.cli_app import app

from tests.conftest import write_suite

ENV = {"machine": "testbox", "commit": "abc1234567", "python": "3", "tensorflow": "2.x", "keras": "3.x",
       "device": "CPU:0"}


@pytest.fixture
def full_record(workspace):
    s = suites.load(workspace / "suites" / "toy.yaml")
    return runner.run_suite(s, list(s.claims), profile="full", env=dict(ENV), results_dir=workspace / "results")


def test_markdown_groups_by_chapter_section_with_counts(workspace, full_record):
    readme = workspace / "README.md"
    readme.write_text(f"# x\n\n{report.START}\nold table\n{report.END}\n\nafter\n")
    written = report.write(workspace / "results", readme)
    assert {p.name for p in written} == {"README.md", "report.html"}
    summary = (workspace / "results" / "README.md").read_text()
    rec = json.loads(full_record.read_text())
    assert report.counts_line(report.claim_rows([dict(rec, _path="x")])) in summary and "### 0.0" in summary
    assert summary.count("**3 claims: ") == 1
    assert "| claim | in a few words | claimed (chapter) | judged against | measured → outcome | seeds | verdict " \
           "| deciding part |" in summary
    e = rec["claims"]["TOY-SCORE"]
    m = e["metrics"]["score"]
    assert "± 0.01" in record.measured_text(m)
    score_row = next(line for line in summary.splitlines() if line.startswith("| TOY-SCORE |"))
    assert f"| score {record.measured_text(m)} → {m['status']} |" in score_row
    assert "| score 0.5 |" in score_row and "| score ≥ 0.5 |" in score_row and "criterion" not in score_row
    assert f"| 3 | **{e['verdict']}** | {e['deciding']} |" in score_row
    text = readme.read_text()
    assert "old table" not in text and "| TOY-PAIRED |" in text and text.endswith("after\n")


def test_html_is_valid_self_contained_and_embeds_plots(workspace, full_record):
    report.write(workspace / "results", None)
    page = (workspace / "results" / "report.html").read_text()
    report.validate_html(page)
    assert page.count("data:image/png;base64,") == 3            # one plot per seed of TOY-SCORE
    assert "repro run TOY-SCORE --profile full" in page and "--seeds" not in page
    assert "分数至少0.5" in page and "abc1234567" in page
    assert "fake run score" in page                               # the claim's notes
    assert "<strong>Deciding part:</strong> every judged part passes (shape)" in page
    assert "<strong>Seeds:</strong> 3: score: 3 seeds (the profile&#x27;s start)" in page   # the count and why


CRIT_SUITE = """\
suite: crit
version: 2
title: criteria and literature
section: "0.1 判据"
profiles:
  smoke: {seeds: 1}
  quick: {seeds: 2}
  full: {seeds: 3}
runs:
  - id: score
    experiment: fake_measure
    version: 1
    params: {base: 0.5, tag: crit}
claims:
  - id: CRIT-NEAR
    section: 判据
    kind: E
    source: "分数约为一半"
    claim: the score is about one half
    version: 1
    runs: [score]
    metrics:
      score:
        claimed: about one half
        criterion: {rule: {approx: 0.5, tol: 0.1}, reason: "±0.1: the spread of published reruns"}
        literature: {value: 0.49, source: "Someone et al. 2020, Table 3", setup: "1000 test items"}
      baseline: {}
"""


def test_criterion_is_marked_ours_with_its_reason_and_literature_is_cited(workspace):
    s = suites.load(write_suite(workspace, CRIT_SUITE, name="crit"))
    runner.run_suite(s, list(s.claims), profile="full", env=dict(ENV), results_dir=workspace / "results")
    recs = report.latest_records(workspace / "results")
    md = report.markdown(recs)
    row = next(line for line in md.splitlines() if line.startswith("| CRIT-NEAR |"))
    assert "| score about one half |" in row                         # claimed: the chapter's words only
    assert "score criterion (ours): ≈ 0.5 ± 0.1; literature: 0.49 (Someone et al. 2020, Table 3)" in row
    assert "→ pass" in row and "**reproduced**" in row
    page = report.html_page(recs, workspace / "results")
    report.validate_html(page)
    assert "why this line: ±0.1: the spread of published reruns" in page
    assert "Someone et al. 2020, Table 3; 1000 test items" in page


def test_a_rejudged_record_says_so_in_its_sources(workspace, full_record):
    rec = json.loads(full_record.read_text())
    rec["rejudged"] = {"from": "toy-full-0000000009.json", "from_schema": 1, "at_commit": "abc1234567"}
    rec["not_rejudged"] = {"TOY-NEW": "no stored values for run(s) new (new, or their parameters changed): run it"}
    full_record.write_text(json.dumps(rec))
    recs = report.latest_records(workspace / "results")
    md = report.markdown(recs)
    assert "re-judged under suite format 2 at commit abc1234567 from the stored values of the schema-1 record " \
           "`toy-full-0000000009.json`" in md
    assert "Not in this table yet (no stored values to re-judge): TOY-NEW (no stored values" in md
    page = report.html_page(recs, workspace / "results")
    report.validate_html(page)
    assert "re-judged under suite format 2" in page and "TOY-NEW" in page


@pytest.mark.parametrize("bad,problem", [
    ("<html><body></body></html>", "DOCTYPE"),
    ("<!DOCTYPE html><html><body><table><tr><td>x</tr></table></body></html>", "closes"),
    ('<!DOCTYPE html><html><body><img src="https://example.org/x.png"></body></html>', "network"),
    ('<!DOCTYPE html><html><body><a href="#nowhere">x</a></body></html>', "no target"),
])
def test_validator_catches_broken_pages(bad, problem):
    with pytest.raises(report.HTMLProblem, match=problem):
        report.validate_html(bad)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed here")
def test_html_renders_in_headless_chromium(workspace, full_record, tmp_path):
    report.write(workspace / "results", None)
    page = workspace / "results" / "report.html"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "TOY-PAIRED" in dom.stdout and "reproduced" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000


def test_report_compare_writes_a_side_by_side_page(workspace, full_record):
    res = CliRunner().invoke(app, ["report", "--results", str(workspace / "results"),
                                   "--compare", str(full_record), "--compare", str(full_record)])
    assert res.exit_code == 0, res.output
    (page,) = (workspace / "results").glob("compare-*.html")
    report.validate_html(page.read_text())
    assert "TOY-SCORE" in page.read_text()


def _check(workspace, *extra):
    return CliRunner().invoke(app, ["check", "toy", "-p", "full", "--results", str(workspace / "results"), *extra],
                              catch_exceptions=False)


def test_check_passes_on_an_unchanged_tree_and_catches_a_planted_regression(workspace, full_record, monkeypatch):
    # the committed baseline is the record of another commit; this checkout reproduces it exactly
    base = json.loads(full_record.read_text())
    base["commit"] = "0000000001"
    base_path = full_record.with_name("toy-full-0000000001.json")
    base_path.write_text(json.dumps(base))
    monkeypatch.setattr("repro.env.commit", lambda: "abc1234567")
    monkeypatch.setattr("repro.env.capture", lambda: dict(ENV))
    res = _check(workspace)
    assert res.exit_code == 0, res.output
    assert "no regressions" in res.output

    # plant a regression: the baseline was much better than what this commit measures
    for out in base["runs"]["score"]["results"].values():
        out["metrics"]["score"] += 0.3
    record.judge_claim(base["claims"]["TOY-SCORE"], base["runs"])
    assert base["claims"]["TOY-SCORE"]["verdict"] == "reproduced"
    base_path.write_text(json.dumps(base))
    res = _check(workspace)
    assert res.exit_code == 1
    assert "TOY-SCORE.score" in res.output and "regression check failed" in res.output


def test_check_without_baseline_says_how_to_make_one(workspace):
    res = _check(workspace)
    assert res.exit_code == 2 and "no baseline for suite 'toy'" in res.output
