"""The training suite's building blocks: the chapter's optimizer formulas step by step against Keras'
built-ins (where they differ, the measured difference is the documented one), the models, and the
measurement helpers, on tiny data made here."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from repro.experiments import gradients
from repro.models.mlp import deep_mlp, plain_or_residual
from repro.optim import chapter_optimizers as co

STEPS = 30


def _gradients(scale: float = 1.0, size: int = 16, seed: int = 3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=size).astype("float32"), (scale * rng.normal(size=(STEPS, size))).astype("float32")


def _traj(opt, start, grads):
    return co._trajectory(opt, start, grads)


@pytest.fixture(scope="module")
def diffs() -> dict[str, float]:
    return co.keras_differences(steps=STEPS, seed=1)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam"])
def test_each_formula_matches_keras_once_conventions_agree(diffs, name):
    assert diffs[f"{name}_matched_vs_matched"] < 1e-5


def test_rules_that_are_keras_defaults_as_written(diffs):
    # SGD, RMSprop (rho 0.9) and Adam (on gradients of order 1) are Keras' defaults as written.
    for name in ("sgd", "rmsprop", "adam"):
        assert diffs[f"{name}_literal_vs_default"] < 1e-5, name


def test_momentum_g0_is_the_raw_gradient_a_documented_difference():
    start, grads = _gradients()
    eta, alpha = 0.01, 0.9
    chapter = _traj(co.ChapterMomentum(eta, alpha), start, grads)
    keras_ = _traj(keras.optimizers.SGD(eta, momentum=alpha), start, grads)
    # the first step ignores η
    np.testing.assert_allclose(chapter[0], start - grads[0], rtol=1e-6)
    # afterwards the gap is (1 − η)·∇E(0)·Σ_{t<T} α^t, exactly
    for t in (0, 9, STEPS - 1):
        expected = -(1 - eta) * grads[0] * sum(alpha ** k for k in range(t + 1))
        np.testing.assert_allclose(chapter[t] - keras_[t], expected, rtol=1e-3, atol=1e-5)


def test_nesterov_plus_sign_looks_backward_and_minus_sign_is_keras():
    start, grads = _gradients()
    # With a gradient that does not depend on w, the rule is the same look-ahead bookkeeping: check
    # the literal rule by hand on E = w²/2 (∇E(w_pre) = w_pre) instead.
    eta, alpha, beta = 0.1, 0.9, 0.9
    opt = co.ChapterNesterov(eta, alpha, beta)
    v = keras.Variable(start.copy())
    w, g = start.astype("float64"), np.zeros_like(start, dtype="float64")
    for _ in range(STEPS):
        w_pre = w + beta * g                       # the chapter's pre-update, + sign
        np.testing.assert_allclose(v.numpy(), w_pre, rtol=1e-4, atol=1e-5)
        opt.apply_gradients([(keras.ops.convert_to_tensor(v.numpy()), v)])
        g = alpha * g + eta * w_pre
        w = w - g
    opt.finalize_variable_values([v])              # the model ends at w, not at the look-ahead point
    np.testing.assert_allclose(v.numpy(), w, rtol=1e-4, atol=1e-5)
    d = co.keras_differences(steps=STEPS, seed=1, names=("nesterov",))
    assert d["nesterov_literal_vs_default"] > 0.01 and d["nesterov_matched_vs_matched"] < 1e-5


def test_adagrad_initial_accumulator_is_the_difference():
    start, grads = _gradients()
    eta, eps = 0.001, 1e-7
    chapter = _traj(co.ChapterAdagrad(eta), start, grads)
    default = _traj(keras.optimizers.Adagrad(eta), start, grads)
    matched = _traj(keras.optimizers.Adagrad(eta, initial_accumulator_value=0.0), start, grads)
    np.testing.assert_allclose(chapter, matched, atol=1e-6)
    # step 1: η·g/sqrt(g² + ε) against Keras' η·g/sqrt(0.1 + g² + ε)
    g = grads[0].astype("float64")
    expected = -eta * g / np.sqrt(g ** 2 + eps) + eta * g / np.sqrt(0.1 + g ** 2 + eps)
    np.testing.assert_allclose(chapter[0] - default[0], expected, rtol=1e-3, atol=1e-7)
    assert np.max(np.abs(chapter[0] - default[0])) > 1e-4


def test_adadelta_keras_default_is_the_chapter_rule_times_0_001():
    _, grads = _gradients()
    start = np.zeros(grads.shape[1], dtype="float32")   # steps of ~1e-6: keep float32 rounding out
    chapter = _traj(co.ChapterAdadelta(rho=0.95), start, grads)
    default = _traj(keras.optimizers.Adadelta(rho=0.95), start, grads)
    matched = _traj(keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95), start, grads)
    np.testing.assert_allclose(chapter, matched, atol=1e-6)
    np.testing.assert_allclose(default - start, 0.001 * (chapter - start), rtol=1e-3, atol=1e-9)


def test_adam_epsilon_placement_matters_for_tiny_gradients():
    start, grads = _gradients(scale=1e-5)
    eta, beta, eps = 0.001, 0.999, 1e-7
    chapter = _traj(co.ChapterAdam(eta), start, grads)
    default = _traj(keras.optimizers.Adam(eta), start, grads)
    g = grads[0].astype("float64")
    # step 1: m̂ = g, n̂ = g²; chapter η·g/(|g| + ε), Keras η·g/(|g| + ε/sqrt(1 − β))
    np.testing.assert_allclose(chapter[0] - start, -eta * g / (np.abs(g) + eps), rtol=1e-3)
    np.testing.assert_allclose(default[0] - start, -eta * g / (np.abs(g) + eps / np.sqrt(1 - beta)), rtol=1e-3)
    assert np.max(np.abs(chapter - default)) > 1e-5


def test_lr_scale_rows_are_independent_runs():
    start = np.array([[1.0, -2.0]] * 3, dtype="float32")
    grads = np.random.default_rng(0).normal(size=(10, 3, 2)).astype("float32")
    scales = [0.1, 1.0, 10.0]
    batched = _traj(co.make("adam", lr_scale=np.array(scales)[:, None]), start, grads)
    for j, m in enumerate(scales):
        single = _traj(co.make("adam", m), start[j], grads[:, j])
        np.testing.assert_allclose(batched[:, j], single, rtol=1e-5, atol=1e-6)


def test_sigmoid_gradients_shrink_towards_the_input_and_relu_keeps_them():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((64, 784)).astype("float32")
    y = np.arange(64, dtype="int32") % 10
    sig = gradients._grad_norms(deep_mlp(10, 16, "sigmoid"), x, y)
    relu = gradients._grad_norms(deep_mlp(10, 16, "relu", init="he_uniform"), x, y)
    assert len(sig) == 10 and sig[0] / sig[-1] < 1e-3
    assert 0.05 < relu[0] / relu[-1] < 20


def test_plain_and_residual_pairs_have_the_same_weights():
    plain, res = plain_or_residual(8, 16, residual=False), plain_or_residual(8, 16, residual=True)
    assert plain.count_params() == res.count_params()
    assert sum(isinstance(layer, keras.layers.Dense) for layer in res.layers) == 8
    with pytest.raises(ValueError):
        plain_or_residual(7, 16, residual=True)
