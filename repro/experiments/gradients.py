"""VANISH-SIGMOID, RELU-GRAD, RESNET-GRAD: how the gradient reaches the first layers (7.3, 梯度消失).

The chapter measures a layer's learning speed by ||δ^l|| = ||∂E/∂b^l||, the gradient of the loss
with respect to that layer's biases, and argues δ^1 = δ^10 · Π (w^l σ'), with σ' ≤ 1/4 for the
sigmoid. `layer_gradients` measures exactly that on a 10-layer MLP on real MNIST, at
initialisation and after each epoch of plain mini-batch SGD. `activation_speed` times each
activation's forward and backward pass alone on a large tensor (ReLU's "simpler computation").
`residual_depth` trains He et al.'s plain/residual pair at growing depth, each net to convergence
with its own learning rate, and measures signed gradient ratios with and without batch norm.
Each seed trains (and tests) on its own random subset of MNIST.
Cost on 2 CPU cores: about 1 s an epoch of 4,000 images per 10-layer variant; see the suite for
the other two.
"""
from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from repro import convergence, data, plots, progress, stats
from repro.models import resmlp
from repro.models.mlp import deep_mlp
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
        converged[name] = convergence.check(      # what the trained model produces (not the init values)
            train_loss, budget=f"{epochs} epochs", metrics=[f"{name}_{k}" for k in (
                "ratio_trained", "log10_ratio_trained", "grad_norms_trained", "test_accuracy")])
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
                  test_set={k: "fixed" if len(yte) == data.mnist.SIZES["test"] else "per_seed" for k in stderr},
                  notes=f"{len(x)} MNIST training images (a random subset for this seed), {width} units per "
                        f"hidden layer, SGD lr {learning_rate}, batch {batch_size}; gradients on a fixed batch "
                        f"of {len(probe_x)}")


# ---- RELU-GRAD, "简化计算过程": the activation's own cost ----------------------------------------

ACTIVATIONS = {"relu": tf.nn.relu, "sigmoid": tf.sigmoid, "tanh": tf.tanh}


@experiment("activation_speed")
def activation_speed(*, seed: int, activations: list[str] = ("relu", "sigmoid", "tanh"),
                     elements: int = 8_000_000, rounds: int = 40, warmup: int = 3) -> Result:
    """Forward + backward time of each activation alone, on one large tensor, interleaved.

    Regime and why: the chapter says ReLU "simplifies the computation" (简化计算过程), a statement
    about the function and its derivative, not about a network. A training step of a small MLP
    (what suite 1 timed, ~3 ms) is dominated by op dispatch and the matrix products, so it cannot
    show the activation's cost. Here each activation is one graph (`tf.function`): y = f(x) and
    ∂(Σ y·u)/∂x = f'(x)·u for a fixed upstream gradient u, on ``elements`` float32 values (8M: 32 MB a
    tensor, far beyond the caches, the size of a large layer's activations). Each round times every
    activation once, in an order rotated from round to round, so a slow moment of a shared machine
    falls on all of them alike; the per-round ratio pairs them. The per-seed value of each
    activation is its median over the rounds; the seed draws the input values.
    """
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.standard_normal(elements, dtype=np.float32))
    u = tf.constant(rng.standard_normal(elements, dtype=np.float32))

    def make(f):
        @tf.function
        def fwd_bwd(x, u):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = f(x)
            return y, tape.gradient(y, x, output_gradients=u)
        return fwd_bwd

    fns = {a: make(ACTIVATIONS[a]) for a in activations}
    for f in fns.values():                                   # trace, allocate, warm the caches
        for _ in range(warmup):
            f(x, u)
    times = {a: [] for a in activations}
    names = list(activations)
    for r in range(rounds):
        k = r % len(names)
        for a in names[k:] + names[:k]:                      # rotated order: each position equally often
            t0 = time.perf_counter()
            y, g = fns[a](x, u)
            times[a].append(time.perf_counter() - t0)
            del y, g
        progress.step(r + 1, rounds, f"round {r + 1}/{rounds}")
    ms = {a: 1000 * np.asarray(t) for a, t in times.items()}
    metrics: dict = {}
    for a in activations:
        metrics[f"{a}_ms"] = float(np.median(ms[a]))
        metrics[f"{a}_ms_min"] = float(ms[a].min())
        # bytes moved at the median: read x and u, write y and the gradient (4 tensors of float32)
        metrics[f"{a}_gbytes_per_s"] = float(4 * 4 * elements / (np.median(ms[a]) / 1000) / 1e9)
    if "relu" in activations:
        for a in activations:
            if a != "relu":
                metrics[f"{a}_over_relu"] = float(np.median(ms[a] / ms["relu"]))      # paired per round
                metrics[f"relu_faster_than_{a}_share"] = float(np.mean(ms["relu"] < ms[a]))

    fig, ax = plots.figure(5.5, 3.5)
    for k, a in enumerate(activations):
        ax.plot(range(1, rounds + 1), ms[a], marker=".", color=f"C{k}", label=a)
    ax.set(xlabel="round", ylabel="forward + backward (ms)",
           title=f"{elements / 1e6:g}M float32 elements, seed {seed}")
    ax.legend(fontsize=7)
    return Result(metrics=metrics, artifacts={"activation_speed.png": plots.png(fig)},
                  notes=f"{elements:,} float32 elements, {rounds} interleaved rounds after {warmup} warm-up calls; "
                        f"tf.function of f(x) and its gradient, TensorFlow {tf.__version__}")


