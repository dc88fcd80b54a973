"""GAN-COLLAPSE, GAN-LSGAN, GAN-WGAN: GANs on 2-D mixtures of Gaussians (7.6), in their authors' settings.

Two published toy setups, each with its own networks, batch, optimiser and budget (`SETUPS`):
  metz     Metz et al. 2017 (Unrolled GANs, section 3.1 and appendix A): ring of 8 Gaussians (radius 2,
           σ 0.02); G: z ∈ R^256 ~ N(0, I) → 2 × 128 ReLU → 2, D: x/4 → 128 ReLU → logit, orthogonal
           initial weights (gain 0.8); Adam(1e-4, β1 0.5), batch 512. Their standard GAN "rotates through
           the modes ... only ever assigns significant probability mass to a single data mode at once":
           the collapse-prone toy of GAN-COLLAPSE, and the ring on which GAN-LSGAN compares losses.
  gan_toy  Gulrajani et al. 2017's toy code (igul222/improved_wgan_training, gan_toy.py): G and D three
           ReLU layers (He initialisation), latent 2, batch 256, data divided by its standard deviation;
           WGAN-GP with λ 0.1, 5 critic steps, Adam(1e-4, β = (0.5, 0.9)). Their width is 512 and budget
           100,000 G steps; the `width` parameter carries what the CPU affords (GAN-WGAN).
Each loss keeps its own paper's optimiser unless the setup fixes one (metz: all losses Adam(1e-4, 0.5)).

What is measured at each check, on `samples` fixed noise vectors (the same for every loss of a seed):
- high quality: a sample within 3σ of its nearest mode (VEEGAN/PacGAN's measure);
- modes captured: a mode counts only when it holds at least `min_mode_share` of the samples the data would
  put on it (n/K per mode), on it meaning of high quality (`capture: hq`) or within half the mode spacing
  (`capture: type`: which mode G draws from): a stray sample is no capture. VEEGAN/PacGAN's own
  count (one high-quality sample suffices) is reported beside it (`modes_any`);
- mode hopping: modes captured at one check and no longer at the next;
- sliced W1 of the samples to the data, and D's own estimate of the distance (−D loss averaged since
  the previous check): does the loss track sample quality?;
- the gradient of G's loss with respect to a fake, on the real side of D's boundary (D(x) > ½ for the
  cross-entropy GAN; D(x) > ½, between its targets 0 and 1, for LSGAN), against the fake's distance to
  the data (Mao et al.'s argument: a fake on the real side far from the data gets almost no pull from the
  saturating cross-entropy, but keeps one from the least-squares loss): the Spearman correlation among
  G's real-side fakes at each check that has 10 or more of them (negative: the farther, the weaker the
  pull), and the share of fakes on the real side. Beside it the far/near gradient ratio on a grid of
  points covering the data and beyond (far: > `far_sigmas`·σ from every mode; near: ≤ 3σ).
"""
from __future__ import annotations

import os
import time

import keras
import numpy as np
import tensorflow as tf

from repro import convergence, plots
from repro.experiments.gan_core import GAN, LOSSES, g_loss_per_sample, train
from repro.models.generative import toy_mlp
from repro.registry import Result, experiment

MIXTURES = ("ring8", "grid25")


def mixture_modes(kind: str) -> tuple[np.ndarray, float]:
    """(modes, σ): ring of 8 at radius 2, σ 0.02 (Metz et al.; VEEGAN); 5x5 grid at −4..4 step 2, σ 0.05
    (VEEGAN/PacGAN; gan_toy.py's 25 Gaussians)."""
    if kind == "ring8":
        a = 2 * np.pi * np.arange(8) / 8
        return np.stack([2 * np.cos(a), 2 * np.sin(a)], 1), 0.02
    g = np.arange(-4, 5, 2, dtype=float)
    return np.stack(np.meshgrid(g, g), -1).reshape(-1, 2), 0.05


def mixture_scale(kind: str) -> float:
    """The mixture's per-coordinate standard deviation (√2 for the ring, √8 for the grid). The WGAN-GP
    authors' toy code divides the data by it (1.414, 2.828): the networks see data of unit scale."""
    modes, sd = mixture_modes(kind)
    return float(np.sqrt(np.mean(modes ** 2) + sd ** 2))


