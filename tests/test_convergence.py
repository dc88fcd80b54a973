"""Convergence states (repro/convergence.py), the gate that decides which models a claim waits for,
and the suite fields behind it (about_budget with its reason, capability). Synthetic curves only."""
from __future__ import annotations

import math
import random

import pytest
import yaml

from repro import convergence as C
from repro import record, verdict
from repro.suite import SuiteError, load

# ---- one synthetic curve per state ---------------------------------------------------------------


def test_converged_a_loss_that_flattens():
    c = C.check([1.0, 0.5, 0.3, 0.25, 0.249, 0.2489, 0.2488, 0.2488, 0.2488, 0.2488], budget="10 epochs")
    assert c["state"] == C.CONVERGED and c["converged"] and "log10" in c["rule"]


def test_still_improving_a_loss_falling_steadily_with_the_budget_that_would_settle_it():
    slowing = [0.1 + math.exp(-0.15 * i) for i in range(30)]        # settles towards 0.1
    c = C.check(slowing, budget="30 epochs", unit_per_point=100, unit="steps")
    assert c["state"] == C.IMPROVING and not c["converged"]
    assert c["estimate"].startswith("about ") and "x the budget" in c["estimate"] and "steps" in c["estimate"]
    # a power law never flattens by its own tail: no budget is promised
    power = [1.0 / (1 + i) for i in range(30)]
    p = C.check(power, budget="30 epochs")
    assert p["state"] == C.IMPROVING


def test_solved_reaching_a_stated_floor_counts_as_converged():
    falling = [10 ** (-0.1 * i) for i in range(40)]                   # 1 -> 1.3e-4, still falling on a log scale
    assert C.check(falling, budget="40")["state"] == C.IMPROVING
    c = C.check(falling, budget="40", floor=0.01)
    assert c["state"] == C.SOLVED and c["converged"]
    acc = C.check([0.3, 0.6, 0.8, 0.9, 0.95, 0.97, 0.99, 1.0], budget="8", higher=True, floor=0.99)
    assert acc["state"] == C.SOLVED


def test_stalled_flat_at_a_stated_bad_value_counts_as_converged():
    rng = random.Random(0)
    plateau = [1 / 6 * (1 + rng.gauss(0, 0.02)) for _ in range(60)]   # an RNN at the adding baseline
    c = C.check(plateau, budget="6000 steps", bad=1 / 6)
    assert c["state"] == C.STALLED and c["converged"]
    good = C.check([0.5 * 0.8 ** i + 0.01 for i in range(30)], budget="30", bad=1 / 6)
    assert good["state"] != C.STALLED                                # flat far below the bad value


def test_unstable_worsening_and_oscillating_and_diverged():
    worse = C.check([1.0, 0.5, 0.3, 0.2, 0.15, 0.16, 0.2, 0.25, 0.3, 0.35], budget="10")
    assert worse["state"] == C.UNSTABLE and not worse["converged"] and "worsening" in worse["detail"]
    swing = C.check([0.5, 0.1, 0.3, 0.08, 0.35, 0.1, 0.3, 0.09, 0.32, 0.1, 0.3, 0.1], budget="12")
    assert swing["state"] == C.UNSTABLE and "oscillating" in swing["detail"]
    nan = C.check([1.0, 0.5, 0.3, float("nan")], budget="4")
    assert nan["state"] == C.UNSTABLE and "diverged" in nan["detail"]


def test_too_short_to_tell_is_its_own_state_and_says_what_is_needed():
    c = C.check([2.0, 1.2], budget="2 epochs", unit_per_point=500, unit="steps")
    assert c["state"] == C.TOO_SHORT and not c["converged"]
    assert "at least 5 points" in c["estimate"] and "every 200 steps" in c["estimate"]
    # a short curve that reached its floor is solved: length is no reason to doubt a solved task
    assert C.check([2.0, 0.001], budget="2 epochs", floor=0.01)["state"] == C.SOLVED


# ---- today's misreads (each fails on the version-1 rule) -----------------------------------------

ATT_SCALE_SEED1 = [0.02783, 0.01052, 0.00326, 0.002204, 0.001611, 0.04885, 0.04357, 0.01509, 0.001311, 0.000916,
                   0.0009415, 0.0008302, 0.009028, 0.0004853, 0.0004065, 0.0003493]   # d_k 1024, scaled, val loss
GAN_DSTAR_BIMODAL_SEED1 = [0.56228, 0.1228, 0.10839, 0.15668, 0.18076, 0.25494, 0.20633, 0.18596, 0.30811, 0.22443]


