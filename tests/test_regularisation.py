"""The regularisation experiments' building blocks (REG-DROPOUT, REG-EARLYSTOP, REG-AUGMENT,
REG-BATCHNORM): the stop rule against Keras' own EarlyStopping, the label noise, the training loop
(dropout masks drawn anew per step, batch-norm statistics updated, the same start for paired
sides), the augmentation (label-preserving, training only), and each experiment end to end on a
tiny slice of real MNIST."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from repro.experiments import regularisation as reg


# ------------------------------------------------------------------------------------- stop rule

def _keras_stop(curve, patience, monitor, mode):
    """Where Keras' EarlyStopping stops on a given curve, fed epoch by epoch."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    cb = keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience, restore_best_weights=True)
    cb.set_model(model)
    model.stop_training = False
    cb.on_train_begin()
    ran = len(curve)
    for epoch, v in enumerate(curve):
        cb.on_epoch_end(epoch, {monitor: v})
        if model.stop_training:
            ran = epoch + 1
            break
    return ran, cb.best_epoch + 1


@pytest.mark.parametrize("seed", range(6))
def test_stop_rule_is_keras_early_stopping(seed):
    rng = np.random.default_rng(seed)
    # a rising-then-falling accuracy with noise and ties (rounded), as validation accuracy on 500 images
    t = np.arange(60)
    acc = np.round(0.8 - 0.0004 * (t - 12) ** 2 + rng.normal(0, 0.02, len(t)), 2)
    for patience in (1, 3, 10):
        assert reg.stop_epoch(acc, patience, higher=True) == _keras_stop(acc, patience, "val_accuracy", "max")
        assert reg.stop_epoch(-acc, patience, higher=False) == _keras_stop(-acc, patience, "val_loss", "min")


def test_stop_rule_runs_to_the_end_on_a_rising_curve():
    assert reg.stop_epoch([0.1, 0.2, 0.3, 0.4], 2) == (4, 4)
    assert reg.stop_epoch([0.5, 0.4, 0.4, 0.6], 2) == (3, 1)       # two epochs without improvement
    assert reg.stop_epoch([0.5, 0.5, 0.6, 0.4], 2) == (4, 3)       # a tie is no improvement


# ----------------------------------------------------------------------------------- label noise

def test_label_noise_flips_the_share_asked_to_other_classes_uniformly():
    y = np.random.default_rng(0).integers(0, 10, 20_000)
    noisy, flipped = reg._flip_labels(y, 0.3, np.random.default_rng(1))
    assert flipped.sum() == 6000
    assert np.all(noisy[flipped] != y[flipped]) and np.all(noisy[~flipped] == y[~flipped])
    offsets = np.bincount((noisy[flipped] - y[flipped]) % 10, minlength=10)
    assert offsets[0] == 0
    assert np.all(np.abs(offsets[1:] / 6000 - 1 / 9) < 0.02)


# --------------------------------------------------------------------------------- training loop

def _toy(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 784)).astype("float32")
    y = (x[:, :392].mean(1) > x[:, 392:].mean(1)).astype("int32")
    return x, y


def test_trainer_learns_and_reports_per_image_results():
    x, y = _toy()
    keras.utils.set_random_seed(0)
    tr = reg.Trainer(reg._mlp(32, 1), keras.optimizers.Adam(1e-2), x, y, batch_size=50)
    before = tr.evaluate(x, y)
    losses = [tr.run(np.random.default_rng(e).permutation(len(x))) for e in range(15)]
    after = tr.evaluate(x, y)
    assert losses[-1] < 0.5 * losses[0] and after["loss"] < before["loss"]
    assert after["acc"] == pytest.approx(after["correct"].mean()) and after["correct"].shape == (len(x),)
    assert after["loss"] == pytest.approx(after["per_loss"].mean())
    # the loss is the cross-entropy Keras computes
    ref = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, tr.model(x))
    assert after["loss"] == pytest.approx(float(ref), rel=1e-4)


