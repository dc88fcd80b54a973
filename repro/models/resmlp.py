"""He et al.'s plain/residual pair as MLPs, written in plain TensorFlow with the blocks' weights stacked.

Why not Keras: a 56-layer Keras MLP takes about a minute to trace on 2 CPU cores and ~50 ms a step
(op dispatch, not arithmetic), and every depth needs its own trace. Here the hidden blocks run as a
`tf.scan` over stacked weights, so one traced graph per (plain|residual, with|without batch norm)
serves every depth and every learning rate; with the step compiled by XLA a step of the 56-layer
net (batch 128, width 32) costs about 9 ms of CPU.

The network ("depth" counts the weight layers, as in He et al. 2016):
  x^1 = relu(N(x W_in + b_in))                          the input layer
  block i: a = relu(N(x^i W_i1 + b_i1)),  F = N(a W_i2 + b_i2)
           x^(i+1) = relu(x^i + F)  (residual)  or  relu(F)  (plain)      (depth - 2) / 2 blocks
  logits = x^L W_out + b_out                            the output layer
N is batch normalisation (batch statistics, ε = 1e-3, learned γ, β) or the identity without it.
Initialisation: He normal for the ReLU layers, Glorot uniform for the output, zero biases (Keras'
defaults for `repro.models.mlp.plain_or_residual`, which this mirrors). Evaluation uses batch norm
with the statistics of the whole set evaluated (for the training set: its population statistics).

Parameters are a dict of tensors; functions here are pure (parameters in, new parameters out).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

EPS = 1e-3
KEYS = ("w_in", "b_in", "g_in", "be_in", "w_blk", "b_blk", "g_blk", "be_blk", "w_out", "b_out")


def blocks(depth: int) -> int:
    if depth < 4 or (depth - 2) % 2:
        raise ValueError(f"depth must be even and at least 4 (two layers per block), got {depth}")
    return (depth - 2) // 2


def init(depth: int, width: int, rng: np.random.Generator, *, inputs: int = 784, classes: int = 10
         ) -> dict[str, np.ndarray]:
    """Initial parameters (float32 numpy arrays) of a `depth`-layer net; same shapes plain or residual."""
    nb = blocks(depth)
    f32 = np.float32

    def he(*shape: int) -> np.ndarray:          # He normal: std sqrt(2 / fan_in) (Keras truncates; we don't)
        return (rng.standard_normal(shape) * np.sqrt(2.0 / shape[-2])).astype(f32)

    lim = np.sqrt(6.0 / (width + classes))
    return {"w_in": he(inputs, width), "b_in": np.zeros(width, f32),
            "g_in": np.ones(width, f32), "be_in": np.zeros(width, f32),
            "w_blk": he(nb, 2, width, width), "b_blk": np.zeros((nb, 2, width), f32),
            "g_blk": np.ones((nb, 2, width), f32), "be_blk": np.zeros((nb, 2, width), f32),
            "w_out": rng.uniform(-lim, lim, (width, classes)).astype(f32), "b_out": np.zeros(classes, f32)}


def _norm(z: tf.Tensor, g: tf.Tensor, be: tf.Tensor, bn: bool) -> tf.Tensor:
    if not bn:
        return z
    m, v = tf.nn.moments(z, [0])
    return (z - m) * tf.math.rsqrt(v + EPS) * g + be


def forward(p: dict, x: tf.Tensor, *, residual: bool, bn: bool, probe: tf.Tensor | None = None):
    """Logits, and the block inputs x^1..x^L stacked ([blocks + 1, batch, width]).

    ``probe`` (zeros of that stacked shape) is added to each x^l, so that the gradient with respect to
    it is ∂E/∂x^l, the quantity of the chapter's formula."""
    nb = tf.shape(p["w_blk"])[0]
    if probe is None:
        probe = tf.zeros(tf.stack([nb + 1, tf.shape(x)[0], tf.shape(p["w_in"])[1]]))
    h = tf.nn.relu(_norm(x @ p["w_in"] + p["b_in"], p["g_in"], p["be_in"], bn)) + probe[0]

    def block(h, el):
        w, b, g, be, eps = el
        a = tf.nn.relu(_norm(h @ w[0] + b[0], g[0], be[0], bn))
        f = _norm(a @ w[1] + b[1], g[1], be[1], bn)
        return tf.nn.relu(h + f if residual else f) + eps

    hs = tf.scan(block, (p["w_blk"], p["b_blk"], p["g_blk"], p["be_blk"], probe[1:]), initializer=h)
    last = hs[-1]
    return last @ p["w_out"] + p["b_out"], tf.concat([h[None], hs], 0)


