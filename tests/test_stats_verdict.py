import math

import pytest

from repro import stats, verdict


def test_mean_std_ci_match_hand_computation():
    xs = [1.0, 2.0, 3.0]
    assert stats.mean(xs) == 2.0
    assert stats.std(xs) == pytest.approx(1.0)
    lo, hi = stats.ci95(xs)
    half = 4.303 * 1.0 / math.sqrt(3)
    assert (lo, hi) == pytest.approx((2.0 - half, 2.0 + half))


def test_single_value_has_no_spread():
    assert stats.std([0.3]) is None and stats.ci95([0.3]) is None
    assert stats.summary([0.3]) == {"n": 1, "mean": 0.3, "std": None, "ci95": None}


def test_t_quantile_falls_back_to_normal_for_many_seeds():
    assert stats.t975(1) == 12.706 and stats.t975(100) == 1.96
    with pytest.raises(ValueError):
        stats.t975(0)


@pytest.mark.parametrize("rule,values,status", [
    ({"equal": [28, 28, 6]}, [[28, 28, 6]], "pass"),
    ({"equal": [28, 28, 6]}, [[28, 28, 6], [27, 28, 6]], "fail"),
    ({"equal": 156}, [156], "pass"),
    ({"equal": 156}, [156.0000000001], "pass"),
    ({"equal": True}, [False], "fail"),
    ({"at_most": 0.01}, [0.009, 0.0105], "pass"),       # the mean 0.00975 decides
    ({"at_most": 0.01}, [0.011, 0.0105], "fail"),
    ({"at_least": 0.5}, [0.49], "fail"),
    ({"approx": 0.3, "tol": 0.05}, [0.34], "pass"),
    ({"approx": 0.3, "tol": 0.05}, [0.36], "fail"),
    ({"between": [1, 2]}, [1.5], "pass"),
    ({"between": [1, 2]}, [2.5], "fail"),
])
def test_rules(rule, values, status):
    verdict.check_rule(rule)
    assert verdict.judge(rule, values)["status"] == status


def test_paired_rule_uses_the_interval_of_the_differences():
    rule = {"paired": {"than": "rnn", "better": "higher"}}
    clear = verdict.judge(rule, [0.70, 0.71, 0.72], {"rnn": [0.60, 0.61, 0.62]})
    assert clear["status"] == "pass" and clear["advantage"]["mean"] == pytest.approx(0.10)
    noisy = verdict.judge(rule, [0.70, 0.55, 0.72], {"rnn": [0.60, 0.61, 0.62]})
    assert noisy["status"] == "weak"          # ahead on average, but the interval includes 0
    wrong = verdict.judge(rule, [0.50, 0.51, 0.52], {"rnn": [0.60, 0.61, 0.62]})
    assert wrong["status"] == "fail"
    lower = verdict.judge({"paired": {"than": "b", "better": "lower"}}, [1.0, 1.1], {"b": [2.0, 2.05]})
    assert lower["status"] == "pass"
    one_seed = verdict.judge(rule, [0.7], {"rnn": [0.6]})
    assert one_seed["status"] == "weak"


@pytest.mark.parametrize("bad", [
    {}, {"at_most": "x"}, {"approx": 1.0}, {"between": [2, 1]}, {"at_most": 1, "at_least": 0},
    {"paired": {"than": "b"}}, {"equal": 1, "tol": 0.1}, "at_most 1",
])
def test_malformed_rules_are_refused(bad):
    with pytest.raises(verdict.RuleError):
        verdict.check_rule(bad)


def test_combine():
    assert verdict.combine(["pass", "info"]) == verdict.REPRODUCED
    assert verdict.combine(["fail", "fail"]) == verdict.CONTRADICTED
    assert verdict.combine(["pass", "fail"]) == verdict.PARTIAL
    assert verdict.combine(["weak"]) == verdict.PARTIAL                 # trends the right way, not shown
    assert verdict.combine(["weak", "fail"]) == verdict.CONTRADICTED    # nothing passes, something fails
    assert verdict.combine(["pass", "weak", "fail"]) == verdict.PARTIAL
    assert verdict.combine(["pass"], checkable=False) == verdict.NOT_CHECKABLE
    # a precondition that does not pass makes the judged parts meaningless, whichever way they went
    assert verdict.combine(["fail"], preconditions=["fail"]) == verdict.INCONCLUSIVE
    assert verdict.combine(["pass"], preconditions=["weak"]) == verdict.INCONCLUSIVE
    assert verdict.combine(["fail"], preconditions=["pass"]) == verdict.CONTRADICTED
    assert verdict.direction({"at_most": 1}) == "lower" and verdict.direction({"equal": 1}) is None
