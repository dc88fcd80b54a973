"""LENET-MNIST: LeNet-5 trained on the real 60,000 MNIST training images, tested on the real 10,000.

Claim (7.2, LeNet5): "在MNIST 60,000训练集上的错误率为0.95%" - 0.95% test error, the number LeCun et
al. (1998) report for LeNet-5 trained without distortions.

Two flavours, trained on the same data:
  * ``lenet5_mnist_1998`` - the paper's network (scaled tanh, trainable subsampling, C3's connection
    table; see repro.models.lenet1998) trained by per-example-style SGD with the paper's kind of
    step schedule. This is the network the 0.95% is about, so the claim is judged on it.
  * ``lenet5_mnist`` - the modern re-implementation (ReLU, max pooling, full C3, Adam with cosine
    decay) that most tutorials call LeNet-5: reported beside it, to show how much of the number is
    the architecture and how much the 1998 details.
Cost on 2 idle CPU cores (tf.data cache + prefetch; XLA gave no speed-up in `repro bench` here):
about 4.5 s an epoch of 60k for the modern flavour (batch 128) and 7.5 s for the 1998 flavour
(batch 64; its custom subsampling and masked C3 cost more per image).
"""
from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from repro import convergence, data, plots, progress, stats
from repro.data.mnist import SIZES as MNIST_SIZES
from repro.kerasutil import LossCurve, fresh
from repro.models.lenet import lenet5
from repro.models.lenet1998 import effective_params, lenet5_1998, scale_pixels
from repro.registry import Result, experiment


def _prepare(x: np.ndarray) -> np.ndarray:
    # LeNet-5 takes 32x32: MNIST's 28x28 digits padded by 2 pixels, as in the paper.
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[..., None].astype("float32") / 255.0
    return x


