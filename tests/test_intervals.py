"""The interval machinery of issue 19: test-set declarations, paired per-item errors, log scales,
resolutions, existence over seeds, equivalence margins, levels, and fails a gate must not hide.
Every test runs on synthetic values."""
from __future__ import annotations

import math

import pytest

from repro import record, registry, runner, stats, verdict
from repro import suite as suites
from tests.conftest import SUITE, write_suite


# ---- helpers ------------------------------------------------------------------------------------

def spec(rule=None, *, key=None, run="r", criterion=None, precondition=False, **opts) -> dict:
    return {"claimed": None, "rule": rule, "criterion": criterion, "better": None, "tolerance": None, "unit": "",
            "precondition": precondition, "literature": None, "run": run, "key": key,
            "scale": opts.get("scale"), "resolution": opts.get("resolution"), "variance": opts.get("variance")}


def judged(specs: dict, seeds: list[dict], *, looks: int = 1, kind: str = "E", deterministic: bool = False,
           convergence: list[dict] | None = None) -> dict:
    """A claim entry judged from per-seed results of one run 'r'. ``seeds``: one dict per seed with
    metrics / stderr / test_set / paired_se as a run would store them."""
    for name, s in specs.items():
        s["key"] = s["key"] or name
    results = {}
    for i, res in enumerate(seeds):
        results[str(i)] = {"metrics": res.get("metrics", {}), "stderr": res.get("stderr", {}),
                           "test_set": res.get("test_set", {}), "paired_se": res.get("paired_se", {}),
                           "convergence": (convergence or [{}] * len(seeds))[i], "seconds": 1.0, "error": None}
    runs = {"r": {"id": "r", "experiment": "x", "params": {}, "params_hash": "h", "seconds": 1.0,
                  "deterministic": deterministic, "looks": list(range(looks)), "results": results, "seeds_why": ""}}
    entry = {"id": "C", "kind": kind, "run_ids": ["r"], "metric_specs": specs, "checkable": True,
             "about_budget": False, "metrics": {}}
    record.judge_claim(entry, runs)
    return entry


def seeds_of(**series) -> list[dict]:
    """{'acc': [..]} -> per-seed result dicts with those metrics."""
    n = len(next(iter(series.values())))
    return [{"metrics": {k: v[i] for k, v in series.items()}} for i in range(n)]


# ---- Result declarations and the runner ---------------------------------------------------------

def test_a_stderr_without_a_test_set_declaration_is_an_error_the_runner_reports(monkeypatch):
    def undeclared(*, seed):
        return registry.Result(metrics={"acc": 0.9}, stderr={"acc": 0.01})

    def declared(*, seed):
        return registry.Result(metrics={"acc": 0.9, "base": 0.8}, stderr={"acc": 0.01}, test_set={"acc": "fixed"},
                               paired_se={"acc|base": 0.004})

    monkeypatch.setitem(registry.EXPERIMENTS, "t_undeclared", undeclared)
    monkeypatch.setitem(registry.EXPERIMENTS, "t_declared", declared)
    out = runner.run_unit("t_undeclared", {}, 0)
    assert out["error"] and "acc" in out["error"] and "test_set" in out["error"]
    ok = runner.run_unit("t_declared", {}, 0)
    assert ok["error"] is None and ok["test_set"] == {"acc": "fixed"} and ok["paired_se"] == {"acc|base": 0.004}
    bad = registry.Result(metrics={"a": 1.0}, stderr={"a": 0.1}, test_set={"a": "shared"}, paired_se={"a-b": 0.1})
    assert len(bad.problems()) == 2


def test_every_experiment_that_returns_a_stderr_declares_its_test_set():
    """Read from the code: every Result(...) built with stderr= also passes test_set= (the runner
    would record the run as an error otherwise)."""
    import ast
    import pathlib

    root = pathlib.Path(registry.__file__).parent / "experiments"
    missing = []
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Result":
                kws = {k.arg for k in node.keywords}
                if "stderr" in kws and "test_set" not in kws:
                    missing.append(f"{path.name}:{node.lineno}")
    assert not missing, f"Result with stderr but no test_set: {missing}"


