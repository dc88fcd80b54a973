"""The generated report: Markdown tables, a self-contained HTML page that a browser renders, and the
regression gate `repro check`."""
import json
import re
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


def test_readme_block_answers_above_a_compact_table_and_results_readme_has_every_part(workspace, full_record):
    readme = workspace / "README.md"
    readme.write_text(f"# x\n\n{report.START}\nold table\n{report.END}\n\nafter\n")
    written = report.write(workspace / "results", readme)
    assert {p.name for p in written} == {"README.md", "ERRATA.md", "report.html"}
    text = readme.read_text()
    assert "old table" not in text and text.endswith("after\n")
    block = text[text.index(report.START):text.index(report.END)]
    rec = json.loads(full_record.read_text())
    assert f"**{report.counts_line(report.claim_rows([dict(rec, _path='x')]))}.**" in block
    header = "| claim | in a few words | verdict | chapter | ours [interval that decided] | seeds | evidence |"
    # the answer (what holds, where the chapter is wrong, what is open) comes before the table
    assert block.index("**Holds (3).**") < block.index("**The chapter is wrong here (0):**") \
        < block.index("**Open (0):**") < block.index(header)
    rows = [ln for ln in block.splitlines() if ln.startswith("| [")]
    assert len(rows) == 3 and all(len(ln) <= report.ROW_LIMIT for ln in rows)
    score = next(ln for ln in rows if ln.startswith("| [TOY-SCORE][] |"))
    m = rec["claims"]["TOY-SCORE"]["metrics"]["score"]
    lo, hi = m["decision_interval"]
    # the chapter's number against ours with the interval that decided; seeds; the kind of evidence
    assert f"| reproduced | 0.5 | {m['mean']:.3g} [{lo:.3g}, {hi:.3g}] | 3 | empirical |" in score, score
    shape = next(ln for ln in rows if ln.startswith("| [TOY-SHAPE][] |"))
    assert "| [28, 28, 6] | [28, 28, 6] | 1 | exact (architecture) |" in shape
    assert "[TOY-SCORE]: results/report.html#TOY-SCORE" in block            # every row links to its card
    # the per-part detail moved to results/README.md
    summary = (workspace / "results" / "README.md").read_text()
    assert "## 0.0 测试" in summary and "### TOY-SCORE: reproduced" in summary
    assert f"| score | 0.5 | ≥ 0.5 | {record.measured_text(m)} | pass |" in summary
    assert "| baseline |" not in summary                                    # reported only: in the report
    assert "[Card](report.html#TOY-SCORE)" in summary