def test_dropout_draws_a_new_mask_every_step_inside_the_loop():
    x, y = _toy(64)
    keras.utils.set_random_seed(0)
    model = reg._mlp(16, 1, hidden_dropout=0.5)
    # learning rate 0: the weights stay put, so the batch losses differ only through the masks
    tr = reg.Trainer(model, keras.optimizers.SGD(0.0), x, y, batch_size=64)
    same_batch = np.tile(np.arange(64), 4)           # the same 64 images four times: 4 steps
    one = [tr.run(np.arange(64)) for _ in range(4)]
    assert len(set(np.round(one, 7))) == 4           # a different mask per call ...
    dense = reg.dense_weights(model)
    keras.utils.set_random_seed(0)
    plain = reg._mlp(16, 1)
    reg.set_dense_weights(plain, dense)
    tr2 = reg.Trainer(plain, keras.optimizers.SGD(0.0), x, y, batch_size=64)
    assert len({round(tr2.run(np.arange(64)), 7) for _ in range(3)}) == 1   # ... and none without dropout
    # ... and per step within one call: the seed state moves on once per step (4 steps, 4 moves)
    state = model.layers[-2].seed_generator.state
    s0 = state.numpy().astype(np.int64)
    tr.run(np.arange(64))
    s1 = state.numpy().astype(np.int64)
    tr.run(same_batch)
    s4 = state.numpy().astype(np.int64)
    assert np.any(s1 != s0)
    np.testing.assert_array_equal(s4 - s1, 4 * (s1 - s0))


def test_batchnorm_statistics_are_updated_in_training_only():
    x, y = _toy(128)
    model = reg._mlp(8, 2, activation="sigmoid", batchnorm=True)
    bn = [lay for lay in model.layers if isinstance(lay, keras.layers.BatchNormalization)]
    assert len(bn) == 2
    tr = reg.Trainer(model, keras.optimizers.SGD(0.1), x, y, batch_size=32)
    tr.evaluate(x, y)
    assert np.allclose(bn[0].moving_mean.numpy(), 0)
    tr.run(np.arange(128))
    assert not np.allclose(bn[0].moving_mean.numpy(), 0)


def test_a_new_learning_rate_takes_effect_without_a_new_trace():
    x, y = _toy(64)
    model = reg._mlp(8, 1)
    opt = keras.optimizers.SGD(0.0)
    tr = reg.Trainer(model, opt, x, y, batch_size=32)
    w0 = [w.copy() for w in model.get_weights()]
    tr.run(np.arange(64))
    assert all(np.array_equal(a, b) for a, b in zip(w0, model.get_weights()))
    opt.learning_rate = 0.5
    tr.run(np.arange(64))
    assert not all(np.array_equal(a, b) for a, b in zip(w0, model.get_weights()))
    assert tr._run.experimental_get_tracing_count() == 1


def test_paired_sides_start_from_the_same_dense_weights():
    keras.utils.set_random_seed(1)
    a = reg._mlp(16, 3, activation="sigmoid")
    keras.utils.set_random_seed(2)
    b = reg._mlp(16, 3, activation="sigmoid", batchnorm=True)
    reg.set_dense_weights(b, reg.dense_weights(a))
    for wa, wb in zip(reg.dense_weights(a), reg.dense_weights(b)):
        for u, v in zip(wa, wb):
            np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError):
        reg.set_dense_weights(reg._mlp(16, 2), reg.dense_weights(a))


# ---------------------------------------------------------------------------------- augmentation

def _digit():
    im = np.zeros((28, 28), "float32")
    im[6:22, 5:9] = 1.0            # a bar left of centre with a flag: far from its mirror image
    im[6:9, 9:13] = 1.0
    return im


