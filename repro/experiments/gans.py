"""GAN-DSTAR, GAN-COLLAPSE, GAN-LSGAN, GAN-WGAN, GAN-CGAN, GAN-DCGAN: GANs from D* to MNIST (7.6).

Losses (D returns a logit, or a critic value for WGAN-GP):
  minimax   D: −log D(x) − log(1 − D(G(z)));  G: minimise log(1 − D(G(z)))   (the chapter's V(G, D))
  nonsat    D: as above;                       G: maximise log D(G(z))         (the chapter's G step)
  lsgan     D: ½(D(x) − 1)² + ½D(G(z))²;       G: ½(D(G(z)) − 1)²              (Mao et al. 2017, a-b-c = 0-1-1)
  wgan_gp   D: D(G(z)) − D(x) + λ(‖∇D(x̂)‖ − 1)²; G: −D(G(z)), 5 critic steps per G step (Gulrajani et al. 2017;
            λ = 10 for images, 0.1 for the 2-D mixtures, the values of its authors' code)
Optimisers: Adam(2e-4, β1 = 0.5) (DCGAN's setting, also LSGAN's) for the first three, Adam(1e-4, β = (0.5, 0.9))
for WGAN-GP (its paper's). Noise comes from numpy generators seeded by the claim's seed.
The 2-D mixtures use one schedule for all four losses: Adam 1e-3 decaying exponentially to 1e-4 (the step
budget is short; the large rate finds the modes, the small one lets samples settle into them).
"""
from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from repro import data, plots, progress
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