# ---- RESNET-GRAD: plain vs residual at growing depth --------------------------------------------

def _log10_ratio(a: float, b: float) -> float:
    return float(np.log10(a / b)) if a > 0 and b > 0 and np.isfinite(a / b) else float("nan")


class _Training:
    """One net on one rate: SGD with momentum on the warm-up + step schedule, run epoch range by
    epoch range (so that every rate of the grid can run the base-rate phase and only the chosen one
    goes on); ``curve`` holds the mean training loss of every epoch run so far."""

    def __init__(self, net: resmlp.Net, params: dict, *, lr: float, epochs: int, steps: int, warmup: float,
                 batch_size: int, rng: np.random.Generator):
        self.net, self.lr, self.batch_size, self.rng = net, lr, batch_size, rng
        self.rates = resmlp.schedule(epochs * steps, lr, warmup)
        self.steps = steps
        self.p = resmlp.to_tensors(params)
        self.v = {k: tf.zeros_like(t) for k, t in self.p.items()}
        self.curve: list[float] = []

    def run(self, x: np.ndarray, y: np.ndarray, until: int) -> None:
        while len(self.curve) < until:
            e, order, total = len(self.curve), self.rng.permutation(len(x)), 0.0
            for i in range(self.steps):
                idx = order[i * self.batch_size:(i + 1) * self.batch_size]
                self.p, self.v, loss = self.net.step(self.p, self.v, x[idx], y[idx], self.rates[e * self.steps + i])
                total += float(loss)
            self.curve.append(total / self.steps)
            if not np.isfinite(self.curve[-1]):              # diverged: the rest of the budget cannot help
                return

    @property
    def diverged(self) -> bool:
        return bool(self.curve) and not np.isfinite(self.curve[-1])


