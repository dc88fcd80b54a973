"""Claim histories and registered designs, on a throw-away git repository: a design committed before
its run is registered; a run on a dirty tree, a re-judged record or a record whose code is not the
commit's is not; the history lists every full record oldest first with what changed and why."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repro import history, record, runner
from repro import suite as suites
from tests.conftest import SUITE

REPO = Path(__file__).resolve().parent.parent
ENV = {"machine": "testbox", "python": "3", "tensorflow": "t", "keras": "k", "device": "CPU:0"}
V2 = SUITE.replace("    claim: the score is at least 0.5 and beats the baseline\n    version: 1\n",
                   "    claim: the score is at least 0.5 and beats the baseline\n    version: 2\n"
                   "    changes:\n      - {version: 2, after_result: true, why: \"base lowered to 0.4 after the v1 record\"}\n"
                   ).replace("params: {base: 0.55, tag: score}", "params: {base: 0.4, tag: score}")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A git repository holding this code (repro/, the tests' fake experiments) and the toy suite."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "repro", root / "repro", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (root / "tests").mkdir()
    for name in ("__init__.py", "conftest.py"):
        shutil.copy(REPO / "tests" / name, root / "tests" / name)
    (root / "suites").mkdir()
    (root / "suites" / "toy.yaml").write_text(SUITE, encoding="utf-8")
    (root / "results").mkdir()
    monkeypatch.setenv("REPRO_SUITES_DIR", str(root / "suites"))
    monkeypatch.setenv("REPRO_MACHINE", "testbox")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "toy v1")
    return root


def run(root: Path, commit: str, claims=("TOY-SCORE",)) -> dict:
    s = suites.load(root / "suites" / "toy.yaml")
    path = runner.run_suite(s, [s.claim(c) for c in claims], profile="full", env=dict(ENV, commit=commit),
                            results_dir=root / "results")
    return record.load(path)


def test_registered_only_when_the_commits_design_is_the_records(repo):
    g = history.Git(repo)
    c1 = git(repo, "rev-parse", "--short=10", "HEAD")
    r1 = run(repo, c1)
    reg = history.registration(g, r1, "TOY-SCORE", find_since=True)
    assert reg.registered is True and reg.since.startswith(c1), reg
    assert history.design_at(g, c1, "suites/toy.yaml", "TOY-SCORE", "full")["hash"] == r1["claims"]["TOY-SCORE"]["design"]["hash"]

    (repo / "suites" / "toy.yaml").write_text(V2, encoding="utf-8")     # edited, not committed: a dirty run
    r2 = run(repo, f"{c1}-dirty")
    reg = history.registration(g, r2, "TOY-SCORE")
    assert reg.registered is False and "uncommitted" in reg.why

    git(repo, "commit", "-q", "-am", "toy v2")
    c2 = git(repo, "rev-parse", "--short=10", "HEAD")
    r3 = run(repo, c2)
    reg = history.registration(history.Git(repo), r3, "TOY-SCORE", find_since=True)
    assert reg.registered is True and reg.since.startswith(c2)         # the design changed at c2
    # a record that says it ran at c2 but whose code is not c2's (files left uncommitted, or edited after)
    forged = json.loads(json.dumps(r3))
    forged["runs"]["score"]["code_hash"] = "0123456789ab"
    forged["claims"]["TOY-SCORE"]["design"]["hash"] = "0123456789ab"
    assert history.registration(history.Git(repo), forged, "TOY-SCORE").registered is False
    rejudged = dict(r3, rejudged={"at_commit": c2})
    assert history.registration(history.Git(repo), rejudged, "TOY-SCORE").registered is False
    # a commit this repository does not have cannot be checked
    assert history.registration(history.Git(repo), dict(r3, commit="fedcba9876"), "TOY-SCORE").registered is None


def test_the_history_of_a_claim_lists_its_records_with_what_changed_and_why(repo):
    c1 = git(repo, "rev-parse", "--short=10", "HEAD")
    run(repo, c1)
    git(repo, "add", "results")
    git(repo, "commit", "-q", "-m", "the v1 record")
    (repo / "suites" / "toy.yaml").write_text(V2, encoding="utf-8")
    git(repo, "commit", "-q", "-am", "toy v2")
    c2 = git(repo, "rev-parse", "--short=10", "HEAD")
    run(repo, c2)

    h = history.claim_history("TOY-SCORE", repo / "results")
    assert [(e.version, e.run_commit, e.verdict) for e in h.entries] == [(1, c1, "reproduced"),
                                                                       (2, c2, "contradicted")]
    first, second = h.entries
    assert first.committed_in and not second.committed_in               # the second is not committed yet
    assert first.registered and second.registered
    assert "score.base: 0.55 → 0.4" in second.differences and "claim version 1 → 2" in second.differences
    assert [c.why for c in second.changes] == ["base lowered to 0.4 after the v1 record"]
    assert second.speaks and not first.speaks and h.post_result and not h.pending
    assert "score 0.4" in second.numbers and "→ fail" in second.numbers

    res = CliRunner().invoke(_app(), ["history", "toy-score", "--results", str(repo / "results")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    for text in (c1, c2, "contradicted", "base lowered to 0.4", "registered", "not committed", "†"):
        assert text in res.output, (text, res.output)
    bad = CliRunner().invoke(_app(), ["history", "TOY-SCOR", "--results", str(repo / "results")])
    assert bad.exit_code == 2
    lines = [ln for ln in bad.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no claim named 'TOY-SCOR'; did you mean 'TOY-SCORE'?")


def _app():
    from repro.cli_app import app
    return app


def test_the_readme_row_marks_a_design_changed_after_a_result(workspace):
    from repro import report

    (workspace / "suites" / "toy.yaml").write_text(V2, encoding="utf-8")
    s = suites.load(workspace / "suites" / "toy.yaml")
    runner.run_suite(s, list(s.claims), profile="full", env=dict(ENV, commit="abc1234567"),
                     results_dir=workspace / "results")
    md = report.markdown(report.latest_records(workspace / "results"))
    row = next(line for line in md.splitlines() if line.startswith("| [TOY-SCORE]"))
    assert row.startswith("| [TOY-SCORE][] [†][h-TOY-SCORE] |")
    assert "\n[h-TOY-SCORE]: results/report.html#history-TOY-SCORE\n" in md
    assert not next(line for line in md.splitlines() if line.startswith("| [TOY-SHAPE]")).count("†")
    page = report.html_page(report.latest_records(workspace / "results"), workspace / "results")
    report.validate_html(page)
    assert 'id="history-TOY-SCORE"' in page and "base lowered to 0.4 after the v1 record" in page


def test_a_record_of_an_older_version_is_shown_with_that_versions_words(repo):
    """The page shows a record with the presentation (short, key, erratum) of the design it ran: the
    suite at the record's commit, not words written since for the next version."""
    from repro import report

    c1 = git(repo, "rev-parse", "--short=10", "HEAD")
    r1 = run(repo, c1)
    (repo / "suites" / "toy.yaml").write_text(V2.replace("  - id: TOY-SCORE\n", "  - id: TOY-SCORE\n    short: the second design\n"),
                                              encoding="utf-8")
    git(repo, "commit", "-q", "-am", "toy v2")
    now = {c.id: c for c in suites.load(repo / "suites" / "toy.yaml").claims}
    shown = report.presentation_claim("TOY-SCORE", r1["claims"]["TOY-SCORE"], r1, now)
    assert shown.version == 1 and shown.short != "the second design"
    assert now["TOY-SCORE"].short == "the second design"
    # an entry of the version the suite holds now is shown with the suite of now
    assert report.presentation_claim("TOY-SCORE", dict(r1["claims"]["TOY-SCORE"], version=2), r1, now) is now["TOY-SCORE"]