@experiment("lenet5_mnist", datasets=("mnist",))
def lenet5_mnist(*, seed: int, epochs: int = 12, batch_size: int = 128, learning_rate: float = 1e-3,
                 activation: str = "relu", pooling: str = "max",
                 train_size: int | None = None, test_size: int | None = None,
                 jit_compile: bool = False) -> Result:
    """LeNet-5, modern flavour (ReLU, max pooling, full C3, softmax, Adam), on real MNIST; returns test
    error, training time and throughput. Reported beside the 1998 flavour that LENET-MNIST judges:
    in the full profile 10 epochs with Adam and a cosine decay to 5% of the rate, 3 seeds (suite 1
    spent 20 epochs; halved to pay for the 1998 flavour; the convergence rule says whether 10 suffice).

    A ``train_size`` / ``test_size`` below the split's size draws a random subset per seed."""
    # Data: the real MNIST arrays (uint8); small profiles take a random subset of each split, a
    # different one per seed, so the seed spread includes the data sampling.
    (x_train, y_train), (x_test, y_test) = data.load_mnist(train_size=train_size, test_size=test_size,
                                                           seed=seed)
    subset = len(x_train) < MNIST_SIZES["train"] or len(x_test) < MNIST_SIZES["test"]
    x_train, x_test = _prepare(x_train), _prepare(x_test)
    train = (tf.data.Dataset.from_tensor_slices((x_train, y_train.astype("int32")))
             .cache().shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
             .batch(batch_size, drop_remainder=False).prefetch(tf.data.AUTOTUNE))
    test = tf.data.Dataset.from_tensor_slices((x_test, y_test.astype("int32"))).batch(1000).cache()

    # Model: LeNet-5 geometry (C1 6@5x5, S2, C3 16@5x5, S4, C5 120, F6 84, 10).
    model = lenet5(activation=activation, pooling=pooling)
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=jit_compile)

    # Train, timing each epoch.
    t0 = time.perf_counter()
    history = model.fit(train, epochs=epochs, shuffle=False, verbose=0,  # tf.data shuffles
                        callbacks=[progress.epochs(epochs)])
    train_seconds = time.perf_counter() - t0

    # Measure on the held-out test set.
    _, test_acc = model.evaluate(test, verbose=0)
    test_error = 1.0 - float(test_acc)

    fig, ax = plots.figure()
    ax.plot(range(1, epochs + 1), history.history["loss"], marker="o")
    ax.set(xlabel="epoch", ylabel="training loss", yscale="log",
           title=f"LeNet-5 on MNIST, seed {seed}: test error {100 * test_error:.2f}%")
    return Result(
        metrics={"test_error": test_error,
                 "train_seconds": train_seconds,
                 "samples_per_second": epochs * len(x_train) / train_seconds,
                 "final_train_loss": float(history.history["loss"][-1]),
                 "train_size": int(len(x_train)), "test_size": int(len(x_test)),
                 "params": int(model.count_params())},
        artifacts={"loss.png": plots.png(fig)},
        stderr={"test_error": stats.binomial_se(test_error, len(x_test))},
        # the real 10,000 test images on every seed; a smaller test_size draws a subset per seed
        test_set={"test_error": "fixed" if len(x_test) == MNIST_SIZES["test"] else "per_seed"},
        # cosine decay: the base-rate phase runs until the rate has halved (half the epochs); solved
        # at a training loss of 0.01 nats (the right label gets >= 99% probability: it fits its data)
        convergence={"lenet": convergence.from_history(history, monitor="loss", budget=f"{epochs} epochs",
                                                       phase_end=(epochs + 1) // 2, floor=0.01)},
        notes=f"{len(x_train)} training and {len(x_test)} test images of real MNIST"
              f"{' (subsets drawn at random for this seed)' if subset else ''}; "
              f"{activation} activations, {pooling} pooling, Adam with cosine decay",
    )


# The paper's global learning-rate schedule for its 20 passes (section III.C / appendix C):
# 0.0005 for passes 1-2, 0.0002 for 3-5, 0.0001 for 6-8, 0.00005 for 9-12, 0.00001 after. Kept here
# as (fraction of the training done, factor of the initial rate), so that a shorter budget decays
# in the same proportions.
PAPER_SCHEDULE = ((0.10, 0.4), (0.25, 0.2), (0.40, 0.1), (0.60, 0.02))


def _step_schedule(learning_rate: float, total_steps: int):
    bounds = [max(1, int(round(f * total_steps))) for f, _ in PAPER_SCHEDULE]
    values = [learning_rate] + [learning_rate * k for _, k in PAPER_SCHEDULE]
    return keras.optimizers.schedules.PiecewiseConstantDecay(bounds, values)


@experiment("lenet5_mnist_1998", datasets=("mnist",))
def lenet5_mnist_1998(*, seed: int, epochs: int = 12, batch_size: int = 64, learning_rate: float = 0.2,
                      sparse_c3: bool = True, train_size: int | None = None,
                      test_size: int | None = None) -> Result:
    """LeNet-5 in the 1998 flavour on real MNIST: the network the chapter's 0.95% is about.

    Regime and why. Architecture, squashing function, subsampling, C3 table and input scaling are
    the paper's (repro.models.lenet1998); its softmax output replaces the RBF layer (optional in the
    issue; ten fixed codes add nothing for ten classes). Training: the paper used stochastic
    diagonal Levenberg-Marquardt, i.e. online SGD with a per-parameter step from a curvature
    estimate, and a global rate stepped down over 20 passes (PAPER_SCHEDULE keeps its proportions).
    Here: plain minibatch SGD (batch 64, no momentum) on that step schedule. Without SDLM's
    per-parameter steps the paper's U(±2.4/F_i) initialisation sits on the log(10) plateau (measured:
    training loss 2.30 after 3 epochs of 10,000 images at every rate from 0.05 to 0.3), so weights
    start with σ = F_i^-1/2, the prescription for this squashing function in LeCun, Bottou, Orr &
    Müller's "Efficient BackProp" of the same year. The initial rate 0.2 is the best of {0.05, 0.1,
    0.2, 0.4} by error on 5,000 held-out training images after 3 epochs on 10,000 (0.4 diverged);
    the test set played no part. Budget: 12 epochs, fewer than the paper's 20 passes; the
    convergence rule on the training loss says whether 12 sufficed, and the paper profile runs
    the full 20.

    A ``train_size`` / ``test_size`` below the split's size draws a random subset per seed."""
    (x_train, y_train), (x_test, y_test) = data.load_mnist(train_size=train_size, test_size=test_size,
                                                           seed=seed)
    subset = len(x_train) < MNIST_SIZES["train"] or len(x_test) < MNIST_SIZES["test"]

    def prepare(x: np.ndarray) -> np.ndarray:   # 32x32 with the background at -0.1, as in the paper
        return np.pad(scale_pixels(x), ((0, 0), (2, 2), (2, 2)), constant_values=-0.1)[..., None]

    x_train, x_test = prepare(x_train), prepare(x_test)
    train = (tf.data.Dataset.from_tensor_slices((x_train, y_train.astype("int32")))
             .cache().shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
             .batch(batch_size).prefetch(tf.data.AUTOTUNE))
    test = tf.data.Dataset.from_tensor_slices((x_test, y_test.astype("int32"))).batch(1000).cache()

    fresh(seed)
    model = lenet5_1998(seed=seed, sparse_c3=sparse_c3)
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    model.compile(optimizer=keras.optimizers.SGD(_step_schedule(learning_rate, steps)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    t0 = time.perf_counter()
    fine = LossCurve(per_epoch=10)       # the base-rate phase is 10% of the steps: judged on a finer curve
    history = model.fit(train, epochs=epochs, shuffle=False, verbose=0,
                        callbacks=[progress.epochs(epochs), fine])
    train_seconds = time.perf_counter() - t0
    _, test_acc = model.evaluate(test, verbose=0)
    test_error = 1.0 - float(test_acc)
    losses = history.history["loss"]
    if not np.all(np.isfinite(losses)):
        raise FloatingPointError(f"training diverged (loss {losses})")

    fig, ax = plots.figure()
    ax.plot(range(1, epochs + 1), losses, marker="o")
    ax.set(xlabel="epoch", ylabel="training loss", yscale="log",
           title=f"LeNet-5 (1998 flavour) on MNIST, seed {seed}: test error {100 * test_error:.2f}%")
    return Result(
        metrics={"test_error": test_error,
                 "train_seconds": train_seconds,
                 "samples_per_second": epochs * len(x_train) / train_seconds,
                 "final_train_loss": float(losses[-1]),
                 "final_train_error": 1.0 - float(history.history["accuracy"][-1]),
                 "train_size": int(len(x_train)), "test_size": int(len(x_test)),
                 "params": int(model.count_params()),
                 "effective_params": effective_params(model)},
        artifacts={"loss.png": plots.png(fig)},
        stderr={"test_error": stats.binomial_se(test_error, len(x_test))},
        # the real 10,000 test images on every seed; a smaller test_size draws a subset per seed
        test_set={"test_error": "fixed" if len(x_test) == MNIST_SIZES["test"] else "per_seed"},
        # the step schedule flattens the tail mechanically: judged on its base-rate phase (before the
        # first cut, PAPER_SCHEDULE[0]); solved at 0.01 nats of training loss, as the modern flavour
        convergence={"lenet1998": convergence.check(
            fine.curve, budget=f"{epochs} epochs", unit_per_point=epochs / max(1, len(fine.curve)), unit="epochs",
            phase_end=int(PAPER_SCHEDULE[0][0] * len(fine.curve)), floor=0.01)},
        notes=f"{len(x_train)} training and {len(x_test)} test images of real MNIST"
              f"{' (subsets drawn at random for this seed)' if subset else ''}; 1.7159·tanh(2/3·a), "
              f"trainable 2x2 subsampling, C3 {'with the paper’s connection table' if sparse_c3 else 'full'}, "
              f"softmax output; SGD batch {batch_size}, rate {learning_rate:g} stepped down by "
              f"{'/'.join(f'{k:g}' for _, k in PAPER_SCHEDULE)} after "
              f"{'/'.join(f'{f:.0%}' for f, _ in PAPER_SCHEDULE)} of {epochs} epochs (the paper's schedule shape)",
    )
