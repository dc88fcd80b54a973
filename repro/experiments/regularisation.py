"""REG-DROPOUT, REG-EARLYSTOP: regularisers against the same model without them (7.3, 其他优化方案).

A 784-256-256-10 ReLU MLP on a training set small enough to over-fit (2,000 real MNIST images),
with 1,000 further training images held out for validation (early stopping watches them; the test
set is never looked at during training). Each variant changes one thing against the baseline and
starts from the same seed: dropout, early stopping, data augmentation (random shifts), batch
normalisation. Cost on 2 CPU cores: about 0.2 s an epoch (0.5 s with augmentation).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers

from repro import data, plots, progress
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


@experiment("regularisers", datasets=("mnist",))
def regularisers(*, seed: int, variants: list[str] = ("baseline", "dropout"), train_size: int = 2000,
                 val_size: int = 1000, test_size: int = 5000, hidden: int = 256, epochs: int = 30,
                 batch_size: int = 64, learning_rate: float = 1e-3, dropout: float = 0.5, shift: float = 0.1,
                 patience: int = 3, target_accuracy: float = 0.9) -> Result:
    """Test accuracy, train/test gap and epochs to a validation-accuracy target for each variant."""
    (xtr, ytr), (xte, yte) = data.load_mnist(train_size=train_size + val_size, test_size=test_size)
    flat = lambda a: a.reshape(len(a), -1).astype("float32") / 255.0  # noqa: E731
    xtr, xte = flat(xtr), flat(xte)
    ytr, yte = ytr.astype("int32"), yte.astype("int32")
    x, y, xv, yv = xtr[:train_size], ytr[:train_size], xtr[train_size:], ytr[train_size:]
    metrics: dict = {}
    curves = {}
    for i, v in enumerate(variants):
        keras.utils.set_random_seed(seed)              # same initial weights and batches as the baseline
        model = _model(v, hidden, dropout, shift)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=False)
        callbacks = [progress.epochs(epochs, v)]
        if v == "earlystop":   # stop when the held-out error stops falling; keep the best weights
            callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                           restore_best_weights=True))
        hist = model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=batch_size,
                         shuffle=True, verbose=0, callbacks=callbacks)
        val_acc = np.asarray(hist.history["val_accuracy"])
        reached = np.nonzero(val_acc >= target_accuracy)[0]
        train_acc = float(model.evaluate(x, y, verbose=0)[1])
        test_acc = float(model.evaluate(xte, yte, verbose=0)[1])
        curves[v] = hist.history
        metrics |= {f"{v}_test_acc": test_acc, f"{v}_train_acc": train_acc, f"{v}_gap": train_acc - test_acc,
                    f"{v}_epochs_to_target": int(reached[0] + 1) if len(reached) else epochs + 1,
                    f"{v}_epochs_trained": len(val_acc)}
        progress.step(i + 1, len(variants), f"{v}: test accuracy {test_acc:.4f}")

    if "augment" in variants and "baseline" in variants:
        metrics["augment_test_acc_minus_baseline"] = metrics["augment_test_acc"] - metrics["baseline_test_acc"]

    fig, ax = plots.figure(5.5, 3.8)
    for k, (v, h) in enumerate(curves.items()):
        ep = np.arange(1, len(h["loss"]) + 1)
        ax.plot(ep, h["loss"], color=f"C{k}", ls="--")
        ax.plot(ep, h["val_loss"], color=f"C{k}", label=v)
    ax.set(yscale="log", xlabel="epoch", ylabel="loss (dashed: training, solid: validation)",
           title=f"{train_size} MNIST images, seed {seed}")
    ax.legend(fontsize=7)
    return Result(metrics=metrics, artifacts={"regularisation_loss.png": plots.png(fig)},
                  notes=f"MLP 784-{hidden}-{hidden}-10, Adam {learning_rate}, {epochs} epochs; dropout {dropout}, "
                        f"shifts up to {shift:.0%} of the image, early stopping patience {patience} on val_loss")
