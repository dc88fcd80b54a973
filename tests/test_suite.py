import re
from pathlib import Path

import pytest

from repro import suite as suites
from tests.conftest import SUITE, write_suite


def test_toy_suite_loads_runs_and_claims(workspace):
    s = suites.load(workspace / "suites" / "toy.yaml")
    assert s.name == "toy" and [c.id for c in s.claims] == ["TOY-SHAPE", "TOY-SCORE", "TOY-PAIRED"]
    assert [r.id for r in s.runs] == ["shape", "score", "paired"]
    score = s.run("score")
    assert score.params_for("full") == {"base": 0.55, "tag": "score"}
    assert score.params_for("smoke") == {"base": 0.6, "tag": "score"}
    assert score.params_hash("full") != score.params_hash("smoke")
    assert s.looks(score, "full") == [3]
    assert s.looks(score, "quick", override=5) == [5]
    assert s.run("shape").deterministic and s.looks(s.run("shape"), "full") == [1]   # analytic: one run
    assert not score.deterministic
    m = s.claim("TOY-SCORE").metric("score")
    assert (m.run, m.key, m.direction) == ("score", "score", "higher")


def test_looks_double_up_to_the_maximum(workspace):
    s = suites.load(write_suite(workspace, SUITE.replace("full: {seeds: 3}", "full: {seeds: 3, max_seeds: 10}")))
    assert s.looks(s.run("score"), "full") == [3, 6, 10]
    assert s.looks(s.run("score"), "full", override=4) == [4]          # --seeds fixes the count
    assert s.looks(s.run("score"), "quick") == [2]


