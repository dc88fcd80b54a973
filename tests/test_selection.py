"""One source of truth: README's table, the report, `repro list` and the quick run's "committed full
verdict" column all show, for every claim, the record :func:`repro.selection.select` picks; a verdict
whose claim, parameters or code changed since its record is marked stale; a re-judged record says so."""
from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from repro import record, report, runner, selection
from repro import suite as suites
from repro.cli_app import app
from tests.conftest import SUITE, write_suite

ENV = {"machine": "testbox", "python": "3", "tensorflow": "t", "keras": "k", "device": "CPU:0"}
VERDICTS = ("partially reproduced", "not checkable here", "reproduced", "contradicted", "inconclusive", "error")


def _record(workspace, commit: str, finished: str, claims=None, profile="full", suite_text=SUITE, edit=None):
    s = suites.load(write_suite(workspace, suite_text))
    chosen = [c for c in s.claims if claims is None or c.id in claims]
    path = runner.run_suite(s, chosen, profile=profile, env=dict(ENV, commit=commit), results_dir=workspace / "results")
    rec = record.load(path)
    rec["finished"] = finished
    if edit:
        edit(rec)
    record.save(path, rec)
    write_suite(workspace, SUITE)
    return path


def _verdict(rec_claims, cid, v):
    def edit(rec):
        rec["claims"][cid]["verdict"] = v
    return edit


@pytest.fixture
def history_dir(workspace):
    """Full records old and new, complete and partial, one re-judged, and a newer smoke record."""
    def rejudged(rec):
        rec["rejudged"] = {"from": "toy-full-bbb0000002.json", "from_schema": 1, "at_commit": "ccc0000003-dirty"}
        rec["claims"]["TOY-SHAPE"]["verdict"] = "partially reproduced"
    _record(workspace, "aaa0000001", "2026-01-01T00:00:00+00:00",
            edit=lambda rec: [rec["claims"][c].update(verdict="error") for c in rec["claims"]])      # oldest, complete
    _record(workspace, "bbb0000002", "2026-01-02T00:00:00+00:00", edit=rejudged)                      # complete, re-judged
    _record(workspace, "ccc0000003", "2026-01-03T00:00:00+00:00", claims={"TOY-SCORE"},               # partial, newest
            suite_text=SUITE.replace("params: {base: 0.55, tag: score}", "params: {base: 0.4, tag: score}"))
    _record(workspace, "ddd0000004", "2026-01-04T00:00:00+00:00", profile="smoke",
            edit=lambda rec: [rec["claims"][c].update(verdict="not checkable here") for c in rec["claims"]])
    return workspace / "results"


def _first_verdict(text: str) -> str | None:
    hits = [(text.find(v), v) for v in VERDICTS if v in text]
    return min(hits)[1] if hits else None


def _table_cells(output: str, column: int) -> dict[str, str]:
    """A rich table's rows by claim ID (first cell), one column's text joined over its wrapped lines."""
    rows: dict[str, list[str]] = {}
    claim = None
    for line in output.splitlines():
        cells = line.split("│")[1:-1]
        if len(cells) <= column:
            continue
        first = cells[0].strip().split(" ")[0]
        claim = first or claim
        if claim:
            rows.setdefault(claim, []).append(cells[column].strip())
    return {c: " ".join(v) for c, v in rows.items()}