def mixture_sample(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    modes, sd = mixture_modes(kind)
    return (modes[rng.integers(0, len(modes), n)] + sd * rng.standard_normal((n, 2))).astype("float32")


def type_radius(kind: str) -> float:
    """Half the distance between neighbouring modes (ring: 0.77, grid: 1.0): within it a sample is nearer
    its mode than the midpoint to any other, so of that mode's type however sloppily drawn (`capture:
    type`); the discs of neighbouring modes touch, and the space between them (the ring's centre) is no
    mode's."""
    modes, _ = mixture_modes(kind)
    d = np.linalg.norm(modes[:, None] - modes[None], axis=-1)
    return float(d[d > 0].min() / 2)


def mode_counts(samples: np.ndarray, kind: str, radius: float | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(samples within `radius` nearest to each mode, the mask of those samples, distance of each sample
    to its nearest mode); radius None: 3σ, VEEGAN's high quality."""
    modes, sd = mixture_modes(kind)
    dist = np.linalg.norm(samples[:, None, :] - modes[None], axis=-1)
    nearest, dmin = dist.argmin(1), dist.min(1)
    on = dmin <= (3 * sd if radius is None else radius)
    return np.bincount(nearest[on], minlength=len(modes)), on, dmin


def captured_modes(counts: np.ndarray, n: int, min_share: float) -> set:
    """The modes holding at least `min_share` of the n/K samples the data would put on each."""
    return set(np.flatnonzero(counts >= min_share * n / len(counts)).tolist())


def mode_metrics(samples: np.ndarray, kind: str, min_share: float = 0.0) -> tuple[int, float]:
    """(modes captured, share of high-quality samples); min_share 0: VEEGAN's count (one sample suffices)."""
    counts, hq, _ = mode_counts(samples, kind)
    got = captured_modes(counts, len(samples), min_share) if min_share > 0 else set(np.flatnonzero(counts))
    return len(got), float(hq.mean())


def modes_lost(captured: list[set]) -> int:
    """Mode hopping: how many times a mode captured at one check is no longer captured at the next."""
    return int(sum(len(a - b) for a, b in zip(captured, captured[1:])))


def sliced_w1(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, directions: int = 50) -> float:
    theta = rng.standard_normal((2, directions))
    theta /= np.linalg.norm(theta, axis=0)
    return float(np.mean(np.abs(np.sort(a @ theta, 0) - np.sort(b @ theta, 0))))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if np.std(ra) == 0 or np.std(rb) == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def g_output_gradients(loss: str, D: keras.Model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(‖∂ℓ_G/∂x‖, D's output) for each point x: the pull G's loss would put on a fake at x (D has no batch
    coupling, so the gradient of the summed loss at x_i is that of x_i's own loss)."""
    xs = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(xs)
        out = D(xs, training=False)
        total = tf.reduce_sum(g_loss_per_sample(loss, out))
    return np.linalg.norm(tape.gradient(total, xs).numpy(), axis=1), out.numpy()[:, 0]


def real_side(loss: str, d_out: np.ndarray) -> np.ndarray:
    """Where D calls a point real: logit > 0 (D > ½) for the cross-entropy losses; output > ½ (nearer the
    real target 1 than the fake target 0) for LSGAN; a WGAN critic has no such side (all False)."""
    if loss == "lsgan":
        return d_out > 0.5
    if loss in ("minimax", "nonsat"):
        return d_out > 0.0
    return np.zeros(len(d_out), bool)


def far_near_ratio(norms: np.ndarray, dmin: np.ndarray, side: np.ndarray, sd: float, far_sigmas: float,
                   least: int = 5) -> float:
    """Median gradient norm of real-side points more than far_sigmas·σ from every mode over that of
    real-side points within 3σ of a mode; NaN without `least` points of each kind."""
    far, near = side & (dmin > far_sigmas * sd), side & (dmin <= 3 * sd)
    if far.sum() < least or near.sum() < least:
        return float("nan")
    return float(np.median(norms[far]) / max(np.median(norms[near]), 1e-30))


def probe_grid(kind: str, points: int = 121) -> np.ndarray:
    """A square grid over the data and half as far again beyond it (ring: ±3, grid: ±6)."""
    lim = 3.0 if kind == "ring8" else 6.0
    g = np.linspace(-lim, lim, points)
    return np.stack(np.meshgrid(g, g), -1).reshape(-1, 2).astype("float32")


# name: networks, noise, batch and optimiser of a published toy setup (see the module docstring)
SETUPS = {
    "metz": {"latent": 256, "batch_size": 512, "g_hidden": (128, 128), "d_hidden": (128,),
             "initializer": ("orthogonal", 0.8), "d_input_scale": 0.25, "unit_scale": False,
             "optimiser": {loss: (1e-4, (0.5, 0.999)) for loss in LOSSES},
             "source": "Metz et al. 2017, appendix A"},
    "gan_toy": {"latent": 2, "batch_size": 256, "depth": 3, "initializer": ("he_uniform", None),
                "d_input_scale": 1.0, "unit_scale": True,
                "optimiser": {loss: (1e-4, (0.5, 0.9)) for loss in LOSSES},
                "source": "Gulrajani et al. 2017, gan_toy.py"},
}


def _initializer(name: str, gain: float | None):
    return keras.initializers.Orthogonal(gain) if name == "orthogonal" else name


def toy_pair(setup: str, width: int | None = None) -> tuple[keras.Model, keras.Model]:
    """(G, D) of a toy setup, built in that order (one seed gives every loss the same initial weights);
    `width` replaces gan_toy's 512 (metz's networks are fixed)."""
    s = SETUPS[setup]
    init = _initializer(*s["initializer"])
    if setup == "metz":
        g_hidden, d_hidden = s["g_hidden"], s["d_hidden"]
    else:
        g_hidden = d_hidden = (width or 512,) * s["depth"]
    G = toy_mlp(s["latent"], 2, hidden=g_hidden, initializer=init)
    D = toy_mlp(2, 1, hidden=d_hidden, initializer=init, input_scale=s["d_input_scale"])
    return G, D


def _cpu() -> float:
    """This process's CPU seconds (user + system): the cost measure, whatever else shares the cores."""
    t = os.times()
    return t.user + t.system


def _train_on_mixture(loss: str, mix: str, *, seed: int, setup: str, steps: int, width: int | None, checks: int,
                      samples: int, min_mode_share: float, far_sigmas: float, gp_weight: float,
                      capture: str = "hq") -> dict:
    """Train one GAN on one mixture and measure it at `checks` evenly spaced checks (module docstring).
    Data, batches, probes and initial weights depend on (seed, mixture) only: every loss sees the same."""
    s = SETUPS[setup]
    k = MIXTURES.index(mix)
    modes, sd = mixture_modes(mix)
    scale = mixture_scale(mix) if s["unit_scale"] else 1.0
    x = mixture_sample(mix, 100000, np.random.default_rng([seed, k])) / scale
    probe_rng = np.random.default_rng([seed, k, 1])
    z_probe = probe_rng.standard_normal((samples, s["latent"])).astype("float32")
    real_probe = mixture_sample(mix, samples, probe_rng)
    grid = probe_grid(mix)
    grid_dmin = np.linalg.norm(grid[:, None] - modes[None], axis=-1).min(1)
    keras.utils.set_random_seed(seed)
    rate, betas = s["optimiser"][loss]
    gan = GAN(*toy_pair(setup, width), loss, learning_rate=rate, betas=betas, gp_weight=gp_weight)
    every = max(1, steps // checks)
    radius = type_radius(mix) if capture == "type" else None
    h: dict = {key: [] for key in ("step", "modes", "modes_any", "captured", "hq", "on_mode", "w1", "grad_ratio",
                                   "grad_ratio_fakes", "grad_dist_corr", "real_side", "real_side_fakes", "samples")}

    def check(step):
        out = gan.sample(z_probe) * scale
        hq_counts, hq, dmin = mode_counts(out, mix)
        counts, on, _ = mode_counts(out, mix, radius)
        got = captured_modes(counts, samples, min_mode_share)
        norms, d_out = g_output_gradients(loss, gan.D, grid / scale)
        side = real_side(loss, d_out)
        f_norms, f_out = g_output_gradients(loss, gan.D, out / scale)
        h["step"].append(step)
        h["modes"].append(len(got))
        h["modes_any"].append(int(np.count_nonzero(hq_counts)))
        h["captured"].append(got)
        h["hq"].append(float(hq.mean()))
        h["on_mode"].append(float(on.mean()))
        h["w1"].append(sliced_w1(out, real_probe, np.random.default_rng(0)))
        h["grad_ratio"].append(far_near_ratio(norms, grid_dmin, side, sd, far_sigmas))
        f_side = real_side(loss, f_out)
        h["grad_ratio_fakes"].append(far_near_ratio(f_norms, dmin, f_side, sd, far_sigmas))
        h["grad_dist_corr"].append(_spearman(dmin[f_side], f_norms[f_side]) if f_side.sum() >= 10 else float("nan"))
        h["real_side"].append(float(side.mean()))
        h["real_side_fakes"].append(float(f_side.mean()))
        h["samples"].append(out)

    cpu0, t0 = _cpu(), time.perf_counter()
    h["d_losses"], spent = [], 0.0
    rng = np.random.default_rng([seed, k, 2])
    for i in range(checks):
        n = every if i < checks - 1 else steps - every * (checks - 1)
        h["d_losses"] += train(gan, x, steps=n, batch_size=s["batch_size"], rng=rng, label=f"{mix} {loss}")
        c = _cpu()
        check(len(h["d_losses"]))
        spent += _cpu() - c
    h["cpu_ms_per_step"] = (_cpu() - cpu0 - spent) / steps * 1e3
    h["seconds"] = time.perf_counter() - t0
    # D's own distance estimate (−D loss, averaged over each check window) against the samples' distance
    d, bounds = h["d_losses"], [0] + h["step"]
    h["estimate"] = [-float(np.mean(d[a:b])) for a, b in zip(bounds, bounds[1:])]
    h["every"] = every
    return h


def _nanmean(xs) -> float:
    xs = [x for x in xs if x is not None and np.isfinite(x)]
    return float(np.mean(xs)) if xs else float("nan")


def _late_log_ratio(ratios: list[float]) -> float:
    """A ratio over the late checks: 10 ** (median of the log10 ratios), NaN when none was measurable."""
    logs = [np.log10(r) for r in ratios if np.isfinite(r) and r > 0]
    return float(10 ** np.median(logs)) if logs else float("nan")


@experiment("gan_mixture")
def gan_mixture(*, seed: int, loss: str, setup: str = "metz", mixtures: list[str] = ("ring8",), steps: int = 25000,
                width: int | None = None, checks: int = 25, late: int = 5, samples: int = 2500,
                min_mode_share: float = 0.1, capture: str = "hq", few_modes: int = 4, trained_share: float = 0.5,
                far_sigmas: float = 10.0, gp_weight: float = 0.1) -> Result:
    """One loss (`loss`) in one published toy setup (`setup`, module docstring) on each of `mixtures`,
    measured at `checks` checks; the last `late` checks (late training) decide the late metrics.

    A sample is on a mode when it lies within 3σ of it (`capture: hq`, VEEGAN's high quality) or within
    half the distance between neighbouring modes (`capture: type`: which mode G draws from, however
    sloppily; `type_radius`); a mode is captured with at least `min_mode_share` of the n/K samples the data
    would put on it.

    Metrics, per mixture M (suffix _M), prefixed by the loss:
      modes_M, modes_any_M, hq_share_M, sliced_w1_M       at the last check (captured; VEEGAN's count;
                                                          high-quality share; sliced W1 to the data)
      modes_late_max_M / modes_late_min_M                 most / fewest modes captured at a late check
      on_mode_late_min_M, hq_late_min_M                   the lowest share of samples on a mode / of high
                                                          quality at a late check
      collapsed_M                                         1 when G is trained at every late check (a share
                                                          ≥ trained_share of its samples on a mode) yet
                                                          captures at most few_modes modes at every one of
                                                          them, else 0: this seed's collapse
      modes_lost_M, modes_lost_late_M                     mode hopping over all checks / the late ones
      loss_quality_corr_M                                 Spearman(D's estimate, sliced W1) over the checks
      realside_grad_dist_corr_M                           on D's real side, Spearman correlation between a
                                                          fake's distance to its nearest mode and the
                                                          gradient of G's loss there, among G's real-side
                                                          fakes (at checks with 10 or more), mean over the
                                                          checks: negative when far fakes get less pull
      realside_fake_share_late_M                          the share of fakes on D's real side, late
      realside_grad_ratio_M (_fakes_M)                    far/near gradient ratio on D's real side, the
                                                          median over the late checks (grid; G's fakes)
    Convergence: the modes and high-quality curves of each mixture."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if setup not in SETUPS:
        raise ValueError(f"setup must be one of {sorted(SETUPS)}, got {setup!r}")
    if capture not in ("hq", "type"):
        raise ValueError(f"capture must be 'hq' or 'type', got {capture!r}")
    metrics: dict = {}
    conv: dict = {}
    artifacts: dict = {}
    p = f"{loss}_"
    for mix in mixtures:
        h = _train_on_mixture(loss, mix, seed=seed, setup=setup, steps=steps, width=width, checks=checks,
                              samples=samples, min_mode_share=min_mode_share, far_sigmas=far_sigmas,
                              gp_weight=gp_weight, capture=capture)
        n = min(late, len(h["step"]))
        lm, lo = h["modes"][-n:], h["on_mode"][-n:]
        metrics |= {
            f"{p}modes_{mix}": h["modes"][-1], f"{p}modes_any_{mix}": h["modes_any"][-1],
            f"{p}hq_share_{mix}": h["hq"][-1], f"{p}sliced_w1_{mix}": h["w1"][-1],
            f"{p}modes_late_max_{mix}": max(lm), f"{p}modes_late_min_{mix}": min(lm),
            f"{p}hq_late_min_{mix}": min(h["hq"][-n:]), f"{p}on_mode_late_min_{mix}": min(lo),
            f"{p}collapsed_{mix}": int(min(lo) >= trained_share and max(lm) <= few_modes),
            f"{p}modes_lost_{mix}": modes_lost(h["captured"]),
            f"{p}modes_lost_late_{mix}": modes_lost(h["captured"][-n:]),
            f"{p}modes_late_union_{mix}": len(set().union(*h["captured"][-n:])),
            f"{p}loss_quality_corr_{mix}": _spearman(np.array(h["estimate"]), np.array(h["w1"])),
            f"{p}realside_grad_ratio_{mix}": _late_log_ratio(h["grad_ratio"][-n:]),
            f"{p}realside_grad_dist_corr_{mix}": _nanmean(h["grad_dist_corr"]),
            f"{p}realside_checks_{mix}": int(np.isfinite(h["grad_dist_corr"]).sum()),
            f"{p}realside_fake_share_late_{mix}": float(np.mean(h["real_side_fakes"][-n:])),
            f"{p}realside_fake_share_curve_{mix}": [round(v, 4) for v in h["real_side_fakes"]],
            f"{p}realside_grad_ratio_fakes_{mix}": _late_log_ratio(h["grad_ratio_fakes"][-n:]),
            f"{p}modes_curve_{mix}": h["modes"], f"{p}hq_curve_{mix}": [round(v, 4) for v in h["hq"]],
            f"{p}on_mode_curve_{mix}": [round(v, 4) for v in h["on_mode"]],
            f"{p}w1_curve_{mix}": [round(v, 4) for v in h["w1"]],
            f"{p}estimate_curve_{mix}": [round(v, 5) for v in h["estimate"]],
            f"{p}grad_ratio_curve_{mix}": [round(v, 4) if np.isfinite(v) else None for v in h["grad_ratio"]],
            f"{p}grad_dist_corr_curve_{mix}": [round(v, 4) if np.isfinite(v) else None for v in h["grad_dist_corr"]],
            f"{p}seconds_{mix}": h["seconds"], f"{p}cpu_ms_per_step_{mix}": h["cpu_ms_per_step"]}
        for name, curve in (("modes", h["modes"]), ("hq", h["hq"])):
            conv[f"{loss}_{mix}_{name}"] = convergence.check(
                curve, budget=f"{steps} G steps", higher=True, unit_per_point=h["every"], unit="G steps",
                metrics=[f"{p}*_{mix}"] + ([f"{p}*_mean"] if len(mixtures) > 1 else []))
        artifacts[f"{loss}_{mix}_samples.png"] = _scatter_over_time(h, loss, mix, seed)
        artifacts[f"{loss}_{mix}_curves.png"] = _curves(h, loss, mix, seed)
    if len(mixtures) > 1:
        for key in ("loss_quality_corr", "realside_grad_dist_corr", "realside_grad_ratio"):
            vals = [metrics[f"{p}{key}_{m}"] for m in mixtures]
            metrics[f"{p}{key}_mean"] = _late_log_ratio(vals) if key == "realside_grad_ratio" else _nanmean(vals)
    rate, betas = SETUPS[setup]["optimiser"][loss]
    metrics[f"{p}learning_rate"] = rate
    return Result(metrics=metrics, artifacts=artifacts, convergence=conv,
                  notes=f"{loss} in the {setup} setup ({SETUPS[setup]['source']}"
                        + (f", width {width}" if width else "") + f"): {steps} G steps, Adam({rate:g}, β {betas}) "
                        f"on {', '.join(mixtures)}; {samples} samples at each of {checks} checks, the last "
                        f"{late} late; a mode counts with ≥ {min_mode_share:g} of its share of samples within "
                        + ("3σ" if capture == "hq" else f"half the mode spacing ({type_radius(mixtures[0]):.2g})"))


def _scatter_over_time(h: dict, loss: str, mix: str, seed: int, snapshots: int = 6) -> bytes:
    modes, _ = mixture_modes(mix)
    n = len(h["step"])
    idx = sorted({int(round(i)) for i in np.linspace(0, n - 1, min(snapshots, n))})
    fig, axes = plots.figure(2.2 * len(idx), 2.4)
    axes.remove()
    axes = fig.subplots(1, len(idx), squeeze=False)[0]
    lim = 3 if mix == "ring8" else 5.5
    for ax, i in zip(axes, idx):
        ax.scatter(h["samples"][i][:, 0], h["samples"][i][:, 1], s=1, alpha=0.4)
        ax.scatter(modes[:, 0], modes[:, 1], s=20, c="red", marker="x")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[],
               title=f"step {h['step'][i]}: {h['modes'][i]}/{len(modes)} modes, hq {h['hq'][i]:.2f}")
        ax.title.set_fontsize(6)
    fig.suptitle(f"{loss} on {mix}: G's samples over training, seed {seed}", fontsize=8)
    return plots.png(fig)


def _curves(h: dict, loss: str, mix: str, seed: int) -> bytes:
    """Modes and high-quality share; sliced W1 against D's estimate; the real-side gradient ratio."""
    fig, axes = plots.figure(10, 2.6)
    axes.remove()
    a = fig.subplots(1, 3)
    a[0].plot(h["step"], h["modes"], label="modes captured")
    a[0].plot(h["step"], h["modes_any"], ":", label="modes with any high-quality sample")
    ax2 = a[0].twinx()
    ax2.plot(h["step"], h["hq"], color="grey", label="high-quality share")
    ax2.set(ylim=(0, 1))
    a[0].legend(fontsize=6)
    line, = a[1].plot(h["step"], h["w1"], label="sliced W1 to the data")
    est = np.array(h["estimate"])
    w1 = np.array(h["w1"])
    a[1].plot(h["step"], (est - est.min()) / (np.ptp(est) or 1.0) * np.ptp(w1) + w1.min(), ":",
              color=line.get_color(), label="−D loss (rescaled to W1's range)")
    a[1].legend(fontsize=6)
    a[2].plot(h["step"], [r if np.isfinite(r) else np.nan for r in h["grad_ratio"]], "o-")
    a[2].set(yscale="log", title="real side: far/near gradient of G's loss")
    for ax in a:
        ax.set(xlabel="G step")
        ax.title.set_fontsize(8)
    fig.suptitle(f"{loss} on {mix}, seed {seed}", fontsize=8)
    return plots.png(fig)