def test_misread_a_spike_at_the_start_of_the_tail_of_a_flat_curve_is_not_unconverged():
    # the spike sits where the version-1 rule began its tail (the point before the last 20%)
    curve = [1.0, 0.5, 0.3, 0.25, 0.24, 0.24, 0.24, 0.24, 0.24, 0.24, 0.24, 0.9, 0.24, 0.24, 0.24]
    assert C.check(curve, budget="15")["converged"]


def test_misread_att_scale_seed1_a_solved_model_with_a_spike_is_solved():
    c = C.check(ATT_SCALE_SEED1, budget="800 steps", floor=0.01)
    assert c["state"] == C.SOLVED and c["converged"]


def test_misread_a_worsening_tail_is_not_converged():
    # GAN-DSTAR, bimodal, seed 1: W1 0.11 -> 0.31 (the version-1 rule read it as converged)
    c = C.check(GAN_DSTAR_BIMODAL_SEED1, budget="5000 steps")
    assert not c["converged"] and c["state"] == C.UNSTABLE


def test_misread_a_flat_noisy_plateau_is_settled():
    rng = random.Random(1)
    plateau = [0.167 + rng.gauss(0, 0.003) for _ in range(40)]
    assert C.check(plateau, budget="4000 steps")["converged"]
    # RESNET-GRAD's plain-56: a slow creep on a plateau at loss ~2 is stalled at a bad value
    creep = [2.6] + [2.1 * (1 - 0.0004 * i) + 0.01 * rng.gauss(0, 1) for i in range(59)]
    c = C.check(creep, budget="60 epochs", bad=1.0)
    assert c["state"] == C.STALLED and c["converged"]


def test_misread_a_step_schedule_is_judged_on_its_base_rate_phase():
    base = [1.0 * 0.85 ** i for i in range(10)]                      # still falling when the rate is cut
    cut = [base[-1] * (0.99 - 0.001 * i) for i in range(15)]         # x0.02: flat mechanically
    curve = base + cut
    assert C.check(curve, budget="25 epochs")["converged"]            # the tail alone reads as converged
    c = C.check(curve, budget="25 epochs", phase_end=len(base))
    assert c["state"] == C.IMPROVING and "base-rate phase" in c["rule"]
    short = C.check(curve, budget="25 epochs", phase_end=2)
    assert short["state"] == C.TOO_SHORT and "base-rate phase" in short["estimate"]


# ---- the stored entry ----------------------------------------------------------------------------

def test_entry_keeps_a_compact_curve_and_its_arguments_and_restates():
    long = [1.0 / (1 + 0.01 * i) for i in range(1000)]
    c = C.check(long, budget="1000 steps", floor=0.5, metrics=["m_*"])
    assert len(c["curve"]) <= C.MAX_STORED and c["curve_block"] == 4
    assert c["args"]["floor"] == 0.5 and c["metrics"] == ["m_*"] and c["version"] == C.VERSION
    old = dict(c, version=1, state="converged")                       # re-judged from its curve
    assert C.restate(old)["state"] == C.check(c["curve"], budget="x", floor=0.5)["state"]
    v1 = {"converged": False, "rule": "...", "budget": "2 epochs", "tail_change": None,
          "estimate": "too few points on the curve to tell"}
    assert C.restate(v1)["state"] == C.TOO_SHORT
    assert C.restate({"converged": True, "rule": "solved: validation MSE below 0.01"})["state"] == C.SOLVED
    assert C.restate({"converged": False, "estimate": "about 2x"})["state"] == C.IMPROVING


def test_problems_name_a_metric_pattern_that_matches_nothing():
    c = C.check([1, 0.5, 0.4, 0.39, 0.39], budget="5", metrics=["a_*", "zzz"])
    assert C.problems({"m": c}, ["a_loss"]) == \
        ["convergence entry 'm' names metric 'zzz', which matches none the experiment returned"]
    assert C.problems({"m": {"rule": "x"}}, [])[0].startswith("convergence entry 'm' has no state")


def test_loss_curve_callback_recovers_window_means_from_running_means():
    from repro.kerasutil import LossCurve

    cb = LossCurve(per_epoch=2)
    losses = [4.0, 2.0, 3.0, 1.0]
    cb.on_epoch_begin(0)
    for b in range(4):
        cb.on_train_batch_end(b, {"loss": sum(losses[:b + 1]) / (b + 1)})
    cb.on_epoch_end(0)
    assert cb.curve == pytest.approx([3.0, 2.0])


# ---- the gate ------------------------------------------------------------------------------------

IMPROVING = C.check([1.0 * 0.8 ** i for i in range(10)], budget="10 epochs")
FLAT = C.check([1.0, 0.5, 0.3, 0.25, 0.25, 0.25, 0.25, 0.25], budget="8 epochs")


