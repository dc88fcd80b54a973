"""VANISH-SIGMOID, RELU-GRAD, RESNET-GRAD: how the gradient reaches the first layers (7.3, 梯度消失).

The chapter measures a layer's learning speed by ||δ^l|| = ||∂E/∂b^l||, the gradient of the loss
with respect to that layer's biases, and argues δ^1 = δ^10 · Π (w^l σ'), with σ' ≤ 1/4 for the
sigmoid. `layer_gradients` measures exactly that on a 10-layer MLP on real MNIST, at
initialisation and after each epoch of plain mini-batch SGD. `residual_depth` trains He et al.'s
plain/residual pair at growing depth for the same number of epochs. Each seed trains (and tests)
on its own random subset of MNIST.
Cost on 2 CPU cores: about 1 s an epoch of 4,000 images per 10-layer variant; the 56-layer nets
about 3 s an epoch of 5,000.
"""
from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from repro import convergence, data, plots, progress, stats
from repro.models.mlp import deep_mlp, plain_or_residual
from repro.registry import Result, experiment

# Each activation with the initialisation designed for it (Glorot & Bengio 2010 for sigmoid/tanh,
# He et al. 2015 for ReLU); "relu_glorot" is ReLU with the sigmoid's initialisation, so that the
# comparison with the sigmoid changes the activation alone.
VARIANTS = {"sigmoid": ("sigmoid", "glorot_uniform"), "tanh": ("tanh", "glorot_uniform"),
            "relu": ("relu", "he_uniform"), "relu_glorot": ("relu", "glorot_uniform")}


