"""GAN-DSTAR, GAN-COLLAPSE, GAN-LSGAN, GAN-WGAN, GAN-CGAN, GAN-DCGAN: GANs from D* to MNIST (7.6).

Losses (D returns a logit, or a critic value for WGAN-GP):
  minimax   D: −log D(x) − log(1 − D(G(z)));  G: minimise log(1 − D(G(z)))   (the chapter's V(G, D))
  nonsat    D: as above;                       G: maximise log D(G(z))         (the chapter's G step)
  lsgan     D: ½(D(x) − 1)² + ½D(G(z))²;       G: ½(D(G(z)) − 1)²              (Mao et al. 2017, a-b-c = 0-1-1)
  wgan_gp   D: D(G(z)) − D(x) + λ(‖∇D(x̂)‖ − 1)²; G: −D(G(z)), 5 critic steps per G step (Gulrajani et al. 2017;
            λ = 10 for images, 0.1 for the 2-D mixtures, the values of its authors' code)
Optimisers: Adam(2e-4, β1 = 0.5) (DCGAN's setting, also LSGAN's) for the first three, Adam(1e-4, β = (0.5, 0.9))
for WGAN-GP (its paper's). Noise comes from numpy generators seeded by the claim's seed.
The 2-D mixtures give each loss its own initial Adam rate, chosen from a small grid on a seed of its own
(`gan_mixture_rates`), decaying exponentially to a tenth of it (the step budget is short; the large rate
finds the modes, the small one lets samples settle into them).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from repro import convergence, data, plots, progress
from repro.experiments.mnist_scoring import scorer
from repro.models.generative import dcgan_discriminator, dcgan_generator, mlp_discriminator, mlp_generator
from repro.registry import Result, experiment

LOSSES = ("minimax", "nonsat", "lsgan", "wgan_gp")


def _optimizer(loss: str, learning_rate: float | None = None, decay: tuple[float, int] | None = None
               ) -> keras.optimizers.Optimizer:
    """Adam as in each loss's paper; `decay` = (final rate, updates): exponential decay to that rate."""
    lr = learning_rate or (1e-4 if loss == "wgan_gp" else 2e-4)
    if decay is not None:
        final, updates = decay
        lr = keras.optimizers.schedules.ExponentialDecay(lr, decay_steps=updates, decay_rate=final / lr)
    if loss == "wgan_gp":
        return keras.optimizers.Adam(lr, beta_1=0.5, beta_2=0.9)
    return keras.optimizers.Adam(lr, beta_1=0.5)


def _d_loss(loss: str, real, fake):
    if loss in ("minimax", "nonsat"):
        return tf.reduce_mean(tf.nn.softplus(-real) + tf.nn.softplus(fake))
    if loss == "lsgan":
        return 0.5 * tf.reduce_mean((real - 1.0) ** 2 + fake ** 2)
    return tf.reduce_mean(fake) - tf.reduce_mean(real)


def _g_loss_per_sample(loss: str, fake):
    """The generator's loss of each fake sample (D's logit or critic value `fake`)."""
    if loss == "minimax":
        return -tf.nn.softplus(fake)                            # = log(1 − σ(fake))
    if loss == "nonsat":
        return tf.nn.softplus(-fake)                            # = −log σ(fake)
    if loss == "lsgan":
        return 0.5 * (fake - 1.0) ** 2
    return -fake


def _g_loss(loss: str, fake):
    return tf.reduce_mean(_g_loss_per_sample(loss, fake))


