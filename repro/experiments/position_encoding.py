"""7.7 Position encodings (TRF-POSENC): reversing a sequence of digits with a small encoder (the
answer at position i is the token at position n-1-i, so it needs to know where each token is), with
no position encoding, sinusoidal, learned absolute and rotary (RoPE) encodings.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from repro import plots, progress
from repro.kerasutil import fresh
from repro.models.transformer import sinusoidal_encoding
from repro.registry import Result, experiment


# ------------------------------------------------------------------------------------ TRF-POSENC

def _rotate(x: tf.Tensor) -> tf.Tensor:
    """RoPE (Su et al. 2021) on (B, T, H, dh): rotate pairs (x_2i, x_2i+1) by angle p·θ_i."""
    t, dh = tf.shape(x)[1], x.shape[-1]
    theta = 1.0 / (10000.0 ** (np.arange(0, dh, 2) / dh))
    ang = tf.cast(tf.range(t), tf.float32)[:, None] * tf.constant(theta, tf.float32)[None]   # (T, dh/2)
    cos, sin = tf.cos(ang)[None, :, None], tf.sin(ang)[None, :, None]
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return tf.reshape(tf.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1), tf.shape(x))


class SelfAttention(keras.layers.Layer):
    """Multi-head self-attention written out, so that RoPE can rotate queries and keys."""

    def __init__(self, d_model: int, heads: int, rotary: bool, **kw):
        super().__init__(**kw)
        self.h, self.dh, self.rotary = heads, d_model // heads, rotary
        self.q, self.k, self.v, self.o = (keras.layers.Dense(d_model) for _ in range(4))

    def call(self, x):
        b, t = tf.shape(x)[0], tf.shape(x)[1]
        split = lambda y: tf.reshape(y, (b, t, self.h, self.dh))
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        if self.rotary:
            q, k = _rotate(q), _rotate(k)
        w = tf.nn.softmax(tf.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.dh), axis=-1)
        return self.o(tf.reshape(tf.einsum("bhqk,bkhd->bqhd", w, v), (b, t, self.h * self.dh)))


class PositionalEncoder(keras.Model):
    def __init__(self, encoding: str, vocab: int, length: int, d_model: int, heads: int, layers: int, **kw):
        super().__init__(**kw)
        self.encoding = encoding
        self.embed = keras.layers.Embedding(vocab, d_model)
        self.pos = keras.layers.Embedding(length, d_model) if encoding == "learned" else None
        self.pe = tf.constant(sinusoidal_encoding(length, d_model))
        self.att = [SelfAttention(d_model, heads, encoding == "rotary") for _ in range(layers)]
        self.ff = [keras.Sequential([keras.layers.Dense(2 * d_model, activation="relu"),
                                     keras.layers.Dense(d_model)]) for _ in range(layers)]
        self.norms = [keras.layers.LayerNormalization() for _ in range(2 * layers)]
        self.out = keras.layers.Dense(vocab)

    def call(self, ids):
        x = self.embed(ids)
        t = tf.shape(ids)[1]
        if self.encoding == "sinusoidal":
            x = x + self.pe[None, :t]
        elif self.encoding == "learned":
            x = x + self.pos(tf.range(t))[None]
        for i, (att, ff) in enumerate(zip(self.att, self.ff)):
            x = self.norms[2 * i](x + att(x))
            x = self.norms[2 * i + 1](x + ff(x))
        return self.out(x)


def reversal_task(n: int, length: int, symbols: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(0, symbols, size=(n, length)).astype("int32")
    return x, x[:, ::-1].copy()


def invariant_bound(x: np.ndarray) -> float:
    """Accuracy of the best predictor that sees the token at position i and the multiset of the
    sequence but not positions: P(y_i = v) ∝ count(v) - [v = x_i] (for i ≠ n-1-i)."""
    n = x.shape[1]
    counts = np.stack([(x == v).sum(1) for v in range(x.max() + 1)], 1)     # (N, V)
    best = []
    for i in range(n):
        c = counts - (np.arange(counts.shape[1])[None] == x[:, i:i + 1])
        best.append(c.max(1) / (n - 1) if 2 * i + 1 != n else np.ones(len(x)))
    return float(np.mean(best))


@experiment("position_encodings")
def position_encodings(*, seed: int, encodings: tuple[str, ...] = ("none", "sinusoidal", "learned", "rotary"),
                       length: int = 12, symbols: int = 10, train_size: int = 8000, test_size: int = 2000,
                       d_model: int = 64, heads: int = 4, layers: int = 2, epochs: int = 6,
                       batch_size: int = 100, learning_rate: float = 2e-3) -> Result:
    """Token and whole-sequence accuracy of reversing a digit sequence, per position encoding."""
    rng = np.random.default_rng(seed)
    xtr, ytr = reversal_task(train_size, length, symbols, rng)
    xte, yte = reversal_task(test_size, length, symbols, rng)
    metrics: dict = {"invariant_bound_accuracy": invariant_bound(xte), "chance_accuracy": 1.0 / symbols}
    for enc in encodings:
        fresh(seed)
        model = PositionalEncoder(enc, symbols, length, d_model, heads, layers)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(xtr, ytr, epochs=epochs, batch_size=batch_size, verbose=0,
                  callbacks=[progress.epochs(epochs, enc)])
        pred = np.argmax(np.asarray(model(xte, training=False)), -1)   # eager: no predict trace
        metrics[f"{enc}_token_accuracy"] = float(np.mean(pred == yte))
        metrics[f"{enc}_sequence_accuracy"] = float(np.mean(np.all(pred == yte, axis=1)))

    fig, ax = plots.figure(5.0, 3.2)
    ax.bar(list(encodings), [metrics[f"{e}_token_accuracy"] for e in encodings])
    ax.axhline(metrics["invariant_bound_accuracy"], color="grey", ls="--", label="best without positions")
    ax.set(ylabel="token accuracy", ylim=(0, 1), title=f"reverse {length} digits, seed {seed}")
    ax.legend()
    return Result(metrics=metrics, artifacts={"accuracy.png": plots.png(fig)},
                  notes=f"{layers} layers, d={d_model}, {heads} heads; {train_size} training sequences, "
                        f"{epochs} epochs, Adam {learning_rate:g}, batch {batch_size}")