def _broken(workspace, old: str, new: str) -> str:
    assert old in SUITE
    path = write_suite(workspace, SUITE.replace(old, new, 1))
    with pytest.raises(suites.SuiteError) as e:
        suites.load(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    return msg


@pytest.mark.parametrize("old,new,who,field", [
    ("rule: {at_least: 0.5}", "rule: {at_leest: 0.5}", "claim TOY-SCORE", "metrics.score.rule"),
    ("rule: {at_least: 0.5}", "rule: {at_least: high}", "claim TOY-SCORE", "metrics.score.rule"),
    ("    kind: E\n    source: \"分数至少0.5\"", "    kind: X\n    source: \"分数至少0.5\"", "claim TOY-SCORE", "kind"),
    ("    version: 1\n    runs: [score]", "    versoin: 1\n    runs: [score]", "claim TOY-SCORE", "versoin"),
    ("experiment: fake_measure\n    version: 1\n    params: {tag: shape}",
     "experiment: fake_measur\n    version: 1\n    params: {tag: shape}", "run shape", "experiment"),
    ("params: {tag: shape}", "params: {tag: shape, width: 3}", "run shape", "params.width"),
    ("      smoke: {base: 0.6}", "      smok: {base: 0.6}", "run score", "profiles.smok"),
    ("      smoke: {base: 0.6}", "      smoke: {bass: 0.6}", "run score", "profiles.smoke.bass"),
    ("than: baseline", "than: nothing", "claim TOY-PAIRED", "metrics.score.rule.paired.than"),
    ("better: higher}\n      baseline: {}\n  - id: TOY-PAIRED", "better: up}\n      baseline: {}\n  - id: TOY-PAIRED",
     "claim TOY-SCORE", "metrics.score.better"),
    # issue 11's bad input: a claim naming no run, a criterion without a reason, a seed maximum below the start
    ("    runs: [paired]\n", "", "claim TOY-PAIRED", "runs"),
    ("    runs: [paired]\n", "    runs: [pared]\n", "claim TOY-PAIRED", "runs"),
    ("score: {claimed: 0.5, rule: {at_least: 0.5}, better: higher}",
     "score: {claimed: 0.5, criterion: {rule: {at_least: 0.4}}, better: higher}", "claim TOY-SCORE",
     "metrics.score.criterion.reason"),
    ("      smoke: {base: 0.6}\n", "      smoke: {base: 0.6}\n    seeds: {full: 5}\n    max_seeds: {full: 4}\n",
     "run score", "max_seeds.full"),
    # a line that is not the chapter's claimed value must be a criterion with its reason
    ("score: {claimed: 0.5, rule: {at_least: 0.5}, better: higher}",
     "score: {claimed: 0.5, rule: {at_least: 0.45}, better: higher}", "claim TOY-SCORE", "metrics.score.rule"),
    ("score: {claimed: 0.5, rule: {at_least: 0.5}, better: higher}",
     "score: {claimed: 0.5, rule: {approx: 0.5, tol: 0.1}, better: higher}", "claim TOY-SCORE", "metrics.score.rule"),
    # experiments and seeds moved from claims to runs
    ("    runs: [paired]\n", "    runs: [paired]\n    experiment: fake_measure\n", "claim TOY-PAIRED", "experiment"),
])
def test_bad_fields_name_file_claim_and_field(workspace, old, new, who, field):
    msg = _broken(workspace, old, new)
    assert who in msg and f"field '{field}'" in msg


def test_suite_seed_maximum_below_the_minimum_is_refused(workspace):
    msg = _broken(workspace, "full: {seeds: 3}", "full: {seeds: 3, max_seeds: 2}")
    assert "field 'profiles.full.max_seeds'" in msg and "below" in msg


def test_unknown_field_suggests_the_closest(workspace):
    msg = _broken(workspace, "    version: 1\n    runs: [score]", "    versoin: 1\n    runs: [score]")
    assert "did you mean 'version'" in msg


def test_unknown_experiment_suggests_the_closest(workspace):
    msg = _broken(workspace, "experiment: fake_measure\n    version: 1\n    params: {tag: shape}",
                  "experiment: fake_measur\n    version: 1\n    params: {tag: shape}")
    assert "did you mean 'fake_measure'" in msg


def test_malformed_yaml_gives_the_line(workspace):
    path = write_suite(workspace, "suite: toy\nclaims: [\n  - id: X\n")
    with pytest.raises(suites.SuiteError, match=r"not valid YAML at line \d+"):
        suites.load(path)


def test_file_name_must_match_suite_name(workspace):
    path = write_suite(workspace, SUITE, name="other")
    with pytest.raises(suites.SuiteError, match=r"field 'suite'.*'other'"):
        suites.load(path)


def test_duplicate_claim_and_missing_reason(workspace):
    assert "appears twice" in _broken(workspace, "id: TOY-PAIRED", "id: TOY-SCORE")
    msg = _broken(workspace, "    runs: [paired]\n", "    runs: [paired]\n    checkable: false\n")
    assert "field 'reason'" in msg


def test_a_run_no_claim_judges_is_refused(workspace):
    msg = _broken(workspace, "    runs: [paired]\n", "    runs: [score]\n")
    assert "run paired" in msg and "no claim judges" in msg


def test_several_runs_name_metrics_by_run(workspace):
    text = SUITE.replace("    runs: [paired]\n    metrics:\n      score: {rule: {paired: {than: baseline, better: higher}}}\n"
                         "      baseline: {}\n",
                         "    runs: [paired, score]\n    metrics:\n      paired.score: {rule: {paired: {than: score.score, "
                         "better: higher}}}\n      score.score: {}\n")
    s = suites.load(write_suite(workspace, text))
    m = s.claim("TOY-PAIRED").metric("paired.score")
    assert (m.run, m.key) == ("paired", "score")
    msg = _broken(workspace, "    runs: [paired]\n", "    runs: [paired, score]\n")
    assert "RUN.metric" in msg


def test_select_by_suite_and_claim_case_insensitively(workspace):
    loaded = suites.load_all()
    assert [c.id for _, cs in suites.select(["toy"], loaded) for c in cs] == ["TOY-SHAPE", "TOY-SCORE", "TOY-PAIRED"]
    assert [c.id for _, cs in suites.select(["toy-paired", "TOY-SHAPE"], loaded) for c in cs] == ["TOY-SHAPE", "TOY-PAIRED"]
    with pytest.raises(suites.SelectionError, match="did you mean 'TOY-SCORE'"):
        suites.select(["TOY-SCOR"], loaded)


def test_every_shipped_suite_is_valid_and_names_registered_claims():
    """The real suites load, and every claim ID is one of the register's (../shared/CLAIMS.md)."""
    loaded = suites.load_all(suites.SUITES_DIR)
    assert loaded, "no suite in suites/"
    register = Path(__file__).resolve().parents[2] / "shared" / "CLAIMS.md"
    if register.exists():
        known = set(re.findall(r"^\| ([A-Z0-9-]+) \|", register.read_text(encoding="utf-8"), re.M))
        for s in loaded:
            for c in s.claims:
                assert c.id in known, f"{s.path.name}: {c.id} is not in CLAIMS.md"


def test_every_shipped_key_metric_is_a_judged_part():
    """README's "ours [interval that decided]" column shows a claim's key metric: it must be a part
    the verdict reads (a rule, not a precondition), or the column shows a number that decided nothing
    (RESNET-GRAD, OPT-GD, OPT-MOMENTUM, CONV1D-TEXT, GAN-COLLAPSE and ATT-MULTIHEAD showed reported
    metrics after their redesigns)."""
    bad = []
    for s in suites.load_all(suites.SUITES_DIR):
        for c in s.claims:
            judged = {m.name for m in c.metrics if m.rule is not None and not m.precondition}
            if c.key and judged and c.key not in judged:
                bad.append(f"{c.id}: key {c.key} is not one of {sorted(judged)}")
    assert not bad, "; ".join(bad)


def test_a_run_can_set_its_own_seed_count(workspace):
    text = SUITE.replace("    params: {tag: paired}\n", "    params: {tag: paired}\n    seeds: {full: 5}\n")
    s = suites.load(write_suite(workspace, text))
    assert s.looks(s.run("paired"), "full") == [5]
    assert s.looks(s.run("paired"), "quick") == [2]          # the suite's count elsewhere
    assert s.looks(s.run("score"), "full") == [3]
    assert s.looks(s.run("paired"), "full", override=2) == [2]  # --seeds still wins


@pytest.mark.parametrize("seeds,field", [("{ful: 5}", "seeds.ful"), ("{full: 0}", "seeds.full"),
                                         ("5", "seeds")])
def test_bad_run_seeds_are_refused(workspace, seeds, field):
    msg = _broken(workspace, "    params: {tag: paired}\n", f"    params: {{tag: paired}}\n    seeds: {seeds}\n")
    assert "run paired" in msg and f"field '{field}'" in msg


def test_a_precondition_needs_a_rule_and_a_judged_metric_beside_it(workspace):
    msg = _broken(workspace, "      baseline: {}\n  - id: TOY-PAIRED", "      baseline: {precondition: true}\n  - id: TOY-PAIRED")
    assert "field 'metrics.baseline.precondition'" in msg and "needs a rule" in msg
    msg = _broken(workspace, "      score: {claimed: 0.5, rule: {at_least: 0.5}, better: higher}",
                  "      score: {claimed: 0.5, rule: {at_least: 0.5}, precondition: true}")
    assert "field 'metrics'" in msg and "judged metric besides" in msg


# ---- version notes (`changes:`) ----------------------------------------------------------------------

_SCORE_V = "    claim: the score is at least 0.5 and beats the baseline\n    version: 1\n"


@pytest.mark.parametrize("changes, field", [
    ("    changes: {version: 2}\n", "changes"),
    ("    changes:\n      - {version: 2, after_result: true, why: later}\n", "changes[0].version"),       # above the claim's
    ("    changes:\n      - {version: 1, why: x}\n", "changes[0].after_result"),
    ("    changes:\n      - {version: 1, after_result: yes please, why: x}\n", "changes[0].after_result"),
    ("    changes:\n      - {version: 1, after_result: true, why: ''}\n", "changes[0].why"),
    ("    changes:\n      - {version: 1, after_result: true, why: x, commit: 'HEAD~1'}\n", "changes[0].commit"),
    ("    changes:\n      - {version: 1, after_result: true, why: x, becuase: y}\n", "changes[0].becuase"),
])
def test_bad_version_notes_name_the_field(workspace, changes, field):
    msg = _broken(workspace, _SCORE_V, _SCORE_V + changes)
    assert "claim TOY-SCORE" in msg and f"field '{field}'" in msg


def test_version_notes_load_oldest_first(workspace):
    text = SUITE.replace(_SCORE_V, _SCORE_V.replace("version: 1", "version: 3") + (
        "    changes:\n"
        "      - {version: 2, after_result: false, why: 'a wider grid,\n          before any record'}\n"
        "      - {version: 3, after_result: true, why: the line, commit: '0506636'}\n"))
    c = suites.load(write_suite(workspace, text)).claim("TOY-SCORE")
    assert [(x.version, x.after_result, x.commit) for x in c.changes] == [(2, False, ""), (3, True, "0506636")]
    assert c.changes[0].why == "a wider grid, before any record"
    assert [x.version for x in c.changed_after_result] == [3]
    msg = _broken(workspace, _SCORE_V, _SCORE_V.replace("version: 1", "version: 3") + (
        "    changes:\n      - {version: 3, after_result: true, why: a}\n      - {version: 2, after_result: true, why: b}\n"))
    assert "field 'changes[1].version'" in msg and "oldest first" in msg


def test_every_shipped_version_after_the_first_says_what_changed_and_why():
    for s in suites.load_all(check=False):
        for c in s.claims:
            noted = {x.version for x in c.changes}
            missing = [v for v in range(2, c.version + 1) if v not in noted]
            assert not missing, f"{s.path.name}: claim {c.id} is at version {c.version} with no note for version(s) {missing}"


def test_shipped_version_notes_agree_with_git():
    """Each note naming a commit: the suite file at that commit has the claim at that version, and
    after_result is true exactly when a full-profile record of the claim had been committed before it."""
    import json
    import subprocess

    from repro import history

    git = history.Git(suites.SUITES_DIR)
    if not git or git.resolve("d6ba80d") is None:
        pytest.skip("needs the repository's git history")
    first_record: dict[str, str] = {}
    out = git._run("log", "--reverse", "--format=@%H", "--name-status", "--", "results/") or ""
    sha = ""
    for line in out.splitlines():
        if line.startswith("@"):
            sha = line[1:]
        elif line.strip():
            status, path = line.split("\t")[0], line.split("\t")[-1]
            if status.startswith("D") or "-full-" not in path or not path.endswith(".json"):
                continue
            rec = json.loads(git.show(sha, path) or b"{}")
            for cid in rec.get("claims", {}):
                first_record.setdefault(cid, sha)
    for s in suites.load_all(check=False):
        path = git.rel(s.path)
        for c in s.claims:
            for n in c.changes:
                if not n.commit:
                    continue
                full = git.resolve(n.commit)
                assert full, f"{c.id}: note commit {n.commit} is not in this repository"
                then = history.suite_at(git, full, path)
                raw = git.show(full, path).decode()
                version = then.claim(c.id).version if then else next(
                    int(m) for m in __import__("re").findall(rf"- id: {c.id}\n(?:.*\n)*?\s+version: (\d+)", raw))
                assert version == n.version, f"{c.id}: at {n.commit} the claim is at version {version}, the note says {n.version}"
                before = c.id in first_record and first_record[c.id] != full and \
                    subprocess.run(["git", "-C", str(git.root), "merge-base", "--is-ancestor", first_record[c.id], full]).returncode == 0
                assert n.after_result == before, f"{c.id} v{n.version} at {n.commit}: after_result {n.after_result}, git says {before}"
_PAGE = ("    source: \"分数至少0.5\"\n    claim: the score is at least 0.5 and beats the baseline\n    version: 1\n"
         "    runs: [score]\n")


def _with(fields: str) -> str:
    """TOY-SCORE with presentation fields after its runs."""
    assert _PAGE in SUITE
    return SUITE.replace(_PAGE, _PAGE + fields, 1)


def test_presentation_fields_load_and_default(workspace):
    s = suites.load(write_suite(workspace, _with(
        "    short: a score of at least a half\n"
        "    key: {metric: score, chapter: \"at least half\", percent: true}\n"
        "    settle: a bigger test set\n"
        "    erratum:\n"
        "      - {line: 3, quote: \"至少0.5\", zh: \"至少{=score|pct}\", en: \"At least {=score}.\", measured: \"{=score|iv}\"}\n")))
    c = s.claim("TOY-SCORE")
    assert (c.headline, c.key_metric, c.key_chapter, c.key_percent, c.settle) == \
        ("a score of at least a half", "score", "at least half", True, "a bigger test set")
    assert c.erratum == ({"line": 3, "quote": "至少0.5", "zh": "至少{=score|pct}", "en": "At least {=score}.",
                          "measured": "{=score|iv}"},)
    other = s.claim("TOY-PAIRED")          # none given: the first judged metric, the claim's first clause
    assert (other.key_metric, other.headline, other.erratum) == ("score", "the score beats the baseline on every seed", ())
    assert suites.headline_of("A b c; d e") == "A b c" and len(suites.headline_of("x" * 80)) == suites.SHORT_MAX
    assert set(suites.PRESENTATION_KEYS) == {"short", "key", "erratum", "settle"}


@pytest.mark.parametrize("fields,field,words", [
    ("    key: nothing\n", "key", "names metric 'nothing'"),
    ("    key: {metric: baseline, chapter: [1]}\n", "key.chapter", "the chapter's number or words"),
    ("    short: " + "x" * 49 + "\n", "short", "at most 48 characters"),
    ("    erratum: {line: 3, quote: q, zh: z, en: e}\n", "erratum", "what we measured"),
    ("    erratum: {line: 0, quote: q, zh: z, en: e, measured: m}\n", "erratum.line", "the line"),
    ("    erratum: {line: 3, quote: q, en: e, measured: m}\n", "erratum.zh", "required text"),
    ("    erratum: {line: 3, quote: q, zh: z, en: e, measured: m, english: e}\n", "erratum.english", "unknown field"),
    ("    erratum: [{line: 3, quote: q, zh: z, en: e, measured: m}, {line: x, quote: q, zh: z, en: e}]\n",
     "erratum[1].line", "the line"),
    ("    erratum: {line: 3, quote: q, zh: z, en: \"{=scor}\", measured: m}\n", "erratum.en", "{=scor} names no metric"),
    ("    erratum: {line: 3, quote: q, zh: z, en: e, measured: \"{=score|sci}\"}\n", "erratum.measured",
     "unknown format 'sci'"),
])
def test_bad_presentation_fields_name_the_field(workspace, fields, field, words):
    path = write_suite(workspace, _with(fields))
    with pytest.raises(suites.SuiteError) as e:
        suites.load(path)
    msg = str(e.value)
    assert "claim TOY-SCORE" in msg and f"field '{field}'" in msg and words in msg, msg


def test_latex_braces_in_an_erratum_are_not_placeholders(workspace):
    s = suites.load(write_suite(workspace, _with(
        "    erratum: {line: 3, quote: q, zh: '$x^{l}$ {=score}', en: '$\\frac{a}{b}$', measured: m}\n")))
    assert s.claim("TOY-SCORE").erratum[0]["en"] == "$\\frac{a}{b}$"