def _loss(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))


def _spec(width: int | None = None) -> dict:
    s = lambda *shape: tf.TensorSpec(shape, tf.float32)  # noqa: E731
    return {"w_in": s(None, None), "b_in": s(None), "g_in": s(None), "be_in": s(None),
            "w_blk": s(None, 2, None, None), "b_blk": s(None, 2, None), "g_blk": s(None, 2, None),
            "be_blk": s(None, 2, None), "w_out": s(None, None), "b_out": s(None)}


class Net:
    """The traced functions of one (plain|residual, bn|no bn) variant, for any depth and width.

    ``jit``: the training step is compiled with XLA (about half the CPU time of a step at depth 56,
    ~3 s to compile per depth); evaluation and gradient probes run as ordinary graphs."""

    def __init__(self, *, residual: bool, bn: bool, momentum: float = 0.9, jit: bool = True):
        self.residual, self.bn = residual, bn
        spec, x, y = _spec(), tf.TensorSpec((None, None), tf.float32), tf.TensorSpec((None,), tf.int32)
        lr = tf.TensorSpec((), tf.float32)
        kw = {"residual": residual, "bn": bn}

        @tf.function(input_signature=[spec, spec, x, y, lr], jit_compile=jit)
        def step(p, v, xb, yb, rate):
            """One SGD step with momentum (v ← μv + g, θ ← θ − ηv, He et al.'s optimizer)."""
            with tf.GradientTape() as tape:
                tape.watch(p)
                loss = _loss(forward(p, xb, **kw)[0], yb)
            g = tape.gradient(loss, p)
            v = {k: momentum * v[k] + g[k] for k in KEYS}
            return {k: p[k] - rate * v[k] for k in KEYS}, v, loss

        @tf.function(input_signature=[spec, x, y])
        def evaluate(p, xs, ys):
            logits = forward(p, xs, **kw)[0]
            wrong = tf.reduce_mean(tf.cast(tf.argmax(logits, 1, output_type=tf.int32) != ys, tf.float32))
            return _loss(logits, ys), wrong

        @tf.function(input_signature=[spec, x, y])
        def gradients(p, xs, ys):
            """||∂E/∂W|| of every weight layer in order, and ||∂E/∂x^l|| of every block input x^l."""
            nb = tf.shape(p["w_blk"])[0]
            probe = tf.zeros(tf.stack([nb + 1, tf.shape(xs)[0], tf.shape(p["w_in"])[1]]))
            with tf.GradientTape() as tape:
                tape.watch([p, probe])
                loss = _loss(forward(p, xs, probe=probe, **kw)[0], ys)
            g, gx = tape.gradient(loss, [p, probe])
            w = tf.concat([tf.norm(g["w_in"])[None], tf.reshape(tf.norm(g["w_blk"], axis=[2, 3]), [-1]),
                           tf.norm(g["w_out"])[None]], 0)
            return w, tf.norm(tf.reshape(gx, [nb + 1, -1]), axis=1)

        self.step, self.evaluate, self.gradients = step, evaluate, gradients


def to_tensors(p: dict) -> dict:
    return {k: tf.constant(p[k]) for k in KEYS}


def schedule(total_steps: int, base: float, warmup: float = 0.1) -> np.ndarray:
    """The learning rate of each step: a linear warm-up over the first ``warmup`` share of the
    steps (Goyal et al. 2017), then ``base``, divided by 10 at 50% and again at 75% of the steps
    (He et al. 2016's CIFAR schedule: 32k and 48k of 64k iterations)."""
    t = np.arange(total_steps)
    n_warm = max(1, int(round(warmup * total_steps)))
    lr = np.full(total_steps, base, dtype=np.float64)
    lr[:n_warm] = base * (t[:n_warm] + 1) / n_warm
    lr[t >= 0.5 * total_steps] /= 10
    lr[t >= 0.75 * total_steps] /= 10
    return lr.astype(np.float32)