# ---- test_set: fixed adds the known variance, per_seed does not -----------------------------------

def test_per_seed_test_items_add_no_test_sampling_error_and_fixed_ones_do():
    accs = [0.900, 0.905, 0.910]
    def run(test_set):
        seeds = [{"metrics": {"acc": a}, "stderr": {"acc": 0.02}, "test_set": {"acc": test_set} if test_set else {}}
                 for a in accs]
        return judged({"acc": spec({"at_least": 0.88}, criterion="x")}, seeds)["metrics"]["acc"]
    fixed, per_seed, undeclared = run("fixed"), run("per_seed"), run(None)
    assert fixed["status"] == "undecided"        # the 0.02 test error does not average away
    assert per_seed["status"] == "pass"          # the seeds' spread already holds it
    assert "drawn per seed" in per_seed["variance"] and "same test items" in fixed["variance"]
    assert undeclared["decision_interval"] == fixed["decision_interval"]   # old records: taken as fixed


def test_variance_seeds_leaves_the_test_sampling_error_out():
    seeds = [{"metrics": {"err": e}, "stderr": {"err": 0.001}, "test_set": {"err": "fixed"}}
             for e in (0.0100, 0.0102, 0.0098)]
    both = judged({"err": spec({"approx": 0.0095, "tol": 0.002}, criterion="x")}, seeds)["metrics"]["err"]
    only = judged({"err": spec({"approx": 0.0095, "tol": 0.002}, criterion="x", variance="seeds")},
                  seeds)["metrics"]["err"]
    assert both["status"] == "undecided" and only["status"] == "pass"
    assert "suite's choice" in only["variance"]


# ---- paired on the same items ----------------------------------------------------------------------

def test_a_paired_rule_uses_the_per_item_paired_error_instead_of_the_hypot():
    a, b = [0.910, 0.912, 0.914], [0.900, 0.901, 0.903]
    seeds = [{"metrics": {"a": x, "b": y}, "stderr": {"a": 0.004, "b": 0.004}, "test_set": {"a": "fixed", "b": "fixed"},
              "paired_se": {"a|b": 0.001}} for x, y in zip(a, b)]
    specs = lambda: {"a": spec({"paired": {"than": "b", "better": "higher"}}), "b": spec()}  # noqa: E731
    paired = judged(specs(), seeds)["metrics"]["a"]
    no_pairs = judged(specs(), [{k: v for k, v in s.items() if k != "paired_se"} for s in seeds])["metrics"]["a"]
    assert paired["status"] == "pass" and paired["test_variance"] == "paired (same test items)"
    assert no_pairs["status"] == "undecided" and no_pairs["test_variance"] == "hypot of both sides"
    # B|A serves for A|B; per-seed test items add nothing at all
    flipped = [dict(s, paired_se={"b|a": 0.001}) for s in seeds]
    assert judged(specs(), flipped)["metrics"]["a"]["test_variance"] == "paired (same test items)"
    per_seed = [dict(s, test_set={"a": "per_seed", "b": "per_seed"}) for s in seeds]
    assert "test_variance" not in judged(specs(), per_seed)["metrics"]["a"]


def test_paired_item_se_is_mcnemar_on_discordant_items():
    a = [1] * 90 + [0] * 10
    b = [1] * 88 + [0] * 2 + [0] * 10      # agree on 98 items, 2 discordant
    se = stats.paired_item_se(a, b)
    d = [x - y for x, y in zip(a, b)]
    assert se == pytest.approx(stats.std(d) / 10)
    assert se < math.hypot(stats.binomial_se(0.9, 100), stats.binomial_se(0.88, 100)) / 3


# ---- log10 scale -----------------------------------------------------------------------------------

