"""REG-DROPOUT, REG-EARLYSTOP, REG-AUGMENT, REG-BATCHNORM (7.3, 其他优化方案): each regulariser against
the same network without it, in a regime where its claimed effect could show.

One experiment per claim, each in the regime that claim is about (see each docstring):

- ``dropout_overfit``: a wide MLP trained long on 1,000 real MNIST images, so the baseline over-fits;
- ``early_stopping``: the same kind of network on 1,000 images with 30% of their labels flipped, so
  that test error rises once the network starts memorising the wrong labels;
- ``augmentation``: 1,000 images with and without label-preserving shifts and small rotations;
- ``batchnorm_speed``: Ioffe & Szegedy's MNIST net (3 hidden layers of 100 sigmoid units) and an
  8-layer version of it, each side with its own learning rate from one grid, time to a target
  accuracy.

Every seed draws its own training (and validation) images from MNIST's 60,000 and its own 5,000 test
images from the 10,000. Paired sides start from the same initial weights (copied layer by layer),
see the same mini-batches in the same order and are scored on the same test images. Because the
test items are drawn anew per seed, their sampling error is part of the spread over seeds, which
the intervals already hold; a standard error on top (``Result.stderr``, meant for test items shared
by every seed) would count it twice, and would treat the two sides' errors on the same images as
independent. So the judged test metrics carry none; the paired per-image standard error of each
difference is reported beside them (``*_minus_baseline``).

Training runs in a small loop of our own instead of ``Model.fit``: one ``tf.function`` runs a whole
epoch of mini-batch steps, which costs about half the CPU time of ``fit`` for these small networks
(Keras' per-step overhead dominates them). The step is the ordinary one: the loss of
``model(x, training=True)``, its gradient, ``optimizer.apply_gradients``.
"""
from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from repro import convergence, data, plots, progress
from repro.registry import Result, experiment


# ---------------------------------------------------------------------------------------- helpers

def _mnist(seed: int, n_train: int, test_size: int | None = None):
    """``n_train`` random training images for this seed (flattened, in [0, 1]) and the test set."""
    (x, y), (xt, yt) = data.load_mnist(train_size=n_train, test_size=test_size, seed=seed)
    flat = lambda a: a.reshape(len(a), -1).astype("float32") / 255.0  # noqa: E731
    return flat(x), y.astype("int32"), flat(xt), yt.astype("int32")


def _mlp(hidden: int, depth: int, *, activation: str = "relu", input_dropout: float = 0.0,
         hidden_dropout: float = 0.0, batchnorm: bool = False) -> keras.Model:
    """784 → ``depth`` × ``hidden`` → 10 logits."""
    x_in = keras.Input((784,))
    x = layers.Dropout(input_dropout)(x_in) if input_dropout else x_in
    for _ in range(depth):
        x = layers.Dense(hidden)(x)
        if batchnorm:                     # before the non-linearity, as in Ioffe & Szegedy (2015)
            x = layers.BatchNormalization()(x)
        x = layers.Activation(activation)(x)
        if hidden_dropout:
            x = layers.Dropout(hidden_dropout)(x)
    return keras.Model(x_in, layers.Dense(10)(x))


def dense_weights(model: keras.Model) -> list[list[np.ndarray]]:
    return [lay.get_weights() for lay in model.layers if isinstance(lay, layers.Dense)]


def set_dense_weights(model: keras.Model, weights: list[list[np.ndarray]]) -> None:
    """Give ``model`` these Dense weights (same widths): paired sides start from one draw."""
    dense = [lay for lay in model.layers if isinstance(lay, layers.Dense)]
    if len(dense) != len(weights):
        raise ValueError(f"{len(dense)} Dense layers, {len(weights)} weight sets")
    for lay, w in zip(dense, weights):
        lay.set_weights(w)


FITS = 0.01   # convergence floor for a training cross-entropy: the right label gets >= 99% probability