def test_augmentation_keeps_the_digit_near_its_place_and_never_mirrors_it():
    im = _digit()
    aug = reg.make_augment(2.0, 10.0, seed=0)
    out = aug(np.repeat(im.reshape(1, 784), 200, axis=0)).numpy().reshape(-1, 28, 28)
    assert out.shape == (200, 28, 28)
    assert len({o.tobytes() for o in out}) > 150                   # a new variant per image
    cols = np.arange(28)
    com = (out.sum(1) * cols).sum(1) / out.sum((1, 2))
    com0 = (im.sum(0) * cols).sum() / im.sum()
    assert np.all(np.abs(com - com0) < 3.5)                        # shifts of ≤ 2 px, small rotations
    mirrored = im[:, ::-1].ravel()
    for o in out:                                                  # closer to the digit than to its mirror
        assert o.ravel() @ im.ravel() > o.ravel() @ mirrored
    # no change without shifts or rotations
    same = reg.make_augment(0.0, 0.0, seed=0)(im.reshape(1, 784)).numpy()
    np.testing.assert_allclose(same, im.reshape(1, 784), atol=1e-6)


# ------------------------------------------------------------------------- the experiments, tiny

def test_dropout_overfit_end_to_end():
    r = reg.dropout_overfit(seed=0, train_size=200, test_size=300, hidden=32, epochs=3, curve_every=1)
    for side in ("baseline", "dropout"):
        for m in ("train_acc", "test_acc", "test_loss", "gap", "loss_gap"):
            assert np.isfinite(r.metrics[f"{side}_{m}"])
    assert r.metrics["baseline_gap"] == pytest.approx(r.metrics["baseline_train_acc"] - r.metrics["baseline_test_acc"])
    assert r.metrics["dropout_test_acc_minus_baseline"] == pytest.approx(
        r.metrics["dropout_test_acc"] - r.metrics["baseline_test_acc"])
    assert set(r.stderr) == {"dropout_test_acc_minus_baseline", "dropout_test_loss_minus_baseline"}
    # this seed's own test images (per seed); the paired error of each comparison from the same images
    assert not r.problems() and r.test_set["dropout_test_acc"] == "per_seed"
    assert r.paired_se["dropout_test_acc|baseline_test_acc"] == r.stderr["dropout_test_acc_minus_baseline"]
    assert set(r.convergence) == {"baseline", "dropout"} and r.artifacts


def test_seeds_draw_other_training_and_test_images():
    a = reg._mnist(0, 50, 50)
    b = reg._mnist(1, 50, 50)
    assert not np.array_equal(a[0], b[0]) and not np.array_equal(a[2], b[2])


def test_early_stopping_end_to_end_is_the_baselines_trajectory_cut_short():
    r = reg.early_stopping(seed=0, train_size=200, val_size=100, test_size=300, hidden=32, epochs=6, patience=2)
    m = r.metrics
    assert 1 <= m["earlystop_restored_epoch"] <= m["earlystop_epochs_trained"] <= 6
    assert m["baseline_test_err_rise"] >= 0
    if m["earlystop_restored_epoch"] == 6:           # restored the last epoch: the baseline's own weights
        assert m["earlystop_test_acc"] == m["baseline_test_acc"]
    assert r.convergence["earlystop"]["converged"] == (m["earlystop_epochs_trained"] < 6) or \
        "validation accuracy" in r.convergence["earlystop"]["rule"]


def test_augmentation_end_to_end():
    r = reg.augmentation(seed=0, train_size=200, test_size=300, hidden=32, epochs=2)
    assert r.metrics["augment_test_acc_minus_baseline"] == pytest.approx(
        r.metrics["augment_test_acc"] - r.metrics["baseline_test_acc"])
    assert set(r.convergence) == {"baseline", "augment"}


def test_batchnorm_speed_end_to_end():
    r = reg.batchnorm_speed(seed=0, train_size=300, val_size=100, check_size=100, depth=3, hidden=16,
                            learning_rates=[0.1, 1.0], epochs=2, target_accuracy=0.5, checks_per_epoch=2)
    m = r.metrics
    for side in ("baseline", "batchnorm"):
        assert m[f"{side}_learning_rate"] in (0.1, 1.0)
        assert 0 < m[f"{side}_epochs_to_target"] <= 2
        assert m[f"{side}_cpu_s_to_target"] > 0
        assert r.convergence[side]["converged"] == m[f"{side}_reached_target"]
