"""The generated report: Markdown tables, a self-contained HTML page that a browser renders, and the
regression gate `repro check`."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repro import report, runner
from repro import suite as suites
from repro.cli_app import app

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
    assert "3 claims: 3 reproduced" in summary and "### 0.0" in summary
    assert "| TOY-SCORE |" in summary and "0.51 ± 0.01" in summary
    text = readme.read_text()
    assert "old table" not in text and "| TOY-PAIRED |" in text and text.endswith("after\n")


def test_html_is_valid_self_contained_and_embeds_plots(workspace, full_record):
    report.write(workspace / "results", None)
    page = (workspace / "results" / "report.html").read_text()
    report.validate_html(page)
    assert page.count("data:image/png;base64,") == 3            # one plot per seed of TOY-SCORE
    assert "repro run TOY-SCORE --profile full --seeds 3" in page
    assert "分数至少0.5" in page and "abc1234567" in page


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
    for run in base["claims"]["TOY-SCORE"]["runs"].values():
        run["metrics"]["score"] += 0.3
    from repro import record
    record.summarize(base["claims"]["TOY-SCORE"])
    base_path.write_text(json.dumps(base))
    res = _check(workspace)
    assert res.exit_code == 1
    assert "TOY-SCORE.score" in res.output and "regression check failed" in res.output


def test_check_without_baseline_says_how_to_make_one(workspace):
    res = _check(workspace)
    assert res.exit_code == 2 and "no baseline for suite 'toy'" in res.output