def test_a_ratio_judged_on_a_log_scale_stays_positive_and_decides():
    ratios = [0.001, 0.004, 0.0004]            # spread over decades: the linear interval goes below 0
    lin = verdict.judge({"at_most": 0.1}, ratios, level=0.95)
    log = verdict.judge({"at_most": 0.1}, ratios, level=0.95, scale="log10")
    assert lin["decision_interval"][0] < 0
    assert log["status"] == "pass" and log["decision_interval"][0] > 0 and log["decision_interval"][1] <= 0.1
    assert "geometric mean" in log["detail"]
    # a band in the metric's units maps onto the log scale: within one decade of 1 either way
    assert verdict.judge({"between": [0.1, 10]}, [0.5, 2.0, 1.2], scale="log10")["status"] == "pass"
    assert verdict.judge({"between": [0.1, 10]}, [200.0, 900.0, 400.0], scale="log10")["status"] == "fail"
    assert verdict.judge({"at_most": 0.1}, [0.0, 0.01, 0.02], scale="log10")["status"] == "undecided"


# ---- resolution ------------------------------------------------------------------------------------

def test_equal_counts_never_give_a_point_interval():
    got = verdict.judge({"at_most": 7}, [8, 8, 8], level=1 - 0.05 / 3)
    lo, hi = got["decision_interval"]
    assert lo < 7 < hi and got["status"] == "undecided"            # 3 equal seeds cannot fail decisively
    assert got["resolution"] == 1                                  # integers are counts: step 1
    many = verdict.judge({"at_most": 7}, [8] * 10, level=1 - 0.05 / 3)
    assert many["status"] == "fail"                                # 10 agreeing seeds can
    # a stated resolution for a float metric
    assert verdict.judge({"at_least": 0.5}, [0.5, 0.5, 0.5], resolution=0.1)["decision_interval"][0] < 0.5
    assert stats.interval([8, 8, 8], 0.95, resolution=1) == pytest.approx(
        (8 - stats.t975(2) / 3, 8 + stats.t975(2) / 3))


# ---- in_seeds ---------------------------------------------------------------------------------------

def test_in_seeds_counts_seeds_with_an_exact_interval():
    rule = {"in_seeds": {"where": {"at_most": 6}, "min_share": 0.2}}
    verdict.check_rule(rule)
    three = verdict.judge(rule, [5, 4, 6], level=1 - 0.05 / 3)
    assert three["status"] == "pass" and three["count"] == 3
    assert three["decision_interval"][0] == pytest.approx((0.05 / 6) ** (1 / 3), abs=1e-6)   # 0.203
    assert verdict.judge(rule, [5, 8, 8], level=0.95)["status"] == "undecided"                # 1 of 3
    assert verdict.judge(rule, [8] * 20, level=0.95)["status"] == "fail"                       # 0 of 20: < 0.2
    assert verdict.judge(rule, [8] * 3, level=0.95)["status"] == "undecided"                   # 0 of 3: could be
    assert verdict.judge(rule, [6], exact=True)["status"] == "pass"
    assert verdict.describe(rule) == "≤ 6 on ≥ 20% of seeds"
    assert verdict.direction(rule) == "lower"


def test_clopper_pearson_matches_known_values():
    assert stats.clopper_pearson(0, 10, 0.95) == pytest.approx((0.0, 0.3085), abs=1e-4)
    assert stats.clopper_pearson(5, 10, 0.95) == pytest.approx((0.1871, 0.8129), abs=1e-4)
    assert stats.clopper_pearson(10, 10, 0.95) == pytest.approx((0.6915, 1.0), abs=1e-4)


# ---- paired_within ---------------------------------------------------------------------------------

def test_paired_within_passes_inside_the_margin_and_fails_outside():
    rule = {"paired_within": {"than": "b", "margin": 0.05}}
    verdict.check_rule(rule)
    b = [1.00, 1.10, 0.90]
    same = verdict.judge(rule, [1.01, 1.10, 0.91], {"b": b})
    apart = verdict.judge(rule, [1.30, 1.41, 1.19], {"b": b})
    unclear = verdict.judge(rule, [1.04, 1.12, 0.97], {"b": b})
    assert (same["status"], apart["status"], unclear["status"]) == ("pass", "fail", "undecided")
    assert same["advantage"]["decision_interval"][0] >= -0.05
    assert verdict.describe(rule) == "within ±0.05 of b (paired)"


# ---- suites: the new fields and kinds, validated --------------------------------------------------

SCORE = "score: {claimed: 0.5, rule: {at_least: 0.5}, better: higher}"


