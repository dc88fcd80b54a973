"""The generated report: Markdown tables, a self-contained HTML page that a browser renders, and the
regression gate `repro check`."""
import json
import re
import shutil
import subprocess

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
    # the overview figure and TOY-SCORE's key figure; its other seeds' copies of the same plot stay on disk
    assert page.count("data:image/png;base64,") == 2
    assert 'class="forest"' in page and "curve.png (seed 0; the first plot of its runs)" in page
    assert "every seed's are in <code>results/testbox/toy-full-abc1234567/score/</code>" in page
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


RULES_SUITE = """\
suite: rules
version: 2
title: every kind of rule
section: "9.1 规则; 9.2 形状"
profiles:
  smoke: {seeds: 1}
  quick: {seeds: 2}
  full: {seeds: 3}
runs:
  - id: m
    experiment: fake_measure
    version: 1
    params: {base: 0.5, tag: score}
  - id: shape
    experiment: fake_measure
    version: 1
    params: {tag: shape}
claims:
  - id: RULE-LEAST
    section: 至少
    kind: E
    source: "分数至少0.45"
    claim: the score is at least 0.45
    version: 1
    runs: [m]
    metrics:
      score: {claimed: 0.45, rule: {at_least: 0.45}}
  - id: RULE-MOST
    section: 至多
    kind: E
    source: "分数至多0.3"
    claim: the score is at most 0.3
    version: 1
    runs: [m]
    metrics:
      score: {claimed: 0.3, rule: {at_most: 0.3}}
  - id: RULE-NEAR
    section: 约
    kind: E
    source: "分数约为0.9"
    claim: the score is about 0.9
    version: 1
    runs: [m]
    metrics:
      score:
        claimed: 0.9
        criterion: {rule: {approx: 0.9, tol: 0.05}, reason: "±0.05: the chapter's one digit"}
  - id: RULE-BAND
    section: 区间
    kind: E
    source: "分数很高"
    claim: the score is high
    version: 1
    runs: [m]
    metrics:
      score:
        claimed: high
        criterion: {rule: {between: [0.7, 0.9]}, reason: "what 'high' means here"}
      baseline:
        criterion: {rule: {approx: 0.41, tol: 0.1}, reason: "around the baseline's usual level"}
  - id: RULE-PAIRED
    section: 比较
    kind: E
    source: "分数高于基线，基线也高于分数"
    claim: the score beats the baseline and the baseline beats the score
    version: 1
    runs: [m]
    metrics:
      score: {rule: {paired: {than: baseline, better: higher}}}
      baseline: {rule: {paired: {than: score, better: higher}}}
  - id: RULE-SHAPE
    chapter: "9.2"
    section: 形状
    kind: A
    source: "输出28×28×7"
    claim: the output is [28, 28, 7]
    version: 1
    runs: [shape]
    metrics:
      shape: {claimed: [28, 28, 7], rule: {equal: [28, 28, 7]}}
"""


@pytest.fixture
def rules_record(workspace):
    s = suites.load(write_suite(workspace, RULES_SUITE, name="rules"))
    return runner.run_suite(s, list(s.claims), profile="full", env=dict(ENV), results_dir=workspace / "results")


def _rows(workspace):
    return report.claim_rows(report.latest_records(workspace / "results"))


def test_overview_puts_every_judged_part_on_the_claims_side_of_0_exactly_when_it_passes(workspace, rules_record):
    items = report.overview_items(_rows(workspace), {"9.1": "9.1 规则"})
    assert items[0] == {"head": "9.1 规则"} and {"head": "9.2"} in items
    parts = {(p["claim"], p["metric"]): p for p in items if "head" not in p}
    assert set(parts) == {("RULE-LEAST", "score"), ("RULE-MOST", "score"), ("RULE-NEAR", "score"),
                          ("RULE-BAND", "score"), ("RULE-BAND", "baseline"), ("RULE-PAIRED", "score"),
                          ("RULE-PAIRED", "baseline"), ("RULE-SHAPE", "shape")}
    for key, p in parts.items():
        assert p["status"] in ("pass", "fail"), key
        if p["di"]:                      # the deciding interval, scaled: wholly right of 0 <=> pass
            assert (p["di"][0] >= 0) == (p["status"] == "pass") and (p["di"][1] < 0) == (p["status"] == "fail"), key
            assert p["ci"][0] <= p["x"] <= p["ci"][1] and p["di"][0] <= p["ci"][0], key
        else:
            assert p["exact"], key
        assert (p["x"] is not None and p["x"] >= 0) == (p["status"] == "pass"), key
    score = [0.50, 0.51, 0.52]           # the fake experiment: base + 0.01 * seed
    mean = sum(score) / 3
    assert parts["RULE-MOST", "score"]["x"] == pytest.approx((0.3 - mean) / 0.3)       # in units of the line
    assert parts["RULE-LEAST", "score"]["x"] == pytest.approx((mean - 0.45) / 0.45)
    assert parts["RULE-NEAR", "score"]["x"] == pytest.approx((0.05 - abs(mean - 0.9)) / 0.9)
    baseline = sum(0.4 + 0.005 * s for s in range(3)) / 3
    # a paired part: the advantage in units of the other arm's mean
    assert parts["RULE-PAIRED", "score"]["x"] == pytest.approx((mean - baseline) / baseline)
    assert parts["RULE-PAIRED", "baseline"]["x"] == pytest.approx((baseline - mean) / mean)
    shape = parts["RULE-SHAPE", "shape"]
    assert shape["exact"] and shape["x"] is None and shape["offscale"] == -1 and shape["value"] == "≠"
    assert report.overview_png(items)[:8] == b"\x89PNG\r\n\x1a\n"