class Trainer:
    """Mini-batch training of a Keras model on in-memory arrays, one ``tf.function`` call per pass.

    ``run(perm)`` makes one step per ``batch_size`` indices of ``perm`` (the last batch may be
    smaller) and returns the mean of the batch losses; ``augment`` (a function of an image batch)
    is applied to each training batch only. ``evaluate`` gives accuracy, mean loss, and per image
    whether it was classified right and its loss."""

    def __init__(self, model: keras.Model, optimizer, x: np.ndarray, y: np.ndarray, batch_size: int,
                 augment=None):
        self.model, self.optimizer = model, optimizer
        self.x, self.y = tf.constant(x), tf.constant(y)
        self.n = len(x)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        xs, ys, b = self.x, self.y, batch_size

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
        def run(perm):
            nb = (tf.shape(perm)[0] + b - 1) // b
            total = tf.constant(0.0)
            for i in tf.range(nb):
                idx = perm[i * b:(i + 1) * b]
                xb, yb = tf.gather(xs, idx), tf.gather(ys, idx)
                if augment is not None:
                    xb = augment(xb)
                with tf.GradientTape() as tape:
                    loss = loss_fn(yb, model(xb, training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                total += loss
            return total / tf.cast(nb, tf.float32)

        @tf.function(input_signature=[tf.TensorSpec([None, 784], tf.float32)])
        def logits(x):
            return model(x, training=False)

        self._run, self._logits = run, logits
        run(tf.zeros([0], tf.int32))      # trace now (no step is made), so that no timing counts it

    def run(self, perm: np.ndarray) -> float:
        return float(self._run(tf.constant(perm, dtype=tf.int32)))

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> dict:
        z = self._logits(tf.constant(x)).numpy().astype("float64")
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        per_loss = -logp[np.arange(len(y)), y]
        correct = np.argmax(z, axis=1) == y
        return {"acc": float(correct.mean()), "loss": float(per_loss.mean()), "correct": correct,
                "per_loss": per_loss}


def _mean_se(v: np.ndarray) -> float:
    """Standard error of a mean over test items (e.g. the test loss)."""
    return float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def paired(metrics: dict, stderr: dict, name: str, a: dict, b: dict) -> None:
    """``name``_minus_baseline for accuracy and loss of side ``a`` against side ``b`` (evaluations of
    the same test images), each with the standard error of the mean per-image difference."""
    metrics[f"{name}_test_acc_minus_baseline"] = a["acc"] - b["acc"]
    metrics[f"{name}_test_loss_minus_baseline"] = a["loss"] - b["loss"]
    stderr[f"{name}_test_acc_minus_baseline"] = _mean_se(a["correct"].astype(float) - b["correct"].astype(float))
    stderr[f"{name}_test_loss_minus_baseline"] = _mean_se(a["per_loss"] - b["per_loss"])


def paired_ses(stderr: dict, name: str) -> dict:
    """Result.paired_se: ``name``'s test accuracy and loss against the baseline's, from the
    per-image differences on the same test images (the *_minus_baseline standard errors)."""
    return {f"{name}_test_{k}|baseline_test_{k}": stderr[f"{name}_test_{k}_minus_baseline"] for k in ("acc", "loss")}


def per_seed(metrics: dict) -> dict:
    """Result.test_set: every test metric is measured on this seed's own test images."""
    return {k: "per_seed" for k in metrics if "test" in k}


def _orders(seed: int, n: int, epochs: int) -> list[np.ndarray]:
    """The mini-batch order of every epoch: one shuffle per epoch, the same for paired sides."""
    rng = np.random.default_rng([seed, 7])
    return [rng.permutation(n).astype("int32") for _ in range(epochs)]


def _adam(lr: float):
    return keras.optimizers.Adam(lr)


# ---------------------------------------------------------------------------------------- dropout

@experiment("dropout_overfit", datasets=("mnist",))
def dropout_overfit(*, seed: int, train_size: int = 1000, test_size: int = 5000, hidden: int = 512,
                    depth: int = 2, epochs: int = 100, batch_size: int = 64, learning_rate: float = 1e-3,
                    input_dropout: float = 0.2, hidden_dropout: float = 0.5, curve_every: int = 10) -> Result:
    """REG-DROPOUT: a regime that over-fits, with and without dropout.

    Regime and why: over-fitting needs a network with far more capacity than data, trained long. A
    784-512-512-10 ReLU MLP (~670k weights) on 1,000 random MNIST images (~100 per class, drawn anew
    for each seed), Adam 1e-3, B = 64, 100 epochs (1,600 steps): the baseline fits its training
    images perfectly long before the end, while its test loss rises. Dropout as Srivastava et al.
    (JMLR 15, 2014) use it on MNIST MLPs: 20% of the inputs and 50% of the hidden units dropped
    (their max-norm constraint is left out: it is a second regulariser). Their data-size study found
    dropout's gain largest between the tiny and the full training set; 1,000 images sits there.

    Reported for each side: training and test accuracy and loss (the training set evaluated without
    dropout), the train−test accuracy gap and the test−train loss gap. The claim "reduces
    over-fitting" is about generalisation, so it is judged on the test metrics (accuracy and loss);
    the gap alone is nearly the test error once training accuracy saturates at 1. Whether the
    baseline over-fits at all is measured (its gap), as the claim's precondition."""
    x, y, xt, yt = _mnist(seed, train_size, test_size)
    orders = _orders(seed, len(x), epochs)
    metrics: dict = {}
    stderr: dict[str, float] = {}
    conv: dict[str, dict] = {}
    curves: dict[str, dict] = {}
    evals: dict[str, dict] = {}
    init = None
    for k, v in enumerate(("baseline", "dropout")):
        keras.utils.set_random_seed(seed)
        drop = v == "dropout"
        model = _mlp(hidden, depth, input_dropout=input_dropout if drop else 0.0,
                     hidden_dropout=hidden_dropout if drop else 0.0)
        init = init or dense_weights(model)
        set_dense_weights(model, init)
        tr = Trainer(model, _adam(learning_rate), x, y, batch_size)
        losses, test_curve = [], []
        for e in range(epochs):
            losses.append(tr.run(orders[e]))
            if (e + 1) % curve_every == 0 or e + 1 == epochs:
                ev = tr.evaluate(xt, yt)
                test_curve.append((e + 1, ev["acc"], ev["loss"]))
            progress.step(k * epochs + e + 1, 2 * epochs, f"{v} epoch {e + 1}/{epochs}")
        ev_tr, ev_te = tr.evaluate(x, y), tr.evaluate(xt, yt)
        metrics |= {f"{v}_train_acc": ev_tr["acc"], f"{v}_test_acc": ev_te["acc"],
                    f"{v}_train_loss": ev_tr["loss"], f"{v}_test_loss": ev_te["loss"],
                    f"{v}_gap": ev_tr["acc"] - ev_te["acc"], f"{v}_loss_gap": ev_te["loss"] - ev_tr["loss"],
                    f"{v}_best_test_acc_on_curve": max(a for _, a, _ in test_curve)}
        evals[v] = ev_te
        conv[v] = convergence.check(losses, budget=f"{epochs} epochs", metrics=[f"{v}_*"], floor=FITS)
        curves[v] = {"loss": losses, "test": test_curve}
    paired(metrics, stderr, "dropout", evals["dropout"], evals["baseline"])

    fig, (a1, a2) = plots.plt.subplots(1, 2, figsize=(8.5, 3.4), dpi=110)
    for k, (v, c) in enumerate(curves.items()):
        a1.plot(np.arange(1, epochs + 1), c["loss"], color=f"C{k}", ls="--", lw=0.8)
        ep, acc, loss = zip(*c["test"])
        a1.plot(ep, loss, color=f"C{k}", marker=".", label=v)
        a2.plot(ep, acc, color=f"C{k}", marker=".", label=v)
    a1.set(yscale="log", xlabel="epoch", ylabel="loss (dashed: training batches, solid: test)")
    a2.set(xlabel="epoch", ylabel="test accuracy", title=f"{train_size} images, seed {seed}")
    a1.legend(fontsize=7)
    return Result(metrics=metrics, stderr=stderr, test_set=per_seed(metrics), convergence=conv,
                  paired_se=paired_ses(stderr, "dropout"), artifacts={"dropout_curves.png": plots.png(fig)},
                  notes=f"MLP 784-{'-'.join([str(hidden)] * depth)}-10 ReLU, Adam {learning_rate}, B = {batch_size}, "
                        f"{epochs} epochs on {train_size} random training images (this seed's); dropout "
                        f"{input_dropout} on the inputs and {hidden_dropout} after each hidden layer; "
                        f"tested on {len(yt)} MNIST test images")


# ----------------------------------------------------------------------------------- early stopping

def stop_epoch(curve, patience: int, *, higher: bool = True) -> tuple[int, int]:
    """Where Keras' ``EarlyStopping(patience=..., restore_best_weights=True, min_delta=0)`` would stop on
    this per-epoch curve: (epochs trained, 1-based epoch whose weights it restores). An epoch counts
    as better only when strictly better than the best so far; training stops once ``patience``
    epochs in a row were not better. A curve that never triggers it runs to the end (and Keras then
    restores the best epoch's weights too)."""
    best, best_i, wait = None, 0, 0
    for i, v in enumerate(curve):
        if best is None or (v > best if higher else v < best):
            best, best_i, wait = v, i, 0
        else:
            wait += 1
            if wait >= patience:
                return i + 1, best_i + 1
    return len(curve), best_i + 1


def _flip_labels(y: np.ndarray, share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric label noise: ``share`` of the labels (chosen at random) replaced by one of the nine
    other classes, uniformly. Returns the noisy labels and the mask of flipped items."""
    y = y.copy()
    flip = np.zeros(len(y), bool)
    flip[rng.permutation(len(y))[:int(round(share * len(y)))]] = True
    y[flip] = (y[flip] + rng.integers(1, 10, size=flip.sum())) % 10
    return y, flip


@experiment("early_stopping", datasets=("mnist",))
def early_stopping(*, seed: int, train_size: int = 1000, val_size: int = 500, test_size: int = 5000,
                   label_noise: float = 0.3, hidden: int = 256, depth: int = 2, epochs: int = 100,
                   batch_size: int = 64, learning_rate: float = 1e-3, patience: int = 10) -> Result:
    """REG-EARLYSTOP: early stopping on validation error against training the full budget.

    Regime and why: early stopping can only help where test error rises with training. On clean
    MNIST an MLP's test error hardly rises after its minimum; with label noise it does: networks
    fit the consistent pattern first and memorise the flipped labels later (Arpit et al., "A closer
    look at memorization in deep networks", ICML 2017; the standard-training curves of Han et al.,
    Co-teaching, NeurIPS 2018). So 30% of the labels of 1,000 training and 500 validation images
    (random per seed) are flipped to another class (symmetric noise, the middle of the 20–50% range
    used there); test labels are clean. The validation labels are noisy too: held-out data come from
    the same labelling process as the training data.

    A 784-256-256-10 ReLU MLP, Adam 1e-3, B = 64, a budget of 100 epochs. The baseline trains the
    whole budget. Early stopping watches validation accuracy (the chapter: stop "when the test
    error no longer falls"): with patience 10 and the best epoch's weights restored, i.e. Keras'
    ``EarlyStopping(monitor="val_accuracy", patience=10, restore_best_weights=True)``. Not the
    validation loss: on noisy labels the loss rises early from growing confidence on the flipped
    items while accuracy still improves (the earlier version of this test stopped there). A
    run with the stop rule is the baseline's trajectory cut short (same weights, same batches), so
    one training per seed serves both sides; the loss-watching variant is reported beside it.

    Precondition, measured: the baseline's test error at the end of the budget lies above its
    minimum over training (checked every epoch on the 10,000 test images)."""
    rng = np.random.default_rng([seed, 11])
    x, y, xt, yt = _mnist(seed, train_size + val_size, test_size)
    y_noisy, flipped = _flip_labels(y, label_noise, rng)
    x, y_tr, xv, yv = x[:train_size], y_noisy[:train_size], x[train_size:], y_noisy[train_size:]
    flipped_tr = flipped[:train_size]
    orders = _orders(seed, len(x), epochs)
    keras.utils.set_random_seed(seed)
    model = _mlp(hidden, depth)
    tr = Trainer(model, _adam(learning_rate), x, y_tr, batch_size)
    hist = {"loss": [], "val_acc": [], "val_loss": [], "test_acc": [], "test_loss": []}
    snaps: dict[int, list] = {}
    best_acc, best_loss = -1.0, np.inf
    for e in range(epochs):
        hist["loss"].append(tr.run(orders[e]))
        ev, te = tr.evaluate(xv, yv), tr.evaluate(xt, yt)
        hist["val_acc"].append(ev["acc"])
        hist["val_loss"].append(ev["loss"])
        hist["test_acc"].append(te["acc"])
        hist["test_loss"].append(te["loss"])
        if ev["acc"] > best_acc or ev["loss"] < best_loss:   # a restore point of either stop rule
            snaps[e + 1] = model.get_weights()
            best_acc, best_loss = max(best_acc, ev["acc"]), min(best_loss, ev["loss"])
        progress.step(e + 1, epochs, f"epoch {e + 1}/{epochs} val acc {ev['acc']:.3f} test acc {te['acc']:.3f}")
    final = tr.evaluate(xt, yt)
    train_eval = tr.evaluate(x, y_tr)
    ran, restored = stop_epoch(hist["val_acc"], patience, higher=True)
    ran_l, restored_l = stop_epoch(hist["val_loss"], patience, higher=False)
    model.set_weights(snaps[restored])
    stopped = tr.evaluate(xt, yt)
    model.set_weights(snaps[restored_l])
    stopped_l = tr.evaluate(xt, yt)

    test_err = 1 - np.asarray(hist["test_acc"])
    metrics = {
        "baseline_test_acc": final["acc"], "baseline_test_loss": final["loss"],
        "earlystop_test_acc": stopped["acc"], "earlystop_test_loss": stopped["loss"],
        "earlystop_epochs_trained": ran, "earlystop_restored_epoch": restored,
        "baseline_epochs_trained": epochs,
        "baseline_test_err_rise": float(test_err[-1] - test_err.min()),
        "baseline_best_test_epoch": int(np.argmin(test_err) + 1),
        "baseline_train_acc_noisy_labels": train_eval["acc"],
        "baseline_memorised_flipped": float(np.mean(train_eval["correct"][flipped_tr])),
        "valloss_stop_test_acc": stopped_l["acc"], "valloss_stop_epochs_trained": ran_l,
        "label_noise": label_noise,
    }
    stderr: dict[str, float] = {}
    paired(metrics, stderr, "earlystop", stopped, final)
    conv = {"baseline": convergence.check(hist["loss"], budget=f"{epochs} epochs", metrics=["baseline_*"],
                                          floor=FITS)}
    if ran < epochs:
        conv["earlystop"] = convergence.by_rule(
            convergence.CONVERGED, budget=f"{ran} of at most {epochs} epochs", metrics=["earlystop_*"],
            rule=f"early stopping fired: validation accuracy did not improve for {patience} epochs")
    else:
        conv["earlystop"] = convergence.check(hist["val_acc"], budget=f"{epochs} epochs", higher=True,
                                              metrics=["earlystop_*"])
        conv["earlystop"]["rule"] = "validation accuracy (what early stopping watches): " + conv["earlystop"]["rule"]

    fig, ax = plots.figure(5.8, 3.8)
    ep = np.arange(1, epochs + 1)
    ax.plot(ep, hist["test_acc"], color="C0", label="test accuracy (clean labels)")
    ax.plot(ep, hist["val_acc"], color="C1", label=f"validation accuracy ({label_noise:.0%} noisy labels)")
    ax.axvline(restored, color="C2", ls="--", lw=1, label=f"restored epoch {restored} (stopped at {ran})")
    ax.set(xlabel="epoch", ylabel="accuracy", title=f"{train_size} images, {label_noise:.0%} labels flipped, seed {seed}")
    ax.legend(fontsize=7)
    return Result(metrics=metrics, stderr=stderr, test_set=per_seed(metrics), convergence=conv,
                  paired_se=paired_ses(stderr, "earlystop"), artifacts={"earlystop_curves.png": plots.png(fig)},
                  notes=f"MLP 784-{'-'.join([str(hidden)] * depth)}-10 ReLU, Adam {learning_rate}, B = {batch_size}, "
                        f"{epochs} epochs on {train_size} training images with {label_noise:.0%} of labels flipped, "
                        f"{val_size} equally noisy validation images; early stopping on validation accuracy, "
                        f"patience {patience}, best weights restored; {len(yt)} clean test images")


# ------------------------------------------------------------------------------------- augmentation

def make_augment(max_shift: float, max_rotation_deg: float, seed: int):
    """Random shifts (up to ``max_shift`` pixels each way, a crop in effect) and rotations (up to
    ``max_rotation_deg`` degrees) of a batch of flattened 28×28 images, drawn anew per image and step."""
    rot = layers.RandomRotation(max_rotation_deg / 360.0, fill_mode="constant", seed=seed)
    shift = layers.RandomTranslation(max_shift / 28.0, max_shift / 28.0, fill_mode="constant", seed=seed + 1)

    def augment(xb):
        im = tf.reshape(xb, (-1, 28, 28, 1))
        im = shift(rot(im, training=True), training=True)
        return tf.reshape(im, (-1, 784))

    return augment


@experiment("augmentation", datasets=("mnist",))
def augmentation(*, seed: int, train_size: int = 1000, test_size: int = 5000, hidden: int = 512,
                 depth: int = 2, epochs: int = 100, batch_size: int = 64, learning_rate: float = 1e-3,
                 max_shift: float = 2.0, max_rotation: float = 10.0) -> Result:
    """REG-AUGMENT: the same network trained with and without data augmentation.

    Regime and why: augmentation pays where data are scarce, so 1,000 random MNIST images per seed
    (drawn anew per seed); the 784-512-512-10 ReLU MLP of REG-DROPOUT (Adam 1e-3, B = 64). The
    transformations are those that keep a digit's label and occur among handwritten digits: random
    shifts of up to 2 pixels (the chapter's crops, in effect) and rotations of up to 10 degrees,
    as in Simard, Steinkraus & Platt (ICDAR 2003), whose affine distortions cut an MLP's MNIST error
    from 1.6% to 1.1%. No flips: a mirrored 2, 3, 4, 5, 7 or 9 is not that digit (and 6/9 trade
    places under a half turn), so a flip changes the label. No added noise: MNIST's test digits are
    clean strokes on a clean background, so noise is not a variation the test data hold.

    Each side trains 100 epochs (1,600 steps); the augmented side sees new variants each step and
    converges more slowly; whether each side's training loss converged is measured and stated."""
    x, y, xt, yt = _mnist(seed, train_size, test_size)
    orders = _orders(seed, len(x), epochs)
    metrics: dict = {}
    stderr: dict[str, float] = {}
    conv: dict[str, dict] = {}
    evals, curves = {}, {}
    init = None
    for k, v in enumerate(("baseline", "augment")):
        keras.utils.set_random_seed(seed)
        model = _mlp(hidden, depth)
        init = init or model.get_weights()
        model.set_weights(init)
        aug = make_augment(max_shift, max_rotation, seed) if v == "augment" else None
        tr = Trainer(model, _adam(learning_rate), x, y, batch_size, augment=aug)
        losses = []
        for e in range(epochs):
            losses.append(tr.run(orders[e]))
            progress.step(k * epochs + e + 1, 2 * epochs, f"{v} epoch {e + 1}/{epochs}")
        ev_tr, ev_te = tr.evaluate(x, y), tr.evaluate(xt, yt)
        curves[v] = losses
        metrics |= {f"{v}_test_acc": ev_te["acc"], f"{v}_test_loss": ev_te["loss"], f"{v}_train_acc": ev_tr["acc"],
                    f"{v}_gap": ev_tr["acc"] - ev_te["acc"]}
        evals[v] = ev_te
        conv[v] = convergence.check(losses, budget=f"{epochs} epochs", metrics=[f"{v}_*"], floor=FITS)
    paired(metrics, stderr, "augment", evals["augment"], evals["baseline"])

    fig, ax = plots.figure(5.5, 3.6)
    for k, (v, c) in enumerate(curves.items()):
        ax.plot(np.arange(1, epochs + 1), c, color=f"C{k}", label=f"{v} (test acc {metrics[f'{v}_test_acc']:.3f})")
    ax.set(yscale="log", xlabel="epoch", ylabel="training loss (mean over batches)",
           title=f"{train_size} images, seed {seed}")
    ax.legend(fontsize=7)
    return Result(metrics=metrics, stderr=stderr, test_set=per_seed(metrics), convergence=conv,
                  paired_se=paired_ses(stderr, "augment"), artifacts={"augment_loss.png": plots.png(fig)},
                  notes=f"MLP 784-{'-'.join([str(hidden)] * depth)}-10 ReLU, Adam {learning_rate}, B = {batch_size}, "
                        f"{epochs} epochs on {train_size} random training images; augmentation: shifts up to "
                        f"{max_shift:g} px and rotations up to {max_rotation:g} degrees, new per image and step; "
                        f"{len(yt)} test images")


# --------------------------------------------------------------------------------------- batch norm

@experiment("batchnorm_speed", datasets=("mnist",))
def batchnorm_speed(*, seed: int, train_size: int = 5000, val_size: int = 1000, check_size: int = 2000,
                    depth: int = 3, hidden: int = 100, activation: str = "sigmoid",
                    learning_rates: list[float] = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0), epochs: int = 20,
                    batch_size: int = 60, target_accuracy: float = 0.85, checks_per_epoch: int = 4) -> Result:
    """REG-BATCHNORM: epochs and CPU time to a target accuracy, with and without batch normalisation.

    Regime and why: Ioffe & Szegedy (ICML 2015, arXiv:1502.03167) show the speed-up on MNIST with a
    net of 3 fully connected hidden layers of 100 sigmoid units, trained by SGD on mini-batches of
    60, and argue that batch normalisation matters most for saturating non-linearities and deep
    nets, where it permits higher learning rates. So their net (``depth`` 3), and the same units in
    a deeper one (``depth`` 8: the regime where it should matter more), Glorot-uniform
    initialisation (Keras' default), plain SGD, on 5,000 random MNIST images per seed; batch
    normalisation before each sigmoid. Equal care: each side gets its own learning rate from one
    grid (0.03 … 10, factors of √10 apart), chosen per seed as the one that reaches the target
    soonest on 1,000 validation images; the judged time is then read at that rate on 2,000 other
    held-out images (drawn from the test split), so choosing and measuring use different data.

    Target: 85% held-out accuracy, below what either side ends at where it trains (about 91% here),
    so that the time measures training speed, not the ceiling. Checked 4 times per epoch; a side
    that never reaches it within the budget (20 epochs) is counted at the budget (censored: that
    understates how much slower it is; ``*_reached_target`` says when). Time: epochs (steps / steps
    per epoch) and the training's CPU seconds (process time: less disturbed than wall time by other
    jobs on a shared machine; wall time is reported too). Batch normalisation costs more per step;
    the CPU time counts that."""
    x, y, xc, yc = _mnist(seed, train_size + val_size, check_size)
    x, y, xv, yv = x[:train_size], y[:train_size], x[train_size:], y[train_size:]
    spe = int(np.ceil(train_size / batch_size))
    orders = _orders(seed, len(x), epochs)
    # each epoch's order cut into `checks_per_epoch` chunks of whole batches
    bounds = np.linspace(0, spe, checks_per_epoch + 1).round().astype(int) * batch_size
    metrics: dict = {}
    conv: dict[str, dict] = {}
    curves: dict[str, dict] = {}
    lrs = [float(r) for r in learning_rates]
    dense_init = None
    for k, v in enumerate(("baseline", "batchnorm")):
        keras.utils.set_random_seed(seed)
        model = _mlp(hidden, depth, activation=activation, batchnorm=v == "batchnorm")
        dense_init = dense_init or dense_weights(model)
        set_dense_weights(model, dense_init)
        init = model.get_weights()
        opt = keras.optimizers.SGD(lrs[0])
        tr = Trainer(model, opt, x, y, batch_size)
        runs = {}
        for j, lr in enumerate(lrs):
            model.set_weights(init)               # the same start for every rate (one trace serves all)
            for var in opt.variables:
                var.assign(tf.zeros_like(var))
            opt.learning_rate = lr
            steps, cpu, wall, t_val, t_chk = 0, 0.0, 0.0, None, None
            curve = []
            for e in range(epochs):
                for c in range(checks_per_epoch):
                    chunk = orders[e][bounds[c]:bounds[c + 1]]
                    c0, w0 = time.process_time(), time.perf_counter()
                    tr.run(chunk)
                    cpu += time.process_time() - c0
                    wall += time.perf_counter() - w0
                    steps += int(np.ceil(len(chunk) / batch_size))
                    av, ac = tr.evaluate(xv, yv)["acc"], tr.evaluate(xc, yc)["acc"]
                    curve.append((steps / spe, av, ac))
                    if t_val is None and av >= target_accuracy:
                        t_val = (steps / spe, cpu, wall)
                    if t_chk is None and ac >= target_accuracy:
                        t_chk = (steps / spe, cpu, wall)
                if (t_val is not None and t_chk is not None) or not np.isfinite(curve[-1][1]):
                    break
                progress.step(k * len(lrs) * epochs + j * epochs + e + 1, 2 * len(lrs) * epochs,
                              f"{v} lr {lr:g} epoch {e + 1}/{epochs}")
            runs[lr] = {"val": t_val, "check": t_chk, "curve": curve, "cpu": cpu, "wall": wall}
        # the rate that reaches the target soonest on validation; ties: the higher final validation accuracy
        best = min(lrs, key=lambda r: (runs[r]["val"][0] if runs[r]["val"] else np.inf, -runs[r]["curve"][-1][1]))
        r = runs[best]
        reached = r["check"] is not None
        ep, cpu, wall = r["check"] if reached else (float(epochs), r["cpu"], r["wall"])
        metrics |= {f"{v}_epochs_to_target": ep, f"{v}_cpu_s_to_target": cpu, f"{v}_wall_s_to_target": wall,
                    f"{v}_reached_target": reached, f"{v}_learning_rate": best,
                    f"{v}_rates_reaching_target": sum(runs[q]["val"] is not None for q in lrs),
                    f"{v}_cpu_s_per_epoch": r["cpu"] / max(r["curve"][-1][0], 1e-9)}
        conv[v] = convergence.by_rule(
            convergence.SOLVED if reached else convergence.IMPROVING, budget=f"{epochs} epochs at learning rate {best:g}",
            estimate="" if reached else "a longer budget", metrics=[f"{v}_*"],
            rule=f"time to target: solved when {target_accuracy:.0%} accuracy is reached")
        curves[v] = runs

    fig, axes = plots.plt.subplots(1, 2, figsize=(9, 3.4), dpi=110, sharey=True)
    for ax, (v, runs) in zip(axes, curves.items()):
        for j, lr in enumerate(lrs):
            c = runs[lr]["curve"]
            ax.plot([p[0] for p in c], [p[2] for p in c], color=f"C{j}", label=f"η = {lr:g}",
                    lw=2 if lr == metrics[f"{v}_learning_rate"] else 0.8)
        ax.axhline(target_accuracy, color="k", ls=":", lw=0.8)
        ax.set(xlabel="epoch", title=f"{v}, seed {seed}", ylim=(0, 1))
    axes[0].set_ylabel("held-out accuracy")
    axes[0].legend(fontsize=7)
    return Result(metrics=metrics, convergence=conv, artifacts={"batchnorm_speed.png": plots.png(fig)},
                  notes=f"MLP 784-{'-'.join([str(hidden)] * depth)}-10 {activation}, plain SGD, B = {batch_size}, "
                        f"at most {epochs} epochs of {train_size} random training images; learning rate per side "
                        f"from {lrs} by the fewest steps to {target_accuracy:.0%} on {val_size} validation images; "
                        f"time read on {check_size} held-out test images")