def test_the_committed_readme_answers_on_one_screen_above_rows_of_at_most_200_characters():
    """README.md as committed: its generated block leads with the answer and keeps every row short."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = text[text.index(report.START):text.index(report.END)]
    table = block.index("| claim | in a few words | verdict |")
    for head in ("**Holds (", "**The chapter is wrong here (", "**Open ("):
        assert block.index(head) < table, head
    rows = [ln for ln in block[table:].splitlines() if ln.startswith("|")]
    assert len(rows) > 2
    too_long = [ln[:60] for ln in rows if len(ln) > report.ROW_LIMIT]
    assert not too_long, too_long


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
    assert "<strong>Why:</strong> every judged part passes (shape)" in page
    assert "<strong>Seeds:</strong> 3: score: 3 seeds (the profile&#39;s start)" in page   # the count and why
    # the card's history: every full record of the claim, oldest first
    card = page[page.index('<article class="card" id="TOY-SCORE"'):]
    assert re.search(r'<ol class="history" id="history-TOY-SCORE">\s*<li>v1, run at <code>abc1234567</code>: '
                     r'<span class="v-reproduced">reproduced</span> <em>\(this page\'s record\)</em>', card)


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
    md = report.results_markdown(recs)
    row = next(line for line in md.splitlines() if line.startswith("| score |"))
    assert "| score | about one half |" in row                      # claimed: the chapter's words only
    assert "| criterion (ours): ≈ 0.5 ± 0.1; literature: 0.49 (Someone et al. 2020, Table 3; 1000 test items) |" in row
    assert row.endswith("| pass |") and "### CRIT-NEAR: reproduced" in md
    assert "| [CRIT-NEAR][] | the score is about one half | reproduced | about one half |" in report.markdown(recs)
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
    md = report.results_markdown(recs)
    assert "re-judged under suite format 2 at commit abc1234567 from the stored values of the schema-1 record " \
           "`toy-full-0000000009.json`" in md
    assert "Not in this table yet (no stored values to re-judge): TOY-NEW (no stored values" in md
    assert "Not in this table yet (no stored values to re-judge): TOY-NEW" in report.markdown(recs)
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
    erratum:
      line: 2
      quote: "分数约为0.9"
      zh: "分数约为{=score}"
      en: "The score is about {=score} {=score|iv}."
      measured: '{=score} over {=score|n} seeds, $s \\ll 0.9$'
    metrics:
      score:
        claimed: 0.9
        criterion: {rule: {approx: 0.9, tol: 0.05}, reason: "±0.05: the chapter's one digit"}
  - id: RULE-BAND
    section: 区间
    kind: E
    source: '分数很高：$s \\geq 0.7$'
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
    short: an output of 28×28×7
    key: {metric: shape, chapter: "28×28×7"}
    version: 1
    runs: [shape]
    erratum:
      - line: 7
        quote: "输出28×28×7"
        zh: "输出{=shape}：$6$个卷积核"
        en: "The output is {=shape}: $6$ kernels, not $7$."
        measured: "Keras gives {=shape}."
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


def test_errata_are_the_suites_with_the_records_numbers_and_a_missing_one_is_named(workspace, rules_record):
    rows = {r["id"]: r for r in _rows(workspace)}
    errata = {r["id"]: r for r in report.errata_items(list(rows.values()))}
    # contradicted in whole or in part: an erratum each (RULE-LEAST passes)
    assert set(errata) == {"RULE-MOST", "RULE-NEAR", "RULE-BAND", "RULE-PAIRED", "RULE-SHAPE"}
    (near,) = errata["RULE-NEAR"]["corrections"]
    m = rows["RULE-NEAR"]["entry"]["metrics"]["score"]
    lo, hi = m["decision_interval"]
    assert near["zh"] == f"分数约为{m['mean']:.3g}" and near["line"] == 2 and near["quote"] == "分数约为0.9"
    assert near["en"] == f"The score is about {m['mean']:.3g} [{lo:.3g}, {hi:.3g}]."
    assert near["measured"] == f"{m['mean']:.3g} over 3 seeds, $s \\ll 0.9$"
    (shape,) = errata["RULE-SHAPE"]["corrections"]
    assert shape["en"] == "The output is [28, 28, 6]: $6$ kernels, not $7$."
    # no sentence is generated from metric names: a claim without the suite's erratum says it lacks one
    assert errata["RULE-MOST"]["corrections"] == [] and errata["RULE-MOST"]["misses"] == ["score"]
    errata_md = report.errata_markdown(report.latest_records(workspace / "results"))
    assert "> 更正：输出[28, 28, 6]：$6$个卷积核" in errata_md and "Line 7: 「输出28×28×7」" in errata_md
    assert ("## <a id=\"RULE-MOST\"></a>RULE-MOST: contradicted\n\nNo correction written yet: add `erratum:` to "
            "this claim in `suites/rules.yaml`. Failing: score.") in errata_md
    readme = report.markdown(report.latest_records(workspace / "results"))
    assert "- [RULE-SHAPE][] (contradicted; line 7): The output is [28, 28, 6]: $6$ kernels, not $7$." in readme
    assert "- [RULE-MOST][] (contradicted): no correction written yet (`erratum:` in `suites/rules.yaml`)." in readme


def test_a_decisive_miss_under_a_gate_is_named_in_the_row_the_answer_and_the_errata(workspace, rules_record):
    """An unmet precondition makes a claim inconclusive, but a judged part that failed decisively is
    still named: 'inconclusive; a part fails', in the errata, and not among the open claims."""
    from repro import verdict as verdicts

    rec = json.loads(rules_record.read_text())
    e = rec["claims"]["RULE-NEAR"]
    assert [f["part"] for f in e["decisive_fails"]] == ["score"]          # the record names its fails
    e["verdict"] = "inconclusive"
    e["deciding"] = verdicts.name_fails("inconclusive", "precondition x did not pass", e["decisive_fails"])
    rules_record.write_text(json.dumps(rec))
    rows = {r["id"]: r for r in _rows(workspace)}
    near = rows["RULE-NEAR"]
    assert near["verdict_text"] == "inconclusive; a part fails" and near["needs_erratum"]
    assert near["reason"] == e["deciding"] and near["reason"].endswith("not decided because precondition x did not pass")
    assert "score" in near["reason"]
    answer = report.answer(list(rows.values()))
    assert near in answer["wrong"] and near not in answer["open"]
    assert "| [RULE-NEAR][] | the score is about 0.9 | inconclusive; a part fails |" in \
        report.markdown(report.latest_records(workspace / "results"))
    # a record written before the fails were named: the row names them itself
    del e["decisive_fails"]
    e["deciding"] = "precondition x did not pass"
    rules_record.write_text(json.dumps(rec))
    near = {r["id"]: r for r in _rows(workspace)}["RULE-NEAR"]
    assert near["reason"] == "precondition x did not pass; but score fails decisively" and near["needs_erratum"]


def test_page_leads_with_the_answer_then_figure_errata_cards_table(workspace, full_record, rules_record):
    recs = report.latest_records(workspace / "results")
    page = report.html_page(recs, workspace / "results")
    report.validate_html(page)
    order = [page.index(f'id="{x}"') for x in ("answer", "overview", "errata", "claims", "table", "environment")]
    assert order == sorted(order)
    assert page.count('<article class="card"') == 9 and page.count('class="erratum"') == 5
    card = page[page.index('<article class="card" id="RULE-LEAST"'):]
    card = card[:card.index("</article>")]
    # a card leads with the verdict, the one-line reason, the key figure and the history; then the parts
    assert card.index('class="badge v-reproduced"') < card.index("<strong>Why:</strong>") < card.index("<img") \
        < card.index('<ol class="history"') < card.index("分数至少0.45") < card.index("<table>")
    errata = page[page.index('id="errata"'):page.index('id="claims"')]
    assert "<strong>The chapter, line 7:</strong> <span lang=\"zh\">“输出28×28×7”</span>" in errata
    assert "<strong>Measured:</strong> Keras gives [28, 28, 6].</p>" in errata
    assert re.search(r'<div class="fix"><p lang="zh">输出\[28, 28, 6\]：<math[^>]*>.*?</math>个卷积核</p>'
                     r'<p>The output is \[28, 28, 6\]: <math', errata)
    assert 'No correction written yet: add <code>erratum:</code> to this claim in <code>suites/rules.yaml</code>' in errata
    answer = page[page.index('id="answer"'):page.index('id="overview"')]
    assert '<a href="#RULE-LEAST">the score is at least 0.45</a>' in answer and "an output of 28×28×7" not in answer
    assert "Not in the figure" not in page                            # every claim has a judged part


def test_formulas_become_mathml_and_no_dollar_sign_is_left_in_the_pages_text(workspace, full_record, rules_record):
    from html.parser import HTMLParser

    page = report.html_page(report.latest_records(workspace / "results"), workspace / "results")
    band = page[page.index('<article class="card" id="RULE-BAND"'):]
    assert re.search(r"分数很高：<math [^>]*display=\"inline\"[^>]*>.*?<mo>&#x02265;</mo>", band[:band.index("</article>")])

    class Text(HTMLParser):
        def __init__(self):
            super().__init__()
            self.chunks = []

        def handle_data(self, data):
            self.chunks.append(data)

    t = Text()
    t.feed(page)
    text = "".join(t.chunks)
    assert not re.search(r"\$[^$\s][^$]*\$", text), re.search(r".{40}\$[^$]*\$.{40}", text)


def test_a_formula_latex2mathml_cannot_read_is_shown_as_its_source_without_dollars(monkeypatch):
    from repro import render

    def boom(tex, display="inline"):
        raise ValueError("cannot parse")

    monkeypatch.setattr("latex2mathml.converter.convert", boom)
    render.mathml.cache_clear()
    try:
        html = render.environment("html").from_string(
            '{% from "_macros.html.j2" import tex %}{{ tex(t) }}').render(t="a $x^{2}$ b")
    finally:
        render.mathml.cache_clear()
    assert html == 'a <code class="tex">x^{2}</code> b'


def test_no_template_leftovers_in_any_page(workspace, full_record, rules_record):
    report.write(workspace / "results", None)
    texts = [(workspace / "results" / n).read_text() for n in ("README.md", "ERRATA.md", "report.html")]
    texts.append(report.markdown(report.latest_records(workspace / "results")))
    for text in texts:
        text = re.sub(r"<style>.*?</style>", "", text, flags=re.S)      # CSS has its own braces
        for leftover in ("{=", "{{", "{%", "%}", "erratum: .", "None", "Undefined"):
            at = text.find(leftover)
            assert at < 0, (leftover, text[max(0, at - 80):at + 80])


def test_report_py_selects_data_and_leaves_the_markup_to_the_templates():
    source = (Path(report.__file__)).read_text(encoding="utf-8")
    tags = re.findall(r"</?(?:html|head|body|div|span|p|a|img|table|tr|td|th|h[1-6]|ul|ol|li|section|article|"
                      r"figure|figcaption|code|strong|em|br|blockquote|details|summary|nav|style|pre)\b[^>]*>", source)
    assert not tags, tags[:5]
    from repro import render
    names = set(render.environment("html").list_templates())
    assert {"report.html.j2", "_card.html.j2", "compare.html.j2", "readme_block.md.j2", "results_readme.md.j2",
            "errata.md.j2"} <= names


def test_the_templates_are_package_data_of_a_built_wheel(tmp_path):
    """A normal install (a wheel) carries the templates; an editable one reads them in place."""
    import shutil
    import subprocess
    import sys
    import zipfile

    pytest.importorskip("setuptools")
    root = Path(__file__).resolve().parent.parent
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "cli.py"):
        shutil.copy(root / name, src / name)
    shutil.copytree(root / "repro", src / "repro", ignore=shutil.ignore_patterns("__pycache__"))
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("repro-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"repro/templates/{p.name}" for p in (root / "repro" / "templates").iterdir() if p.is_file()}
    assert shipped and shipped <= inside, shipped - inside


def test_the_suites_errata_quote_the_chapter_at_their_line():
    """Every shipped erratum quotes its chapter line as it is (where the chapter is found beside the
    repository); the loader checks that its text names only metrics of its claim."""
    chapter = next((p for p in (Path(__file__).resolve().parents[n] / "shared" / "seed" / report.CHAPTER_FILE
                                for n in (1, 2, 3)) if p.exists()), None)
    if chapter is None:
        pytest.skip(f"{report.CHAPTER_FILE} is not beside this checkout")
    lines = chapter.read_text(encoding="utf-8").splitlines()
    checked = 0
    for s in suites.load_all(suites.SUITES_DIR, check=False):
        for c in s.claims:
            for item in c.erratum:
                assert 1 <= item["line"] <= len(lines), (c.id, item["line"])
                assert item["quote"] in lines[item["line"] - 1], (c.id, item["line"], lines[item["line"] - 1])
                assert item["zh"] != item["quote"] and item["en"], c.id
                checked += 1
    assert checked >= 13


def test_every_claim_the_committed_records_get_wrong_has_the_suites_erratum():
    """The committed full records: every claim contradicted in whole or in part, or inconclusive with a
    part that failed decisively, has a correction in its suite (none is generated)."""
    recs = report.latest_records(record.RESULTS_DIR)
    if not recs:
        pytest.skip("no committed full-profile record")
    claims = report.suite_claims()
    rows = report.claim_rows(recs, report.current_claims(claims), claims)
    wanting = [r["id"] for r in report.errata_items(rows) if not r["corrections"]]
    assert not wanting, f"write an erratum: for {wanting}"


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


def render_tex(text: str) -> str:
    from repro import render
    return render.environment("html").from_string('{% from "_macros.html.j2" import tex %}{{ tex(t) }}').render(t=text)


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
    assert re.search(r'<div class="erratum" id="erratum-RULE-SHAPE">.*?The output is \[28, 28, 6\]: ', text, re.S)
    # the formulas reached the browser as MathML elements, and no $...$ is left in the text it shows
    assert re.search(r'<div class="erratum" id="erratum-RULE-SHAPE">.*?<math [^>]*>.*?<mn>6</mn>', text, re.S)
    shown = re.sub(r"<[^>]+>", "", re.sub(r'src="data:[^"]*"', "", text))
    assert not re.search(r"\$[^$\s][^$]*\$", shown)
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 30_000
    from PIL import Image
    with Image.open(shot) as im:                  # the figure's colours are on screen, not a blank page
        colours = im.convert("RGB").getcolors(maxcolors=1 << 16) or []
    assert len(colours) > 200
    # a formula is laid out as one: a page with the erratum's MathML and one with the same formula as
    # plain text render differently in the browser
    fig = tmp_path / "formula"
    fig.mkdir()
    for name, body in (("math", render_tex("$\\frac{1}{2}\\sum_{i=1}^{n} x_i^{2}$")),
                       ("plain", "\\frac{1}{2}\\sum_{i=1}^{n} x_i^{2}")):
        (fig / f"{name}.html").write_text(f"<!DOCTYPE html><html><body style='font-size:40px'>{body}</body></html>")
        subprocess.run([CHROMIUM, *flags, f"--screenshot={fig / name}.png", "--window-size=600,200",
                        (fig / f"{name}.html").as_uri()], capture_output=True, timeout=120)
    with Image.open(fig / "math.png") as a, Image.open(fig / "plain.png") as b:
        ink = [sum(1 for px in im.convert("L").getdata() if px < 128) for im in (a, b)]
        assert a.convert("L").tobytes() != b.convert("L").tobytes() and min(ink) > 50, ink


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
    assert "def7654321" in report.results_markdown(recs)


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
    score_row = next(line for line in md.splitlines() if line.startswith("| [TOY-SCORE][] |"))
    assert "| reproduced (stale) |" in score_row
    assert "### TOY-SCORE: reproduced\n\nthe score is at least 0.5 and beats the baseline. Evidence: empirical; " \
           "seeds: 3; " in report.results_markdown(recs)
    assert "**Stale: recorded at claim version 1, the suite now has version 2" in report.results_markdown(recs)


def _entry(verdict="reproduced", kind="E", **extra):
    e = {"id": "X", "kind": kind, "verdict": verdict, "deciding": "d", "run_ids": ["r"], "n_seeds": 4,
         "seconds": 400.0, "metric_specs": {}, "metrics": {}}
    e.update(extra)
    return e


@pytest.mark.parametrize("entry,runs,kind", [
    (_entry(kind="A"), {"r": {"deterministic": True}}, "exact (architecture)"),
    (_entry(kind="F+E"), {"r": {"deterministic": True}}, "exact (formula)"),
    (_entry(), {"r": {"deterministic": False, "results": {"0": {"convergence": {"m": {"converged": True}}}}}},
     "empirical, converged"),
    (_entry(), {"r": {"deterministic": False, "results": {"0": {}}}}, "empirical"),
    (_entry(about_budget=True), {"r": {"deterministic": False, "results": {}}}, "at equal budget"),
    (_entry(verdict="inconclusive"), {"r": {"deterministic": False, "results": {}}}, "open"),
    (_entry(verdict="not checkable here", kind="C"), {"r": {"deterministic": True}}, "open (not checkable here)"),
])
def test_each_row_says_what_kind_of_evidence_it_is(entry, runs, kind):
    from repro import summary
    assert summary.evidence(entry, {"runs": runs}) == kind


def test_what_would_settle_an_open_claim_and_its_cost():
    from repro import summary
    spec = {"rule": {"at_least": 0.5}}
    # mean 0.52, deciding interval ±0.04 at 4 seeds: the half-width must shrink to 0.02, 4 × (0.04/0.02)² = 16
    m = {"status": "undecided", "mean": 0.52, "n": 4, "decision_interval": [0.48, 0.56]}
    e = _entry(verdict="inconclusive", metric_specs={"acc": spec}, metrics={"acc": m},
               unconverged=["r/model on 1 of 4 seeds (5000 steps; about 4x the budget (~20000 steps) would settle it)"])
    text = summary.settle(e, {"env": {"device": "CPU:0"}}, None)
    # the budget the convergence check asks for: 4 × 400 s; 12 more seeds at 100 s each
    assert text == ("about 4× the training budget (~27 min on CPU:0); acc: about 16 seeds, now 4 "
                    "(~20 min more on CPU:0)"), text
    on_line = dict(m, mean=0.5, decision_interval=[0.46, 0.54])
    assert "sits on the line" in summary.settle(dict(e, metrics={"acc": on_line}, unconverged=[]), None, None)
    near = dict(m, mean=0.501, decision_interval=[0.46, 0.542])
    assert "too close to the line" in summary.settle(dict(e, metrics={"acc": near}, unconverged=[]), None, None)


def test_what_would_settle_follows_the_convergence_state():
    """An unstable curve is not asked for a longer budget; a curve too short to read is asked for checks."""
    from repro import summary
    e = _entry(verdict="inconclusive", metric_specs={}, metrics={},
               unconverged=["lenet_paper/lenet1998 unstable on 1 of 5 seeds (20 epochs); gates lenet_paper.test_error"])
    text = summary.settle(e, None, None)
    assert "stable on every seed (read unstable: lenet_paper/lenet1998 on 1 of 5 seeds;" in text, text
    assert "longer training budget (" not in text and "× the training budget" not in text, text
    short = ["scale/retrieval unscaled d_k 256 too short to tell on 3 of 3 seeds (100 steps; needs at least 5 points "
             "on the curve (it has 2))"]
    assert summary.settle(dict(e, unconverged=short), None, None) == \
        "at least 5 checks on scale/retrieval unscaled d_k 256's curve (fewer now)"
    two = [u.replace("3 of 3", "2 of 3") for u in short] + [u.replace("unscaled d_k 256", "scaled d_k 1024") for u in short]
    assert summary.settle(dict(e, unconverged=two), None, None) == \
        "at least 5 checks on the curves of scale/retrieval unscaled d_k 256, scale/retrieval scaled d_k 1024 (fewer now)"
    flat = ["augment/augment still improving on 1 of 3 seeds (15 epochs; not slowing down over the last 6 points: "
            "no budget estimate)"]
    assert summary.settle(dict(e, unconverged=flat), None, None) == \
        "a longer training budget (the curves give no estimate)"


def test_what_would_settle_reads_the_convergence_models_not_their_sentences():
    """The Open line reads the gate's models (states, the parts held back, the budget factor, the points
    the rule needs); the same text as the version-2 records' sentences gave."""
    from repro import convergence as C
    from repro import summary
    runs = {"r": {"deterministic": False, "results": {
        "0": {"metrics": {"acc": 0.9}, "convergence": {"m": C.check([0.1 + 0.9 ** i for i in range(30)],
                                                                    budget="30 epochs")}},
        "1": {"metrics": {"acc": 0.9}, "convergence": {"m": C.check([0.5, 0.2, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05],
                                                                    budget="8 epochs")}}}},
            "s": {"deterministic": False, "results": {
        k: {"metrics": {"b": 1.0}, "convergence": {"curve": C.check([1.0, 0.5], budget="2 checks")}} for k in "01"}}}
    specs = {"acc": {"run": "r", "key": "acc", "rule": {"at_least": 0.5}},
             "b": {"run": "s", "key": "b", "rule": {"at_least": 0.5}}}
    entry = {"metric_specs": specs, "kind": "E", "run_ids": ["r", "s"]}
    gated = C.gate(entry, runs, ["0", "1"], {"acc": {"status": "pass"}, "b": {"status": "pass"}})
    m = gated["models"]["r/m"]
    assert m["gates"] and m["why"] == "gates acc" and "about" in m["estimate"]
    e = _entry(verdict="inconclusive", metric_specs=specs, metrics={}, seconds=100.0, n_seeds=2,
               convergence=gated["models"], unconverged=gated["unconverged"])
    text = summary.settle(e, None, None)
    assert text == summary.settle(dict(e, convergence={}), None, None), text     # models and sentences agree
    assert "stable on every seed" not in text
    factor = summary._FACTOR.search(m["estimate"]).group(1)
    assert f"about {float(factor):g}× the training budget" in text and "at least 5 checks on s/curve's curve" in text
    # a model holding back only a capability part asks for nothing: seeds decide it
    caps = {**specs, "acc": dict(specs["acc"], capability=True), "b": dict(specs["b"], capability=True)}
    assert summary.settle(dict(e, metric_specs=caps), None, None) == ""


