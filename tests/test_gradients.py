"""RELU-GRAD's op-level timing and RESNET-GRAD's plain/residual nets (repro/models/resmlp.py)."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from repro import convergence
from repro.experiments import gradients
from repro.models import resmlp
from repro.models.mlp import plain_or_residual


def _batch(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 784), dtype=np.float32), (np.arange(n) % 10).astype("int32")


def test_resmlp_computes_what_the_keras_pair_computes():
    """Same weights in the Keras plain_or_residual model and in resmlp: the same training-mode output."""
    x, _ = _batch()
    for residual in (False, True):
        p = resmlp.init(8, 16, np.random.default_rng(1))
        rng = np.random.default_rng(2)                       # non-trivial BN parameters and biases
        for k in ("b_in", "g_in", "be_in", "b_blk", "g_blk", "be_blk", "b_out"):
            p[k] = (p[k] + 0.3 * rng.standard_normal(p[k].shape)).astype("float32")
        model = plain_or_residual(8, 16, residual=residual)
        named = {lay.name: lay for lay in model.layers}
        named["dense_1"].set_weights([p["w_in"], p["b_in"]])
        bn = named["dense_1_bn"]
        bn.set_weights([p["g_in"], p["be_in"], *bn.get_weights()[2:]])
        for b in range(3):
            for j, part in enumerate("ab"):
                named[f"block{b + 1}_{part}"].set_weights([p["w_blk"][b, j], p["b_blk"][b, j]])
                bn = named[f"block{b + 1}_{part}_bn"]
                bn.set_weights([p["g_blk"][b, j], p["be_blk"][b, j], *bn.get_weights()[2:]])
        named["dense_out"].set_weights([p["w_out"], p["b_out"]])
        want = model(x, training=True).numpy()
        logits, _ = resmlp.forward(resmlp.to_tensors(p), tf.constant(x), residual=residual, bn=True)
        np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), want, atol=2e-5)


def test_shortcut_carries_the_gradient_unchanged_when_the_blocks_add_nothing():
    """The chapter's ∂E/∂x^l = ∂E/∂x^L (1 + ∂ΣF/∂x^l): with F ≡ 0 (the blocks' last γ = β = 0) the
    gradient passes every block unchanged. (He et al.'s block applies a ReLU after the addition, whose
    zero derivative at 0 masks the units that are 0 once, at the last block: so x^1 .. x^(L-1) agree.)
    The plain net with the same weights passes nothing."""
    x, y = _batch()
    p = resmlp.init(20, 16, np.random.default_rng(0))
    p["g_blk"][:, 1] = 0.0
    dx = resmlp.Net(residual=True, bn=True, jit=False).gradients(resmlp.to_tensors(p), x, y)[1].numpy()
    assert len(dx) == 10                                     # x^1 .. x^10 (9 blocks + the first)
    np.testing.assert_allclose(dx[:-1], dx[-2], rtol=1e-5)
    assert dx[-1] >= dx[-2] > 0
    plain = resmlp.Net(residual=False, bn=True, jit=False).gradients(resmlp.to_tensors(p), x, y)[1].numpy()
    assert np.all(plain[:-1] == 0)                           # F ≡ 0 cuts the plain net's path to its input


def test_depth_and_shapes():
    with pytest.raises(ValueError):
        resmlp.init(7, 16, np.random.default_rng(0))
    a, b = resmlp.init(8, 16, np.random.default_rng(0)), resmlp.init(56, 16, np.random.default_rng(0))
    assert a["w_blk"].shape == (3, 2, 16, 16) and b["w_blk"].shape == (27, 2, 16, 16)
    x, y = _batch()
    w, dx = resmlp.Net(residual=False, bn=False, jit=False).gradients(resmlp.to_tensors(b), x, y)
    assert w.shape == (56,) and dx.shape == (28,)            # one norm per weight layer, per block input


def test_schedule_warms_up_then_cuts_twice():
    lr = resmlp.schedule(100, 0.1, warmup=0.1)
    np.testing.assert_allclose(lr[:10], 0.1 * np.arange(1, 11) / 10, rtol=1e-6)
    np.testing.assert_allclose(lr[10:50], 0.1, rtol=1e-6)
    np.testing.assert_allclose(lr[50:75], 0.01, rtol=1e-6)
    np.testing.assert_allclose(lr[75:], 0.001, rtol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_a_few_steps_lower_the_loss(jit):
    x, y = _batch(128)
    net = resmlp.Net(residual=True, bn=True, jit=jit)
    p = resmlp.to_tensors(resmlp.init(8, 16, np.random.default_rng(0)))
    v = {k: tf.zeros_like(t) for k, t in p.items()}
    before = float(net.evaluate(p, x, y)[0])
    for _ in range(20):
        p, v, _ = net.step(p, v, x, y, np.float32(0.05))
    assert float(net.evaluate(p, x, y)[0]) < 0.5 * before


def test_activation_speed_times_every_activation_in_rotation():
    r = gradients.activation_speed(seed=0, elements=10_000, rounds=3, warmup=1)
    m = r.metrics
    for a in ("relu", "sigmoid", "tanh"):
        assert m[f"{a}_ms"] > 0 and m[f"{a}_ms_min"] <= m[f"{a}_ms"]
    assert 0 <= m["relu_faster_than_sigmoid_share"] <= 1 and m["sigmoid_over_relu"] > 0
    assert "activation_speed.png" in r.artifacts


def test_residual_depth_returns_what_the_claim_judges_and_gates_on_convergence():
    keras.utils.set_random_seed(0)
    r = gradients.residual_depth(seed=0, depths=[4, 6, 8], train_size=256, probe_size=64, epochs=4,
                                 learning_rates=[0.03, 0.1], xla=False)
    m = r.metrics
    for k in ("plain_loss_deep", "plain_loss_shallow", "res_loss_deep_minus_shallow", "res_minus_plain_loss_deep",
              "plain_log10_grad_ratio_init_deep", "res_nobn_log10_dx_ratio_init_deep",
              "res_log10_dx_ratio_trained_deep", "plain_lr_deep"):
        assert np.isfinite(m[k]), k
    assert m["res_loss_deep_minus_shallow"] == pytest.approx(m["res_loss_8"] - m["res_loss_4"])
    assert m["plain_lr_4"] in (0.03, 0.1) and len(m["plain_grid_losses_4"]) == 2
    assert set(r.convergence) == {"plain_4", "plain_8", "res_4", "res_8"}     # only the judged nets
    assert "base rate" in r.convergence["res_8"]["budget"] and isinstance(m["res_converged_6"], bool)
    assert "plain_nobn_loss_4" not in m                      # without batch norm: gradients only, unless asked


def test_relu_sparsity_is_measured_after_training_on_held_out_digits(monkeypatch):
    """RELU-GRAD v4 judges the share of exact zeros after training (at initialisation it is ~50% by
    construction); the trained value comes from the trained model, so it can move either way."""
    rng = np.random.default_rng(0)

    def fake_mnist(train_size, test_size, seed):
        x = rng.random((train_size, 784), dtype=np.float32)
        y = (x[:, :10].argmax(axis=1)).astype("int32")
        return x, y, x[:test_size].copy(), y[:test_size].copy()

    monkeypatch.setattr(gradients, "_mnist", fake_mnist)
    r = gradients.layer_gradients(seed=0, variants=["relu", "sigmoid"], train_size=256, test_size=128, probe_size=64,
                                  epochs=1, learning_rate=0.05)
    assert not convergence.problems(r.convergence, r.metrics)      # the sigmoid names no zero fraction
    m = r.metrics
    assert 0.35 < m["relu_zero_fraction"] < 0.65                  # symmetric start: about half
    assert 0.0 <= m["relu_zero_fraction_trained"] <= 1.0 and 0.0 <= m["relu_dead_fraction_trained"] <= 1.0
    assert "relu_zero_fraction_trained" in r.convergence["relu"]["metrics"]
    # a ReLU layer pushed to be silent everywhere reads as all zeros and all dead
    model = gradients.deep_mlp(3, 8, "relu", init="he_uniform")
    for lay in model.layers:
        if isinstance(lay, keras.layers.Dense) and lay.name != "dense_3":
            lay.bias.assign(-100.0 * np.ones(lay.bias.shape, "float32"))
    acts = gradients._activations(model, rng.random((16, 784), dtype=np.float32))
    assert all(np.all(a == 0.0) for a in acts)