class GAN:
    """G, D and a compiled loop of training steps; `classes` > 0 concatenates a one-hot label to both
    inputs (CGAN). Each generator step follows `n_critic` discriminator steps (5 for WGAN-GP, else 1)."""

    def __init__(self, G: keras.Model, D: keras.Model, loss: str, *, classes: int = 0, gp_weight: float = 10.0,
                 learning_rate: float | None = None, final_learning_rate: float | None = None, steps: int = 0):
        self.G, self.D, self.loss, self.classes = G, D, loss, classes
        self.n_critic = n_critic = 5 if loss == "wgan_gp" else 1
        decays = [(final_learning_rate, steps), (final_learning_rate, steps * n_critic)] \
            if final_learning_rate else [None, None]
        self.g_opt, self.d_opt = (_optimizer(loss, learning_rate, d) for d in decays)
        self.g_opt.build(G.trainable_variables)
        self.d_opt.build(D.trainable_variables)
        gp = loss == "wgan_gp"

        def cond(labels):
            return tf.one_hot(labels, classes) if classes else tf.zeros((tf.shape(labels)[0], 0))

        def d_step(x, z, c, alpha):
            with tf.GradientTape() as tape:
                fake = G(tf.concat([z, c], 1), training=True)
                d_real = D(tf.concat([x, c], 1), training=True)
                d_fake = D(tf.concat([fake, c], 1), training=True)
                value = _d_loss(loss, d_real, d_fake)
                total = value
                if gp:
                    xh = alpha * x + (1 - alpha) * fake
                    with tf.GradientTape() as inner:
                        inner.watch(xh)
                        dh = D(tf.concat([xh, c], 1), training=True)
                    g = inner.gradient(dh, xh)
                    total = value + gp_weight * tf.reduce_mean((tf.norm(g, axis=1) - 1.0) ** 2)
            self.d_opt.apply_gradients(zip(tape.gradient(total, D.trainable_variables), D.trainable_variables))
            return value

        def g_step(z, c):
            with tf.GradientTape() as tape:
                fake = G(tf.concat([z, c], 1), training=True)
                value = _g_loss(loss, D(tf.concat([fake, c], 1), training=True))
            self.g_opt.apply_gradients(zip(tape.gradient(value, G.trainable_variables), G.trainable_variables))
            return value

        @tf.function(reduce_retracing=True)
        def run(x, y, idx, zd, alpha, zg, cg):
            """len(idx) generator steps in one graph (no Python between steps; the critic steps are a
            graph loop too, so WGAN-GP's graph holds one penalised critic step, not five)."""
            out = tf.TensorArray(tf.float32, size=tf.shape(idx)[0])
            for i in tf.range(tf.shape(idx)[0]):
                value = tf.constant(0.0)
                for j in tf.range(n_critic):
                    value = d_step(tf.gather(x, idx[i, j]), zd[i, j], cond(tf.gather(y, idx[i, j])), alpha[i, j])
                g_step(zg[i], cond(cg[i]))
                out = out.write(i, value)
            return out.stack()

        self.run = run

    def sample(self, z: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
        c = np.zeros((len(z), 0), "float32") if c is None else c
        zc = np.concatenate([z, c], 1).astype("float32")
        # direct calls: predict() would trace a new function for every model
        return np.concatenate([self.G(zc[i:i + 1000], training=False).numpy() for i in range(0, len(zc), 1000)])


def _train(gan: GAN, x: np.ndarray, *, steps: int, batch_size: int, latent: int, rng: np.random.Generator,
           labels: np.ndarray | None = None, every: int = 0, on_check=None, label: str = "",
           chunk: int = 100) -> list[float]:
    """`steps` generator updates; returns the D loss of each. All randomness is drawn here from `rng`."""
    x_t = tf.constant(x)
    y_t = tf.constant(labels if labels is not None else np.zeros(len(x), "int64"))
    every = every or steps
    nc, d_losses = gan.n_critic, []
    while len(d_losses) < steps:
        k = min(chunk, steps - len(d_losses), every - len(d_losses) % every)
        idx = rng.integers(0, len(x), (k, nc, batch_size))
        zd = rng.standard_normal((k, nc, batch_size, latent)).astype("float32")
        alpha = rng.uniform(size=(k, nc, batch_size, 1)).astype("float32")
        zg = rng.standard_normal((k, batch_size, latent)).astype("float32")
        cg = rng.integers(0, max(gan.classes, 1), (k, batch_size))
        d_losses += [float(v) for v in gan.run(x_t, y_t, idx, zd, alpha, zg, cg).numpy()]
        if len(d_losses) % every == 0 or len(d_losses) == steps:
            if on_check is not None:
                on_check(len(d_losses))
            progress.step(len(d_losses), steps, f"{label} step {len(d_losses)}: D loss {d_losses[-1]:.3f}")
    return d_losses


# ----------------------------------------------------------------------------- GAN-DSTAR

def _normal_pdf(x, mu, sd):
    return np.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))


# name: (p_data as [(weight, mean, sd)], fixed p_G as [(weight, mean, sd)])
DENSITIES = {"gauss": ([(1.0, 0.0, 1.0)], [(1.0, 1.0, 0.5)]),
             "bimodal": ([(0.5, -2.0, 0.5), (0.5, 2.0, 0.5)], [(1.0, 0.0, 1.5)])}


def _pdf(mix, x):
    return sum(w * _normal_pdf(x, m, s) for w, m, s in mix)


def _draw(mix, n, rng):
    k = rng.choice(len(mix), n, p=[w for w, _, _ in mix])
    mu, sd = np.array([m for _, m, _ in mix])[k], np.array([s for _, _, s in mix])[k]
    return (mu + sd * rng.standard_normal(n))[:, None].astype("float32")


def _w1_1d(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(np.sort(a.ravel()) - np.sort(b.ravel()))))


