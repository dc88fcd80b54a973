import math

import pytest

from repro import convergence, stats, verdict


def test_mean_std_ci_match_hand_computation():
    xs = [1.0, 2.0, 3.0]
    assert stats.mean(xs) == 2.0
    assert stats.std(xs) == pytest.approx(1.0)
    lo, hi = stats.ci95(xs)
    half = 4.303 * 1.0 / math.sqrt(3)
    assert (lo, hi) == pytest.approx((2.0 - half, 2.0 + half), abs=1e-3)


def test_single_value_has_no_spread():
    assert stats.std([0.3]) is None and stats.ci95([0.3]) is None
    assert stats.summary([0.3]) == {"n": 1, "mean": 0.3, "std": None, "ci95": None}


@pytest.mark.parametrize("df,q", [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042), (1000, 1.962)])
def test_t_quantiles_match_the_table(df, q):
    assert stats.t975(df) == pytest.approx(q, abs=1e-3)
    with pytest.raises(ValueError):
        stats.t975(0)


def test_a_split_alpha_gives_a_wider_interval():
    # three looks: each decides at 1 - 0.05/3 = 98.33%; t_{0.99167, 2} = 7.65 (a table value)
    assert stats.t_quantile(1 - 0.05 / 3, 2) == pytest.approx(7.65, abs=0.01)
    assert stats.interval([1, 2, 3], 1 - 0.05 / 3)[1] > stats.ci95([1, 2, 3])[1]


def test_test_sampling_error_widens_the_interval_and_does_not_average_away():
    xs = [0.90, 0.91, 0.92]
    plain = stats.ci95(xs)
    wide = stats.ci95(xs, se=[0.01, 0.01, 0.01])
    assert wide[0] <= plain[0] and wide[1] >= plain[1]
    # the test-set part is not divided by the seed count: half-width >= z * se (it is known, so
    # it is not multiplied by t with n - 1 df: Welch-Satterthwaite df, see test_intervals)
    assert (wide[1] - wide[0]) / 2 >= stats.z_quantile(0.95) * 0.01
    assert stats.binomial_se(0.99, 10000) == pytest.approx(math.sqrt(0.99 * 0.01 / 10000))


@pytest.mark.parametrize("rule,values,status", [
    ({"equal": [28, 28, 6]}, [[28, 28, 6]], "pass"),
    ({"equal": [28, 28, 6]}, [[28, 28, 6], [27, 28, 6]], "fail"),
    ({"equal": 156}, [156.0000000001], "pass"),
    ({"equal": True}, [False], "fail"),
    # the interval decides, not the mean
    ({"at_most": 0.01}, [0.0090, 0.0091, 0.0092], "pass"),
    ({"at_most": 0.01}, [0.009, 0.0105, 0.0098], "undecided"),   # mean below the line, interval across it
    ({"at_most": 0.01}, [0.0110, 0.0111, 0.0112], "fail"),
    ({"at_least": 0.5}, [0.49], "undecided"),                    # one seed: no interval
    ({"approx": 0.3, "tol": 0.05}, [0.30, 0.31, 0.32], "pass"),
    ({"approx": 0.3, "tol": 0.05}, [0.40, 0.41, 0.42], "fail"),
    ({"approx": 0.3, "tol": 0.05}, [0.33, 0.36, 0.39], "undecided"),
    ({"between": [1, 2]}, [1.5, 1.5, 1.5], "pass"),
    ({"between": [1, 2]}, [2.5, 2.6, 2.7], "fail"),
])
def test_rules_three_way(rule, values, status):
    verdict.check_rule(rule)
    assert verdict.judge(rule, values)["status"] == status


def test_exact_values_from_a_deterministic_run_need_no_interval():
    assert verdict.judge({"at_most": 0.25}, [0.25], exact=True)["status"] == "pass"
    assert verdict.judge({"at_most": 0.25}, [0.26], exact=True)["status"] == "fail"


