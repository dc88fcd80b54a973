"""GAN-COLLAPSE, GAN-LSGAN, GAN-WGAN: GANs on 2-D mixtures of Gaussians (7.6)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from repro import convergence, plots
from repro.experiments.gan_core import GAN, LOSSES, g_loss_per_sample, train
from repro.models.generative import mlp_discriminator, mlp_generator
from repro.registry import Result, experiment

# ----------------------------------------------------------------------------- mixtures

MIXTURES = ("ring8", "grid25")
TUNE_SEED = 7919            # the learning-rate grid's own seed: never one of the runs' seeds (0, 1, 2, ...)
RATES_FILE = "rates.json"


def mixture_modes(kind: str) -> tuple[np.ndarray, float]:
    """(modes, σ): ring of 8 at radius 2, σ 0.02; 5x5 grid at −4..4 step 2, σ 0.05 (VEEGAN/PacGAN)."""
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


def _mode_stats(samples: np.ndarray, kind: str) -> tuple[set, np.ndarray, np.ndarray]:
    """(modes captured, high-quality mask, distance of each sample to its nearest mode)."""
    modes, sd = mixture_modes(kind)
    dist = np.linalg.norm(samples[:, None, :] - modes[None], axis=-1)
    nearest, dmin = dist.argmin(1), dist.min(1)
    hq = dmin <= 3 * sd
    return set(np.unique(nearest[hq]).tolist()), hq, dmin


def mode_metrics(samples: np.ndarray, kind: str) -> tuple[int, float]:
    """(modes captured, share of high-quality samples): high quality = within 3σ of the nearest mode;
    a mode is captured when at least one high-quality sample is nearest to it (VEEGAN's measures)."""
    captured, hq, _ = _mode_stats(samples, kind)
    return len(captured), float(hq.mean())


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


def g_output_gradients(loss: str, D: keras.Model, x: np.ndarray) -> np.ndarray:
    """‖∂ℓ_G/∂x‖ for each fake sample x: the pull G's loss puts on that sample (D has no batch coupling,
    so the gradient of the summed loss at x_i is that of x_i's own loss)."""
    xs = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(xs)
        total = tf.reduce_sum(g_loss_per_sample(loss, D(xs, training=False)))
    return np.linalg.norm(tape.gradient(total, xs).numpy(), axis=1)


def _mixture_gan(loss: str, mix: str, *, seed: int, steps: int, batch_size: int, latent: int, hidden,
                 learning_rate: float, final_ratio: float | None, gp_weight: float, samples: int, checks: int,
                 far_sigmas: float) -> dict:
    """Train one GAN on one mixture (data scaled to unit standard deviation) and measure it at `checks`
    evenly spaced checks: modes, high-quality share, sliced W1 to the data (original units), and the
    gradient of G's loss with respect to each fake sample, far from every mode (> far_sigmas·σ) and overall.
    Data, batches, probes and initial weights depend on (seed, mixture) only: every loss sees the same."""
    k = MIXTURES.index(mix)
    scale = mixture_scale(mix)
    _, sd = mixture_modes(mix)
    x = mixture_sample(mix, 100000, np.random.default_rng([seed, k])) / scale
    probe_rng = np.random.default_rng([seed, k, 1])
    z_probe = probe_rng.standard_normal((samples, latent)).astype("float32")
    real_probe = mixture_sample(mix, samples, probe_rng)
    keras.utils.set_random_seed(seed)
    gan = GAN(mlp_generator(latent, outputs=2, hidden=tuple(hidden), activation="linear"),
              mlp_discriminator(inputs=2, hidden=tuple(hidden)), loss, learning_rate=learning_rate,
              final_learning_rate=learning_rate * final_ratio if final_ratio else None, steps=steps,
              gp_weight=gp_weight)
    every = max(1, steps // checks)
    h: dict = {k_: [] for k_ in ("step", "modes", "captured", "hq", "w1", "far_ratio", "far_norm", "norm",
                                 "far_share", "samples")}

    def check(step):
        s = gan.sample(z_probe)
        out = s * scale
        captured, hq, dmin = _mode_stats(out, mix)
        norms = g_output_gradients(loss, gan.D, s)
        far = dmin > far_sigmas * sd
        mean_all = float(norms.mean())
        h["step"].append(step)
        h["modes"].append(len(captured))
        h["captured"].append(captured)
        h["hq"].append(float(hq.mean()))
        h["w1"].append(sliced_w1(out, real_probe, np.random.default_rng(0)))
        h["norm"].append(mean_all)
        h["far_share"].append(float(far.mean()))
        h["far_norm"].append(float(norms[far].mean()) if far.any() else float("nan"))
        h["far_ratio"].append(float(norms[far].mean()) / mean_all if far.any() and mean_all > 0 else float("nan"))
        h["samples"].append(out)

    t0 = time.perf_counter()
    h["d_losses"] = train(gan, x, steps=steps, batch_size=batch_size,
                           rng=np.random.default_rng([seed, k, 2]), every=every, on_check=check,
                           label=f"{mix} {loss}")
    h["seconds"] = time.perf_counter() - t0
    # The discriminator's distance estimate (−D loss, averaged over each check window) against the
    # samples' distance to the data: does the loss curve track sample quality?
    d, bounds = h["d_losses"], [0] + h["step"]
    h["estimate"] = [-float(np.mean(d[a:b])) for a, b in zip(bounds, bounds[1:])]
    h["every"] = every
    return h


def _nanmean(xs) -> float:
    xs = [x for x in xs if x is not None and np.isfinite(x)]
    return float(np.mean(xs)) if xs else float("nan")


def _read_rates(lr_dir: str | None) -> dict:
    if lr_dir is None:
        return {}
    return json.loads((Path(lr_dir) / RATES_FILE).read_text())["rates"]


@experiment("gan_mixture_rates")
def gan_mixture_rates(*, seed: int, losses: list[str] = LOSSES, mixtures: list[str] = ("grid25",),
                      rates: list[float] = (3e-4, 1e-3, 3e-3), steps: int = 1000, batch_size: int = 256,
                      latent: int = 2, hidden: list[int] = (128, 128, 128), final_ratio: float | None = 0.1,
                      gp_weight: float = 0.1, samples: int = 2500, artifact_dir: str | None = None) -> Result:
    """Producer: each loss's learning rate, chosen from a small grid on the learning-rate grid's own seed
    (TUNE_SEED, never a judged seed; `seed` is ignored, the run is deterministic). Every (loss, rate)
    trains `steps` G steps on `mixtures` (the 5x5 grid by default: the harder benchmark) and is scored by
    the sliced W1 distance of its samples to the data (in units of the mixture's scale, mean over the
    mixtures): a distance none of the four losses optimises as such, the same yardstick for all. The
    rate with the smallest distance is saved (`rates.json`) for the runs that `use` this one."""
    del seed
    metrics: dict = {}
    chosen: dict = {}
    fig, ax = plots.figure(5.0, 3.2)
    for loss in losses:
        scores = []
        for rate in rates:
            w1 = [(_mixture_gan(loss, mix, seed=TUNE_SEED, steps=steps, batch_size=batch_size, latent=latent,
                                hidden=hidden, learning_rate=rate, final_ratio=final_ratio, gp_weight=gp_weight,
                                samples=samples, checks=1, far_sigmas=10.0)["w1"][-1]) / mixture_scale(mix)
                  for mix in mixtures]
            scores.append(float(np.mean(w1)))
            metrics[f"{loss}_w1_at_{rate:g}"] = scores[-1]
        best = int(np.nanargmin(scores))
        chosen[loss] = float(rates[best])
        metrics[f"{loss}_learning_rate"] = chosen[loss]
        ax.plot(rates, scores, "o-", label=f"{loss}: {rates[best]:g}")
    ax.set(xscale="log", xlabel="initial Adam rate (decays to 1/10)", ylabel="sliced W1 / scale",
           title=f"rate grid: {', '.join(mixtures)}, {steps} G steps, seed {TUNE_SEED}")
    ax.title.set_fontsize(8)
    ax.legend(fontsize=7)
    if artifact_dir is not None:
        Path(artifact_dir).mkdir(parents=True, exist_ok=True)
        (Path(artifact_dir) / RATES_FILE).write_text(json.dumps(
            {"rates": chosen, "grid": list(rates), "steps": steps, "mixtures": list(mixtures), "seed": TUNE_SEED},
            indent=1))
    return Result(metrics=metrics, artifacts={"rate_grid.png": plots.png(fig)},
                  notes=f"rates {list(rates)} (Adam, decaying exponentially to {final_ratio:g}x), {steps} G steps "
                        f"on {', '.join(mixtures)}, seed {TUNE_SEED}; chosen: "
                        + ", ".join(f"{k} {v:g}" for k, v in chosen.items()))


def _scatter_over_time(hs: dict, mix: str, seed: int, snapshots: int = 5) -> bytes:
    modes, _ = mixture_modes(mix)
    n = len(next(iter(hs.values()))["step"])
    idx = sorted({int(round(i)) for i in np.linspace(0, n - 1, min(snapshots, n))})
    fig, axes = plots.figure(2.2 * len(idx), 2.3 * len(hs))
    axes.remove()
    axes = fig.subplots(len(hs), len(idx), squeeze=False)
    lim = 3 if mix == "ring8" else 5.5
    for r, (loss, h) in enumerate(hs.items()):
        for c, i in enumerate(idx):
            ax = axes[r][c]
            ax.scatter(h["samples"][i][:, 0], h["samples"][i][:, 1], s=1, alpha=0.4)
            ax.scatter(modes[:, 0], modes[:, 1], s=20, c="red", marker="x")
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[],
                   title=f"{loss} step {h['step'][i]}: {h['modes'][i]}/{len(modes)}, hq {h['hq'][i]:.2f}")
            ax.title.set_fontsize(6)
    fig.suptitle(f"{mix}: G's samples over training, seed {seed}", fontsize=8)
    return plots.png(fig)


def _curves(hs: dict, seed: int) -> bytes:
    """Per mixture: modes, high-quality share, D's distance estimate against sliced W1, and the far-sample
    gradient ratio, against G steps."""
    mixes = list(hs)
    fig, axes = plots.figure(12, 2.6 * len(mixes))
    axes.remove()
    axes = fig.subplots(len(mixes), 4, squeeze=False)
    for r, mix in enumerate(mixes):
        for loss, h in hs[mix].items():
            a = axes[r]
            a[0].plot(h["step"], h["modes"], label=loss)
            a[1].plot(h["step"], h["hq"], label=loss)
            line, = a[2].plot(h["step"], h["w1"], label=f"{loss}: sliced W1")
            est = np.array(h["estimate"])
            span = np.ptp(est) or 1.0
            w1 = np.array(h["w1"])
            a[2].plot(h["step"], (est - est.min()) / span * np.ptp(w1) + w1.min(), ":", color=line.get_color(),
                      label=f"{loss}: −D loss (rescaled to W1's range)")
            a[3].plot(h["step"], h["far_ratio"], label=loss)
        titles = ("modes captured", "high-quality share", "sliced W1 and D's estimate", "far-sample gradient ratio")
        for c, t in enumerate(titles):
            axes[r][c].set(title=f"{mix}: {t}", xlabel="G step")
            axes[r][c].title.set_fontsize(8)
            axes[r][c].legend(fontsize=6)
    fig.suptitle(f"seed {seed}", fontsize=8)
    return plots.png(fig)


@experiment("gan_mixtures")
def gan_mixtures(*, seed: int, losses: list[str] = LOSSES, mixtures: list[str] = MIXTURES, steps: int = 3000,
                 batch_size: int = 256, latent: int = 2, hidden: list[int] = (128, 128, 128),
                 learning_rate: float = 1e-3, final_ratio: float | None = 0.1, lr_dir: str | None = None,
                 gp_weight: float = 0.1, samples: int = 2500, checks: int = 20, far_sigmas: float = 10.0) -> Result:
    """The 2-D mixtures benchmark of VEEGAN and PacGAN (ring of 8, grid of 25) for each loss in `losses`.

    Regime, and why: G and D are the WGAN-GP authors' toy MLPs (three ReLU-like hidden layers; 128 wide
    here, 512 theirs), batch 256, latent 2, the data divided by its standard deviation as in their code,
    WGAN-GP with λ 0.1 and 5 critic steps (their toy settings). Each loss gets its own Adam rate, the
    best of a small grid (`lr_dir`: the `gan_mixture_rates` producer; `learning_rate` without one),
    decaying exponentially to `final_ratio` of it. The authors train 100,000 (WGAN-GP) and 400,000
    (PacGAN) G steps; the CPU affords a few thousand, so convergence is measured, not assumed: at
    `checks` checks, modes captured and high-quality share (convergence.check on both curves), the
    sliced W1 distance to the data against D's own distance estimate (−D loss; Spearman correlation over
    the checks: does the loss track quality?), mode hopping (modes lost between checks), and LSGAN's
    "smoother gradients" as Mao et al. argue it: the gradient of G's loss with respect to fake samples far
    from every mode (> far_sigmas·σ), relative to the mean over all fake samples (a saturating loss gives
    far samples that D already accepts almost no pull). Final values are those of the last check."""
    rates = _read_rates(lr_dir)
    metrics: dict = {}
    conv: dict = {}
    hs: dict = {mix: {} for mix in mixtures}
    for mix in mixtures:
        for loss in losses:
            rate = float(rates.get(loss, learning_rate))
            h = _mixture_gan(loss, mix, seed=seed, steps=steps, batch_size=batch_size, latent=latent, hidden=hidden,
                             learning_rate=rate, final_ratio=final_ratio, gp_weight=gp_weight, samples=samples,
                             checks=checks, far_sigmas=far_sigmas)
            hs[mix][loss] = h
            p = f"{loss}_"
            metrics |= {f"{p}modes_{mix}": h["modes"][-1], f"{p}hq_share_{mix}": h["hq"][-1],
                        f"{p}sliced_w1_{mix}": h["w1"][-1], f"{p}modes_max_{mix}": max(h["modes"]),
                        f"{p}modes_lost_{mix}": modes_lost(h["captured"]),
                        f"{p}loss_quality_corr_{mix}": _spearman(np.array(h["estimate"]), np.array(h["w1"])),
                        f"{p}far_grad_ratio_{mix}": _nanmean(h["far_ratio"]),
                        f"{p}far_grad_norm_{mix}": _nanmean(h["far_norm"]),
                        f"{p}grad_norm_{mix}": _nanmean(h["norm"]),
                        f"{p}modes_curve_{mix}": h["modes"], f"{p}hq_curve_{mix}": [round(v, 4) for v in h["hq"]],
                        f"{p}seconds_{mix}": h["seconds"], f"{p}learning_rate": rate}
            for name, curve in (("hq", h["hq"]), ("modes", h["modes"])):
                conv[f"{loss}_{mix}_{name}"] = convergence.check(
                    curve, budget=f"{steps} G steps", higher=True, unit_per_point=h["every"], unit="G steps",
                    metrics=[f"{p}*_{mix}", f"{p}hq_share_min", f"{p}loss_quality_corr", f"{p}far_grad_ratio"])
        metrics["check_steps"] = hs[mix][losses[0]]["step"]
    for loss in losses:
        p = f"{loss}_"
        metrics[f"{p}loss_quality_corr"] = float(np.mean([metrics[f"{p}loss_quality_corr_{m}"] for m in mixtures]))
        # Did this GAN train at all? Its worst high-quality share over the mixtures (a precondition).
        metrics[f"{p}hq_share_min"] = float(min(metrics[f"{p}hq_share_{m}"] for m in mixtures))
        metrics[f"{p}far_grad_ratio"] = _nanmean([metrics[f"{p}far_grad_ratio_{m}"] for m in mixtures])
    artifacts = {f"samples_over_time_{mix}.png": _scatter_over_time(hs[mix], mix, seed) for mix in mixtures}
    artifacts["curves.png"] = _curves(hs, seed)
    return Result(metrics=metrics, artifacts=artifacts, convergence=conv,
                  notes=f"G {latent}-{'-'.join(map(str, hidden))}-2, D 2-{'-'.join(map(str, hidden))}-1, "
                        f"{steps} G steps of batch {batch_size}; Adam "
                        + ", ".join(f"{loss} {float(rates.get(loss, learning_rate)):g}" for loss in losses)
                        + (f" decaying to {final_ratio:g}x" if final_ratio else "")
                        + f" ({'from the rate grid' if rates else 'not tuned'}); {samples} samples at each of "
                        f"{checks} checks")