def _suite_error(workspace, new: str) -> str:
    path = write_suite(workspace, SUITE.replace(SCORE, new, 1))
    with pytest.raises(suites.SuiteError) as e:
        suites.load(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "claim TOY-SCORE" in msg
    return msg


@pytest.mark.parametrize("new,field", [
    ("score: {claimed: 0.5, rule: {at_least: 0.5}, scale: log2}", "metrics.score.scale"),
    ("score: {claimed: 0.5, rule: {at_least: 0.5}, resolution: 0}", "metrics.score.resolution"),
    ("score: {claimed: 0.5, rule: {at_least: 0.5}, resolution: 1, scale: log10}", "metrics.score.scale"),
    ("score: {criterion: {rule: {at_least: -1}, reason: r}, scale: log10}", "metrics.score.scale"),
    ("score: {claimed: 0.5, rule: {at_least: 0.5}, variance: seeds}", "metrics.score.variance"),
    ("score: {criterion: {rule: {at_least: 0.4}, reason: r}, variance: test}", "metrics.score.variance"),
    ("score: {rule: {in_seeds: {where: {at_most: 6}, min_share: 0.2}}}", "metrics.score.rule"),
    ("score: {criterion: {rule: {in_seeds: {where: {at_most: 6}, min_share: 1.5}}, reason: r}}",
     "metrics.score.criterion.rule"),
    ("score: {criterion: {rule: {in_seeds: {where: {paired: {than: baseline, better: higher}}, min_share: 0.5}}, "
     "reason: r}}", "metrics.score.criterion.rule"),
    ("score: {criterion: {rule: {paired_within: {than: baseline, margin: -1}}, reason: r}}",
     "metrics.score.criterion.rule"),
    ("score: {criterion: {rule: {paired_within: {than: nothing, margin: 0.1}}, reason: r}}",
     "metrics.score.criterion.rule.paired_within.than"),
    ("score: {criterion: {rule: {in_seeds: {where: {at_most: 6}, min_share: 0.5}}, reason: r}, scale: log10}",
     "metrics.score.scale"),
])
def test_bad_interval_options_name_file_claim_and_field(workspace, new, field):
    assert f"field '{field}'" in _suite_error(workspace, new)


def test_the_new_fields_and_kinds_load(workspace):
    old = SCORE + "\n      baseline: {}\n"
    new = ("score: {criterion: {rule: {at_most: 0.9}, reason: r}, scale: log10}\n"
           "      baseline: {criterion: {rule: {in_seeds: {where: {at_least: 0.4}, min_share: 0.5}}, reason: r}, "
           "resolution: 0.01, variance: seeds}\n")
    text = SUITE.replace(old, new, 1).replace(
        "      score: {rule: {paired: {than: baseline, better: higher}}}",
        "      score: {criterion: {rule: {paired_within: {than: baseline, margin: 0.2}}, reason: r}}")
    s = suites.load(write_suite(workspace, text))
    m = s.claim("TOY-SCORE").metric("score")
    b = s.claim("TOY-SCORE").metric("baseline")
    assert (m.scale, b.resolution, b.variance) == ("log10", 0.01, "seeds")
    assert verdict.rule_kind(s.claim("TOY-PAIRED").metric("score").rule) == "paired_within"
    entry = record.claim_entry(s.claim("TOY-SCORE"))
    assert entry["metric_specs"]["score"]["scale"] == "log10"


# ---- item 1: the known test-sampling variance is not inflated by t with n - 1 df -------------------

def test_a_known_test_sampling_variance_uses_welch_degrees_of_freedom():
    errs = [0.0105, 0.0110, 0.0100, 0.0108, 0.0103]          # 5 seeds of LeNet-5 on the 10,000 test images
    se = [stats.binomial_se(e, 10_000) for e in errs]
    n, s2 = len(errs), stats.std(errs) ** 2
    known = stats.mean([e * e for e in se])
    var = s2 / n + known
    lo, hi = stats.interval(errs, 0.95, se)
    half = (hi - lo) / 2
    df = (n - 1) * (var / (s2 / n)) ** 2
    assert stats.welch_df(s2 / n, n, known) == pytest.approx(df)
    assert half == pytest.approx(stats.t_quantile(0.95, df) * math.sqrt(var))
    assert half < 0.75 * stats.t975(n - 1) * math.sqrt(var)     # not t_4 = 2.78 on the whole variance
    assert half == pytest.approx(1.96 * math.sqrt(var), rel=0.01)   # the binomial part dominates: ~z
    # without a known part it is the plain t interval; with seeds that agree exactly, the normal one
    assert stats.interval(errs, 0.95) == pytest.approx(
        (stats.mean(errs) - stats.t975(4) * math.sqrt(s2 / n), stats.mean(errs) + stats.t975(4) * math.sqrt(s2 / n)))
    lo, hi = stats.interval([0.01] * 3, 0.95, [0.001] * 3)
    assert (hi - lo) / 2 == pytest.approx(stats.z_quantile(0.95) * 0.001)
    # adding a known variance never narrows the interval of the seeds alone
    xs = [0.90, 0.91, 0.92]
    for e in (0.001, 0.005, 0.01, 0.02):
        assert stats.interval(xs, 0.95, [e] * 3)[1] >= stats.interval(xs, 0.95)[1]
    assert stats.z_quantile(0.95) == pytest.approx(1.959964, abs=1e-6)


# ---- item 3: LeNet-5 against the published number on the same test set ---------------------------

def test_lenet_mnist_compares_with_the_paper_on_seed_variance_only():
    s = suites.load(suites.SUITES_DIR / "cnn.yaml", check=False)
    m = s.claim("LENET-MNIST").metric("lenet_paper.test_error")
    assert m.variance == "seeds" and "same 10,000" in m.criterion
    # 5 seeds at ~1.08% on the 10,000 images: inside 0.95% ± 0.375 pp once the common test-sampling
    # error is left out; with it (and the old t_4 on it) the band could hardly ever be reached
    errs = [0.0098, 0.0112, 0.0105, 0.0118, 0.0109]
    seeds = [{"metrics": {"test_error": e}, "stderr": {"test_error": stats.binomial_se(e, 10_000)},
              "test_set": {"test_error": "fixed"}} for e in errs]
    rule = m.rule
    got = judged({"test_error": spec(rule, criterion="x", variance="seeds")}, seeds, looks=2)["metrics"]["test_error"]
    assert got["status"] == "pass", got["detail"]


# ---- item 10: ratios on a log scale --------------------------------------------------------------

def test_gradient_and_timing_ratios_are_judged_on_a_log_scale():
    s = suites.load(suites.SUITES_DIR / "training.yaml", check=False)
    for cid, name in (("VANISH-SIGMOID", "sigmoid_ratio_init"), ("VANISH-SIGMOID", "sigmoid_ratio_trained"),
                      ("RELU-GRAD", "relu.relu_ratio_init"), ("RELU-GRAD", "relu.relu_ratio_trained"),
                      ("RELU-GRAD", "relu_speed.sigmoid_over_relu")):
        assert s.claim(cid).metric(name).scale == "log10", (cid, name)
    # a share of 8 layer pairs is discrete: 3 seeds at 1.0 no longer pass on a point interval
    shrink = s.claim("VANISH-SIGMOID").metric("sigmoid_shrink_fraction_init")
    assert shrink.resolution == 0.125
    got = verdict.judge(shrink.rule, [1.0] * 3, level=1 - 0.05 / 3, resolution=shrink.resolution)
    assert got["status"] == "undecided" and got["decision_interval"][0] < 0.75
    assert verdict.judge(shrink.rule, [1.0] * 6, level=1 - 0.05 / 3, resolution=shrink.resolution)["status"] == "pass"


# ---- item 9: fails at alpha/k within a claim, passes at alpha --------------------------------------

def test_a_fail_among_k_parts_needs_the_wider_interval_and_a_pass_does_not():
    specs = {"a": spec({"at_least": 0.5}), "b": spec({"at_least": 0.1}), "c": spec({"at_most": 2.0})}
    seeds = seeds_of(a=[0.45, 0.46, 0.47], b=[0.9, 0.91, 0.92], c=[1.0, 1.01, 1.02])
    e = judged(specs, seeds)                                          # one look, 3 judged parts
    a = e["metrics"]["a"]
    assert stats.interval([0.45, 0.46, 0.47], 0.95)[1] < 0.5          # at 95% alone it would fail ...
    assert a["status"] == "undecided"                                 # ... but a fail is decided at 98.3%
    assert a["interval_level"] == pytest.approx(1 - 0.05 / 3) and a["level"] == pytest.approx(0.95)
    assert a["intervals"]["pass"]["level"] == pytest.approx(0.95)
    assert e["metrics"]["b"]["status"] == "pass" and e["metrics"]["b"]["interval_level"] == pytest.approx(0.95)
    assert (e["pass_level"], e["family_level"]) == (pytest.approx(0.95), pytest.approx(0.95))
    assert e["fail_level"] == pytest.approx(1 - 0.05 / 3) and e["judged_parts"] == 3
    alone = judged({"a": spec({"at_least": 0.5})}, seeds_of(a=[0.45, 0.46, 0.47]))
    assert alone["metrics"]["a"]["status"] == "fail"                  # one part: no split
    # with looks too: a pass at 1 - 0.05/L, a fail at 1 - 0.05/(L k)
    two = judged(specs, seeds, looks=2)
    assert two["pass_level"] == pytest.approx(0.975) and two["fail_level"] == pytest.approx(1 - 0.05 / 6)


# ---- item 8: one level, shown ----------------------------------------------------------------------

def test_tables_show_the_interval_that_decided_with_its_level():
    specs = {"a": spec({"at_least": 0.5}), "b": spec({"at_least": 0.1}), "c": spec({"paired": {"than": "b", "better": "lower"}})}
    e = judged(specs, seeds_of(a=[0.45, 0.46, 0.47], b=[0.9, 0.91, 0.92], c=[0.5, 0.52, 0.51]), looks=3)
    a, c = e["metrics"]["a"], e["metrics"]["c"]
    text = record.measured_text(a)
    lo, hi = a["decision_interval"]
    assert a["ci95"] != a["decision_interval"]
    assert f"{record.level_label(a['interval_level'])} CI [{record.fmt(lo)}, {record.fmt(hi)}]" in text
    assert record.level_label(1 - 0.05 / 9) == "99.4%" and record.level_label(0.95) == "95%"
    assert "CI [" + record.fmt(c["advantage"]["decision_interval"][0]) in record.measured_text(c)
    assert "98.3% CI" in record.measured_text(c)                      # a pass: at α over the 3 looks
    rec = {"claims": {"C": dict(e, section="s", n_seeds=3, seconds=1.0, verdict=e["verdict"])}}
    row = next(r for r in record.rows(rec) if r["metric"] == "a")
    assert row["measured"] == text
    assert text in record.verdict_table_md(rec).replace("\\|", "|")
    assert "family confidence 95%" in record.level_text(e) and "99.4%" in record.level_text(e)


def test_a_record_whose_seeds_were_fixed_by_hand_says_so(workspace):
    s = suites.load(workspace / "suites" / "toy.yaml")
    env = {"machine": "testbox", "commit": "abc1234567", "python": "3", "tensorflow": "t", "keras": "k",
           "device": "CPU:0"}
    path = runner.run_suite(s, list(s.claims), profile="full", env=env, results_dir=workspace / "results", seeds=4)
    rec = record.load(path)
    assert rec["seeds_fixed"] == 4 and rec["claims"]["TOY-SCORE"]["seeds_fixed"] == 4
    assert rec["claims"]["TOY-SHAPE"]["seeds_fixed"] is None             # deterministic: one run, not fixed
    assert record.seeds_text(rec["claims"]["TOY-SCORE"]) == "4 (fixed with --seeds)"
    assert "4 (fixed with --seeds)" in path.with_suffix(".csv").read_text()
    # a record from before the field: read from the seeds' reason
    old = dict(rec["claims"]["TOY-SCORE"])
    runs = {k: dict(v, seeds_fixed=None) for k, v in rec["runs"].items()}
    record.judge_claim(old, runs)
    assert old["seeds_fixed"] == 4


# ---- item 6: existence over seeds, shown as k of n -------------------------------------------------

def test_an_existence_claim_shows_k_of_n_seeds_and_the_exact_interval():
    rule = {"in_seeds": {"where": {"at_most": 6}, "min_share": 0.2}}
    e = judged({"modes": spec(rule, criterion="ours")}, seeds_of(modes=[5, 8, 4, 8, 6, 8]))
    m = e["metrics"]["modes"]
    assert (m["count"], m["n"]) == (3, 6) and m["status"] == "undecided"
    assert m["decision_interval"] == pytest.approx(list(stats.clopper_pearson(3, 6, 0.95)))
    assert record.measured_text(m).startswith("3 of 6 seeds (95% CI [")


# ---- a gate must not hide a decisive result --------------------------------------------------------

def test_a_gate_keeps_the_verdict_inconclusive_but_names_the_decisive_fails():
    specs = {"lstm_accuracy": spec({"at_least": 0.65}),
             "rnn_accuracy": spec({"paired": {"than": "lstm_accuracy", "better": "lower"}}),
             "majority_accuracy": spec({"paired": {"than": "lstm_accuracy", "better": "lower"}}, criterion="ours",
                                       precondition=True)}
    e = judged(specs, seeds_of(lstm_accuracy=[0.51, 0.52, 0.515, 0.505, 0.52],
                               rnn_accuracy=[0.50, 0.53, 0.51, 0.52, 0.50],
                               majority_accuracy=[0.52, 0.51, 0.52, 0.50, 0.53]), looks=2)
    assert e["metrics"]["lstm_accuracy"]["status"] == "fail"
    assert e["verdict"] == "inconclusive"                              # the precondition gate holds ...
    assert e["deciding"].startswith("chapter's number not reached: lstm_accuracy [")   # ... and names the miss
    assert "vs ≥ 0.65" in e["deciding"] and "precondition majority_accuracy" in e["deciding"]
    assert [f["part"] for f in e["decisive_fails"]] == ["lstm_accuracy"]
    assert e["decisive_fails"][0]["kind"] == "chapter's number not reached"


def test_deterministic_and_criterion_fails_are_named_under_an_unconverged_gate():
    metrics = {"overflows": {"status": "fail", "detail": "measured False, claimed True"},
               "loss": {"status": "pass", "advantage": {"decision_interval": [0.01, 0.03], "level": 0.95}},
               "gap": {"status": "fail", "decision_interval": [1e-4, 2e-4], "interval_level": 0.975}}
    specs = {"overflows": {"rule": {"equal": True}},
             "loss": {"rule": {"paired": {"than": "x", "better": "lower"}}},
             "gap": {"rule": {"at_most": 0.0}, "criterion": "ours"}}
    fails = verdict.decisive_fails(metrics, specs)
    assert [(f["part"], f["kind"]) for f in fails] == [("overflows", "fails deterministically"),
                                                       ("gap", "our criterion not met")]
    v, why = verdict.combine({n: m["status"] for n, m in metrics.items()}, unconverged=["m on 1 of 3 seeds"])
    text = verdict.name_fails(v, why, fails)
    assert v == "inconclusive" and text.startswith("fails deterministically: overflows measured False")
    assert "our criterion not met: gap [0.0001, 0.0002] at 97.5% vs ≤ 0.0" in text and "not converged" in text
    # a verdict that is not inconclusive names its fails already: the line is left alone
    assert verdict.name_fails("contradicted", "gap fails decisively", fails) == "gap fails decisively"


def test_a_failed_comparison_of_the_chapters_is_named_as_such():
    m = {"status": "fail", "advantage": {"decision_interval": [-0.33, -0.006], "level": 0.983}}
    kind, text = verdict.fail_text("lsgan_ratio", m, {"rule": {"paired": {"than": "nonsat_ratio", "better": "higher"}}})
    assert kind == "chapter's comparison does not hold"
    assert text == "lsgan_ratio's advantage over nonsat_ratio [-0.33, -0.006] at 98.3% (claimed higher)"