def _g_loss(loss: str, fake):
    if loss == "minimax":
        return -tf.reduce_mean(tf.nn.softplus(fake))            # = E log(1 − σ(fake))
    if loss == "nonsat":
        return tf.reduce_mean(tf.nn.softplus(-fake))            # = −E log σ(fake)
    if loss == "lsgan":
        return 0.5 * tf.reduce_mean((fake - 1.0) ** 2)
    return -tf.reduce_mean(fake)


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

        @tf.function
        def run(x, y, idx, zd, alpha, zg, cg):
            """len(idx) generator steps in one graph (no Python between steps)."""
            out = tf.TensorArray(tf.float32, size=tf.shape(idx)[0])
            for i in tf.range(tf.shape(idx)[0]):
                value = tf.constant(0.0)
                for j in range(n_critic):
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
        if len(d_losses) % every == 0:
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
                              joint_steps: int = 4000, learning_rate: float = 1e-3) -> Result:
    """(a) D trained against a fixed p_G vs D* = p_data/(p_data + p_G); (b) G and D trained together:
    how far D is from ½ where the data are."""
    rng = np.random.default_rng(seed)
    metrics: dict = {}
    grid = np.linspace(-5, 5, 1001)[:, None].astype("float32")
    fig, axes = plots.figure(8, 5.5)
    axes.remove()
    axes = fig.subplots(2, 2)
    fixed_err, joint_dev = [], []
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
        _train(gan, xs, steps=joint_steps, batch_size=batch_size, latent=1, rng=rng,
               every=joint_steps // 4, label=f"joint {name}")
        g_samples = gan.sample(rng.standard_normal((20000, 1)).astype("float32"))
        probe = _draw(p_data, 20000, rng)
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
        ax.set(title=f"{name}: G and D trained, mean |D−½| {dev:.3f}", ylim=(0, 1.02))
        ax.legend(fontsize=6)
        progress.step(k + 1, len(DENSITIES), name)
    metrics["fixed_mean_abs_error"] = float(np.mean(fixed_err))
    metrics["joint_mean_abs_d_minus_half"] = float(np.mean(joint_dev))
    return Result(metrics=metrics, artifacts={"d_vs_dstar.png": plots.png(fig)},
                  notes=f"1-D densities {', '.join(DENSITIES)}; D MLP 1-{'-'.join(map(str, hidden))}-1, "
                        f"{steps} Adam steps against fixed p_G (errors weighted by (p_data+p_G)/2); "
                        f"joint training {joint_steps} steps, non-saturating G")


# ----------------------------------------------------------------------------- mixtures

def mixture_modes(kind: str) -> tuple[np.ndarray, float]:
    """(modes, σ): ring of 8 at radius 2, σ 0.02; 5x5 grid at −4..4 step 2, σ 0.05 (VEEGAN/PacGAN)."""
    if kind == "ring8":
        a = 2 * np.pi * np.arange(8) / 8
        return np.stack([2 * np.cos(a), 2 * np.sin(a)], 1), 0.02
    g = np.arange(-4, 5, 2, dtype=float)
    return np.stack(np.meshgrid(g, g), -1).reshape(-1, 2), 0.05


def mixture_sample(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    modes, sd = mixture_modes(kind)
    return (modes[rng.integers(0, len(modes), n)] + sd * rng.standard_normal((n, 2))).astype("float32")


def mode_metrics(samples: np.ndarray, kind: str) -> tuple[int, float]:
    """(modes captured, share of high-quality samples): high quality = within 3σ of the nearest mode;
    a mode is captured when at least one high-quality sample is nearest to it."""
    modes, sd = mixture_modes(kind)
    dist = np.linalg.norm(samples[:, None, :] - modes[None], axis=-1)
    nearest, dmin = dist.argmin(1), dist.min(1)
    hq = dmin <= 3 * sd
    return int(len(np.unique(nearest[hq]))), float(hq.mean())


def sliced_w1(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, directions: int = 50) -> float:
    theta = rng.standard_normal((2, directions))
    theta /= np.linalg.norm(theta, axis=0)
    return float(np.mean(np.abs(np.sort(a @ theta, 0) - np.sort(b @ theta, 0))))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    if np.std(ra) == 0 or np.std(rb) == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


@experiment("gan_mixtures")
def gan_mixtures(*, seed: int, losses: list[str] = LOSSES, mixtures: list[str] = ("ring8", "grid25"),
                 steps: int = 6000, batch_size: int = 256, latent: int = 2, hidden: list[int] = (128, 128, 128),
                 learning_rate: float = 1e-3, final_learning_rate: float | None = 1e-4, gp_weight: float = 0.1,
                 samples: int = 2500, checks: int = 15) -> Result:
    """Every loss on each 2-D mixture: modes captured, high-quality share, D loss vs sample quality.
    Adam starts at `learning_rate` and decays exponentially to `final_learning_rate` (None: constant).
    WGAN-GP's penalty weight is 0.1, its authors' setting for these 2-D toys (10 is theirs for images).
    One run per seed serves GAN-COLLAPSE, GAN-LSGAN and GAN-WGAN (the suite's `mixtures` run)."""
    metrics: dict = {}
    artifacts: dict = {}
    for mix in mixtures:
        fig, axes = plots.figure(3.0 * len(losses), 3.2)
        axes.remove()
        axes = fig.subplots(1, len(losses), squeeze=False)[0]
        modes, _ = mixture_modes(mix)
        for j, loss in enumerate(losses):
            rng = np.random.default_rng([seed, j])
            keras.utils.set_random_seed(seed)
            gan = GAN(mlp_generator(latent, outputs=2, hidden=tuple(hidden), activation="linear"),
                      mlp_discriminator(inputs=2, hidden=tuple(hidden)), loss, learning_rate=learning_rate,
                      final_learning_rate=final_learning_rate, steps=steps, gp_weight=gp_weight)
            x = mixture_sample(mix, 100000, rng)
            probe_rng = np.random.default_rng([seed, j, 1])
            z_probe = probe_rng.standard_normal((samples, latent)).astype("float32")
            real_probe = mixture_sample(mix, samples, probe_rng)
            quality = []

            def check(_step):
                quality.append(sliced_w1(gan.sample(z_probe), real_probe, np.random.default_rng(0)))

            t0 = time.perf_counter()
            d_losses = _train(gan, x, steps=steps, batch_size=batch_size, latent=latent, rng=rng,
                              every=max(1, steps // checks), on_check=check, label=f"{mix} {loss}")
            seconds = time.perf_counter() - t0
            out = gan.sample(z_probe)
            n_modes, hq = mode_metrics(out, mix)
            # The discriminator's distance estimate (−D loss, averaged over each check window) against
            # the sample distance to the data: does the loss curve track sample quality?
            window = max(1, steps // checks)
            est = -np.array([np.mean(d_losses[i * window:(i + 1) * window]) for i in range(len(quality))])
            metrics |= {f"{loss}_modes_{mix}": n_modes, f"{loss}_hq_share_{mix}": hq,
                        f"{loss}_sliced_w1_{mix}": quality[-1],
                        f"{loss}_loss_quality_corr_{mix}": _spearman(est, np.array(quality)),
                        f"{loss}_seconds_{mix}": seconds}
            ax = axes[j]
            ax.scatter(out[:, 0], out[:, 1], s=1, alpha=0.4)
            ax.scatter(modes[:, 0], modes[:, 1], s=25, c="red", marker="x")
            lim = 3 if mix == "ring8" else 5.5
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal",
                   title=f"{loss}: {n_modes}/{len(modes)} modes, hq {hq:.2f}")
            ax.title.set_fontsize(8)
        fig.suptitle(f"{mix}, {steps} G steps, seed {seed}", fontsize=9)
        artifacts[f"samples_{mix}.png"] = plots.png(fig)
    for loss in losses:
        metrics[f"{loss}_loss_quality_corr"] = float(np.mean([metrics[f"{loss}_loss_quality_corr_{m}"]
                                                              for m in mixtures]))
        # Did this GAN train at all? Its worst high-quality share over the mixtures (a precondition).
        metrics[f"{loss}_hq_share_min"] = float(min(metrics[f"{loss}_hq_share_{m}"] for m in mixtures))
    return Result(metrics=metrics, artifacts=artifacts,
                  notes=f"G {latent}-{'-'.join(map(str, hidden))}-2, D 2-{'-'.join(map(str, hidden))}-1, "
                        f"{steps} G steps of batch {batch_size}, Adam {learning_rate:g}"
                        f"{f' decaying to {final_learning_rate:g}' if final_learning_rate else ''}; "
                        f"{samples} samples scored")


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
               steps: int = 3000, batch_size: int = 64, per_label: int = 200, scorer_train_size: int = 20000,
               scorer_epochs: int = 2, reference_size: int = 5000, scorer_dir: str | None = None) -> Result:
    """Conditional GANs, non-saturating loss, the same data, optimiser, batch and steps. The one-hot label
    is appended to G's noise and enters D with the image: `dcgan` as ten constant channels beside the
    image (convolutional G and D as in dcgan_vs_mlp); `mlp` appended to the flat image (Mirza &
    Osindero's design). A real-MNIST classifier reads the digits generated for each requested label."""
    unknown = set(archs) - set(CGAN_ARCHS)
    if unknown:
        raise ValueError(f"archs must be among {CGAN_ARCHS}, got {sorted(unknown)}")
    sc = scorer(seed=seed, train_size=scorer_train_size, epochs=scorer_epochs, reference_size=reference_size,
                path=scorer_dir)
    x, y = _mnist_tanh(train_size, seed)
    want = np.repeat(np.arange(10), per_label)
    metrics: dict = {"chance_accuracy": 0.1, "scorer_test_accuracy": sc.test_accuracy}
    artifacts, notes = {}, []
    for arch in archs:
        keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        G, D = _mnist_pair(arch, latent=latent, width=width, g_hidden=g_hidden, d_hidden=d_hidden, conditions=10)
        gan = GAN(G, D, "nonsat", classes=10)
        t0 = time.perf_counter()
        _train(gan, x, steps=steps, batch_size=batch_size, latent=latent, rng=rng, labels=y,
               every=max(1, steps // 10), label=f"{arch} CGAN")
        seconds = time.perf_counter() - t0
        out = _to01(gan.sample(rng.standard_normal((len(want), latent)).astype("float32"),
                               np.eye(10, dtype="float32")[want]))
        pred = sc.probabilities(out).argmax(1)
        per = [float(np.mean(pred[want == d] == d)) for d in range(10)]
        metrics |= {f"{arch}_label_accuracy": float(np.mean(pred == want)), f"{arch}_min_label_accuracy": min(per),
                    f"{arch}_label_accuracy_by_digit": [round(a, 4) for a in per],
                    f"{arch}_train_seconds": seconds, f"{arch}_g_params": int(G.count_params()),
                    f"{arch}_d_params": int(D.count_params())}
        metrics |= sc.score(out, arch)
        grid = np.concatenate([out[want == d][:10] for d in range(10)])
        artifacts[f"{arch}_cgan_samples.png"] = _sample_grid(
            grid, 10, f"{arch} CGAN: row d = requested digit d, seed {seed}")
        notes.append(f"{arch}: G {metrics[f'{arch}_g_params']}, D {metrics[f'{arch}_d_params']} parameters")
    return Result(metrics=metrics, artifacts=artifacts,
                  notes=f"{len(x)} MNIST images; {'; '.join(notes)}; {steps} steps of batch {batch_size}, "
                        f"Adam(2e-4, β1 0.5); {per_label} samples per label")


@experiment("dcgan_vs_mlp", datasets=("mnist",))
def dcgan_vs_mlp(*, seed: int, latent: int = 64, width: int = 64, g_hidden: list[int] = (256, 512),
                 d_hidden: list[int] = (512, 256), train_size: int = 20000, steps: int = 3000, batch_size: int = 64,
                 samples: int = 2000, scorer_train_size: int = 20000, scorer_epochs: int = 2,
                 reference_size: int = 5000, scorer_dir: str | None = None) -> Result:
    """DCGAN and an MLP GAN, same data, loss (non-saturating), optimiser, batch and number of steps;
    both judged by the Fréchet distance on the real-MNIST classifier's features."""
    sc = scorer(seed=seed, train_size=scorer_train_size, epochs=scorer_epochs, reference_size=reference_size,
                path=scorer_dir)
    x, _ = _mnist_tanh(train_size, seed)
    metrics: dict = {"scorer_test_accuracy": sc.test_accuracy}
    artifacts: dict = {}
    z_eval = np.random.default_rng([seed, 99]).standard_normal((samples, latent)).astype("float32")
    for name in ("dcgan", "mlp"):
        keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        gan = GAN(*_mnist_pair(name, latent=latent, width=width, g_hidden=g_hidden, d_hidden=d_hidden), "nonsat")
        t0 = time.perf_counter()
        _train(gan, x, steps=steps, batch_size=batch_size, latent=latent, rng=rng,
               every=max(1, steps // 10), label=name)
        metrics[f"{name}_train_seconds"] = time.perf_counter() - t0
        out = _to01(gan.sample(z_eval))
        metrics |= sc.score(out, name)
        metrics |= {f"{name}_g_params": int(gan.G.count_params()), f"{name}_d_params": int(gan.D.count_params())}
        artifacts[f"{name}_samples.png"] = _sample_grid(out[:100], 10, f"{name}, {steps} steps, seed {seed}")
    real = (x[np.random.default_rng(seed).choice(len(x), samples, replace=False)] + 1) / 2
    metrics |= sc.score(real, "real")
    return Result(metrics=metrics, artifacts=artifacts,
                  notes=f"{len(x)} MNIST images, {steps} steps of batch {batch_size}, Adam(2e-4, β1 0.5); "
                        f"FID of {samples} samples against {reference_size} real test images on the scoring "
                        f"CNN's features")


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