def _run(rid, values: dict, conv: dict, seeds=("0", "1", "2")):
    return {"id": rid, "deterministic": False, "seconds": 1.0, "params_hash": "h", "experiment": rid, "params": {},
            "looks": [3], "results": {s: {"metrics": dict(values), "convergence": dict(conv)} for s in seeds}}


def _entry(metrics: dict, runs, kind="E", about_budget=False):
    specs = {n: {"claimed": None, "rule": s.get("rule"), "criterion": None, "better": None, "tolerance": None,
                 "unit": "", "precondition": s.get("precondition", False), "literature": None, "run": s["run"],
                 "key": s["key"], "capability": s.get("capability", False)} for n, s in metrics.items()}
    return {"id": "X", "kind": kind, "run_ids": list(runs), "checkable": True, "about_budget": about_budget,
            "budget_reason": "r" if about_budget else "", "metric_specs": specs}


def _judge(entry, runs):
    # per-seed values need a spread for an interval: give seeds slightly different values
    for r in runs.values():
        for i, (s, o) in enumerate(sorted(r["results"].items())):
            o["metrics"] = {k: (v + 0.001 * i if isinstance(v, float) else v) for k, v in o["metrics"].items()}
    record.judge_claim(entry, runs)
    return entry


def test_a_claim_is_gated_only_by_the_runs_its_judged_parts_read():
    # LENET-MNIST: judged on lenet_paper; lenet_mnist (the modern flavour) is reported only
    runs = {"paper": _run("paper", {"err": 0.010}, {"lenet1998": FLAT}),
            "modern": _run("modern", {"err": 0.008}, {"lenet": IMPROVING})}
    e = _judge(_entry({"paper.err": {"run": "paper", "key": "err", "rule": {"at_most": 0.05}},
                       "modern.err": {"run": "modern", "key": "err"}}, runs), runs)
    assert e["unconverged"] == [] and e["verdict"] == verdict.REPRODUCED
    assert e["convergence"]["modern/lenet"]["why"].startswith("reported")
    assert e["convergence"]["paper/lenet1998"]["summary"] == "converged 3/3"


def test_a_model_gates_only_the_metrics_it_declares_and_the_paired_arm():
    conv = {"a": dict(FLAT, metrics=["a_*"]), "b": dict(IMPROVING, metrics=["b_*"])}
    runs = {"r": _run("r", {"a_acc": 0.9, "b_acc": 0.5}, conv)}
    one = _judge(_entry({"a_acc": {"run": "r", "key": "a_acc", "rule": {"at_least": 0.8}},
                         "b_acc": {"run": "r", "key": "b_acc"}}, runs), runs)
    assert one["unconverged"] == []
    runs = {"r": _run("r", {"a_acc": 0.9, "b_acc": 0.5}, conv)}
    paired = _judge(_entry({"a_acc": {"run": "r", "key": "a_acc", "rule": {"paired": {"than": "b_acc", "better": "higher"}}},
                            "b_acc": {"run": "r", "key": "b_acc"}}, runs), runs)
    assert paired["verdict"] == verdict.INCONCLUSIVE and paired["unconverged"][0].startswith("r/b still improving")
    assert "gates a_acc" in paired["unconverged"][0]


def test_direction_a_capability_shown_before_convergence_is_not_gated():
    def judge(value, capability, rule):
        runs = {"r": _run("r", {"mse": value}, {"lstm": IMPROVING})}
        return _judge(_entry({"mse": {"run": "r", "key": "mse", "rule": rule, "capability": capability}}, runs), runs)

    reaches = judge(0.001, True, {"at_most": 0.0167})                 # "the LSTM solves it": passes
    assert reaches["verdict"] == verdict.REPRODUCED and reaches["unconverged"] == []
    assert judge(0.001, False, {"at_most": 0.0167})["verdict"] == verdict.INCONCLUSIVE
    assert judge(0.1, True, {"at_most": 0.0167})["verdict"] == verdict.INCONCLUSIVE    # not reached yet
    # "does not reach": the RNN stays above the line; still improving, it might still get there
    assert judge(0.16, False, {"at_least": 0.0167})["verdict"] == verdict.INCONCLUSIVE


def test_a_stalled_arm_settles_a_does_not_reach_part():
    rng = random.Random(2)
    stalled = C.check([1 / 6 * (1 + rng.gauss(0, 0.02)) for _ in range(40)], budget="4000 steps", bad=1 / 6)
    runs = {"r": _run("r", {"mse": 0.16}, {"rnn": stalled})}
    e = _judge(_entry({"mse": {"run": "r", "key": "mse", "rule": {"at_least": 0.0167}}}, runs), runs)
    assert e["verdict"] == verdict.REPRODUCED and e["convergence"]["r/rnn"]["summary"] == "stalled 3/3"