def _mnist(train_size: int, test_size: int, seed: int | None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flattened [0, 1] images; a random subset of each split per ``seed`` (None: the first n)."""
    (xtr, ytr), (xte, yte) = data.load_mnist(train_size=train_size, test_size=test_size, seed=seed)
    flat = lambda x: x.reshape(len(x), -1).astype("float32") / 255.0  # noqa: E731
    return flat(xtr), ytr.astype("int32"), flat(xte), yte.astype("int32")


def _grad_norms(model: keras.Model, x: np.ndarray, y: np.ndarray, which: str = "bias") -> np.ndarray:
    """||∂E/∂b^l|| (or ||∂E/∂W^l|| for which="kernel") for every Dense layer, in order."""
    dense = [lay for lay in model.layers if isinstance(lay, layers.Dense)]
    params = [getattr(lay, which) for lay in dense]
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(y, model(x, training=True))
        loss = tf.reduce_mean(loss)
    grads = tape.gradient(loss, params)
    return np.array([float(tf.norm(g)) for g in grads])


def _activations(model: keras.Model, x: np.ndarray) -> list[np.ndarray]:
    acts = [lay.output for lay in model.layers if lay.name.startswith("act_")]
    return [np.asarray(a) for a in keras.Model(model.input, acts)(x)]


@experiment("layer_gradients", datasets=("mnist",))
def layer_gradients(*, seed: int, variants: list[str] = ("sigmoid", "relu"), depth: int = 10,
                    width: int = 32, train_size: int = 4000, test_size: int = 2000, probe_size: int = 1000,
                    epochs: int = 3, batch_size: int = 64, learning_rate: float = 0.05) -> Result:
    """Per-layer ||∂E/∂b^l|| of a `depth`-layer MLP per activation, at init and during SGD training."""
    x, y, xte, yte = _mnist(train_size, test_size, seed)
    probe_x, probe_y = x[:probe_size], y[:probe_size]       # the same batch for every measurement of this seed
    metrics: dict = {}
    stderr: dict[str, float] = {}
    converged: dict[str, dict] = {}
    curves: dict[str, list[np.ndarray]] = {}
    for i, name in enumerate(variants):
        activation, init = VARIANTS[name]
        keras.utils.set_random_seed(seed)                    # same data order for every variant
        model = deep_mlp(depth, width, activation, init=init)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=False)
        norms = [_grad_norms(model, probe_x, probe_y)]
        acts = _activations(model, probe_x)
        times, train_loss = [], []
        for e in range(epochs):
            t0 = time.perf_counter()
            hist = model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=True, verbose=0)
            times.append(time.perf_counter() - t0)
            train_loss.append(float(hist.history["loss"][-1]))
            norms.append(_grad_norms(model, probe_x, probe_y))
            progress.step(i * epochs + e + 1, len(variants) * epochs, f"{name} epoch {e + 1}/{epochs}")
        curves[name] = norms
        steps = int(np.ceil(len(x) / batch_size))
        timed = times[1:] or times                           # the first epoch also traces the graph
        ratio0, ratio1 = norms[0][0] / norms[0][-1], norms[-1][0] / norms[-1][-1]
        hidden = norms[0][:-1]                               # layers 1..depth-1 (the output layer is softmax)
        test_accuracy = float(model.evaluate(xte, yte, verbose=0)[1])
        stderr[f"{name}_test_accuracy"] = stats.binomial_se(test_accuracy, len(yte))
        converged[name] = convergence.check(train_loss, budget=f"{epochs} epochs")
        metrics |= {
            f"{name}_ratio_init": float(ratio0),
            f"{name}_ratio_trained": float(ratio1),
            f"{name}_log10_ratio_init": float(np.log10(ratio0)),
            f"{name}_log10_ratio_trained": float(np.log10(ratio1)),
            # fraction of hidden layers l whose ||δ^l|| is below that of layer l+1 at initialisation
            f"{name}_shrink_fraction_init": float(np.mean(hidden[:-1] < hidden[1:])),
            f"{name}_grad_norms_init": [float(v) for v in norms[0]],
            f"{name}_grad_norms_trained": [float(v) for v in norms[-1]],
            f"{name}_ms_per_step": 1000 * float(np.mean(timed)) / steps,
            f"{name}_test_accuracy": test_accuracy,
        }
        all_acts = np.concatenate([a.ravel() for a in acts])
        if activation == "sigmoid":
            d = all_acts * (1 - all_acts)                    # σ'(z) = σ(z)(1 − σ(z)) on the actual activations
            metrics |= {f"{name}_dprime_max": float(d.max()), f"{name}_dprime_mean": float(d.mean())}
        elif activation == "tanh":
            d = 1 - all_acts ** 2
            metrics |= {f"{name}_dprime_max": float(d.max()), f"{name}_dprime_mean": float(d.mean())}
        else:
            metrics[f"{name}_zero_fraction"] = float(np.mean(all_acts == 0.0))

    fig, ax = plots.figure(5.5, 3.8)
    for k, (name, norms) in enumerate(curves.items()):
        layers_ = np.arange(1, depth + 1)
        ax.plot(layers_, norms[0], marker="o", color=f"C{k}", label=f"{name}, init")
        ax.plot(layers_, norms[-1], marker="x", ls="--", color=f"C{k}", label=f"{name}, after {epochs} ep.")
    ax.set(yscale="log", xlabel="layer l", ylabel="||δ^l|| = ||∂E/∂b^l||",
           title=f"{depth}-layer MLP on MNIST, seed {seed}")
    ax.legend(fontsize=7)
    return Result(metrics=metrics, artifacts={"layer_gradients.png": plots.png(fig)},
                  stderr=stderr, convergence=converged,
                  notes=f"{len(x)} MNIST training images (a random subset for this seed), {width} units per "
                        f"hidden layer, SGD lr {learning_rate}, batch {batch_size}; gradients on a fixed batch "
                        f"of {len(probe_x)}")


@experiment("residual_depth", datasets=("mnist",))
def residual_depth(*, seed: int, depths: list[int] = (8, 20, 56), width: int = 64, train_size: int = 5000,
                   probe_size: int = 1000, epochs: int = 6, batch_size: int = 128,
                   learning_rate: float = 0.05, momentum: float = 0.9) -> Result:
    """Plain vs residual MLPs at growing depth, same optimizer and epochs: first-layer gradient norm
    at initialisation and the training loss reached."""
    x, y, _, _ = _mnist(train_size, 1, seed)
    probe_x, probe_y = x[:probe_size], y[:probe_size]
    metrics: dict = {}
    converged: dict[str, dict] = {}
    losses: dict[str, list[float]] = {}
    total, done = 2 * len(depths), 0
    for residual in (False, True):
        kind = "res" if residual else "plain"
        for d in depths:
            keras.utils.set_random_seed(seed)
            model = plain_or_residual(d, width, residual=residual)
            g = _grad_norms(model, probe_x, probe_y, which="kernel")  # BN makes ∂E/∂b zero, so use W
            model.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=momentum),
                          loss="sparse_categorical_crossentropy", jit_compile=False)
            hist = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
            losses[f"{kind} {d}"] = hist.history["loss"]
            converged[f"{kind}_{d}"] = convergence.from_history(hist, monitor="loss",
                                                                 budget=f"{epochs} epochs")
            # Gradients "flow" when the first layer's gradient is neither vanishing nor exploding
            # relative to the last layer's: |log10(||∂E/∂W^1|| / ||∂E/∂W^L||)| near 0.
            metrics |= {f"{kind}_log10_grad1_{d}": float(np.log10(g[0])),
                        f"{kind}_grad1_over_last_{d}": float(g[0] / g[-1]),
                        f"{kind}_abs_log10_grad_ratio_{d}": float(abs(np.log10(g[0] / g[-1]))),
                        f"{kind}_loss_{d}": float(hist.history["loss"][-1])}
            done += 1
            progress.step(done, total, f"{kind} {d} layers: loss {hist.history['loss'][-1]:.4f}")
    lo, hi = min(depths), max(depths)
    for kind in ("plain", "res"):
        metrics[f"{kind}_abs_log10_grad_ratio_deep"] = metrics[f"{kind}_abs_log10_grad_ratio_{hi}"]
        metrics[f"{kind}_loss_shallow"] = metrics[f"{kind}_loss_{lo}"]
        metrics[f"{kind}_loss_deep"] = metrics[f"{kind}_loss_{hi}"]
    metrics["res_loss_deep_minus_shallow"] = metrics["res_loss_deep"] - metrics["res_loss_shallow"]
    metrics["plain_loss_deep_minus_shallow"] = metrics["plain_loss_deep"] - metrics["plain_loss_shallow"]

    fig, ax = plots.figure(5.5, 3.8)
    for k, d in enumerate(depths):
        ax.plot(range(1, epochs + 1), losses[f"plain {d}"], ls="--", color=f"C{k}", label=f"plain {d}")
        ax.plot(range(1, epochs + 1), losses[f"res {d}"], color=f"C{k}", label=f"residual {d}")
    ax.set(yscale="log", xlabel="epoch", ylabel="training loss", title=f"plain vs residual MLPs, seed {seed}")
    ax.legend(fontsize=7)
    return Result(metrics=metrics, artifacts={"residual_loss.png": plots.png(fig)},
                  convergence=converged,
                  notes=f"{len(x)} MNIST training images (a random subset for this seed), width {width}, "
                        f"Dense-BN-ReLU, SGD lr {learning_rate} momentum {momentum}, {epochs} epochs for every depth")