def test_readme_report_list_and_the_quick_column_agree_for_every_claim(history_dir, monkeypatch):
    monkeypatch.setenv("COLUMNS", "240")
    picked = selection.select(history_dir)
    assert {c: s.commit for c, s in picked.items()} == {"TOY-SHAPE": "bbb0000002", "TOY-SCORE": "ccc0000003",
                                                        "TOY-PAIRED": "bbb0000002"}
    expected = {c: s.verdict for c, s in picked.items()}
    assert expected["TOY-SCORE"] == "contradicted" and expected["TOY-SHAPE"] == "partially reproduced"

    recs = report.latest_records(history_dir)
    md = report.markdown(recs)
    readme = {cid: _first_verdict(line.split("|")[3]) for line in md.splitlines()
              for cid in expected if line.startswith(f"| [{cid}][] ")}
    page = report.html_page(recs, history_dir, histories={})
    cards = {cid: re.search(rf'<article class="card" id="{cid}">.*?<span class="badge [^"]*">([^<]*)</span>', page,
                            re.S).group(1) for cid in expected}
    listed = CliRunner().invoke(app, ["list", "--results", str(history_dir)], catch_exceptions=False)
    assert listed.exit_code == 0, listed.output
    in_list = {c: _first_verdict(t) for c, t in _table_cells(listed.output, 4).items() if c in expected}
    quick = CliRunner().invoke(app, ["run", "toy", "-p", "quick", "--results", str(history_dir)],
                               catch_exceptions=False)
    assert quick.exit_code == 0, quick.output
    column = {c: _first_verdict(t) for c, t in _table_cells(quick.output, 4).items() if c in expected}
    assert readme == cards == in_list == column == expected, (readme, cards, in_list, column)
    assert "Measured time of the full profile, per suite: toy: 2 records, no single measured time." in md
    # each says where the verdict comes from and how it stands
    assert "re-judged)" in next(line for line in md.splitlines() if line.startswith("| [TOY-SHAPE][] "))
    assert "Re-judged, not re-run: values measured at commit bbb0000002" in report.results_markdown(recs)
    assert "bbb0000002" in _table_cells(listed.output, 4)["TOY-SHAPE"] and "re-judged" in _table_cells(listed.output, 4)["TOY-SHAPE"]
    assert "ccc0000003" in _table_cells(quick.output, 4)["TOY-SCORE"]


def test_a_verdict_whose_code_or_parameters_changed_is_stale_and_a_full_run_renews_it(workspace, monkeypatch):
    s = suites.load(workspace / "suites" / "toy.yaml")
    results = workspace / "results"
    runner.run_suite(s, list(s.claims), profile="full", env=dict(ENV, commit="aaa0000001"), results_dir=results)
    assert not any(x.stale for x in selection.select(results).values())
    (times,) = selection.measured_times(selection.select(results))
    assert times["whole"] and times["cpu_seconds"] is not None and times["records"][0][1] == "aaa0000001"
    assert re.search(r"per suite: toy \d+ s of units, \d+ s CPU \(commit aaa0000001\)",
                     report.markdown(report.latest_records(results)))

    real = runner.code_hash
    monkeypatch.setattr(runner, "code_hash", lambda e: "edited" if e == "fake_measure" else real(e))
    picked = selection.select(results)
    assert all("code of run" in " ".join(x.stale) for x in picked.values())
    row = next(r for r in report.claim_rows(report.latest_records(results)) if r["id"] == "TOY-SCORE")
    assert row["stale"].startswith("stale: code of run score changed since the record")

    monkeypatch.setattr(runner, "code_hash", real)
    write_suite(workspace, SUITE.replace("params: {base: 0.55, tag: score}", "params: {base: 0.56, tag: score}"))
    picked = selection.select(results)
    assert picked["TOY-SCORE"].stale == ["parameters of run score changed since the record"]
    assert not picked["TOY-SHAPE"].stale

    # `repro run -p full` at the next commit runs it again: its verdict speaks for the suite again
    s2 = suites.load(workspace / "suites" / "toy.yaml")
    runner.run_suite(s2, [s2.claim("TOY-SCORE")], profile="full", env=dict(ENV, commit="bbb0000002"),
                     results_dir=results)
    picked = selection.select(results)
    assert picked["TOY-SCORE"].commit == "bbb0000002" and not picked["TOY-SCORE"].stale


def test_every_record_stores_each_claims_design_and_its_code_by_file(workspace):
    from repro import design

    s = suites.load(workspace / "suites" / "toy.yaml")
    path = runner.run_suite(s, list(s.claims), profile="full", env=dict(ENV, commit="aaa0000001"),
                            results_dir=workspace / "results")
    rec = json.loads(path.read_text())
    e = rec["claims"]["TOY-SCORE"]["design"]
    keys = {r.id: runner.run_key(s, r, "full") for r in s.runs}
    assert e == design.of(s, s.claim("TOY-SCORE"), "full", keys)
    assert e["runs"] == {"score": keys["score"]}
    assert "tests.conftest" in rec["runs"]["score"]["code_files"] and "repro.registry" in rec["runs"]["score"]["code_files"]
    # another line is another design, with the same runs
    other = suites.load(write_suite(workspace, SUITE.replace("rule: {at_least: 0.5}", "criterion: {rule: {at_least: 0.6}, reason: ours}")))
    assert design.of(other, other.claim("TOY-SCORE"), "full", keys)["hash"] != e["hash"]