def test_errata_say_what_was_measured_with_a_sentence_generated_from_the_record(workspace, rules_record):
    errata = {e["id"]: e for e in report.errata_items(_rows(workspace))}
    assert set(errata) == {"RULE-MOST", "RULE-NEAR", "RULE-BAND", "RULE-PAIRED", "RULE-SHAPE"}
    # a stated value is replaced by the measured one, written the same way
    assert errata["RULE-SHAPE"]["sentence"] == "the output is [28, 28, 6]."
    assert errata["RULE-NEAR"]["sentence"] == "the score is about 0.51 (95% CI 0.4852 to 0.5348)."
    assert errata["RULE-NEAR"]["how"] == "generated: the claim with the measured values"
    # a bound is not a stated value ("at most 0.51" would be no correction): the part is said in words
    assert errata["RULE-MOST"]["sentence"] == ("Not as the chapter has it: in our measurements, score was 0.51 "
                                              "(95% CI 0.4852 to 0.5348, 3 seeds), above 0.3.")
    assert errata["RULE-BAND"]["sentence"].endswith("outside [0.7, 0.9] (the chapter: “high”).")
    assert "baseline" not in errata["RULE-BAND"]["sentence"]          # it passes
    assert errata["RULE-PAIRED"]["sentence"] == ("Only in part: in our measurements, baseline was not higher than "
                                                "score but lower, by 0.105 (97.5% CI 0.08709 to 0.1229, 3 seeds).")   # the fail's interval: 2 parts
    assert [n for n, _, _ in errata["RULE-PAIRED"]["failing"]] == ["baseline"]


def test_a_suites_own_erratum_replaces_the_generated_sentence(workspace, rules_record):
    rec = json.loads(rules_record.read_text())
    rec["claims"]["RULE-SHAPE"]["erratum"] = "The output is 28×28×6: six kernels, not seven."
    rules_record.write_text(json.dumps(rec))
    errata = {e["id"]: e for e in report.errata_items(_rows(workspace))}
    assert errata["RULE-SHAPE"]["sentence"] == "The output is 28×28×6: six kernels, not seven."
    assert errata["RULE-SHAPE"]["how"] == "the suite's correction"
    page = report.html_page(report.latest_records(workspace / "results"), workspace / "results")
    report.validate_html(page)
    assert "six kernels, not seven." in page


def test_page_has_the_overview_the_errata_and_a_card_per_claim(workspace, full_record, rules_record):
    recs = report.latest_records(workspace / "results")
    page = report.html_page(recs, workspace / "results")
    report.validate_html(page)
    order = [page.index(f'id="{x}"') for x in ("overview", "errata", "claims", "table", "environment")]
    assert order == sorted(order)
    assert page.count('<article class="card"') == 9 and page.count('class="erratum"') == 5
    card = page[page.index('<article class="card" id="RULE-LEAST"'):]
    card = card[:card.index("</article>")]
    # key figure first, then the deciding part, the chapter's sentence, the metric table
    assert card.index("<img") < card.index("Deciding part:") < card.index("分数至少0.45") < card.index("<table>")
    errata = page[page.index('id="errata"'):page.index('id="claims"')]
    assert "<strong>The chapter says:</strong> <span lang=\"zh\">“输出28×28×7”</span>" in errata
    assert "<code>shape</code>: [28, 28, 6], against = [28, 28, 7]" in errata
    assert "A lecturer could say:" in errata and "the output is [28, 28, 6]." in errata
    assert "Not in the figure" not in page                            # every claim has a judged part


def test_plots_are_embedded_at_screen_resolution(tmp_path):
    from repro import plots
    fig, ax = plots.figure(16, 8)                                      # 1760 px wide at the helper's 110 dpi
    for k in range(8):
        ax.plot(range(100), [((i * (k + 3)) % 17) / 17 for i in range(100)])
    big = plots.png(fig)
    small, w, h = report.screen_png(big)
    assert w == report.SCREEN_WIDTH and h == round(880 * w / 1760) and len(small) < len(big) / 2
    from PIL import Image
    import io
    assert Image.open(io.BytesIO(small)).size == (w, h)
    assert report.screen_png(b"not a png") == (b"not a png", 0, 0)