@experiment("gan_optimal_discriminator")
def gan_optimal_discriminator(*, seed: int, hidden: list[int] = (64, 64), steps: int = 3000, batch_size: int = 512,
                              joint_steps: int = 4000, learning_rate: float = 1e-3, checks: int = 10) -> Result:
    """(a) D trained against a fixed p_G vs D* = p_data/(p_data + p_G); (b) G and D trained together:
    how far D is from ½ where the data are, and how far G is from the data.

    Regime, and why: 1-D densities known in closed form, so D* is exact and G's distance to the data is
    the exact 1-D Wasserstein distance between samples (sorted differences). The chapter's "D(x) = 0.5"
    is a statement about the state p_G = p_data, so D ≈ ½ alone does not show it: a D that cannot tell
    G's samples from the data is also ½ while G is still two spikes (the stored version-1 record). G's
    W1 to the data is measured at `checks` checks of the joint training; its curve decides convergence
    (convergence.check), and the W1 of two independent data samples of the same size (the sampling
    floor) is reported beside it."""
    rng = np.random.default_rng(seed)
    metrics: dict = {}
    grid = np.linspace(-5, 5, 1001)[:, None].astype("float32")
    fig, axes = plots.figure(8, 5.5)
    axes.remove()
    axes = fig.subplots(2, 2)
    fixed_err, joint_dev, conv = [], [], {}
    for k, (name, (p_data, p_g)) in enumerate(DENSITIES.items()):
        keras.utils.set_random_seed(seed + k)
        D = mlp_discriminator(inputs=1, hidden=tuple(hidden))
        opt = keras.optimizers.Adam(learning_rate)

        @tf.function
        def d_step(xr, xf):
            with tf.GradientTape() as tape:
                value = _d_loss("minimax", D(xr, training=True), D(xf, training=True))
            opt.apply_gradients(zip(tape.gradient(value, D.trainable_variables), D.trainable_variables))
            return value

        for _ in range(steps):
            d_step(_draw(p_data, batch_size, rng), _draw(p_g, batch_size, rng))
        d = tf.sigmoid(D(grid)).numpy()[:, 0]
        pd, pg = _pdf(p_data, grid[:, 0]), _pdf(p_g, grid[:, 0])
        dstar = pd / (pd + pg + 1e-300)
        w = (pd + pg) / 2
        w = w / w.sum()
        err = float(np.sum(w * np.abs(d - dstar)))
        fixed_err.append(err)
        metrics |= {f"fixed_{name}_mean_abs_error": err,
                    f"fixed_{name}_max_abs_error_dense": float(np.max(np.abs(d - dstar)[w > 1e-4]))}
        ax = axes[0][k]
        ax.plot(grid, dstar, "k--", label="D* = p_data/(p_data+p_G)")
        ax.plot(grid, d, label="trained D")
        ax.fill_between(grid[:, 0], 0, pd / pd.max() * 0.3, alpha=0.2, label="p_data")
        ax.fill_between(grid[:, 0], 0, pg / pg.max() * 0.3, alpha=0.2, label="p_G (fixed)")
        ax.set(title=f"{name}: fixed G, error {err:.3f}", ylim=(0, 1.02))
        ax.legend(fontsize=6)

        # (b) both trained, the chapter's alternating steps (G maximises log D(G(z))).
        keras.utils.set_random_seed(seed + 10 + k)
        gan = GAN(mlp_generator(1, outputs=1, hidden=tuple(hidden), activation="linear"),
                  mlp_discriminator(inputs=1, hidden=tuple(hidden)), "nonsat")
        xs = _draw(p_data, 200000, rng)
        probe = _draw(p_data, 20000, rng)
        z_probe = rng.standard_normal((20000, 1)).astype("float32")
        w1_curve: list[float] = []
        every = max(1, joint_steps // checks)
        _train(gan, xs, steps=joint_steps, batch_size=batch_size, latent=1, rng=rng, every=every,
               on_check=lambda _s: w1_curve.append(_w1_1d(gan.sample(z_probe), probe)), label=f"joint {name}")
        g_samples = gan.sample(z_probe)
        metrics[f"w1_data_floor_{name}"] = _w1_1d(_draw(p_data, 20000, rng), probe)
        # solved within twice the W1 of two data samples of this size: G is the data up to sampling
        conv[f"joint_{name}"] = convergence.check(w1_curve, budget=f"{joint_steps} steps", unit_per_point=every,
                                                  unit="steps", floor=2 * metrics[f"w1_data_floor_{name}"],
                                                  metrics=[f"joint_{name}_*", "joint_mean_abs_d_minus_half"])
        metrics[f"joint_{name}_w1_curve"] = [round(v, 5) for v in w1_curve]
        dev = float(np.mean(np.abs(tf.sigmoid(gan.D(probe)).numpy() - 0.5)))
        joint_dev.append(dev)
        metrics |= {f"joint_{name}_mean_abs_d_minus_half": dev,
                    f"joint_{name}_mean_abs_d_minus_half_on_g": float(np.mean(np.abs(tf.sigmoid(gan.D(g_samples)).numpy() - 0.5))),
                    f"joint_{name}_w1_g_to_data": _w1_1d(g_samples, probe)}
        ax = axes[1][k]
        ax.hist(probe[:, 0], bins=100, range=(-5, 5), density=True, alpha=0.4, label="data")
        ax.hist(g_samples[:, 0], bins=100, range=(-5, 5), density=True, alpha=0.4, label="G")
        ax.plot(grid, tf.sigmoid(gan.D(grid)).numpy(), "k", label="D(x)")
        ax.axhline(0.5, color="grey", ls=":")
        ax.set(title=f"{name}: G and D trained, mean |D−½| {dev:.3f}, W1(G, data) "
                     f"{metrics[f'joint_{name}_w1_g_to_data']:.3f}", ylim=(0, 1.02))
        ax.title.set_fontsize(8)
        ax.legend(fontsize=6)
        progress.step(k + 1, len(DENSITIES), name)
    metrics["fixed_mean_abs_error"] = float(np.mean(fixed_err))
    metrics["joint_mean_abs_d_minus_half"] = float(np.mean(joint_dev))
    metrics["joint_w1_g_to_data_max"] = max(metrics[f"joint_{n}_w1_g_to_data"] for n in DENSITIES)
    return Result(metrics=metrics, artifacts={"d_vs_dstar.png": plots.png(fig)}, convergence=conv,
                  notes=f"1-D densities {', '.join(DENSITIES)}; D MLP 1-{'-'.join(map(str, hidden))}-1, "
                        f"{steps} Adam steps against fixed p_G (errors weighted by (p_data+p_G)/2); "
                        f"joint training {joint_steps} steps, non-saturating G, Adam(2e-4, β1 0.5); "
                        f"G's W1 to the data at {checks} checks")


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
        total = tf.reduce_sum(_g_loss_per_sample(loss, D(xs, training=False)))
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
    h["d_losses"] = _train(gan, x, steps=steps, batch_size=batch_size, latent=latent,
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


# ----------------------------------------------------------------------------- MNIST GANs

def _mnist_tanh(train_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The training images in [-1, 1]: each seed draws its own subset."""
    (x, y), _ = data.load_mnist(train_size=train_size, test_size=1, seed=seed)
    return (x.reshape(len(x), -1).astype("float32") / 127.5 - 1.0), y.astype("int64")


def _to01(x: np.ndarray) -> np.ndarray:
    return np.clip((x + 1.0) / 2.0, 0.0, 1.0)


def _sample_grid(x01: np.ndarray, rows: int, title: str) -> bytes:
    cols = len(x01) // rows
    img = x01[:rows * cols].reshape(rows, cols, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, cols * 28)
    fig, ax = plots.figure(0.45 * cols + 0.4, 0.45 * rows + 0.6)
    ax.imshow(img, cmap="gray_r", vmin=0, vmax=1)
    ax.set(xticks=[], yticks=[], title=title)
    ax.title.set_fontsize(8)
    return plots.png(fig)


CGAN_ARCHS = ("dcgan", "mlp")


def _mnist_pair(arch: str, *, latent: int, width: int, g_hidden: list[int], d_hidden: list[int],
                conditions: int = 0) -> tuple[keras.Model, keras.Model]:
    """(G, D) for 28x28 digits, built in that order (so one seed gives the same weights everywhere)."""
    if arch == "dcgan":
        G = dcgan_generator(latent, width=width, conditions=conditions)
        return G, dcgan_discriminator(width=width, conditions=conditions)
    G = mlp_generator(latent, hidden=tuple(g_hidden), conditions=conditions)
    return G, mlp_discriminator(hidden=tuple(d_hidden), conditions=conditions)


@experiment("cgan_mnist", datasets=("mnist",))
def cgan_mnist(*, seed: int, archs: list[str] = CGAN_ARCHS, latent: int = 64, width: int = 64,
               g_hidden: list[int] = (256, 512), d_hidden: list[int] = (512, 256), train_size: int = 20000,
               steps: int = 3000, batch_size: int = 64, per_label: int = 200, checks: int = 10,
               scorer_train_size: int = 20000, scorer_epochs: int = 2, reference_size: int = 5000,
               scorer_dir: str | None = None) -> Result:
    """Conditional GANs, non-saturating loss, the same data, optimiser, batch and steps. The one-hot label
    is appended to G's noise and enters D with the image: `dcgan` as ten constant channels beside the
    image (convolutional G and D as in dcgan_vs_mlp; the keras.io conditional GAN example's design);
    `mlp` appended to the flat image (Mirza & Osindero's design). A real-MNIST classifier reads the
    digits generated for each requested label.

    Regime, and why: "controllable" is read as G drawing the requested digit, so the measure is the
    share of generated digits a real-MNIST classifier reads as the requested label, over the same
    `per_label` noise vectors at `checks` checks; its curve decides whether the judged (convolutional)
    design converged (convergence.check). The MLP design is trained with the same budget and reported
    (its label accuracy in the notes): at version 1's budget it drew digits but ignored the label."""
    unknown = set(archs) - set(CGAN_ARCHS)
    if unknown:
        raise ValueError(f"archs must be among {CGAN_ARCHS}, got {sorted(unknown)}")
    sc = scorer(seed=seed, train_size=scorer_train_size, epochs=scorer_epochs, reference_size=reference_size,
                path=scorer_dir)
    x, y = _mnist_tanh(train_size, seed)
    want = np.repeat(np.arange(10), per_label)
    z_eval = np.random.default_rng([seed, 98]).standard_normal((len(want), latent)).astype("float32")
    c_eval = np.eye(10, dtype="float32")[want]
    metrics: dict = {"chance_accuracy": 0.1, "scorer_test_accuracy": sc.test_accuracy}
    artifacts, notes, conv = {}, [], {}
    fig, ax = plots.figure(5.0, 3.2)
    for arch in archs:
        keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        G, D = _mnist_pair(arch, latent=latent, width=width, g_hidden=g_hidden, d_hidden=d_hidden, conditions=10)
        gan = GAN(G, D, "nonsat", classes=10)
        curve, at, spent = [], [], [0.0]

        def check(step):
            t = time.perf_counter()
            pred = sc.probabilities(_to01(gan.sample(z_eval, c_eval))).argmax(1)
            curve.append(float(np.mean(pred == want)))
            at.append(step)
            spent[0] += time.perf_counter() - t

        every = max(1, steps // checks)
        t0 = time.perf_counter()
        _train(gan, x, steps=steps, batch_size=batch_size, latent=latent, rng=rng, labels=y, every=every,
               on_check=check, label=f"{arch} CGAN")
        seconds = time.perf_counter() - t0 - spent[0]
        out = _to01(gan.sample(z_eval, c_eval))
        pred = sc.probabilities(out).argmax(1)
        per = [float(np.mean(pred[want == d] == d)) for d in range(10)]
        metrics |= {f"{arch}_label_accuracy": float(np.mean(pred == want)), f"{arch}_min_label_accuracy": min(per),
                    f"{arch}_label_accuracy_by_digit": [round(a, 4) for a in per],
                    f"{arch}_label_accuracy_curve": [round(a, 4) for a in curve],
                    f"{arch}_train_seconds": seconds, f"{arch}_g_params": int(G.count_params()),
                    f"{arch}_d_params": int(D.count_params())}
        metrics |= sc.score(out, arch)
        if arch == "dcgan":                 # the judged design; the MLP design is reported
            conv["dcgan_cgan"] = convergence.check(curve, budget=f"{steps} steps", higher=True,
                                                   unit_per_point=every, unit="steps", metrics=["dcgan_*"])
        ax.plot(at, curve, "o-", label=arch)
        grid = np.concatenate([out[want == d][:10] for d in range(10)])
        artifacts[f"{arch}_cgan_samples.png"] = _sample_grid(
            grid, 10, f"{arch} CGAN, {steps} steps: row d = requested digit d, seed {seed}")
        design = ("label as 10 constant channels beside the image" if arch == "dcgan" else
                  "label concatenated to the flat image, Mirza & Osindero")
        notes.append(f"{arch} design ({design}; G {metrics[f'{arch}_g_params']}, D {metrics[f'{arch}_d_params']} "
                     f"parameters): label accuracy {metrics[f'{arch}_label_accuracy']:.3f} against chance 0.100")
    ax.axhline(0.1, color="grey", ls=":", label="chance")
    ax.set(xlabel="G step", ylabel="label accuracy", ylim=(0, 1), title=f"requested digit drawn, seed {seed}")
    ax.legend(fontsize=7)
    artifacts["label_accuracy.png"] = plots.png(fig)
    return Result(metrics=metrics, artifacts=artifacts, convergence=conv,
                  notes=f"seed {seed}: {len(x)} MNIST images, {steps} steps of batch {batch_size}, Adam(2e-4, β1 0.5), "
                        f"{per_label} samples per label; " + "; ".join(notes))


@experiment("dcgan_vs_mlp", datasets=("mnist",))
def dcgan_vs_mlp(*, seed: int, latent: int = 64, width: int = 64, g_hidden: list[int] = (256, 512),
                 d_hidden: list[int] = (512, 256), train_size: int = 20000, steps: int = 3000,
                 mlp_steps: int | None = None, batch_size: int = 64, samples: int = 2000, checks: int = 4,
                 check_samples: int = 1000, scorer_train_size: int = 20000, scorer_epochs: int = 2,
                 reference_size: int = 5000, scorer_dir: str | None = None) -> Result:
    """DCGAN and an MLP GAN, same data, loss (non-saturating), optimiser and batch, both judged by the
    Fréchet distance on the real-MNIST classifier's features.

    Regime, and why: compared at equal wall time. An MLP step costs about a third of a DCGAN step on
    this CPU, so equal steps would handicap the MLP; `mlp_steps` gives it as many steps as fit in the
    DCGAN's training time (the suite sets it from measured step times; both times are reported, and
    their ratio). FID at `checks` checks (on `check_samples` samples) shows where each curve stands."""
    mlp_steps = mlp_steps or steps
    sc = scorer(seed=seed, train_size=scorer_train_size, epochs=scorer_epochs, reference_size=reference_size,
                path=scorer_dir)
    x, _ = _mnist_tanh(train_size, seed)
    metrics: dict = {"scorer_test_accuracy": sc.test_accuracy}
    artifacts: dict = {}
    conv: dict = {}
    z_eval = np.random.default_rng([seed, 99]).standard_normal((samples, latent)).astype("float32")
    fig, ax = plots.figure(5.0, 3.2)
    for name, n_steps in (("dcgan", steps), ("mlp", mlp_steps)):
        keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        gan = GAN(*_mnist_pair(name, latent=latent, width=width, g_hidden=g_hidden, d_hidden=d_hidden), "nonsat")
        curve, at, spent = [], [], [0.0]

        def check(step):
            t = time.perf_counter()
            curve.append(sc.frechet(_to01(gan.sample(z_eval[:check_samples]))))
            at.append(step)
            spent[0] += time.perf_counter() - t

        every = max(1, n_steps // checks)
        t0 = time.perf_counter()
        _train(gan, x, steps=n_steps, batch_size=batch_size, latent=latent, rng=rng, every=every, on_check=check,
               label=name)
        metrics[f"{name}_train_seconds"] = time.perf_counter() - t0 - spent[0]
        metrics[f"{name}_steps"] = n_steps
        metrics[f"{name}_fid_curve"] = [round(v, 3) for v in curve]
        conv[name] = convergence.check(curve, budget=f"{n_steps} steps", unit_per_point=every, unit="steps",
                                       metrics=[f"{name}_*"])
        out = _to01(gan.sample(z_eval))
        metrics |= sc.score(out, name)
        metrics |= {f"{name}_g_params": int(gan.G.count_params()), f"{name}_d_params": int(gan.D.count_params())}
        artifacts[f"{name}_samples.png"] = _sample_grid(out[:100], 10, f"{name}, {n_steps} steps, seed {seed}")
        ax.plot(np.array(at) * metrics[f"{name}_train_seconds"] / n_steps, curve, "o-", label=f"{name} ({n_steps} steps)")
    metrics["mlp_to_dcgan_seconds"] = metrics["mlp_train_seconds"] / metrics["dcgan_train_seconds"]
    ax.set(xlabel="training seconds", ylabel=f"FID ({check_samples} samples)", yscale="log",
           title=f"sample quality against wall time, seed {seed}")
    ax.legend(fontsize=7)
    artifacts["fid_vs_time.png"] = plots.png(fig)
    real = (x[np.random.default_rng(seed).choice(len(x), samples, replace=False)] + 1) / 2
    metrics |= sc.score(real, "real")
    return Result(metrics=metrics, artifacts=artifacts, convergence=conv,
                  notes=f"{len(x)} MNIST images; DCGAN {steps} and MLP GAN {mlp_steps} steps of batch {batch_size} "
                        f"(equal wall time: MLP/DCGAN training seconds {metrics['mlp_to_dcgan_seconds']:.2f}), "
                        f"Adam(2e-4, β1 0.5); FID of {samples} samples against {reference_size} real test images "
                        f"on the scoring CNN's features")


# ----------------------------------------------------------------------------- GAN-VALUE

def _log_pdf(mix, x: np.ndarray) -> np.ndarray:
    """log of a mixture of normals [(weight, mean, sd)], without underflow in the tails."""
    return np.logaddexp.reduce([np.log(w) - 0.5 * ((x - m) / s) ** 2 - np.log(s * np.sqrt(2 * np.pi))
                                for w, m, s in mix], axis=0)


def _entropy(mix, x: np.ndarray, dx: float) -> float:
    """Differential entropy: ½ log(2πe σ²) for one normal, −∫ p log p by quadrature for a mixture."""
    if len(mix) == 1:
        return float(0.5 * np.log(2 * np.pi * np.e * mix[0][2] ** 2))
    lp = _log_pdf(mix, x)
    return float(-np.sum(np.exp(lp) * lp) * dx)


def gan_value_as_written(p_data, p_g, x: np.ndarray, dx: float, plant: str = "") -> float:
    """C(G) = E_{x∼p_data}[log D*_G(x)] + E_{x∼p_g}[log(1 − D*_G(x))] with D*_G = p_data/(p_data + p_G),
    the chapter's first line symbol for symbol, by quadrature on the uniform grid x (step dx), over the
    points where the densities have mass (p_data + p_G above 1e-12 of its peak: what lies outside
    changes C by far less than 1e-9). Where D* or 1 − D* rounds to 0 in float64 (one density below
    1e-16 of the other) its term is dropped: each such term is at most (p_data + p_G)·4e-15.
    `plant` is for tests: "log_d_both" writes log D* in both terms, "inverted_dstar" uses
    D = p_G/(p_data + p_G)."""
    p, q = np.exp(_log_pdf(p_data, x)), np.exp(_log_pdf(p_g, x))
    keep = (p + q) > 1e-12 * np.max(p + q)
    p, q = p[keep], q[keep]
    d = q / (p + q) if plant == "inverted_dstar" else p / (p + q)
    one_minus_d = d if plant == "log_d_both" else 1.0 - d
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where(d > 0, p * np.log(d), 0.0)
        second = np.where(one_minus_d > 0, q * np.log(one_minus_d), 0.0)
    return float(np.sum(first) * dx + np.sum(second) * dx)


# name: (p_data, p_G) as [(weight, mean, sd)]
VALUE_PAIRS = {
    "identical": ([(1.0, 0.0, 1.0)], [(1.0, 0.0, 1.0)]),
    "shift_1": ([(1.0, 0.0, 1.0)], [(1.0, 1.0, 1.0)]),
    "shift_3": ([(1.0, 0.0, 1.0)], [(1.0, 3.0, 1.0)]),
    "wider": ([(1.0, 0.0, 1.0)], [(1.0, 0.0, 2.0)]),
    "bimodal_vs_gauss": ([(0.5, -2.0, 0.5), (0.5, 2.0, 0.5)], [(1.0, 0.0, 1.0)]),
    "bimodal_vs_wide": ([(0.5, -2.0, 0.5), (0.5, 2.0, 0.5)], [(1.0, 0.0, 2.0)]),
}


@experiment("gan_value_function")
def gan_value_function(*, seed: int, x_max: float = 20.0, step: float = 0.001, shifts: list = None,
                       separations: list = None, d_logit_step: float = 0.025, coarse_step: float = 0.02,
                       mc_samples: int = 100000, plant: str = "") -> Result:
    """GAN-VALUE: the chapter's C(G) = max_D V(G, D) = E_{p_data}[log D*_G(x)] + E_{p_g}[log(1 − D*_G(x))]
    with D*_G = p_data/(p_data + p_G), evaluated literally by quadrature (grid step `step` on
    [−x_max, x_max]) for pairs of known 1-D densities (`VALUE_PAIRS`: identical; shifted and wider
    normals; a two-mode mixture against normals), against −log 4 + 2·JSD(p_data‖p_G) computed
    independently as 2·(H(M) − ½H(p_data) − ½H(p_G)) with M = ½(p_data + p_G) (Goodfellow et al. 2014,
    Theorem 1); the entropies of normals in closed form, of mixtures by quadrature.
    At p_G = p_data: C = −log 4, and the D that maximises V(G, D) found numerically (pointwise over a
    grid of D in logit steps of `d_logit_step`, on an x grid of `coarse_step`) is ½ everywhere; the
    same numerical maximum of V gives C(G) for every pair (C(G) = max_D V). Minimum over families of p_G:
    normals N(s, 1) against p_data = N(0, 1) for s in `shifts`, and two-mode mixtures ±a against the
    ±2 data mixture for a in `separations`: the minimum must be at p_G = p_data (s = 0, a = 2).
    The empirical side (F+E): Monte Carlo estimates of C(G) from `mc_samples` draws of each density
    (fixed seed), in standard errors from the quadrature value.
    `plant` (tests) replaces the formula as in `gan_value_as_written`.
    """
    shifts = [s / 10 for s in range(-20, 21)] if shifts is None else shifts
    separations = [a / 10 for a in range(10, 31)] if separations is None else separations
    rng = np.random.default_rng(seed)
    n = int(round(2 * x_max / step))
    x = np.linspace(-x_max, x_max, n + 1)
    dx = 2 * x_max / n
    log4 = np.log(4.0)
    m: dict = {}
    diffs, zs, line2, numeric = [], [], [], []
    for name, (pd, pg) in VALUE_PAIRS.items():
        c = gan_value_as_written(pd, pg, x, dx, plant)
        lp, lq = _log_pdf(pd, x), _log_pdf(pg, x)
        mix = [(0.5 * w, mu, s) for w, mu, s in pd] + [(0.5 * w, mu, s) for w, mu, s in pg]
        jsd = _entropy(mix, x, dx) - 0.5 * _entropy(pd, x, dx) - 0.5 * _entropy(pg, x, dx)
        m[f"c_{name}"] = c
        m[f"jsd_{name}"] = jsd
        diffs.append(abs(c - (-log4 + 2.0 * jsd)))
        # the chapter's second line, E[log p_data/(p_data+p_g)] + E[log p_g/(p_data+p_g)], in logs
        lm = np.logaddexp(lp, lq)
        line2.append(abs(c - float(np.sum(np.exp(lp) * (lp - lm)) * dx + np.sum(np.exp(lq) * (lq - lm)) * dx)))
        # max over D of V(G, D) = ∫ p log D + q log(1 − D), pointwise on grids of x and of D
        xc = np.linspace(-x_max, x_max, int(round(2 * x_max / coarse_step)) + 1)
        pc, qc = np.exp(_log_pdf(pd, xc)), np.exp(_log_pdf(pg, xc))
        z = np.arange(-round(30 / d_logit_step), round(30 / d_logit_step) + 1) * d_logit_step
        log_d, log_1md = -np.log1p(np.exp(-z)), -np.log1p(np.exp(z))
        best_v, best_d = np.empty_like(xc), np.empty_like(xc)
        for lo in range(0, len(xc), 256):
            v = pc[lo:lo + 256, None] * log_d[None] + qc[lo:lo + 256, None] * log_1md[None]
            j = np.argmax(v, axis=1)
            best_v[lo:lo + 256] = v[np.arange(len(j)), j]
            best_d[lo:lo + 256] = 1.0 / (1.0 + np.exp(-z[j]))
        numeric.append(abs(float(np.sum(best_v)) * coarse_step - gan_value_as_written(pd, pg, xc, coarse_step, plant)))
        if name == "identical":
            mass = (pc + qc) > 1e-12 * np.max(pc + qc)
            m["argmax_d_at_p_data_max_abs_minus_half"] = float(np.max(np.abs(best_d[mass] - 0.5)))
            dstar = np.exp(lp) / (np.exp(lp) + np.exp(lq))
            m["dstar_at_p_data_max_abs_minus_half"] = float(np.nanmax(np.abs(dstar - 0.5)))
        # Monte Carlo: samples of p_data and p_G through log D* and log(1 − D*) (in logs)
        xd, xg = _draw(pd, mc_samples, rng)[:, 0].astype("float64"), _draw(pg, mc_samples, rng)[:, 0].astype("float64")
        a = _log_pdf(pd, xd) - np.logaddexp(_log_pdf(pd, xd), _log_pdf(pg, xd))
        b = _log_pdf(pg, xg) - np.logaddexp(_log_pdf(pd, xg), _log_pdf(pg, xg))
        se = np.sqrt(a.var(ddof=1) / mc_samples + b.var(ddof=1) / mc_samples)
        zs.append(abs(a.mean() + b.mean() - c) / max(se, 1e-9))   # identical densities: no spread but round-off
    m["c_vs_jsd_max_abs_diff"] = float(max(diffs))
    m["c_at_p_data"] = m["c_identical"]
    m["c_at_p_data_abs_diff_from_neg_log4"] = float(abs(m["c_identical"] + log4))
    m["line2_vs_line1_max_abs_diff"] = float(max(line2))
    m["max_v_numeric_vs_c_max_abs_diff"] = float(max(numeric))
    m["mc_max_abs_z"] = float(max(zs))

    gauss = [(1.0, 0.0, 1.0)]
    c_shift = [gan_value_as_written(gauss, [(1.0, s, 1.0)], x, dx, plant) for s in shifts]
    data2 = VALUE_PAIRS["bimodal_vs_gauss"][0]
    c_sep = [gan_value_as_written(data2, [(0.5, -a, 0.5), (0.5, a, 0.5)], x, dx, plant) for a in separations]
    m["argmin_shift"] = float(shifts[int(np.argmin(c_shift))])
    m["argmin_separation"] = float(separations[int(np.argmin(c_sep))])
    m["c_min_shift_family"] = float(min(c_shift))
    m["c_min_separation_family"] = float(min(c_sep))
    m["minimum_at_p_data"] = m["argmin_shift"] == 0.0 and m["argmin_separation"] == 2.0
    m["neg_log4"] = float(-log4)

    fig, ax = plots.figure(5.5, 3.4)
    ax.plot(shifts, c_shift, label="N(s, 1) against N(0, 1): C against s")
    ax.plot(separations, c_sep, label="modes ±a against ±2: C against a")
    ax.axhline(-log4, color="grey", ls="--", label="−log 4")
    ax.set(xlabel="parameter of p_G", ylabel="C(G)", title="the chapter's C(G) by quadrature")
    ax.legend(fontsize=8)
    return Result(metrics=m, artifacts={"c_of_g.png": plots.png(fig)},
                  notes=f"quadrature step {dx:g} on [−{x_max:g}, {x_max:g}]; pairs {list(VALUE_PAIRS)}; "
                        f"{mc_samples} Monte Carlo draws per density" + (f"; planted: {plant}" if plant else ""))