@experiment("residual_depth", datasets=("mnist",))
def residual_depth(*, seed: int, depths: list[int] = (8, 20, 32, 56), width: int = 32, train_size: int = 2048,
                   probe_size: int = 512, epochs: int = 120, batch_size: int = 128,
                   learning_rates: list[float] = (0.003, 0.01, 0.03, 0.1), warmup: float = 0.1,
                   momentum: float = 0.9, train_no_bn: bool = False,
                   no_bn_learning_rates: list[float] = (0.001, 0.003, 0.01, 0.03), xla: bool = True) -> Result:
    """Plain vs residual MLPs (He et al.'s pair) at growing depth, each trained to convergence with
    its own learning rate; signed gradient ratios with and without batch normalisation.

    Regime and why: the chapter says deeper residual nets "converge and do not degrade", i.e. He et
    al.'s (2016) degradation problem: a deeper *plain* net reaches a higher *training* error than a
    shallower one (an optimisation failure, not over-fitting), a residual one does not. So:
    - training loss and error on the training set are the measures (evaluated after training, with
      batch norm on the whole set's statistics), on a random MNIST subset per seed;
    - every net is trained with He et al.'s recipe (batch norm, SGD with momentum 0.9, the rate
      divided by 10 at 50% and 75% of the steps) plus a linear warm-up over the first 10% of steps
      (Goyal et al. 2017; He et al. warm up their 110-layer net), and each (plain|residual, depth)
      gets its own rate from a grid around He et al.'s 0.1: every rate runs the warm-up and
      base-rate phase (the first half of the steps, from the same start and batch order), and the
      one with the lowest training loss there goes on through the two cuts. The baselines get the
      same care;
    - the judged nets (the shallowest and the deepest of each kind, with batch norm) must have
      converged by the project's rule, applied to the base-rate phase
      (the per-epoch training loss flat over its last 20% before the first cut: the cuts would
      flatten any curve); otherwise the claim is inconclusive at this budget;
    - gradient flow, the chapter's ∂E/∂x^l formula, is measured at initialisation and after
      training as *signed* log10 ratios first/last (> 0: the first layers get more, exploding;
      < 0: vanishing): of ||∂E/∂W|| (input layer vs output layer) and of ||∂E/∂x^l|| (the first
      block's input vs the last's), with batch norm and in a variant without it, because batch
      norm in a deep plain net makes gradients explode towards the input (Yang et al. 2019), which
      an absolute ratio would not tell from vanishing. The variant without batch norm is trained
      only when ``train_no_bn`` (the `paper` profile): it is reported, not judged.
    ``xla``: compile the training step (pays from a few hundred steps on; smoke and quick go without).
    """
    x, y, _, _ = _mnist(train_size, 1, seed)
    probe_x, probe_y = x[:probe_size], y[:probe_size]
    variants = [("plain", False, True), ("res", True, True), ("plain_nobn", False, False), ("res_nobn", True, False)]
    nets = {name: resmlp.Net(residual=res, bn=bn, momentum=momentum, jit=xla) for name, res, bn in variants}
    metrics: dict = {}
    converged: dict[str, dict] = {}
    curves: dict[str, list[float]] = {}
    profiles: dict[str, np.ndarray] = {}
    trained = [v for v in variants if v[2] or train_no_bn]
    total = len(trained) * len(depths) * len(learning_rates)
    steps = len(x) // batch_size
    base = epochs // 2                                      # the base-rate phase: the rate is cut at 50% of the steps
    done = 0
    for name, res, bn in variants:
        grid = learning_rates if bn else no_bn_learning_rates
        for d in depths:
            init = resmlp.init(d, width, np.random.default_rng([seed, d]))   # the same start for every rate
            gw, gx = (t.numpy() for t in nets[name].gradients(resmlp.to_tensors(init), probe_x, probe_y))
            metrics[f"{name}_log10_grad_ratio_init_{d}"] = _log10_ratio(gw[0], gw[-1])
            metrics[f"{name}_log10_dx_ratio_init_{d}"] = _log10_ratio(gx[0], gx[-1])
            if d == max(depths):
                profiles[f"{name}, init"] = gw
            if not (bn or train_no_bn):
                continue
            # every rate runs the warm-up and base-rate phase from the same start and batch order;
            # the one with the lowest training loss there goes on through the two decays
            runs, grid_losses = [], []
            for lr in grid:
                t = _Training(nets[name], init, lr=lr, epochs=epochs, steps=steps, warmup=warmup,
                              batch_size=batch_size, rng=np.random.default_rng([seed, d, 2]))
                t.run(x, y, base)
                loss = float(nets[name].evaluate(t.p, x, y)[0]) if not t.diverged else float("inf")
                loss = loss if np.isfinite(loss) else float("inf")
                runs.append((loss, t))
                grid_losses.append(loss if np.isfinite(loss) else None)
                done += 1
                progress.step(done, total, f"{name} {d} layers, lr {lr:g}: training loss {loss:.4f} at the base rate")
            t = min(runs, key=lambda r: r[0])[1]
            t.run(x, y, epochs)
            lr, p, curve = t.lr, t.p, t.curve
            loss, err = (float(v) for v in nets[name].evaluate(p, x, y))
            gw, gx = (t.numpy() for t in nets[name].gradients(p, probe_x, probe_y))
            curves[f"{name} {d}"] = curve
            # judged on the base-rate phase (the cuts flatten any curve); solved at a training loss of
            # 0.01 nats (the right label gets >= 99% probability: it fits its data); stalled when flat
            # above 1 nat (the right label under e^-1 = 37% on average: it has not fit them)
            end = "deep" if d == max(depths) else "shallow"
            conv = convergence.check(curve, budget=f"{base} epochs at the base rate (of {epochs}) on {len(x)} images",
                                     phase_end=base, floor=0.01, bad=1.0,
                                     metrics=[f"{name}_*_{d}", f"{name}_*_{end}", f"{name}_*_deep_minus_shallow",
                                              "res_minus_plain_loss_deep"])
            if bn and d in (min(depths), max(depths)):      # the judged nets (the rest is reported)
                converged[f"{name}_{d}"] = conv
            metrics |= {f"{name}_loss_{d}": loss, f"{name}_error_{d}": err, f"{name}_lr_{d}": lr,
                        f"{name}_grid_losses_{d}": grid_losses,
                        f"{name}_lr_at_grid_edge_{d}": lr in (min(grid), max(grid)),
                        f"{name}_converged_{d}": bool(conv["converged"]),
                        f"{name}_log10_grad_ratio_trained_{d}": _log10_ratio(gw[0], gw[-1]),
                        f"{name}_log10_dx_ratio_trained_{d}": _log10_ratio(gx[0], gx[-1])}
            if d == max(depths):
                profiles[f"{name}, trained"] = gw
    lo, hi = min(depths), max(depths)
    for name, _, bn in variants:
        for q in ("log10_grad_ratio_init", "log10_dx_ratio_init"):
            metrics[f"{name}_{q}_deep"] = metrics[f"{name}_{q}_{hi}"]
        if not (bn or train_no_bn):
            continue
        for q in ("loss", "error", "log10_grad_ratio_trained", "log10_dx_ratio_trained"):
            metrics[f"{name}_{q}_deep"] = metrics[f"{name}_{q}_{hi}"]
        for q in ("loss", "error", "lr"):
            metrics[f"{name}_{q}_shallow"] = metrics[f"{name}_{q}_{lo}"]
        metrics[f"{name}_lr_deep"] = metrics[f"{name}_lr_{hi}"]
        metrics[f"{name}_loss_deep_minus_shallow"] = metrics[f"{name}_loss_{hi}"] - metrics[f"{name}_loss_{lo}"]
        metrics[f"{name}_error_deep_minus_shallow"] = metrics[f"{name}_error_{hi}"] - metrics[f"{name}_error_{lo}"]
    metrics["res_minus_plain_loss_deep"] = metrics["res_loss_deep"] - metrics["plain_loss_deep"]

    fig, (ax1, ax2) = plots.plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    for k, d in enumerate(depths):
        for name, ls in (("plain", "--"), ("res", "-")):
            c = curves[f"{name} {d}"]
            ax1.plot(range(1, len(c) + 1), c, ls=ls, color=f"C{k}",
                     label=f"{'plain' if name == 'plain' else 'residual'} {d} (η {metrics[f'{name}_lr_{d}']:g})")
    ax1.set(yscale="log", xlabel="epoch", ylabel="training loss (epoch mean)",
            title=f"with batch norm, best rate per net, seed {seed}")
    ax1.legend(fontsize=6)
    for k, (label, g) in enumerate(profiles.items()):
        ax2.plot(range(1, len(g) + 1), g, color=f"C{k}", ls="-" if "init" in label else "--", label=label)
    ax2.set(yscale="log", xlabel="weight layer", ylabel="||∂E/∂W^l||", title=f"{hi} layers: gradient per layer")
    ax2.legend(fontsize=6)
    return Result(metrics=metrics, artifacts={"residual_depth.png": plots.png(fig)}, convergence=converged,
                  notes=f"{len(x)} MNIST training images (a random subset for this seed), width {width}, "
                        f"Dense-BN-ReLU (and without BN), SGD momentum {momentum}, batch {batch_size}, "
                        f"{epochs} epochs, warm-up {warmup:.0%} of the steps then ÷10 at 50% and 75%; rate per net "
                        f"from {list(learning_rates)} (without BN: {list(no_bn_learning_rates)}); gradients on "
                        f"{len(probe_x)} training images")
