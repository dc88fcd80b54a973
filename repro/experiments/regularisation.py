"""REG-DROPOUT, REG-EARLYSTOP: regularisers against the same model without them (7.3, 其他优化方案).

A 784-256-256-10 ReLU MLP on a training set small enough to over-fit (2,000 real MNIST images),
with 1,000 further training images held out for validation (early stopping watches them; the test
set is never looked at during training). Each seed draws its own training, validation and test
images at random from MNIST's splits. Each variant changes one thing against the baseline and
starts from the same seed: dropout, early stopping, data augmentation (random shifts), batch
normalisation. Cost on 2 CPU cores: about 0.2 s an epoch (0.5 s with augmentation).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers

from repro import convergence, data, plots, progress, stats
from repro.registry import Result, experiment


def _model(variant: str, hidden: int, dropout: float, shift: float) -> keras.Model:
    x_in = keras.Input((784,))
    x = x_in
    if variant == "augment":   # active in training only; inference sees the images unchanged
        x = layers.Reshape((28, 28, 1))(x)
        x = layers.RandomTranslation(shift, shift, fill_mode="constant")(x)
        x = layers.Flatten()(x)
    for _ in range(2):
        x = layers.Dense(hidden)(x)
        if variant == "batchnorm":
            x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        if variant == "dropout":
            x = layers.Dropout(dropout)(x)
    return keras.Model(x_in, layers.Dense(10, activation="softmax")(x))


def _convergence(hist: keras.callbacks.History, stop: keras.callbacks.EarlyStopping | None, epochs: int,
                 patience: int) -> dict:
    """Convergence of one variant: the training loss per epoch; an early-stopped run is judged on
    what its stop rule watches (val_loss, and converged when the rule fired)."""
    ran = len(hist.history["loss"])
    if stop is None:
        return convergence.from_history(hist, monitor="loss", budget=f"{epochs} epochs")
    out = convergence.from_history(hist, monitor="val_loss", budget=f"{ran} of at most {epochs} epochs")
    out["rule"] = "val_loss (what early stopping watches): " + out["rule"]
    if stop.stopped_epoch > 0:
        out |= {"converged": True, "estimate": "",
                "rule": f"early stopping fired: val_loss did not improve for {patience} epochs"}
    return out


@experiment("regularisers", datasets=("mnist",))
def regularisers(*, seed: int, variants: list[str] = ("baseline", "dropout"), train_size: int = 2000,
                 val_size: int = 1000, test_size: int = 5000, hidden: int = 256, epochs: int = 30,
                 batch_size: int = 64, learning_rate: float = 1e-3, dropout: float = 0.5, shift: float = 0.1,
                 patience: int = 3, target_accuracy: float = 0.9) -> Result:
    """Test accuracy, train/test gap and epochs to a validation-accuracy target for each variant."""
    # A random subset per seed (in random order, so the split below is random too).
    (xtr, ytr), (xte, yte) = data.load_mnist(train_size=train_size + val_size, test_size=test_size,
                                             seed=seed)
    flat = lambda a: a.reshape(len(a), -1).astype("float32") / 255.0  # noqa: E731
    xtr, xte = flat(xtr), flat(xte)
    ytr, yte = ytr.astype("int32"), yte.astype("int32")
    x, y, xv, yv = xtr[:train_size], ytr[:train_size], xtr[train_size:], ytr[train_size:]
    metrics: dict = {}
    stderr: dict[str, float] = {}
    converged: dict[str, dict] = {}
    correct: dict[str, np.ndarray] = {}      # per test image: classified right? (for paired SEs)
    curves = {}
    for i, v in enumerate(variants):
        keras.utils.set_random_seed(seed)              # same initial weights and batches as the baseline
        model = _model(v, hidden, dropout, shift)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=False)
        callbacks = [progress.epochs(epochs, v)]
        stop = None
        if v == "earlystop":   # stop when the held-out error stops falling; keep the best weights
            stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                 restore_best_weights=True)
            callbacks.append(stop)
        hist = model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=batch_size,
                         shuffle=True, verbose=0, callbacks=callbacks)
        val_acc = np.asarray(hist.history["val_accuracy"])
        reached = np.nonzero(val_acc >= target_accuracy)[0]
        train_acc = float(model.evaluate(x, y, verbose=0)[1])
        test_acc = float(model.evaluate(xte, yte, verbose=0)[1])
        correct[v] = np.argmax(model.predict(xte, batch_size=1000, verbose=0), axis=1) == yte
        curves[v] = hist.history
        se = stats.binomial_se(test_acc, len(yte))   # the train accuracy is not a test-set sample
        stderr |= {f"{v}_test_acc": se, f"{v}_gap": se}
        converged[v] = _convergence(hist, stop, epochs, patience)
        metrics |= {f"{v}_test_acc": test_acc, f"{v}_train_acc": train_acc, f"{v}_gap": train_acc - test_acc,
                    f"{v}_epochs_to_target": int(reached[0] + 1) if len(reached) else epochs + 1,
                    f"{v}_epochs_trained": len(val_acc)}
        progress.step(i + 1, len(variants), f"{v}: test accuracy {test_acc:.4f}")

    if "augment" in variants and "baseline" in variants:
        metrics["augment_test_acc_minus_baseline"] = metrics["augment_test_acc"] - metrics["baseline_test_acc"]
        # paired over the same test images: the SE of the mean per-image difference
        diff = correct["augment"].astype(float) - correct["baseline"].astype(float)
        stderr["augment_test_acc_minus_baseline"] = (float(diff.std(ddof=1) / np.sqrt(len(diff)))
                                                     if len(diff) > 1 else float("nan"))

    fig, ax = plots.figure(5.5, 3.8)
    for k, (v, h) in enumerate(curves.items()):
        ep = np.arange(1, len(h["loss"]) + 1)
        ax.plot(ep, h["loss"], color=f"C{k}", ls="--")
        ax.plot(ep, h["val_loss"], color=f"C{k}", label=v)
    ax.set(yscale="log", xlabel="epoch", ylabel="loss (dashed: training, solid: validation)",
           title=f"{train_size} MNIST images, seed {seed}")
    ax.legend(fontsize=7)
    return Result(metrics=metrics, artifacts={"regularisation_loss.png": plots.png(fig)},
                  stderr=stderr, convergence=converged,
                  notes=f"MLP 784-{hidden}-{hidden}-10, Adam {learning_rate}, {epochs} epochs; dropout {dropout}, "
                        f"shifts up to {shift:.0%} of the image, early stopping patience {patience} on val_loss; "
                        f"{train_size} training, {val_size} validation and {len(yte)} test images drawn at "
                        f"random for this seed")
