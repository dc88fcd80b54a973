"""OPT-GD, OPT-FORMULAS, OPT-ADAPTIVE, OPT-MOMENTUM: gradient-descent variants and the update rules of 7.3.

Three experiments:

* `gd_variants` (OPT-GD): batch size 1, a mini-batch and the full set on real MNIST, each with its own
  learning rate tuned on one shared grid, compared at equal compute (CPU time).
* `optimizer_formulas` (OPT-FORMULAS): the chapter's seven rules as written, stepped beside the
  standard algorithms on one gradient sequence; the two that differ (momentum's g(0) = ∇E(0), NAG's
  look-ahead sign) trained beside the standard forms, so the deviation's effect shows on a curve.
* `optimizer_race` (OPT-ADAPTIVE, OPT-MOMENTUM): the STANDARD algorithms (repro.optim's STANDARD,
  each checked against Keras' built-in), every one with its own rate tuned on a grid, on an
  ill-conditioned quadratic (condition number 100, start drawn per seed) and on an MNIST MLP
  (training subset drawn per seed).

A learning-rate grid is trained in one go: G copies of the same network (`_Stack`, weights with a
leading axis G) see the same batches, and the optimizer scales η (or Adadelta's ε) row by row
(repro.optim's `lr_scale`). The rows are independent runs (their losses are summed, so each row's
gradient is its own), which costs one dispatch per step instead of G; a seed fixes the initial
weights (the same for every row and every optimizer) and the batch order.
"""
from __future__ import annotations

import math
import time

import numpy as np
import tensorflow as tf

from repro import convergence, data, plots, progress, stats
from repro.optim import chapter_optimizers as co
from repro.registry import Result, experiment

BIG = 1e6   # a loss recorded for a run that left the finite numbers