def test_chinese_text_in_the_overview_figure_has_its_glyphs():
    from repro import fonts
    if fonts.use_cjk() is None:
        pytest.skip("no CJK font installed (Debian: apt-get install fonts-noto-cjk)")
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report.overview_png([{"head": "7.2 卷积神经网络"},
                             {"claim": "X", "metric": "m", "verdict": "reproduced", "status": "pass", "exact": True,
                              "x": 0.5, "ci": None, "di": None, "offscale": 0, "value": ""}])
    assert not [w for w in caught if "missing from" in str(w.message)], [str(w.message) for w in caught]


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
def test_html_renders_in_headless_chromium(workspace, full_record, rules_record, tmp_path):
    report.write(workspace / "results", None)
    page = workspace / "results" / "report.html"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    assert "TOY-PAIRED" in text and "reproduced" in text
    # the browser's own DOM: the overview figure, the cards and the errata came through the parser
    assert re.search(r'<section id="overview">.*?<img class="forest"[^>]*src="data:image/png;base64,', text, re.S)
    assert text.count('<article class="card"') == 9
    assert re.search(r'<div class="erratum" id="erratum-RULE-SHAPE">.*?the output is \[28, 28, 6\]\.', text, re.S)
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 30_000
    from PIL import Image
    with Image.open(shot) as im:                  # the figure's colours are on screen, not a blank page
        colours = im.convert("RGB").getcolors(maxcolors=1 << 16) or []
    assert len(colours) > 200


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


def test_a_claim_missing_from_the_complete_record_comes_from_a_newer_partial_one(workspace):
    from tests.conftest import SUITE

    results = workspace / "results"
    s = suites.load(workspace / "suites" / "toy.yaml")
    runner.run_suite(s, list(s.claims), profile="full", env=dict(ENV), results_dir=results)
    newer = SUITE.replace("  - id: TOY-PAIRED\n", """  - id: TOY-NEW
    section: 新
    kind: A
    source: "新的"
    claim: a claim added later
    version: 1
    runs: [shape]
    metrics:
      shape: {claimed: [28, 28, 6], rule: {equal: [28, 28, 6]}}
  - id: TOY-PAIRED
""")
    s2 = suites.load(write_suite(workspace, newer))
    runner.run_suite(s2, [s2.claim("TOY-NEW")], profile="full", env=dict(ENV, commit="def7654321"),
                     results_dir=results)
    recs = report.latest_records(results)
    assert [r["commit"] for r in recs] == ["abc1234567", "def7654321"]
    assert list(recs[1]["claims"]) == ["TOY-NEW"]                  # only what the complete record lacks
    rows = {r["id"]: r for r in report.claim_rows(recs)}
    assert rows["TOY-NEW"]["verdict"] == "reproduced" and "TOY-SCORE" in rows
    assert "def7654321" in report.markdown(recs)


def test_a_claim_redone_on_its_own_replaces_its_older_result(workspace):
    results = workspace / "results"
    s = suites.load(workspace / "suites" / "toy.yaml")
    runner.run_suite(s, list(s.claims), profile="full", env=dict(ENV), results_dir=results)
    runner.run_suite(s, [s.claim("TOY-SCORE")], profile="full", env=dict(ENV, commit="def7654321"),
                     results_dir=results)
    recs = report.latest_records(results)
    assert "TOY-SCORE" not in recs[0]["claims"] and list(recs[1]["claims"]) == ["TOY-SCORE"]
    assert recs[1]["commit"] == "def7654321" and "TOY-SHAPE" in recs[0]["claims"]


def test_a_claim_changed_since_its_record_is_marked_stale_and_an_unrun_claim_is_listed(workspace):
    """A verdict recorded at an older claim version no longer speaks for the suite's claim: the table
    says so; a claim of the suites that no full record holds is named with the command that runs it."""
    from tests.conftest import SUITE

    results = workspace / "results"
    s = suites.load(workspace / "suites" / "toy.yaml")
    runner.run_suite(s, list(s.claims), profile="full", env=dict(ENV), results_dir=results)
    recs = report.latest_records(results)
    assert not any(r["stale"] for r in report.claim_rows(recs))
    assert "stale" not in report.markdown(recs) and "Not in any full-profile record" not in report.markdown(recs)
    changed = SUITE.replace("    claim: the score is at least 0.5 and beats the baseline\n    version: 1\n",
                            "    claim: the score is at least 0.5 and beats the baseline\n    version: 2\n")
    assert changed != SUITE
    changed = changed.replace("  - id: TOY-PAIRED\n", """  - id: TOY-LATER
    section: 新
    kind: A
    source: "新的"
    claim: a claim not yet run
    version: 1
    runs: [shape]
    metrics:
      shape: {claimed: [28, 28, 6], rule: {equal: [28, 28, 6]}}
  - id: TOY-PAIRED
""")
    write_suite(workspace, changed)
    rows = {r["id"]: r for r in report.claim_rows(recs)}
    assert "version 1" in rows["TOY-SCORE"]["stale"] and "version 2" in rows["TOY-SCORE"]["stale"]
    assert not rows["TOY-SHAPE"]["stale"]
    md = report.markdown(recs)
    assert "(1 of them stale" in md and "TOY-LATER (`repro run TOY-LATER -p full`)" in md
    score_row = next(line for line in md.splitlines() if line.startswith("| TOY-SCORE |"))
    assert "stale: recorded at claim version 1" in score_row
