"""The GAN training loop every GAN claim uses (7.6): losses, optimisers, and a compiled loop of steps.

Losses (D returns a logit, or a critic value for WGAN-GP):
  minimax   D: −log D(x) − log(1 − D(G(z)));  G: minimise log(1 − D(G(z)))   (the chapter's V(G, D))
  nonsat    D: as above;                       G: maximise log D(G(z))         (the chapter's G step)
  lsgan     D: ½(D(x) − 1)² + ½D(G(z))²;       G: ½(D(G(z)) − 1)²              (Mao et al. 2017, a-b-c = 0-1-1)
  wgan_gp   D: D(G(z)) − D(x) + λ(‖∇D(x̂)‖ − 1)²; G: −D(G(z)), 5 critic steps per G step (Gulrajani et al. 2017;
            λ = 10 for images, 0.1 for the 2-D mixtures, the values of its authors' code)
Optimisers: Adam(2e-4, β1 = 0.5) (DCGAN's setting, also LSGAN's) for the first three, Adam(1e-4, β = (0.5, 0.9))
for WGAN-GP (its paper's), unless a caller gives its own rate, betas or a decay.

Speed: the steps of a chunk run in one XLA-compiled graph (`jit_compile`, on by default). Noise (z, and the
penalty's interpolation weights) is drawn inside the graph from stateless Philox streams keyed by a seed the
caller's numpy generator draws per chunk, so a run is fixed by its seed and no Python or numpy work sits
between steps. Measured on the 2 shared CPU cores of the development machine, same process, A/B (the
numbers are in suites/generative.yaml): XLA takes 25-35% off the CPU time of a G step.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from repro import progress

LOSSES = ("minimax", "nonsat", "lsgan", "wgan_gp")


class HoldThenDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`rate` for the first `hold` updates, then exponential decay to `final` at update `updates`."""

    def __init__(self, rate: float, final: float, updates: int, hold: int = 0):
        self.rate, self.final, self.updates, self.hold = float(rate), float(final), int(updates), int(hold)

    def __call__(self, step):
        t = tf.clip_by_value((tf.cast(step, tf.float32) - self.hold) / max(1, self.updates - self.hold), 0.0, 1.0)
        return self.rate * (self.final / self.rate) ** t

    def get_config(self) -> dict:
        return {"rate": self.rate, "final": self.final, "updates": self.updates, "hold": self.hold}


def optimizer(loss: str, learning_rate: float | None = None, decay: tuple[float, int, int] | None = None,
              betas: tuple[float, float] | None = None) -> keras.optimizers.Optimizer:
    """Adam as in each loss's paper; `decay` = (final rate, updates, hold): the rate is held for `hold`
    updates, then decays exponentially to the final rate at `updates`."""
    lr = learning_rate or (1e-4 if loss == "wgan_gp" else 2e-4)
    if decay is not None:
        final, updates, hold = decay
        lr = HoldThenDecay(lr, final, updates, hold)
    b1, b2 = betas or ((0.5, 0.9) if loss == "wgan_gp" else (0.5, 0.999))
    return keras.optimizers.Adam(lr, beta_1=b1, beta_2=b2)


def d_loss(loss: str, real, fake):
    if loss in ("minimax", "nonsat"):
        return tf.reduce_mean(tf.nn.softplus(-real) + tf.nn.softplus(fake))
    if loss == "lsgan":
        return 0.5 * tf.reduce_mean((real - 1.0) ** 2 + fake ** 2)
    return tf.reduce_mean(fake) - tf.reduce_mean(real)


def g_loss_per_sample(loss: str, fake):
    """The generator's loss of each fake sample (D's logit or critic value `fake`)."""
    if loss == "minimax":
        return -tf.nn.softplus(fake)                            # = log(1 − σ(fake))
    if loss == "nonsat":
        return tf.nn.softplus(-fake)                            # = −log σ(fake)
    if loss == "lsgan":
        return 0.5 * (fake - 1.0) ** 2
    return -fake


def g_loss(loss: str, fake):
    return tf.reduce_mean(g_loss_per_sample(loss, fake))