def _mnist(train_size: int, test_size: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each seed draws its own training and test subsets (seeds resample the data)."""
    (xtr, ytr), (xte, yte) = data.load_mnist(train_size=train_size, test_size=test_size, seed=seed)
    flat = lambda x: x.reshape(len(x), -1).astype("float32") / 255.0  # noqa: E731
    return flat(xtr), ytr.astype("int32"), flat(xte), yte.astype("int32")


def _finite(a) -> np.ndarray:
    return np.minimum(np.nan_to_num(np.asarray(a, dtype="float64"), nan=BIG, posinf=BIG), BIG)


# ---------------------------------------------------------------- G networks side by side

class _Stack:
    """G copies of the MLP 784-hidden-10 (ReLU, softmax), Glorot-uniform weights drawn from `seed`
    and copied to every row; all variables have shape (G, ·, ·), so an lr_scale of shape (G, 1, 1)
    gives row g its own learning rate."""

    def __init__(self, g: int, hidden: int, seed: int):
        import keras

        rng = np.random.default_rng(seed)

        def glorot(fan_in, fan_out):
            lim = math.sqrt(6.0 / (fan_in + fan_out))
            return rng.uniform(-lim, lim, (fan_in, fan_out)).astype("float32")

        tile = lambda a: np.repeat(a[None], g, axis=0)  # noqa: E731
        self.g = g
        self.initial = [tile(glorot(784, hidden)), np.zeros((g, 1, hidden), "float32"),
                        tile(glorot(hidden, 10)), np.zeros((g, 1, 10), "float32")]
        self.vars = [keras.Variable(v, name=n) for v, n in zip(self.initial, ("w1", "b1", "w2", "b2"))]

    def reset(self) -> None:
        """Back to the initial weights (for an optimizer without state, such as SGD)."""
        for v, a in zip(self.vars, self.initial):
            v.assign(a)

    def logits(self, x, values=None):
        w1, b1, w2, b2 = values if values is not None else [v.value for v in self.vars]
        h = tf.nn.relu(tf.einsum("bi,gih->gbh", x, w1) + b1)
        return tf.einsum("gbh,gho->gbo", h, w2) + b2

    def losses(self, x, y, values=None):
        """Mean cross-entropy of each row on the batch: shape (G,)."""
        logits = self.logits(x, values)
        labels = tf.broadcast_to(y[None], tf.shape(logits)[:2])
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits), axis=1)


_SPEC = (tf.TensorSpec((None, 784), tf.float32), tf.TensorSpec((None,), tf.int32))


def _trainer(stack: _Stack, opt, track: bool = False):
    """A compiled step (each row's batch loss, then one update of every row; with `track`, also
    each row's update · previous update) and an evaluation (each row's loss and accuracy at its
    iterate: for NAG the iterate w, not the look-ahead point)."""
    opt.build(stack.vars)
    at = getattr(opt, "iterate", None)

    prev = [tf.Variable(tf.zeros_like(v.value), trainable=False) for v in stack.vars] if track else []
    iterate = lambda v: at(v) if at else v.value  # noqa: E731

    @tf.function(input_signature=_SPEC)   # one trace for every batch size, the last partial one too
    def step(x, y):
        """Each row's batch loss, and the dot product of each row's update with its previous update
        (negative: the step reversed direction; 0 on the first step)."""
        before = [tf.identity(iterate(v)) for v in stack.vars] if track else []
        with tf.GradientTape() as tape:
            losses = stack.losses(x, y)
            total = tf.reduce_sum(tf.where(tf.math.is_finite(losses), losses, 0.0))
        grads = tape.gradient(total, [v.value for v in stack.vars])
        grads = [tf.where(tf.math.is_finite(g), g, tf.zeros_like(g)) for g in grads]
        opt.apply_gradients(zip(grads, stack.vars))
        if not track:
            return losses
        dot = tf.zeros((stack.g,))
        for v, b, p in zip(stack.vars, before, prev):
            delta = iterate(v) - b
            dot += tf.reduce_sum(delta * p, axis=[1, 2])
            p.assign(delta)
        return losses, dot

    @tf.function(input_signature=_SPEC)
    def evaluate(x, y):
        values = [at(v) if at else v.value for v in stack.vars]
        logits = stack.logits(x, values)
        labels = tf.broadcast_to(y[None], tf.shape(logits)[:2])
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits), axis=1)
        acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, axis=2, output_type=tf.int32), labels),
                                     tf.float32), axis=1)
        return loss, acc

    step.get_concrete_function()           # trace now, so that no timed step pays for it
    evaluate.get_concrete_function()
    return step, evaluate


def _train_grid(builder, knobs, x, y, xte, yte, *, seed: int, hidden: int, batch_size: int, epochs: int,
                rate_at: int = 10) -> dict:
    """One optimizer on a grid of its knob, `epochs` epochs of mini-batches of `batch_size`.

    Returns per-batch losses (steps, G), the final full-data training loss and test accuracy (G,),
    and for Adagrad/RMSprop the mean per-weight rate of the first layer at step `rate_at` and at the end."""
    stack = _Stack(len(knobs), hidden, seed)
    opt = co.on_grid(builder, knobs, (len(knobs), 1, 1))
    step, evaluate = _trainer(stack, opt, track=True)
    rng = np.random.default_rng(seed + 1)
    n = len(x)
    losses, dots, rates = [], [], []
    rate = getattr(opt, "rate", None)

    def median_rate():   # the median over weights: MNIST's always-blank pixels keep η/sqrt(ε) and would rule a mean
        r = tf.reshape(rate(stack.vars[0]), (stack.g, -1))
        return np.median(np.asarray(r), axis=1)

    for _ in range(epochs):
        order = rng.permutation(n)
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            loss, dot = step(x[idx], y[idx])
            losses.append(np.asarray(loss))
            dots.append(np.asarray(dot))
            if rate and len(losses) == rate_at:
                rates.append(median_rate())
    if rate:
        rates.append(median_rate())
    train_loss, _ = evaluate(x, y)
    _, acc = evaluate(xte, yte)
    dots = np.stack(dots[1:]) if len(dots) > 1 else np.zeros((1, len(knobs)))
    return {"losses": _finite(np.stack(losses)), "train_loss": _finite(train_loss), "acc": np.asarray(acc, "float64"),
            "reversal": np.mean(~(dots >= 0), axis=0),      # a NaN update counts as a reversal
            "rate_ratio": rates[-1] / rates[0] if len(rates) == 2 else None}


def _smooth(losses: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` batch losses, per row: shape (steps − window + 1, G)."""
    c = np.cumsum(np.vstack([np.zeros((1, losses.shape[1])), losses]), axis=0)
    return (c[window:] - c[:-window]) / window


def _steps_to(values: np.ndarray, target: float, cap: int) -> int:
    hit = np.nonzero(values <= target)[0]
    return int(hit[0]) if len(hit) else cap


# ---------------------------------------------------------------- OPT-GD: batch size 1, B, N

def _time_steps(x, y, sizes: dict[str, int], hidden: int, seed: int, steps: int,
                repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per update of ONE network at each batch size, interleaved repeats: (CPU seconds of
    this process, median over repeats; wall seconds, the fastest repeat).

    CPU time is the cost the claim speaks of (计算量) and stays put when other processes share the
    machine; wall time on a loaded machine does not (it is reported beside). On an idle machine the
    full batch's matrix products may use both cores, so its wall time can be below its CPU time."""
    step = _trainer(_Stack(1, hidden, seed), co.ChapterSGD(0.01))[0]   # one trace serves every batch size
    rng = np.random.default_rng(seed)
    cpu: dict[str, list[float]] = {k: [] for k in sizes}
    wall: dict[str, list[float]] = {k: [] for k in sizes}
    for _ in range(repeats):
        for k, b in sizes.items():
            batches = [rng.choice(len(x), b, replace=False) for _ in range(steps)]
            xs, ys = [tf.constant(x[i]) for i in batches], [tf.constant(y[i]) for i in batches]
            c0, t0 = time.process_time(), time.perf_counter()
            for xb, yb in zip(xs, ys):
                step(xb, yb)
            wall[k].append((time.perf_counter() - t0) / steps)
            cpu[k].append((time.process_time() - c0) / steps)
    return {k: float(np.median(v)) for k, v in cpu.items()}, {k: float(np.min(v)) for k, v in wall.items()}


@experiment("gd_variants", datasets=("mnist",))
def gd_variants(*, seed: int, train_size: int = 2000, test_size: int = 1000, minibatch: int = 32,
                hidden: int = 64, grid: list[float] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0), shared_rate: float = 0.03,
                epochs: int = 1, noise_updates: int = 100, timing_steps: int = 40, timing_repeats: int = 7) -> Result:
    """Batch size 1, a mini-batch and the full set, each at its own tuned learning rate.

    Regime (why): the chapter's three rules differ only in how many samples average the gradient, and
    their stated traits (per-sample updates oscillate, full-batch updates are costly, mini-batches
    are efficient and stable) are statements about each used as one would use it, so every batch
    size gets its own η, tuned on one shared grid (half-decades, 0.003 to 3; a best rate at a grid
    edge is reported). Tuning criterion = the comparison's quantity: the full-data
    training loss after equal compute. 2,000 training images: the claim about the full batch's cost
    is about data sets large enough for an update over all of them to cost many mini-batch updates
    (Bottou, Curtis & Nocedal 2018, "Optimization methods for large-scale machine learning", §3.3);
    at a few hundred images the full batch is nearly as cheap as a mini-batch.

    Cost = CPU seconds of this process (the chapter's 计算量, "amount of computation"; it stays put
    when other processes share the machine, wall time does not: reported beside). Equal compute:
    the CPU time batch size 1 needs for `epochs` epochs. CPU time per update is measured for ONE
    network per batch size (interleaved repeats, median); the grid is then trained for the number
    of updates each batch size fits in that budget (G networks side by side: the grid's cost is not
    the timed cost). Oscillation: the share of the first `noise_updates` updates that raise the
    full-data training loss, at each one's tuned η and at a shared η. Machine-dependent by nature,
    as a claim about cost is.
    """
    x, y, xte, yte = _mnist(train_size, test_size, seed)
    n = len(x)
    sizes = {"sgd1": 1, "minibatch": minibatch, "full": n}
    grid = [float(g) for g in grid]
    shared = int(np.argmin(np.abs(np.log(np.asarray(grid) / shared_rate))))
    seconds, wall = _time_steps(x, y, sizes, hidden, seed, timing_steps, timing_repeats)
    budget = epochs * n * seconds["sgd1"]
    metrics: dict = {"cpu_budget_seconds": budget}
    curves = {}
    stack = _Stack(len(grid), hidden, seed)      # SGD keeps no state: one network and one trace for all sizes
    step, evaluate = _trainer(stack, co.on_grid(co.STANDARD["sgd"], grid, (len(grid), 1, 1)))
    for k, (name, b) in enumerate(sizes.items()):
        updates = max(1, int(budget / seconds[name]))
        stack.reset()
        rng = np.random.default_rng(seed + 1)
        checks = set(range(1, min(noise_updates, updates) + 1)) | \
            set(np.unique(np.geomspace(1, updates, 40).astype(int)).tolist()) | {min(updates, epochs * math.ceil(n / b))}
        xs_all, ys_all = tf.constant(x), tf.constant(y)
        at = {0: _finite(evaluate(xs_all, ys_all)[0])}
        done, order = 0, np.empty(0, int)
        while done < updates:
            if len(order) < b:
                order = np.concatenate([order, rng.permutation(n)])
            idx, order = order[:b], order[b:]
            step(x[idx], y[idx])
            done += 1
            if done in checks:
                at[done] = _finite(evaluate(xs_all, ys_all)[0])
        steps_ = np.asarray(sorted(at))
        loss = np.stack([at[s] for s in steps_])                        # (checks, G)
        first = loss[: min(noise_updates, updates) + 1]
        rises = np.mean(np.diff(first, axis=0) > 0, axis=0)           # (G,)
        best = int(np.argmin(loss[-1]))
        _, acc = evaluate(tf.constant(xte), tf.constant(yte))
        ep = min(updates, epochs * math.ceil(n / b))
        curves[name] = (steps_ * seconds[name], loss[:, best], grid[best])
        metrics |= {f"{name}_rate": grid[best], f"{name}_rate_at_grid_edge": int(best in (0, len(grid) - 1)),
                    f"{name}_rise_fraction": float(rises[best]), f"{name}_rise_fraction_shared": float(rises[shared]),
                    f"{name}_loss_at_time": float(loss[-1, best]), f"{name}_loss_at_time_shared": float(loss[-1, shared]),
                    f"{name}_loss_at_epochs": float(at[ep][best]),
                    f"{name}_ms_per_update": 1000 * seconds[name],
                    f"{name}_wall_ms_per_update": 1000 * wall[name],
                    f"{name}_seconds_per_epoch": seconds[name] * math.ceil(n / b),
                    f"{name}_updates_in_budget": updates,
                    f"{name}_test_accuracy": float(np.asarray(acc)[best])}
        progress.step(k + 1, len(sizes), f"batch {b}: η {grid[best]}, loss {loss[-1, best]:.4f}")
    metrics["minibatch_loss_at_equal_time"] = metrics["minibatch_loss_at_time"]

    fig, ax = plots.figure(5.5, 3.8)
    for name, (t, l, lr) in curves.items():
        ax.plot(t, l, marker=".", ms=3, label=f"{name} (B={sizes[name]}, tuned η={lr})")
    ax.axvline(budget, color="grey", ls=":", label="equal compute")
    ax.set(xscale="log", yscale="log", xlabel="training CPU seconds (updates × measured CPU time per update)",
           ylabel="full-data training loss", title=f"gradient-descent variants, tuned η each, seed {seed}")
    ax.legend(fontsize=7)
    return Result(metrics=metrics, artifacts={"gd_loss_vs_time.png": plots.png(fig)},
                  notes=f"{n} MNIST training images, MLP 784-{hidden}-10, η tuned per batch size on {grid}; "
                        f"equal compute = {budget:.2f} CPU s")


# ---------------------------------------------------------------- the ill-conditioned quadratic

QUAD_EIGEN = (100.0, 1.0)     # condition number 100
QUAD_ANGLE = math.pi / 6      # eigenvectors rotated 30° off the axes (per-coordinate methods get no free ride)


def quadratic(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, start): f(w) = ½ wᵀHw, H with eigenvalues 100 and 1, rotated 30°; the start has components
    of random sign and size U(0.5, 1.5) along both eigenvectors, drawn per seed."""
    c, s = math.cos(QUAD_ANGLE), math.sin(QUAD_ANGLE)
    r = np.array([[c, -s], [s, c]])
    h = r @ np.diag(QUAD_EIGEN) @ r.T
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.5, 1.5, 2) * rng.choice([-1.0, 1.0], 2)
    return h.astype("float32"), (r @ z).astype("float32")


def quad_value(h: np.ndarray, w: np.ndarray) -> np.ndarray:
    """f at points w (..., 2)."""
    return 0.5 * np.einsum("...i,ij,...j->...", w, h.astype("float64"), w)


def _quad_run(builder, knobs, h: np.ndarray, start: np.ndarray, steps: int) -> np.ndarray:
    """Iterates (steps + 1, G, 2) of one optimizer from `start`, one row per knob value."""
    import keras

    g = len(knobs)
    opt = co.on_grid(builder, knobs, (g, 1))
    w = keras.Variable(np.repeat(start[None, :], g, axis=0))
    opt.build([w])
    hh = tf.constant(h)
    at = getattr(opt, "iterate", None)

    @tf.function
    def run():
        out = tf.TensorArray(tf.float32, size=steps + 1)
        out = out.write(0, w.value)
        for t in tf.range(steps):
            gr = tf.matmul(w.value, hh)       # ∇f at the variable (for NAG: the look-ahead point)
            gr = tf.where(tf.math.is_finite(gr), gr, tf.zeros_like(gr))
            opt.apply_gradients([(gr, w)])
            out = out.write(t + 1, at(w) if at else w.value)
        return out.stack()

    return run().numpy().astype("float64")


def _oscillation(traj: np.ndarray, until: int) -> float:
    """Share of steps whose update points against the previous one (cos < 0), up to step `until`."""
    d = np.diff(traj[: until + 1], axis=0)
    if len(d) < 2 or not np.all(np.isfinite(d)) or np.abs(traj[until]).max() > 1e3:
        return 1.0   # a run that diverged damped nothing
    a, b = d[1:], d[:-1]
    dot = np.sum(a * b, axis=1)
    moving = (np.linalg.norm(a, axis=1) > 0) & (np.linalg.norm(b, axis=1) > 0)
    return float(np.mean(dot[moving] < 0)) if moving.any() else 0.0


def _path_ratio(traj: np.ndarray, until: int) -> float:
    """Length of the path walked up to step `until` over the straight distance start → end (1 = straight)."""
    seg = traj[: until + 1]
    if not np.all(np.isfinite(seg)) or np.abs(seg).max() > 1e3:
        return BIG
    walked = np.sum(np.linalg.norm(np.diff(seg, axis=0), axis=1))
    straight = np.linalg.norm(seg[-1] - seg[0])
    return float(walked / straight) if straight > 0 else BIG


def _quad_grid(builder, knobs, h, start, steps: int, target: float) -> dict:
    """Steps until f ≤ target·f(start) for every knob value; the best = fewest steps (then lowest final f)."""
    traj = _quad_run(builder, knobs, h, start, steps)
    f = _finite(quad_value(h, traj))                               # (steps + 1, G)
    goal = target * float(quad_value(h, start.astype("float64")))
    reach = [_steps_to(f[:, j], goal, steps) for j in range(len(knobs))]
    best = int(np.lexsort((f[-1], reach))[0])
    return {"traj": traj, "f": f, "steps": reach, "best": best}


# ---------------------------------------------------------------- OPT-FORMULAS

@experiment("optimizer_formulas", datasets=("mnist",))
def optimizer_formulas(*, seed: int, check_steps: int = 50, train_size: int = 2000, test_size: int = 1000,
                       hidden: int = 64, batch_size: int = 64, epochs: int = 3, grid: list[float] = (0.001, 0.01, 0.1),
                       quad_steps: int = 600, quad_target: float = 1e-6, window: int = 10) -> Result:
    """The seven rules as the chapter writes them, beside the standard algorithms.

    1. Step by step: each rule and the standard algorithm (Keras' optimizer set to the published
       form) get the same Gaussian gradient sequence (drawn per seed); the largest |Δw| over steps and
       weights says whether they are the same rule. Keras at its own defaults is reported beside.
    2. The deviations, named and trained: momentum's g(0) = ∇E(0) (the first step ignores η: a step of
       the raw gradient, then carried by α: an extra (1 − η)∇E(0)/(1 − α) in w) and NAG's
       w_pre = w + βg (with w moving by −g, the look-ahead points backwards; the standard form is
       w − αg). Each is trained beside its standard form on an MNIST MLP (training subset per seed,
       same initial weights and batches, η on a shared grid) and on the ill-conditioned quadratic of
       `optimizer_race` (start per seed, η on a fine grid): the curves and the steps to a target
       show what the deviation does. Regime (why): the same tasks as the behaviour claims, so the
       effect shown is the effect on the claims' own measurements.
    The other five rules are the standard ones (Adadelta's undefined g and Δw read as Zeiler's running
    means of ∇E² and Δw²; Adam's ε inside, as Kingma & Ba's Algorithm 1).
    """
    metrics: dict = {}
    diffs = co.keras_differences(steps=check_steps, seed=seed)
    metrics |= {f"keras_{k}": v for k, v in diffs.items()}
    metrics["keras_max_diff_matched"] = max(v for k, v in diffs.items() if k.endswith("matched_vs_matched"))
    # Adam's ε placement matters only where sqrt(n̂) is comparable to ε: gradients of 1e-5.
    metrics["keras_adam_tiny_grad_diff"] = co.keras_differences(
        steps=check_steps, seed=seed, grad_scale=1e-5, names=("adam",))["adam_literal_vs_default"]
    progress.step(1, 3, "formulas against Keras")

    pairs = {"momentum": "g(0) = ∇E(0)", "nesterov": "w_pre = w + βg"}
    x, y, xte, yte = _mnist(train_size, test_size, seed)
    grid = [float(g) for g in grid]
    d = int(np.argmin(np.abs(np.log(np.asarray(grid) / 0.01))))     # η = 0.01, Keras' default for both
    runs = {}
    for name in pairs:
        for form, table in (("literal", co.LITERAL), ("standard", co.STANDARD)):
            runs[(name, form)] = _train_grid(table[name], grid, x, y, xte, yte, seed=seed, hidden=hidden,
                                             batch_size=batch_size, epochs=epochs)
    for (name, form), r in runs.items():
        best = int(np.argmin(r["train_loss"]))
        early = r["losses"][: min(10, len(r["losses"]))]
        metrics |= {f"{name}_{form}_mnist_loss": float(r["train_loss"][d]),
                    f"{name}_{form}_mnist_loss_tuned": float(r["train_loss"][best]),
                    f"{name}_{form}_mnist_acc": float(r["acc"][d]),
                    f"{name}_{form}_mnist_early_max_loss": float(early[:, d].max())}
    for name in pairs:
        metrics[f"{name}_literal_minus_standard_mnist_loss"] = \
            metrics[f"{name}_literal_mnist_loss"] - metrics[f"{name}_standard_mnist_loss"]
    progress.step(2, 3, "MNIST: literal against standard")

    h, start = quadratic(seed)
    qgrid = _quad_knobs()
    quad = {(name, form): _quad_grid(table[name], qgrid, h, start, quad_steps, quad_target)
            for name in pairs for form, table in (("literal", co.LITERAL), ("standard", co.STANDARD))}
    for (name, form), q in quad.items():
        j = quad[(name, "standard")]["best"]           # the standard form's tuned η, shared by both forms
        metrics |= {f"{name}_{form}_quad_steps_tuned": q["steps"][q["best"]],
                    f"{name}_{form}_quad_rate": qgrid[q["best"]],
                    f"{name}_{form}_quad_steps_at_standard_rate": q["steps"][j]}
    metrics["quad_steps_cap"] = quad_steps
    progress.step(3, 3, "quadratic: literal against standard")

    artifacts = {}
    fig, axes = plots.figure(9.0, 3.6)
    fig.clf()
    for k, name in enumerate(pairs):
        ax = fig.add_subplot(1, 2, k + 1)
        for form, ls in (("standard", "-"), ("literal", "--")):
            c = _smooth(runs[(name, form)]["losses"], window)
            for j, lr in enumerate(grid):
                ax.plot(np.arange(len(c)) + window, c[:, j], ls=ls, color=f"C{j}", lw=1,
                        label=f"{form}, η={lr}")
        ax.set(yscale="log", xlabel="step", ylabel=f"training loss (mean of {window} batches)")
        ax.set_title(f"{name}: {pairs[name]} (dashed) vs standard, seed {seed}", fontsize=8)
        ax.legend(fontsize=6)
    artifacts["formulas_mnist_curves.png"] = plots.png(fig)
    fig, axes = plots.figure(9.0, 3.6)
    fig.clf()
    for k, name in enumerate(pairs):
        ax = fig.add_subplot(1, 2, k + 1)
        j = quad[(name, "standard")]["best"]
        for form, ls in (("standard", "-"), ("literal", "--")):
            ax.plot(quad[(name, form)]["f"][:, j], ls=ls, label=f"{form}, η={qgrid[j]:.3g}")
        ax.set(yscale="log", xlabel="step", ylabel="f(w)")
        ax.set_title(f"quadratic κ=100, {name} at the standard's tuned η, seed {seed}", fontsize=8)
        ax.legend(fontsize=7)
    artifacts["formulas_quadratic.png"] = plots.png(fig)
    return Result(metrics=metrics, artifacts=artifacts,
                  notes=f"gradient sequence: {check_steps} steps × 64 weights; MNIST {len(x)} images, MLP 784-{hidden}-10, "
                        f"B={batch_size}, {epochs} epochs, η grid {grid}; quadratic κ=100, {quad_steps} steps")


# ---------------------------------------------------------------- OPT-ADAPTIVE, OPT-MOMENTUM: the race

def _quad_knobs(per_decade: int = 4) -> list[float]:
    """η from 1e-4 to 1 on a log grid (ε for Adadelta: the squares, so that sqrt(ε), its first step, spans the same)."""
    return [float(v) for v in np.logspace(-4, 0, 4 * per_decade + 1)]


# Each method's MNIST grid: four points a decade apart, a factor 1000 in the size of its first
# steps. SGD, momentum, NAG and Adagrad on 1e-3 … 1 (the rates of Zeiler 2012's MNIST comparison;
# one grid for the three η·∇E methods, so that they also meet at shared rates); RMSprop and Adam on
# 1e-4 … 1e-1 (their step is about η per weight, Adam's default 1e-3 inside); Adadelta's ε on
# 1e-8 … 1e-2 (Zeiler's grid; its first step is about sqrt(ε)).
MNIST_GRIDS = {
    "sgd": [1e-3, 1e-2, 1e-1, 1.0],
    "momentum": [1e-3, 1e-2, 1e-1, 1.0],
    "nesterov": [1e-3, 1e-2, 1e-1, 1.0],
    "adagrad": [1e-3, 1e-2, 1e-1, 1.0],
    "rmsprop": [1e-4, 1e-3, 1e-2, 1e-1],
    "adadelta": [1e-8, 1e-6, 1e-4, 1e-2],
    "adam": [1e-4, 1e-3, 1e-2, 1e-1],
}
METHODS = tuple(MNIST_GRIDS)


@experiment("optimizer_race", datasets=("mnist",))
def optimizer_race(*, seed: int, methods: list[str] = METHODS, quad_steps: int = 1000, quad_target: float = 1e-6,
                   quad_per_decade: int = 4, train_size: int = 4000, test_size: int = 2000, hidden: int = 128,
                   batch_size: int = 64, epochs: int = 5, target_loss: float = 0.3, window: int = 20,
                   grid_points: int = 4) -> Result:
    """The standard algorithms, each with its own tuned rate, on two tasks.

    Regime (why): the chapter's behaviour claims (momentum damps oscillation and speeds descent, NAG
    is faster, Adam is fast and stable, Adagrad's rate decays and RMSprop fixes it, Adadelta needs no
    learning rate) are about the algorithms as published, used as one uses them; so each runs in its
    standard form (its formulas as written are OPT-FORMULAS') with its rate tuned on a grid of equal
    size (tuning criterion: fewest steps to the target on the quadratic, lowest final full-data
    training loss on MNIST).

    * The ill-conditioned quadratic (eigenvalues 100 and 1, rotated 30°; the start drawn per seed
      with both eigen-directions present) is where the textbook picture of oscillation lives: the
      steep direction makes gradient descent zig-zag. η on one log grid for every method (4 a decade,
      1e-4 … 1; Adadelta's ε on the squares). Oscillation = share of steps whose update reverses the
      previous one (and the path length over the straight distance, reported), up to f ≤ 1e-6·f(0),
      at each method's tuned η and, for SGD, momentum and NAG, at a shared η: SGD's tuned one.
    * An MNIST MLP (784-128-10, B = 64, training subset drawn per seed) is where deep-learning
      practice meets these claims. Grids of four points a decade apart (MNIST_GRIDS, Zeiler 2012's
      rates for SGD and Adagrad and his ε grid for Adadelta). Steps to a training loss of
      `target_loss` (mean of the last `window` batches) at the tuned rate; the per-weight rate of the
      first layer at step 10 and at the end (Adagrad, RMSprop); each grid point's test accuracy (its
      spread over the grid is the sensitivity to the knob: Adadelta's ε against SGD's η).
    Budget-bound by design ("faster", "after the same steps"): convergence is reported, not required.
    """
    methods = list(methods)
    metrics: dict = {}
    total, done = 2 * len(methods), 0

    # 1. the quadratic
    h, start = quadratic(seed)
    knobs = _quad_knobs(quad_per_decade)
    quads = {}
    for m in methods:
        q = _quad_grid(co.STANDARD[m], [k ** 2 for k in knobs] if m == "adadelta" else knobs, h, start,
                       quad_steps, quad_target)
        quads[m] = q
        b = q["best"]
        until = min(q["steps"][b], quad_steps)
        metrics |= {f"{m}_quad_steps_tuned": q["steps"][b], f"{m}_quad_rate": knobs[b] ** (2 if m == "adadelta" else 1),
                    f"{m}_quad_final": float(q["f"][-1, b]),
                    f"{m}_quad_osc_tuned": _oscillation(q["traj"][:, b], until),
                    f"{m}_quad_path_tuned": _path_ratio(q["traj"][:, b], until)}
        done += 1
        progress.step(done, total, f"quadratic: {m} in {q['steps'][b]} steps")
    if "sgd" in quads:
        j = quads["sgd"]["best"]                  # the shared η: SGD's tuned one
        metrics["quad_shared_rate"] = knobs[j]
        for m in ("sgd", "momentum", "nesterov"):
            if m in quads:
                q = quads[m]
                until = min(q["steps"][j], quad_steps)
                metrics |= {f"{m}_quad_osc_shared": _oscillation(q["traj"][:, j], until),
                            f"{m}_quad_path_shared": _path_ratio(q["traj"][:, j], until),
                            f"{m}_quad_steps_shared": q["steps"][j]}
    metrics["quad_steps_cap"] = quad_steps

    # 2. MNIST
    x, y, xte, yte = _mnist(train_size, test_size, seed)
    curves, grids, accs, conv, stderr = {}, {}, {}, {}, {}
    for m in methods:
        grid = MNIST_GRIDS[m][:grid_points] if grid_points < 4 else MNIST_GRIDS[m]
        r = _train_grid(co.STANDARD[m], grid, x, y, xte, yte, seed=seed, hidden=hidden,
                        batch_size=batch_size, epochs=epochs)
        smooth = _smooth(r["losses"], window)
        cap = len(r["losses"])
        b = int(np.argmin(r["train_loss"]))
        reach = _steps_to(smooth[:, b], target_loss, cap - window + 1) + window
        half = smooth[len(smooth) // 2, b]
        curves[m], grids[m], accs[m] = smooth[:, b], grid, r["acc"]
        metrics |= {f"{m}_mnist_rate": grid[b], f"{m}_mnist_rate_at_grid_edge": int(b in (0, len(grid) - 1)),
                    f"{m}_mnist_loss_tuned": float(r["train_loss"][b]), f"{m}_mnist_steps_tuned": reach,
                    f"{m}_mnist_acc_tuned": float(r["acc"][b]),
                    f"{m}_mnist_late_gain": float(np.log(max(half, 1e-12) / max(smooth[-1, b], 1e-12))),
                    f"{m}_mnist_reversal_tuned": float(r["reversal"][b]),
                    f"{m}_mnist_grid_min_acc": float(r["acc"].min()),
                    f"{m}_mnist_grid_acc_range": float(r["acc"].max() - r["acc"].min())}
        stderr[f"{m}_mnist_acc_tuned"] = stats.binomial_se(float(r["acc"][b]), len(xte))
        if r["rate_ratio"] is not None:
            metrics[f"{m}_rate_late_over_early"] = float(r["rate_ratio"][b])
        per_epoch = max(1, math.ceil(len(x) / batch_size))
        epoch_mean = [float(np.mean(r["losses"][e * per_epoch:(e + 1) * per_epoch, b])) for e in range(epochs)]
        conv[m] = convergence.check(epoch_mean, budget=f"{epochs} epochs", unit_per_point=per_epoch, unit="steps",
                                    metrics=[f"{m}_mnist_*"] + [f"{m}_rate_late_over_early"] * (r["rate_ratio"] is not None))
        done += 1
        progress.step(done, total, f"mnist: {m} η={grid[b]} loss {r['train_loss'][b]:.3f}")
    metrics["mnist_steps_cap"] = cap

    artifacts = {}
    if quads:
        fig, axes = plots.figure(9.0, 4.0)
        fig.clf()
        xs = np.linspace(-2, 2, 200)
        X, Y = np.meshgrid(xs, xs)
        Z = quad_value(h, np.stack([X, Y], -1))
        for k, (title, pick) in enumerate((("tuned η each", lambda m: quads[m]["best"]),
                                           ("SGD's tuned η shared", lambda m: quads["sgd"]["best"]))):
            ax = fig.add_subplot(1, 2, k + 1)
            ax.contour(X, Y, np.log10(Z + 1e-6), levels=20, cmap="Greys", linewidths=0.5)
            shown = methods if k == 0 else [m for m in ("sgd", "momentum", "nesterov") if m in quads]
            if k == 1 and "sgd" not in quads:
                continue
            for i, m in enumerate(shown):
                t = quads[m]["traj"][: min(quads[m]["steps"][pick(m)], quad_steps) + 1, pick(m)]
                t = t[np.all(np.isfinite(t), axis=1) & (np.abs(t).max(axis=1) < 2)]
                ax.plot(t[:, 0], t[:, 1], lw=0.8, marker=".", ms=2, color=f"C{methods.index(m)}", label=m)
            ax.set(xlim=(-2, 2), ylim=(-2, 2), aspect="equal", title=f"quadratic κ=100, {title}, seed {seed}")
            ax.legend(fontsize=6)
        artifacts["quadratic_trajectories.png"] = plots.png(fig)
    fig, ax = plots.figure(5.5, 3.8)
    for m, c in curves.items():
        ax.plot(np.arange(len(c)) + window, c, color=f"C{methods.index(m)}", label=f"{m} ({metrics[f'{m}_mnist_rate']:g})")
    ax.axhline(target_loss, color="grey", ls=":")
    ax.set(yscale="log", xlabel="step", ylabel=f"training loss (mean of {window} batches)",
           title=f"MNIST MLP, tuned rate each, seed {seed}")
    ax.legend(fontsize=6)
    artifacts["mnist_loss_tuned.png"] = plots.png(fig)
    fig, ax = plots.figure(5.5, 3.8)
    for m in accs:
        pos = np.arange(len(grids[m])) - (len(grids[m]) - 1) / 2
        ax.plot(pos, accs[m], marker="o", color=f"C{methods.index(m)}",
                label=f"{m}: {'ε' if m == 'adadelta' else 'η'} {grids[m][0]:g}…{grids[m][-1]:g}")
    ax.set(xlabel="grid position (a decade a step; Adadelta: ε, two decades a step)", ylabel="test accuracy",
           title=f"sensitivity to the knob, seed {seed}")
    ax.legend(fontsize=6)
    artifacts["mnist_grid_sensitivity.png"] = plots.png(fig)
    return Result(metrics=metrics, artifacts=artifacts, convergence=conv, stderr=stderr,
                  test_set={k: "fixed" if len(xte) == data.mnist.SIZES["test"] else "per_seed" for k in stderr},
                  notes=f"standard algorithms, rate tuned per method; quadratic κ=100 (30° rotation), {quad_steps} steps, "
                        f"target f ≤ {quad_target:g}·f(0); MNIST {len(x)} images, MLP 784-{hidden}-10, B={batch_size}, "
                        f"{epochs} epochs, grids {MNIST_GRIDS}")
