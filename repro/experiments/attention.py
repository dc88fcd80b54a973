"""7.7 Attention: scaled dot products (ATT-SCALE), heads of a trained translator (ATT-MULTIHEAD),
position encodings on an order-sensitive task (TRF-POSENC).

ATT-SCALE: queries and keys with independent N(0, 1) entries; for growing d_k the variance of q·k,
how peaked softmax(q·k) is (largest weight, entropy) and the norm of the gradient that flows back
through the softmax into q, with and without the 1/√d_k of scaled dot-product attention; and
whether anything overflows in float16, both for TensorFlow's softmax (which subtracts the row
maximum) and for a textbook exp(s) / Σ exp(s).

ATT-MULTIHEAD: the Transformer that TRF-TRANSLATE judges (the `translation_transformer` run of the same
seed and parameters, loaded from its saved weights), run over held-out sentences with its own greedy
translations as decoder input: each head's attention entropy and mean attended distance, the
Jensen–Shannon divergence between the heads of a layer (against the same measure on the untrained
model), and the BLEU lost when one head's output is zeroed.

TRF-POSENC: reversing a sequence of digits with a small encoder (the answer at position i is the
token at position n-1-i, so it needs to know where each token is), with no position encoding,
sinusoidal, learned absolute and rotary (RoPE) encodings.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from repro import plots, progress
from repro.experiments.translation import build, scores, translate, trained_transformer
from repro.kerasutil import fresh
from repro.models.transformer import PAD, SOS, greedy_decode, sinusoidal_encoding
from repro.registry import Result, experiment


# ------------------------------------------------------------------------------------ ATT-SCALE

@experiment("scaled_dot_product")
def scaled_dot_product(*, seed: int, dims: tuple[int, ...] = (4, 16, 64, 256, 1024), keys: int = 32,
                       queries: int = 512, judge_dim: int = 512) -> Result:
    """Statistics of softmax(q·k) and softmax(q·k/√d_k) for random q, k as d_k grows."""
    dims = tuple(sorted(set(dims) | {judge_dim}))
    rng = np.random.default_rng(seed)
    metrics: dict = {}
    rows = {s: {"var": [], "max_w": [], "entropy": [], "grad": []} for s in ("unscaled", "scaled")}
    for dk in dims:
        q = tf.constant(rng.normal(size=(queries, dk)).astype("float32"))
        k = tf.constant(rng.normal(size=(keys, dk)).astype("float32"))
        upstream = tf.constant(rng.normal(size=(queries, keys)).astype("float32"))
        for name, scale in (("unscaled", 1.0), ("scaled", 1.0 / math.sqrt(dk))):
            s = tf.matmul(q, k, transpose_b=True) * scale
            with tf.GradientTape() as tape:
                tape.watch(s)
                w = tf.nn.softmax(s, axis=-1)
                loss = tf.reduce_sum(w * upstream)     # a random downstream use of the weights
            g = tape.gradient(loss, s)                 # what reaches the scores (and so q and k)
            w = w.numpy()
            ent = -np.sum(w * np.log(np.maximum(w, 1e-30)), axis=-1)
            rows[name]["var"].append(float(np.var(s.numpy())))
            rows[name]["max_w"].append(float(w.max(axis=-1).mean()))
            rows[name]["entropy"].append(float(ent.mean()))
            rows[name]["grad"].append(float(np.linalg.norm(g.numpy(), axis=-1).mean()))
            if dk == judge_dim:
                metrics[f"{name}_score_variance"] = rows[name]["var"][-1]
                metrics[f"{name}_max_weight"] = rows[name]["max_w"][-1]
                metrics[f"{name}_entropy"] = rows[name]["entropy"][-1]
                metrics[f"{name}_softmax_grad"] = rows[name]["grad"][-1]
        # float16: the dot products themselves, TF's softmax, and exp() without the max subtracted.
        q16, k16 = tf.cast(q, tf.float16), tf.cast(k, tf.float16)
        for name, scale in (("unscaled", 1.0), ("scaled", 1.0 / math.sqrt(dk))):
            s16 = tf.matmul(q16, k16, transpose_b=True) * tf.constant(scale, tf.float16)
            tf_soft = tf.nn.softmax(s16, axis=-1).numpy()
            naive = tf.exp(s16).numpy()
            metrics[f"fp16_{name}_scores_nonfinite_d{dk}"] = bool(not np.isfinite(s16.numpy()).all())
            metrics[f"fp16_{name}_tf_softmax_nonfinite_d{dk}"] = bool(not np.isfinite(tf_soft).all())
            metrics[f"fp16_{name}_naive_exp_overflow_share_d{dk}"] = float(np.mean(~np.isfinite(naive)))
    metrics["entropy_uniform"] = math.log(keys)
    metrics["judge_dim"] = judge_dim
    metrics["unscaled_variance_over_dk"] = metrics["unscaled_score_variance"] / judge_dim
    metrics["grad_ratio_unscaled_over_scaled"] = metrics["unscaled_softmax_grad"] / metrics["scaled_softmax_grad"]
    metrics["fp16_unscaled_naive_exp_overflows"] = metrics[f"fp16_unscaled_naive_exp_overflow_share_d{judge_dim}"] > 0
    metrics["fp16_scaled_naive_exp_overflows"] = metrics[f"fp16_scaled_naive_exp_overflow_share_d{judge_dim}"] > 0
    metrics["fp16_unscaled_tf_softmax_nonfinite"] = metrics[f"fp16_unscaled_tf_softmax_nonfinite_d{judge_dim}"]

    fig, _ = plots.figure(10.0, 3.2)
    fig.clear()
    axes = fig.subplots(1, 3)
    for name, style in (("unscaled", "o-"), ("scaled", "s--")):
        axes[0].semilogx(dims, rows[name]["max_w"], style, base=2, label=name)
        axes[1].semilogx(dims, rows[name]["entropy"], style, base=2, label=name)
        axes[2].loglog(dims, rows[name]["grad"], style, base=2, label=name)
    axes[0].set(xlabel="d_k", ylabel="mean largest weight")
    axes[1].set(xlabel="d_k", ylabel="entropy (nats)")
    axes[2].set(xlabel="d_k", ylabel="gradient through softmax")
    axes[0].legend()
    table = ["d_k," + ",".join(f"{n}_{m}" for n in rows for m in rows[n])]
    for i, dk in enumerate(dims):
        table.append(f"{dk}," + ",".join(f"{rows[n][m][i]:.6g}" for n in rows for m in rows[n]))
    return Result(metrics=metrics, artifacts={"saturation.png": plots.png(fig),
                                              "by_dk.csv": "\n".join(table).encode()},
                  notes=f"{queries} queries × {keys} keys, entries N(0,1); judged at d_k = {judge_dim}")


# -------------------------------------------------------------------------------- ATT-MULTIHEAD

def _head_stats(w: np.ndarray, valid_q: np.ndarray, valid_k: np.ndarray, distance: bool) -> dict:
    """w: (B, H, Tq, Tk) attention weights; valid_*: (B, T) bool. Per-head means over valid queries."""
    mask = valid_q[:, None, :, None] & valid_k[:, None, None, :]
    w = np.where(mask, w, 0.0)
    ent = -np.sum(w * np.log(np.maximum(w, 1e-30)), axis=-1)         # (B, H, Tq)
    qmask = np.broadcast_to(valid_q[:, None, :], ent.shape)
    out = {"entropy": [float(ent[:, h][qmask[:, h]].mean()) for h in range(w.shape[1])]}
    if distance:
        tq, tk = w.shape[2], w.shape[3]
        dist = np.abs(np.arange(tq)[:, None] - np.arange(tk)[None, :])
        d = np.sum(w * dist, axis=-1)
        out["distance"] = [float(d[:, h][qmask[:, h]].mean()) for h in range(w.shape[1])]
    # Mean Jensen–Shannon divergence (nats) between every pair of heads, per valid query.
    heads = w.shape[1]
    js = []
    for a in range(heads):
        for b in range(a + 1, heads):
            p, q = w[:, a], w[:, b]
            m = 0.5 * (p + q)
            kl = lambda x, y: np.sum(np.where(x > 0, x * np.log(np.maximum(x, 1e-30) / np.maximum(y, 1e-30)), 0), -1)
            js.append(float((0.5 * kl(p, m) + 0.5 * kl(q, m))[valid_q].mean()))
    out["js"] = float(np.mean(js))
    return out


def _attention_stats(model, src: np.ndarray, tgt_in: np.ndarray) -> dict:
    model.keep_scores = True
    model((tf.constant(src), tf.constant(tgt_in)))
    model.keep_scores = False
    sv, tv = src != PAD, tgt_in != PAD
    enc = _head_stats(np.asarray(model.encoder[-1].scores), sv, sv, True)
    s_self, s_cross = model.decoder[-1].scores
    dec = _head_stats(np.asarray(s_self), tv, tv, True)
    cross = _head_stats(np.asarray(s_cross), tv, sv, False)
    return {"enc_self": enc, "dec_self": dec, "cross": cross}


@experiment("attention_heads", datasets=("tatoeba",))
def attention_heads(*, seed: int, max_src: int = 16, max_tgt: int = 20, test_sentences: int = 1000,
                    train_pairs: int | None = None, min_count: int = 2, d_model: int = 128,
                    heads: int = 4, ff: int = 512, layers: int = 2, lstm_units: int = 256,
                    dropout: float = 0.1, epochs: int = 4, batch_size: int = 64,
                    learning_rate: float = 1e-3, warmup: int = 1000, probe_sentences: int = 300,
                    transformer_dir: str | None = None) -> Result:
    """Per-head entropy, distance and divergence of the last layers; BLEU cost of ablating each head.
    The Transformer is loaded from `transformer_dir` (a `translation_transformer` run of this seed: an
    in-memory copy, the saved files are only read), or trained here when None."""
    model, d, _ = trained_transformer(
        seed, transformer_dir, max_src=max_src, max_tgt=max_tgt, test_sentences=test_sentences,
        train_pairs=train_pairs, min_count=min_count, d_model=d_model, heads=heads, ff=ff, layers=layers,
        dropout=dropout, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, warmup=warmup)
    src = d["src_te"][:probe_sentences]
    refs = d["zh_te"][:probe_sentences].tolist()
    hyps = translate(model, d, src)
    # Decoder input: ⟨SOS⟩ + the model's own greedy output (⟨EOS⟩, then padding).
    ids = np.concatenate([np.pad(o, ((0, 0), (0, d["max_tgt"] + 1 - o.shape[1])))
                          for o in (greedy_decode(model, src[i:i + 256], d["max_tgt"] + 1)
                                    for i in range(0, len(src), 256))])
    tgt_in = np.concatenate([np.full((len(ids), 1), SOS, "int32"), ids], axis=1)
    trained = _attention_stats(model, src, tgt_in)
    fresh(seed)
    untrained = _attention_stats(build("transformer", d, d_model, heads, ff, layers, lstm_units, dropout),
                                 src, tgt_in)

    metrics: dict = {}
    for part, st in trained.items():
        metrics[f"{part}_js_trained"] = st["js"]
        metrics[f"{part}_js_untrained"] = untrained[part]["js"]
        metrics[f"{part}_entropy_by_head"] = [round(e, 4) for e in st["entropy"]]
        metrics[f"{part}_entropy_spread"] = float(max(st["entropy"]) - min(st["entropy"]))
        if "distance" in st:
            metrics[f"{part}_distance_by_head"] = [round(x, 3) for x in st["distance"]]

    # Ablation: zero one head's slice of the output projection (kernel (heads, head_dim, d_model)).
    base_bleu = scores(hyps, refs)[0]
    metrics["bleu_probe_set"] = base_bleu
    drops: dict[str, list[float]] = {}
    modules = {"enc_self": model.encoder[-1].att, "dec_self": model.decoder[-1].self_att,
               "cross": model.decoder[-1].cross_att}
    done, total = 0, heads * len(modules)
    for part, mha in modules.items():
        kernel = mha._output_dense.kernel
        saved = kernel.numpy()
        drops[part] = []
        for h in range(heads):
            progress.step(done, total, f"ablating {part} head {h}")
            ablated = saved.copy()
            ablated[h] = 0.0
            kernel.assign(ablated)
            drops[part].append(base_bleu - scores(translate(model, d, src), refs)[0])
            kernel.assign(saved)
            done += 1
        metrics[f"{part}_ablation_bleu_drop_by_head"] = [round(x, 3) for x in drops[part]]
    every = [x for v in drops.values() for x in v]
    metrics["ablation_bleu_drop_max"] = float(max(every))
    metrics["ablation_bleu_drop_min"] = float(min(every))
    metrics["ablation_bleu_drop_spread"] = float(max(every) - min(every))

    fig, ax = plots.figure(6.0, 3.2)
    x = np.arange(heads)
    for j, part in enumerate(modules):
        ax.bar(x + (j - 1) * 0.27, drops[part], 0.27, label=part)
    ax.set_xticks(x, [f"head {h}" for h in range(heads)])
    ax.set(ylabel="BLEU lost when ablated", title=f"last layer, seed {seed}, {len(refs)} sentences")
    ax.legend()
    return Result(metrics=metrics, artifacts={"head_ablation.png": plots.png(fig)},
                  notes=f"statistics of the last encoder and decoder layer on {len(refs)} held-out sentences "
                        f"with the model's greedy output as decoder input; untrained = same architecture "
                        f"at initialisation")


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


# ------------------------------------------------------------------------------------ ATT-EQ

def _softmax_np(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def multihead_as_written(q: np.ndarray, k: np.ndarray, v: np.ndarray, w_q: list, w_k: list, w_v: list,
                         w_o: np.ndarray, *, scaled: bool = True, biases: dict | None = None,
                         head_order: list | None = None) -> np.ndarray:
    """h_i = f(W_i^q q, W_i^k k, W_i^v v) for every head i, f the scaled dot-product attention
    f(q', K', V') = Σ_j softmax_j(q'·k'_j / √p_k) v'_j, heads concatenated [h_1; …; h_H] and fused
    by W^o. Column-vector convention as written (W q); q is (batch, Tq, d_q), k and v (batch, Tk, d_kv).
    `biases` (q, k, v: per head; o) adds Keras' bias terms, absent from the chapter's formula."""
    heads = []
    for i in range(len(w_q)):
        qi = np.einsum("ij,btj->bti", w_q[i], q)
        ki = np.einsum("ij,btj->bti", w_k[i], k)
        vi = np.einsum("ij,btj->bti", w_v[i], v)
        if biases is not None:
            qi, ki, vi = qi + biases["q"][i], ki + biases["k"][i], vi + biases["v"][i]
        scores = np.einsum("bsd,btd->bst", qi, ki) / (np.sqrt(qi.shape[-1]) if scaled else 1.0)
        heads.append(np.einsum("bst,btd->bsd", _softmax_np(scores), vi))
    concat = np.concatenate([heads[i] for i in (head_order or range(len(heads)))], axis=-1)
    out = np.einsum("ij,bsj->bsi", w_o, concat)
    return out + biases["o"] if biases is not None else out


@experiment("multihead_attention_formula")
def multihead_attention_formula(*, seed: int, batch: int = 3, len_q: int = 5, len_kv: int = 7, d_q: int = 16,
                                d_kv: int = 12, heads: int = 4, key_dim: int = 4, bias_scale: float = 0.5,
                                tolerance: float = 1e-5, plant: str = "") -> Result:
    """ATT-EQ: the chapter's h_i = f(W_i^q q, W_i^k k, W_i^v v) ∈ R^{p_v}, heads concatenated and fused
    (by W^o; the chapter says 拼接融合 in words), f = scaled dot-product attention (its own section),
    evaluated literally in float64 numpy (`multihead_as_written`) on fixed random queries, keys and
    values (cross-attention: q of one width, k and v of another, all three different), against Keras
    `MultiHeadAttention(heads, key_dim)` holding the same matrices (Keras' kernels are (d_in, heads,
    key_dim) for q, k, v and (heads, key_dim, d_out) for the output; W_i^q = query kernel[:, i, :]ᵀ).
      aligned     against the layer with use_bias=False: the formula as written has no bias, as in
                  Vaswani et al. (2017), whose MultiHead(Q, K, V) = Concat(head_1..head_h) W^O
      as written  the literal formula against the layer at Keras' defaults (use_bias=True), biases
                  N(0, bias_scale²) as after training; beside it the formula with those biases added
                  (if only the bias differs, this agrees) and Keras' initial zero biases
    Beside: f without the 1/√p_k (a plain dot product) against the aligned layer.
    `plant` is for tests: "no_scale" evaluates the formula with the unscaled dot product,
    "head_order" concatenates the heads in reverse order; the aligned comparison must catch both.
    """
    rng = np.random.default_rng(seed)
    q = rng.normal(0.0, 1.0, (batch, len_q, d_q))
    k = rng.normal(0.0, 1.0, (batch, len_kv, d_kv))
    v = rng.normal(0.0, 1.0, (batch, len_kv, d_kv))    # keys and values differ: each projection is checked
    w_q = [rng.normal(0.0, 2.0 / np.sqrt(d_q), (key_dim, d_q)) for _ in range(heads)]
    w_k = [rng.normal(0.0, 2.0 / np.sqrt(d_kv), (key_dim, d_kv)) for _ in range(heads)]
    w_v = [rng.normal(0.0, 1.0 / np.sqrt(d_kv), (key_dim, d_kv)) for _ in range(heads)]
    w_o = rng.normal(0.0, 1.0 / np.sqrt(heads * key_dim), (d_q, heads * key_dim))
    bias = {n: rng.normal(0.0, bias_scale, (heads, key_dim)) for n in "qkv"}
    bias["o"] = rng.normal(0.0, bias_scale, d_q)
    kernels = {"query/kernel": np.stack([w.T for w in w_q], axis=1),
               "key/kernel": np.stack([w.T for w in w_k], axis=1),
               "value/kernel": np.stack([w.T for w in w_v], axis=1),
               "attention_output/kernel": w_o.T.reshape(heads, key_dim, d_q)}
    biases = {"query/bias": bias["q"], "key/bias": bias["k"], "value/bias": bias["v"],
              "attention_output/bias": bias["o"]}

    def keras_mha(use_bias: bool, values: dict | None = None) -> np.ndarray:
        fresh(seed)
        layer = keras.layers.MultiHeadAttention(heads, key_dim, use_bias=use_bias)
        args = (q.astype("float32"), v.astype("float32"))
        layer(*args, key=k.astype("float32"))                                         # builds it
        for w in layer.weights:
            key = "/".join(w.path.split("/")[-2:])
            w.assign(np.asarray((values or {**kernels, **biases})[key], "float32").reshape(w.shape))
        return np.asarray(layer(*args, key=k.astype("float32"), training=False), dtype="float64")

    literal = multihead_as_written(q, k, v, w_q, w_k, w_v, w_o, scaled=plant != "no_scale",
                                   head_order=list(range(heads))[::-1] if plant == "head_order" else None)
    no_bias = keras_mha(False, kernels)
    default = keras_mha(True)
    zero_bias = keras_mha(True, {**kernels, **{n: np.zeros_like(b) for n, b in biases.items()}})
    m: dict = {}
    m["max_abs_diff_aligned"] = float(np.max(np.abs(literal - no_bias)))
    m["max_abs_diff_as_written"] = float(np.max(np.abs(literal - default)))
    m["max_abs_diff_with_biases"] = float(np.max(np.abs(
        multihead_as_written(q, k, v, w_q, w_k, w_v, w_o, biases=bias) - default)))
    m["max_abs_diff_default_zero_bias"] = float(np.max(np.abs(literal - zero_bias)))
    m["max_abs_diff_unscaled"] = float(np.max(np.abs(
        multihead_as_written(q, k, v, w_q, w_k, w_v, w_o, scaled=False) - no_bias)))
    m["agrees_with_keras_defaults"] = m["max_abs_diff_as_written"] <= tolerance
    m["deviation_omits_bias"] = (m["max_abs_diff_aligned"] <= tolerance < m["max_abs_diff_as_written"]
                                 and m["max_abs_diff_with_biases"] <= tolerance)
    m["output_rms"] = float(np.sqrt(np.mean(no_bias ** 2)))
    m["tolerance"] = tolerance
    return Result(metrics=m, notes=f"float64 numpy formula vs float32 Keras; batch {batch}, {len_q} queries of "
                                   f"{d_q}, {len_kv} keys/values of {d_kv}, {heads} heads of {key_dim}; "
                                   f"biases N(0, {bias_scale}²)" + (f"; planted: {plant}" if plant else ""))