def test_paired_rule_uses_the_interval_of_the_differences():
    rule = {"paired": {"than": "rnn", "better": "higher"}}
    clear = verdict.judge(rule, [0.70, 0.71, 0.72], {"rnn": [0.60, 0.61, 0.62]})
    assert clear["status"] == "pass" and clear["advantage"]["mean"] == pytest.approx(0.10)
    noisy = verdict.judge(rule, [0.70, 0.55, 0.72], {"rnn": [0.60, 0.61, 0.62]})
    assert noisy["status"] == "undecided"     # ahead on average, but the interval includes 0
    dipped = verdict.judge(rule, [0.58, 0.66, 0.57], {"rnn": [0.60, 0.61, 0.62]})
    assert dipped["status"] == "undecided"    # behind on average, the interval includes 0: not a refutation
    wrong = verdict.judge(rule, [0.50, 0.51, 0.52], {"rnn": [0.60, 0.61, 0.62]})
    assert wrong["status"] == "fail"
    lower = verdict.judge({"paired": {"than": "b", "better": "lower"}}, [1.0, 1.1, 1.05], {"b": [2.0, 2.05, 2.1]})
    assert lower["status"] == "pass"
    assert verdict.judge(rule, [0.7], {"rnn": [0.6]})["status"] == "undecided"
    # with test-sampling errors on both sides the same gap can become undecided
    se = {"rnn": [0.05] * 3}
    assert verdict.judge(rule, [0.70, 0.71, 0.72], {"rnn": [0.60, 0.61, 0.62]}, stderr=[0.05] * 3,
                         other_stderr=se)["status"] == "undecided"


@pytest.mark.parametrize("bad", [
    {}, {"at_most": "x"}, {"approx": 1.0}, {"between": [2, 1]}, {"at_most": 1, "at_least": 0},
    {"paired": {"than": "b"}}, {"equal": 1, "tol": 0.1}, "at_most 1",
])
def test_malformed_rules_are_refused(bad):
    with pytest.raises(verdict.RuleError):
        verdict.check_rule(bad)


def test_combine():
    def v(parts, **kw):
        return verdict.combine({f"m{i}": p for i, p in enumerate(parts)}, **kw)[0]
    assert v(["pass", "info"]) == verdict.REPRODUCED
    assert v(["fail", "fail"]) == verdict.CONTRADICTED
    assert v(["fail", "undecided"]) == verdict.CONTRADICTED     # one part fails decisively, none passes
    assert v(["pass", "fail"]) == verdict.PARTIAL
    assert v(["pass", "undecided", "fail"]) == verdict.PARTIAL
    assert v(["undecided"]) == verdict.INCONCLUSIVE
    assert v(["pass", "undecided"]) == verdict.INCONCLUSIVE
    assert v(["pass"], checkable=False) == verdict.NOT_CHECKABLE
    assert v(["info"]) == verdict.NOT_CHECKABLE
    # a precondition that does not pass makes the judged parts meaningless, whichever way they went
    assert v(["fail"], preconditions={"p": "fail"}) == verdict.INCONCLUSIVE
    assert v(["pass"], preconditions={"p": "undecided"}) == verdict.INCONCLUSIVE
    assert v(["fail"], preconditions={"p": "pass"}) == verdict.CONTRADICTED
    assert v(["pass"], unconverged=["lenet on 3 of 3 seeds"]) == verdict.INCONCLUSIVE
    verdict_, deciding = verdict.combine({"a": "pass", "b": "fail"})
    assert "a" in deciding and "b" in deciding
    assert verdict.direction({"at_most": 1}) == "lower" and verdict.direction({"equal": 1}) is None


def test_convergence_rule_can_fail_and_pass():
    flat = convergence.check([1.0, 0.5, 0.3, 0.25, 0.249, 0.2489, 0.2488, 0.2488, 0.2488, 0.2488], budget="10 epochs")
    falling = convergence.check([1.0, 0.8, 0.6, 0.5, 0.4, 0.33, 0.27, 0.22, 0.18, 0.15], budget="10 epochs")
    assert flat["converged"] and not falling["converged"]
    assert "x the budget" in falling["estimate"]
    acc = convergence.check([0.5, 0.8, 0.9, 0.95, 0.97, 0.99, 1.0, 1.0, 1.0, 1.0], budget="10", higher=True)
    assert acc["converged"]