def test_what_would_settle_an_existence_part_searches_its_exact_interval():
    """An in_seeds part (3 of 4 seeds collapsed, line: at least 20% of seeds) is sized by the exact interval,
    which is asymmetric; it once crashed the report (its line is a dict, not a number)."""
    from repro import stats, summary
    rule = {"in_seeds": {"where": {"equal": 1}, "min_share": 0.2}}
    m = {"status": "undecided", "mean": 0.75, "share": 0.75, "n": 4, "interval_level": 0.975,
         "decision_interval": list(stats.clopper_pearson(3, 4, 0.975))}
    e = _entry(verdict="inconclusive", metric_specs={"collapsed": {"rule": rule}}, metrics={"collapsed": m},
               unconverged=[])
    need = summary._seeds_needed(m, {"rule": rule})
    assert stats.clopper_pearson(round(0.75 * need), need, 0.975)[0] >= 0.2
    assert stats.clopper_pearson(round(0.75 * (need - 1)), need - 1, 0.975)[0] < 0.2 or need - 1 < 4
    assert f"collapsed: about {need} seeds, now 4" in summary.settle(e, None, None)
    assert summary._seeds_needed(m, {"rule": {"paired_within": {"than": "x", "margin": 1}}}) is None
    # a hopping G never settles: a line gating only this capability part does not ask for a stable training
    hopping = ["ring/modes unstable / still improving on 4 of 4 seeds (25000 G steps); gates collapsed"]
    caps = {"collapsed": {"rule": rule, "capability": True}}
    assert summary.settle(dict(e, unconverged=hopping, metric_specs=caps), None, None) == \
        summary.settle(dict(e, metric_specs=caps), None, None)
    assert "stable on every seed" in summary.settle(dict(e, unconverged=hopping), None, None)


def test_numbers_in_a_row_are_short():
    from repro.summary import num
    assert [num(x) for x in (1e12, 156, 4544.3, 60965224.0, 3.0592e-06, 0.010842, [3, 4, 23, 3], True)] == \
        ["10¹²", "156", "4540", "6.1×10⁷", "3.06×10⁻⁶", "0.0108", "[3, 4, 23, 3]", "true"]