def test_a_claim_about_its_budget_is_not_gated_and_says_why():
    runs = {"r": _run("r", {"a": 2.0, "b": 1.0}, {"m": IMPROVING})}
    e = _judge(_entry({"a": {"run": "r", "key": "a", "rule": {"paired": {"than": "b", "better": "higher"}}},
                       "b": {"run": "r", "key": "b"}}, runs, about_budget=True), runs)
    assert e["unconverged"] == [] and e["convergence"]["r/m"]["why"] == "the claim is about its budget"
    from repro.report import budget_note
    assert budget_note(e) == "at equal budget (10 epochs): r"


def test_states_reach_the_record_tables():
    runs = {"r": _run("r", {"a_acc": 0.9}, {"a": dict(FLAT, metrics=["a_*"])})}
    e = _judge(_entry({"a_acc": {"run": "r", "key": "a_acc", "rule": {"at_least": 0.8}}}, runs), runs)
    rec = {"claims": {"X": dict(e, section="s", claim="c", n_seeds=3, seconds=1.0)}}
    assert record.rows(rec)[0]["convergence"] == "a: converged 3/3"
    assert "| a: converged 3/3 |" in record.verdict_table_md(rec)


# ---- suite fields --------------------------------------------------------------------------------

SUITE = {"suite": "s", "version": 1, "runs": [{"id": "r", "experiment": "e", "version": 1}],
         "claims": [{"id": "C1", "section": "s", "kind": "E", "source": "s", "claim": "c", "version": 1, "runs": ["r"],
                     "metrics": {"acc": {"claimed": 0.9, "rule": {"at_least": 0.9}}}}]}


def _load(tmp_path, **claim):
    raw = yaml.safe_load(yaml.safe_dump(SUITE))
    raw["claims"][0].update(claim)
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return load(p, check=False)


def test_about_budget_needs_a_one_line_reason(tmp_path):
    s = _load(tmp_path, about_budget={"reason": "'speeds up': epochs to a target"})
    assert s.claims[0].about_budget and s.claims[0].budget_reason == "'speeds up': epochs to a target"
    assert record.claim_entry(s.claims[0])["budget_reason"] == "'speeds up': epochs to a target"
    for bad in (True, {"reason": ""}, {"why": "x"}, "speed"):
        with pytest.raises(SuiteError, match="claim C1: field 'about_budget'"):
            _load(tmp_path, about_budget=bad)


def test_capability_only_on_a_judged_one_sided_line(tmp_path):
    s = _load(tmp_path, metrics={"acc": {"claimed": 0.9, "rule": {"at_least": 0.9}, "capability": True}})
    assert s.claims[0].metrics[0].capability
    with pytest.raises(SuiteError, match="field 'metrics.c.capability'"):
        _load(tmp_path, metrics={"acc": {"claimed": 0.9, "rule": {"at_least": 0.9}}, "b": {},
                                 "c": {"rule": {"paired": {"than": "acc", "better": "higher"}}, "capability": True}})


def test_every_claim_about_its_budget_is_listed_with_its_reason():
    from repro.report import budget_claims, budget_claims_md

    items = budget_claims()
    ids = {i["id"] for i in items}
    assert {"REG-BATCHNORM", "OPT-MOMENTUM", "TRF-PARALLEL"} <= ids
    assert not {"GAN-DCGAN", "LSTM-LONGDEP", "RNN-BPTT"} & ids                 # their wording is not about budget
    assert all(i["reason"] and "\n" not in i["reason"] for i in items)
    assert budget_claims_md(items).count("\n") == len(items)


def test_runner_records_a_convergence_entry_naming_metrics_the_experiment_did_not_return():
    from repro import registry, runner

    def bad(*, seed: int):
        return registry.Result(metrics={"a_loss": 0.1},
                               convergence={"m": C.check([1, 0.5, 0.3, 0.3, 0.3], budget="5", metrics=["b_*"])})

    def good(*, seed: int):
        return registry.Result(metrics={"a_loss": 0.1},
                               convergence={"m": C.check([1, 0.5, 0.3, 0.3, 0.3], budget="5", metrics=["a_*"])})

    registry.load_all()
    registry.EXPERIMENTS.update({"_conv_bad": bad, "_conv_good": good})
    try:
        out = runner.run_unit("_conv_bad", 0, {})
        assert out["error"] == "experiment '_conv_bad': convergence entry 'm' names metric 'b_*', which matches " \
                               "none the experiment returned"
        assert runner.run_unit("_conv_good", 0, {})["error"] is None
    finally:
        for name in ("_conv_bad", "_conv_good"):
            registry.EXPERIMENTS.pop(name, None)