class GAN:
    """G, D and a compiled loop of training steps; `classes` > 0 concatenates a one-hot label to both
    inputs (CGAN). Each generator step follows `n_critic` discriminator steps (5 for WGAN-GP, else 1).
    `final_learning_rate`: the rate decays exponentially to it over `steps` G steps, after being held for
    the first `hold` share of them. `betas` overrides Adam's (β1, β2); `jit_compile` compiles the loop with XLA. `ema` (e.g. 0.999) keeps
    an exponential moving average of G's weights after every G step (`G_ema`; Yazıcı et al. 2019, "The
    unusual effectiveness of averaging in GAN training"), which `sample(averaged=True)` draws from."""

    def __init__(self, G: keras.Model, D: keras.Model, loss: str, *, classes: int = 0, gp_weight: float = 10.0,
                 learning_rate: float | None = None, final_learning_rate: float | None = None, steps: int = 0,
                 hold: float = 0.0,
                 betas: tuple[float, float] | None = None, n_critic: int | None = None, jit_compile: bool = True,
                 ema: float | None = None):
        self.G, self.D, self.loss, self.classes = G, D, loss, classes
        self.G_ema = None
        if ema:
            self.G_ema = keras.models.clone_model(G)
            self.G_ema.set_weights(G.get_weights())
        G_ema = self.G_ema
        self.latent = int(G.input_shape[-1]) - classes
        self.n_critic = n_critic = n_critic or (5 if loss == "wgan_gp" else 1)
        decays = [(final_learning_rate, steps * k, int(hold * steps * k)) for k in (1, n_critic)] \
            if final_learning_rate else [None, None]
        self.g_opt, self.d_opt = (optimizer(loss, learning_rate, d, betas) for d in decays)
        self.g_opt.build(G.trainable_variables)
        self.d_opt.build(D.trainable_variables)
        gp = loss == "wgan_gp"
        latent = self.latent

        def cond(labels):
            return tf.one_hot(labels, classes) if classes else tf.zeros((tf.shape(labels)[0], 0))

        def noise(seed, counter, shape):
            return tf.random.stateless_normal(shape, seed + tf.stack([tf.zeros_like(counter), counter]))

        def d_step(x, c, seed, counter):
            n = tf.shape(x)[0]
            z = noise(seed, 3 * counter, tf.stack([n, latent]))
            with tf.GradientTape() as tape:
                fake = G(tf.concat([z, c], 1), training=True)
                d_real = D(tf.concat([x, c], 1), training=True)
                d_fake = D(tf.concat([fake, c], 1), training=True)
                value = d_loss(loss, d_real, d_fake)
                total = value
                if gp:
                    alpha = tf.random.stateless_uniform(
                        tf.stack([n, 1]), seed + tf.stack([tf.zeros_like(counter), 3 * counter + 1]))
                    xh = alpha * x + (1 - alpha) * fake
                    with tf.GradientTape() as inner:
                        inner.watch(xh)
                        dh = D(tf.concat([xh, c], 1), training=True)
                    g = inner.gradient(dh, xh)
                    total = value + gp_weight * tf.reduce_mean((tf.norm(g, axis=1) - 1.0) ** 2)
            self.d_opt.apply_gradients(zip(tape.gradient(total, D.trainable_variables), D.trainable_variables))
            return value

        def g_step(c, seed, counter):
            z = noise(seed, 3 * counter + 2, tf.stack([tf.shape(c)[0], latent]))
            with tf.GradientTape() as tape:
                fake = G(tf.concat([z, c], 1), training=True)
                value = g_loss(loss, D(tf.concat([fake, c], 1), training=True))
            self.g_opt.apply_gradients(zip(tape.gradient(value, G.trainable_variables), G.trainable_variables))
            if G_ema is not None:
                for a, w in zip(G_ema.weights, G.weights):
                    a.assign(ema * a + (1.0 - ema) * w)
            return value

        @tf.function(reduce_retracing=True, jit_compile=jit_compile)
        def run(x, y, idx, cg, seed):
            """len(idx) generator steps in one graph (no Python between steps; the critic steps are a
            graph loop too, so WGAN-GP's graph holds one penalised critic step, not five). `seed`: the
            chunk's Philox key; step i's noise streams are counters under it."""
            out = tf.TensorArray(tf.float32, size=tf.shape(idx)[0])
            for i in tf.range(tf.shape(idx)[0], dtype=tf.int64):
                value = tf.constant(0.0)
                for j in tf.range(n_critic, dtype=tf.int64):
                    rows = idx[i, j]
                    value = d_step(tf.gather(x, rows), cond(tf.gather(y, rows)), seed, i * n_critic + j)
                g_step(cond(cg[i]), seed, i * n_critic)
                out = out.write(tf.cast(i, tf.int32), value)
            return out.stack()

        self.run = run

    def sample(self, z: np.ndarray, c: np.ndarray | None = None, *, averaged: bool = False) -> np.ndarray:
        """G's samples for noise `z` (and one-hot labels `c`); `averaged`: from the weight average G_ema."""
        G = self.G_ema if averaged else self.G
        if G is None:
            raise ValueError("this GAN keeps no weight average (ema=None)")
        c = np.zeros((len(z), 0), "float32") if c is None else c
        zc = np.concatenate([z, c], 1).astype("float32")
        # direct calls: predict() would trace a new function for every model
        return np.concatenate([G(zc[i:i + 1000], training=False).numpy() for i in range(0, len(zc), 1000)])


def train(gan: GAN, x: np.ndarray, *, steps: int, batch_size: int, rng: np.random.Generator,
          labels: np.ndarray | None = None, every: int = 0, on_check=None, label: str = "",
          chunk: int = 100) -> list[float]:
    """`steps` generator updates; returns the D loss of each. Batches (indices, labels asked of G) and each
    chunk's noise key are drawn here from `rng`; `on_check(step)` runs every `every` steps."""
    x_t = tf.constant(x)
    y_t = tf.constant(labels if labels is not None else np.zeros(len(x), "int64"))
    every = every or steps
    nc, d_losses = gan.n_critic, []
    while len(d_losses) < steps:
        k = min(chunk, steps - len(d_losses), every - len(d_losses) % every)
        idx = rng.integers(0, len(x), (k, nc, batch_size))
        cg = rng.integers(0, max(gan.classes, 1), (k, batch_size))
        seed = rng.integers(0, 2 ** 62, 2, dtype=np.int64)
        d_losses += [float(v) for v in gan.run(x_t, y_t, idx, cg, seed).numpy()]
        if len(d_losses) % every == 0 or len(d_losses) == steps:
            if on_check is not None:
                on_check(len(d_losses))
            progress.step(len(d_losses), steps, f"{label} step {len(d_losses)}: D loss {d_losses[-1]:.3f}")
    return d_losses
