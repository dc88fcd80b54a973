"""OPT-ADAPTIVE, OPT-MOMENTUM: the standard algorithms raced, each with its own tuned settings.

`optimizer_race` runs the STANDARD algorithms (repro.optim's STANDARD, each checked against Keras'
built-in) on two tasks, every method with its knobs tuned on a grid:

* an ill-conditioned quadratic f = ½wᵀHw (eigenvalues 100 and 1, rotated 30°; start drawn per seed),
  where the textbook picture of oscillation lives: the steep direction makes gradient descent
  zig-zag across the ravine;
* an MNIST MLP (784-hidden-10, training and test subsets drawn per seed), where deep-learning
  practice meets these claims.

Momentum and NAG get their momentum coefficient α tuned as well as η (a grid of both); "tuned" is
the fewest steps until f *stays* below the target on the quadratic, and the lowest final full-data
training loss on MNIST. The grids live in this module (QUAD_ALPHAS, MNIST_GRIDS, MNIST_ALPHAS).
The helpers (G networks side by side, the quadratic, steps to a target) are shared with OPT-GD and
OPT-FORMULAS in repro.experiments.optimizers.
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from repro import convergence, data, plots, progress, stats
from repro.experiments.optimizers import (
    QUAD_ANGLE, _finite, _mnist, _oscillation, _path_ratio, _quad_grid, _quad_knobs, _smooth, _Stack,
    _steps_to, _steps_to_stay, _train_grid, _trainer, quad_value, quadratic)
from repro.optim import chapter_optimizers as co
from repro.registry import Result, experiment


# Each method's MNIST grid: four points a decade apart, a factor 1000 in the size of its first
# steps (the "core", over which the sensitivity to the knob is measured). SGD, momentum, NAG and
# Adagrad on 1e-3 … 1 (the rates of Zeiler 2012's MNIST comparison; one grid for the three η·∇E
# methods, so that they also meet at shared rates); RMSprop and Adam on 1e-4 … 1e-1 (their step is
# about η per weight, Adam's default 1e-3 inside); Adadelta's ε on 1e-8 … 1e-2 (Zeiler's grid; its
# first step is about sqrt(ε)). SGD's tuned rate sat at the core's top (1.0) in 5 of 6 seeds of the
# v3 record, so the η·∇E methods get one more decade for tuning (MNIST_EXTRA: 10), outside the core.
MNIST_GRIDS = {
    "sgd": [1e-3, 1e-2, 1e-1, 1.0],
    "momentum": [1e-3, 1e-2, 1e-1, 1.0],
    "nesterov": [1e-3, 1e-2, 1e-1, 1.0],
    "adagrad": [1e-3, 1e-2, 1e-1, 1.0],
    "rmsprop": [1e-4, 1e-3, 1e-2, 1e-1],
    "adadelta": [1e-8, 1e-6, 1e-4, 1e-2],
    "adam": [1e-4, 1e-3, 1e-2, 1e-1],
}
MNIST_EXTRA = {"sgd": [10.0], "momentum": [10.0], "nesterov": [10.0]}
METHODS = tuple(MNIST_GRIDS)
# The momentum coefficient: "common values of α used in practice include .5, .9, and .99"
# (Goodfellow, Bengio & Courville 2016, Deep Learning §8.3.2) on MNIST; on the 2-D quadratic, where
# a run costs nothing, a finer grid around them.
MNIST_ALPHAS = (0.5, 0.9, 0.99)
QUAD_ALPHAS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
WITH_ALPHA = ("momentum", "nesterov")


def _with_alpha(name: str, alphas: np.ndarray):
    """A grid builder for momentum / NAG whose rows also carry their own α (shaped like lr_scale)."""
    a = np.asarray(alphas, dtype="float32")

    def build(lr, scale):
        alpha = tf.constant(a.reshape(np.shape(scale)))
        if name == "momentum":
            return co.ChapterMomentum(lr, alpha, first="scaled", lr_scale=scale, name="momentum")
        return co.ChapterNesterov(lr, alpha, beta=-alpha, lr_scale=scale, name="nesterov")

    return build


def _grid(name: str, rates: list[float], alphas) -> tuple[object, list[float], list[float | None]]:
    """(builder, η per row, α per row): the rates alone, or every (η, α) pair for momentum and NAG."""
    if name not in WITH_ALPHA or alphas is None:
        return co.STANDARD[name], list(rates), [0.9 if name in WITH_ALPHA else None] * len(rates)
    pairs = [(r, a) for a in alphas for r in rates]
    return _with_alpha(name, [a for _, a in pairs]), [r for r, _ in pairs], [a for _, a in pairs]


def _steep_flips(traj: np.ndarray, until: int, floor: float = 1e-5) -> float:
    """Share of steps, up to `until`, at which the component across the ravine (along the steep
    eigenvector) changes sign: the zig-zag from one wall to the other. Counted while that component
    is above `floor` times its start on both sides of the step: below it (float32 round-off of the
    rotation is ~1e-7 of |w|) its sign is noise, not a swing."""
    c, s = math.cos(QUAD_ANGLE), math.sin(QUAD_ANGLE)
    z = traj[: until + 1] @ np.array([c, s])
    if len(z) < 2 or not np.all(np.isfinite(z)) or np.abs(traj[: until + 1]).max() > 1e3:
        return 1.0   # a run that diverged damped nothing
    live = (np.abs(z[1:]) > floor * abs(z[0])) & (np.abs(z[:-1]) > floor * abs(z[0]))
    flips = np.sign(z[1:]) * np.sign(z[:-1]) < 0
    return float(np.mean(flips[live])) if live.any() else 0.0


def _rises(f: np.ndarray, until: int) -> float:
    """Share of steps, up to `until`, at which the loss went up."""
    seg = f[: until + 1]
    return float(np.mean(np.diff(seg) > 0)) if len(seg) > 1 else 0.0


def _probe_rises(builder, knob: float, x, y, probe_x, probe_y, *, seed: int, hidden: int, batch_size: int,
                 epochs: int) -> tuple[float, np.ndarray]:
    """One network at one setting, the same initial weights and batch order as its grid run: the
    share of updates after which the training loss on a fixed probe of training images went up."""
    stack = _Stack(1, hidden, seed)
    step, evaluate = _trainer(stack, co.on_grid(builder, [knob], (1, 1, 1)))
    rng = np.random.default_rng(seed + 1)
    px, py = tf.constant(probe_x), tf.constant(probe_y)
    curve = [float(_finite(evaluate(px, py)[0])[0])]
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch_size):
            idx = order[s:s + batch_size]
            step(x[idx], y[idx])
            curve.append(float(_finite(evaluate(px, py)[0])[0]))
    c = np.asarray(curve)
    return float(np.mean(np.diff(c) > 0)), c


@experiment("optimizer_race", datasets=("mnist",))
def optimizer_race(*, seed: int, methods: list[str] = METHODS, quad: bool = True, quad_steps: int = 1000,
                   quad_target: float = 1e-6, quad_per_decade: int = 4, quad_alphas: list[float] = QUAD_ALPHAS,
                   train_size: int = 4000, test_size: int = 2000, hidden: int = 128, batch_size: int = 64,
                   epochs: int = 5, target_loss: float = 0.3, window: int = 20, grid_points: int = 4,
                   alphas: list[float] = MNIST_ALPHAS, extend_grid: bool = True, rise_probe: int = 1000,
                   rise_methods: list[str] = ("sgd", "momentum", "nesterov", "adam")) -> Result:
    """The standard algorithms, each with its own tuned settings, on two tasks.

    Regime (why): the chapter's behaviour claims (momentum damps oscillation and speeds descent, NAG
    is faster, Adam is fast and stable, Adagrad's rate decays and RMSprop fixes it, Adadelta needs no
    learning rate) are about the algorithms as published, used as one uses them: each runs in its
    standard form (its formulas as written are OPT-FORMULAS') with its knobs tuned on grids of
    equal size; momentum and NAG tune α with η, on the same α grid.

    * The quadratic: η on one log grid for every method (4 a decade, 1e-4 … 1; Adadelta's ε on the
      squares; momentum and NAG × `quad_alphas`). Speed = steps until f stays ≤ `quad_target`·f(0)
      (not the first crossing: momentum crosses and swings back). Oscillation = the share of steps
      whose component across the ravine (along the steep eigenvector) changes sign, up to that step;
      also reported: the share of steps at which f rises, and v3's share of updates reversing the
      previous one (cos < 0) with the path length over the straight distance. Reported too: NAG at
      momentum's tuned α (η tuned), and SGD, momentum and NAG at one shared η (SGD's tuned) with
      α = 0.9.
    * MNIST (784-`hidden`-10, B = `batch_size`, `epochs` epochs): grids of four points a decade
      apart (MNIST_GRIDS; SGD, momentum and NAG one decade more, MNIST_EXTRA; momentum and NAG ×
      `alphas`); tuned = lowest final full-data training loss. Speed = steps until the training loss
      (mean of the last `window` batches) stays ≤ `target_loss`. Oscillation = the share of updates
      that raise the training loss on a fixed probe of `rise_probe` training images, the tuned
      setting re-run alone with the same start and batches (`rise_methods`). The per-update
      reversal share of v3 is reported only: a velocity with α = 0.9 averages ~10 gradients, so
      its updates hardly ever reverse, whatever the loss does. Stability = the worst test accuracy
      over the core grid (a factor 1000). For Adagrad and RMSprop the effective rate over all weights
      (Σ η_i g_i² / Σ g_i², the step along the gradient per unit gradient; see optimizers._trainer)
      at step 1 (the chapter's η^1 = η0/|∇E|) and averaged over the last epoch: their ratio is how
      far the rate fell (or, for RMSprop, came back).
    Budget-bound by design ("faster", "after the same steps"): convergence is reported, not required.
    """
    methods = list(methods)
    metrics: dict = {}
    total, done = (2 if quad else 1) * len(methods), 0

    # 1. the quadratic
    quads: dict[str, dict] = {}
    if quad:
        h, start = quadratic(seed)
        knobs = _quad_knobs(quad_per_decade)
        for m in methods:
            rates = [k ** 2 for k in knobs] if m == "adadelta" else knobs
            builder, rows, row_alpha = _grid(m, rates, quad_alphas)
            q = _quad_grid(builder, rows, h, start, quad_steps, quad_target, stay=True)
            q["rows"], q["alpha"] = rows, row_alpha
            quads[m] = q
            b = q["best"]
            until = min(q["steps"][b], quad_steps)
            first = _steps_to(q["f"][:, b], quad_target * float(quad_value(h, start.astype("float64"))), quad_steps)
            metrics |= {f"{m}_quad_steps_tuned": q["steps"][b], f"{m}_quad_steps_first_tuned": first,
                        f"{m}_quad_rate": rows[b], f"{m}_quad_final": float(q["f"][-1, b]),
                        f"{m}_quad_flips_tuned": _steep_flips(q["traj"][:, b], until),
                        f"{m}_quad_rises_tuned": _rises(q["f"][:, b], until),
                        f"{m}_quad_osc_tuned": _oscillation(q["traj"][:, b], until),
                        f"{m}_quad_path_tuned": _path_ratio(q["traj"][:, b], until)}
            if m in WITH_ALPHA:
                metrics[f"{m}_quad_alpha"] = row_alpha[b]
            done += 1
            progress.step(done, total, f"quadratic: {m} in {q['steps'][b]} steps")
        if "sgd" in quads:
            eta = quads["sgd"]["rows"][quads["sgd"]["best"]]        # the shared η: SGD's tuned one
            metrics["quad_shared_rate"] = eta
            for m in ("sgd", "momentum", "nesterov"):
                if m in quads:
                    q = quads[m]
                    j = next(i for i, (r, a) in enumerate(zip(q["rows"], q["alpha"]))
                             if r == eta and (a is None or a == 0.9))
                    until = min(q["steps"][j], quad_steps)
                    metrics |= {f"{m}_quad_osc_shared": _oscillation(q["traj"][:, j], until),
                                f"{m}_quad_flips_shared": _steep_flips(q["traj"][:, j], until),
                                f"{m}_quad_path_shared": _path_ratio(q["traj"][:, j], until),
                                f"{m}_quad_steps_shared": q["steps"][j]}
        if "momentum" in quads and "nesterov" in quads:
            a = metrics["momentum_quad_alpha"]                       # NAG at momentum's tuned α, η tuned
            q = quads["nesterov"]
            metrics["nesterov_quad_steps_at_momentum_alpha"] = min(
                s for s, al in zip(q["steps"], q["alpha"]) if al == a)
        metrics["quad_steps_cap"] = quad_steps

    # 2. MNIST
    x, y, xte, yte = _mnist(train_size, test_size, seed)
    probe_x, probe_y = x[:rise_probe], y[:rise_probe]
    curves, grids, accs, conv, stderr = {}, {}, {}, {}, {}
    per_epoch = max(1, math.ceil(len(x) / batch_size))
    for m in methods:
        core = MNIST_GRIDS[m][:grid_points]
        rates = core + (MNIST_EXTRA.get(m, []) if extend_grid else [])
        builder, rows, row_alpha = _grid(m, rates, alphas)
        r = _train_grid(builder, rows, x, y, xte, yte, seed=seed, hidden=hidden, batch_size=batch_size, epochs=epochs)
        smooth = _smooth(r["losses"], window)
        cap = len(r["losses"])
        b = int(np.argmin(r["train_loss"]))
        stay = _steps_to_stay(smooth[:, b], target_loss, cap - window + 1) + window
        first = _steps_to(smooth[:, b], target_loss, cap - window + 1) + window
        half = smooth[len(smooth) // 2, b]
        in_core = np.array([rate in core for rate in rows])
        curves[m], grids[m], accs[m] = smooth[:, b], rows, r["acc"]
        metrics |= {f"{m}_mnist_rate": rows[b], f"{m}_mnist_rate_at_grid_edge": int(rows[b] in (min(rates), max(rates))),
                    f"{m}_mnist_loss_tuned": float(r["train_loss"][b]), f"{m}_mnist_steps_tuned": stay,
                    f"{m}_mnist_steps_first_tuned": first,
                    f"{m}_mnist_acc_tuned": float(r["acc"][b]),
                    f"{m}_mnist_late_gain": float(np.log(max(half, 1e-12) / max(smooth[-1, b], 1e-12))),
                    f"{m}_mnist_reversal_tuned": float(r["reversal"][b]),
                    f"{m}_mnist_grid_min_acc": float(r["acc"][in_core].min()),
                    f"{m}_mnist_grid_acc_range": float(r["acc"][in_core].max() - r["acc"][in_core].min())}
        if m in WITH_ALPHA and alphas is not None:
            metrics[f"{m}_mnist_alpha"] = row_alpha[b]
        stderr[f"{m}_mnist_acc_tuned"] = stats.binomial_se(float(r["acc"][b]), len(xte))
        if r["rates"] is not None:
            eff = r["rates"][:, b]
            early, late = float(eff[0]), float(np.mean(eff[-per_epoch:]))
            metrics |= {f"{m}_rate_early": early, f"{m}_rate_late": late,
                        f"{m}_rate_late_over_early": late / early if early > 0 else float("nan")}
        if m in rise_methods:
            single = _grid(m, [rows[b]], None if row_alpha[b] is None else [row_alpha[b]])[0]
            rise, _ = _probe_rises(single, rows[b], x, y, probe_x, probe_y, seed=seed, hidden=hidden,
                                   batch_size=batch_size, epochs=epochs)
            metrics[f"{m}_mnist_rise_tuned"] = rise
        epoch_mean = [float(np.mean(r["losses"][e * per_epoch:(e + 1) * per_epoch, b])) for e in range(epochs)]
        conv[m] = convergence.check(epoch_mean, budget=f"{epochs} epochs", unit_per_point=per_epoch, unit="steps",
                                    metrics=[f"{m}_mnist_*"] + ([f"{m}_rate_*"] if r["rates"] is not None else []))
        done += 1
        progress.step(done, total, f"mnist: {m} η={rows[b]} loss {r['train_loss'][b]:.3g}")
    metrics["mnist_steps_cap"] = cap

    artifacts = {}
    if quads:
        artifacts["quadratic_trajectories.png"] = _plot_quadratic(quads, methods, h, quad_steps, seed)
    fig, ax = plots.figure(5.5, 3.8)
    for m, c in curves.items():
        ax.plot(np.arange(len(c)) + window, c, color=f"C{methods.index(m)}", label=f"{m} ({metrics[f'{m}_mnist_rate']:g})")
    ax.axhline(target_loss, color="grey", ls=":")
    ax.set(yscale="log", xlabel="step", ylabel=f"training loss (mean of {window} batches)",
           title=f"MNIST MLP, tuned settings each, seed {seed}")
    ax.legend(fontsize=6)
    artifacts["mnist_loss_tuned.png"] = plots.png(fig)
    fig, ax = plots.figure(5.5, 3.8)
    for m in accs:
        ax.plot(range(len(grids[m])), accs[m], marker="o", ls="", color=f"C{methods.index(m)}", label=m)
    ax.set(xlabel="grid row (η, then α)", ylabel="test accuracy", title=f"sensitivity to the knobs, seed {seed}")
    ax.legend(fontsize=6)
    artifacts["mnist_grid_sensitivity.png"] = plots.png(fig)
    return Result(metrics=metrics, artifacts=artifacts, convergence=conv, stderr=stderr,
                  test_set={k: "fixed" if len(xte) == data.mnist.SIZES["test"] else "per_seed" for k in stderr},
                  notes=f"standard algorithms, settings tuned per method; quadratic κ=100 (30° rotation), {quad_steps} "
                        f"steps, target f ≤ {quad_target:g}·f(0), α grid {list(quad_alphas)}; MNIST {len(x)} images, "
                        f"MLP 784-{hidden}-10, B={batch_size}, {epochs} epochs, η grids {MNIST_GRIDS} "
                        f"(+{MNIST_EXTRA if extend_grid else {}}), α grid {list(alphas) if alphas else [0.9]}")


def _plot_quadratic(quads: dict, methods: list[str], h: np.ndarray, steps: int, seed: int) -> bytes:
    fig, _ = plots.figure(9.0, 4.0)
    fig.clf()
    xs = np.linspace(-2, 2, 200)
    grid_x, grid_y = np.meshgrid(xs, xs)
    z = quad_value(h, np.stack([grid_x, grid_y], -1))
    panels = [("tuned settings each", methods, lambda m: quads[m]["best"])]
    if "sgd" in quads:
        eta = quads["sgd"]["rows"][quads["sgd"]["best"]]
        panels.append(("SGD's tuned η shared, α 0.9", [m for m in ("sgd", "momentum", "nesterov") if m in quads],
                       lambda m: next(i for i, (r, a) in enumerate(zip(quads[m]["rows"], quads[m]["alpha"]))
                                      if r == eta and (a is None or a == 0.9))))
    for k, (title, shown, pick) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.contour(grid_x, grid_y, np.log10(z + 1e-6), levels=20, cmap="Greys", linewidths=0.5)
        for m in shown:
            j = pick(m)
            t = quads[m]["traj"][: min(quads[m]["steps"][j], steps) + 1, j]
            t = t[np.all(np.isfinite(t), axis=1) & (np.abs(t).max(axis=1) < 2)]
            ax.plot(t[:, 0], t[:, 1], lw=0.8, marker=".", ms=2, color=f"C{methods.index(m)}", label=m)
        ax.set(xlim=(-2, 2), ylim=(-2, 2), aspect="equal", title=f"quadratic κ=100, {title}, seed {seed}")
        ax.legend(fontsize=6)
    return plots.png(fig)
