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
from repro.models.transformer import PAD, SOS, UNK, greedy_decode, sinusoidal_encoding
from repro.registry import Result, experiment


# ------------------------------------------------------------------------------------ ATT-SCALE

def _retrieval_batch(rng: np.random.Generator, n: int, items: int, keys: int, values: int):
    """Key–value retrieval: `items` distinct keys each paired with a value; the query is one of the
    keys, the answer its value. (key ids (n, items), value ids (n, items), query ids (n,), answers (n,))"""
    k = np.argsort(rng.random((n, keys)), axis=1)[:, :items].astype("int32")
    v = rng.integers(0, values, (n, items)).astype("int32")
    j = rng.integers(0, items, n)
    return k, v, k[np.arange(n), j], v[np.arange(n), j]


def train_retrieval(seed: int, d_k: int, scaled: bool, *, d_model: int, items: int, keys: int, values: int,
                    steps: int, batch_size: int, learning_rate: float, evals: int,
                    val: tuple, test: tuple) -> dict:
    """One attention layer trained on key–value retrieval; q = E[query] W_q, k_i = x_i W_k with
    x_i = (E[key_i] + F[value_i]) / √2, output softmax(q·k / √d_k or q·k) (x W_v) W_o. Embeddings
    N(0, 1), projections N(0, 1/d_in) (fan-in), so the components of q and k start with variance 1:
    the assumption under which Vaswani et al. argue that q·k has variance d_k."""
    rng = np.random.default_rng([seed, d_k, int(scaled)])
    init = lambda *shape, std=1.0: tf.Variable(rng.normal(0, std, shape).astype("float32"))
    E, F = init(keys, d_model), init(values, d_model)
    wq, wk = init(d_model, d_k, std=d_model ** -0.5), init(d_model, d_k, std=d_model ** -0.5)
    wv, wo = init(d_model, d_model, std=d_model ** -0.5), init(d_model, values, std=d_model ** -0.5)
    bo = tf.Variable(tf.zeros(values))
    params = [E, F, wq, wk, wv, wo, bo]
    scale = 1.0 / math.sqrt(d_k) if scaled else 1.0
    opt = keras.optimizers.Adam(learning_rate)

    def logits(k, v, q):
        x = (tf.gather(E, k) + tf.gather(F, v)) / math.sqrt(2.0)             # (B, n, d)
        qq = tf.gather(E, q) @ wq                                            # (B, d_k)
        s = tf.einsum("bd,bnd->bn", qq, tf.einsum("bnm,md->bnd", x, wk)) * scale
        w = tf.nn.softmax(s, axis=-1)
        return tf.einsum("bn,bnd->bd", w, x @ wv) @ wo + bo, w

    def loss_of(k, v, q, y):
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits(k, v, q)[0]))

    @tf.function(jit_compile=True)
    def step(k, v, q, y):
        with tf.GradientTape() as tape:
            loss = loss_of(k, v, q, y)
        grads = tape.gradient(loss, params)
        opt.apply_gradients(zip(grads, params))
        return loss, tf.norm(grads[2]), tf.norm(grads[3])

    @tf.function
    def evaluate(k, v, q, y):
        lg, w = logits(k, v, q)
        return (tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, lg)),
                tf.reduce_mean(tf.cast(tf.equal(tf.argmax(lg, -1, output_type=tf.int32), y), tf.float32)),
                tf.reduce_mean(tf.reduce_max(w, -1)))

    data_rng = np.random.default_rng([seed, 7])          # the same stream of batches for every variant
    curve, first_grad = [], None
    every = max(1, steps // evals)
    for t in range(steps):
        loss, gq, gk = step(*(tf.constant(a) for a in _retrieval_batch(data_rng, batch_size, items, keys, values)))
        if first_grad is None:
            first_grad = float(gq) + float(gk)
        if (t + 1) % every == 0:
            curve.append(float(evaluate(*(tf.constant(a) for a in val))[0]))
    vl, _, _ = (float(x) for x in evaluate(*(tf.constant(a) for a in val)))
    tl, ta, tw = (float(x) for x in evaluate(*(tf.constant(a) for a in test)))
    return {"val_loss": vl, "test_loss": tl, "test_accuracy": ta, "test_max_weight": tw, "curve": curve,
            "init_grad_qk": first_grad, "mean_val_loss": float(np.mean(curve))}


@experiment("scaled_dot_product")
def scaled_dot_product(*, seed: int, dims: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024), keys: int = 32,
                       queries: int = 512, judge_dim: int = 512,
                       train_dims: tuple[int, ...] = (16, 64, 256, 1024), d_model: int = 64, items: int = 8,
                       vocab_keys: int = 32, vocab_values: int = 16, steps: int = 1500, batch_size: int = 64,
                       learning_rates: tuple[float, ...] = (1e-3, 3e-3), evals: int = 15,
                       test_size: int = 2000) -> Result:
    """ATT-SCALE. The chapter says scaling q·k by 1/√d_k avoids numerical overflow at high dimension.

    Part 1, analysis: queries and keys with independent N(0, 1) components (the premise of Vaswani et
    al. 2017, sec. 3.2.1: then q·k has variance d_k), for d_k from 16 to 1024, with and without the
    1/√d_k: how peaked softmax(q·k) is (mean largest weight, entropy) and the norm of the gradient
    that reaches q and k through the softmax (a random downstream use of the output w·V). Judged at
    `judge_dim`: with saturation the gradient at q and k collapses without scaling. Overflow is
    checked literally in float16 (the smallest common format): TensorFlow's softmax, which subtracts
    the row maximum and so cannot overflow, and a textbook exp(s)/Σexp(s), which can.

    Part 2, trained: one attention layer on key–value retrieval (8 items; the answer is the value of
    the queried key, so the layer must learn to put its weight on one item: a task attention solves,
    cheap enough for several d_k), projections initialised fan-in so that q and k start with unit
    variance (the premise above), Adam on a per-(d_k, variant) learning-rate grid chosen on
    validation loss: test loss and accuracy with and without scaling, judged at the largest d_k
    (where saturation is strongest). The scaled model's convergence is checked; the unscaled
    model's curve still falling at the end is the effect (slower training), reported.
    The score variances are an identity (Var(q·k/√d_k) = Var(q·k)/d_k) and only reported."""
    dims = tuple(sorted(set(dims) | {judge_dim}))
    rng = np.random.default_rng(seed)
    metrics: dict = {}
    names = ("unscaled", "scaled")
    rows = {s: {"var": [], "max_w": [], "entropy": [], "grad_q": [], "grad_k": []} for s in names}
    for dk in dims:
        q0 = tf.constant(rng.normal(size=(queries, dk)).astype("float32"))
        k0 = tf.constant(rng.normal(size=(keys, dk)).astype("float32"))
        v0 = tf.constant(rng.normal(size=(keys, 16)).astype("float32"))
        upstream = tf.constant(rng.normal(size=(queries, 16)).astype("float32"))
        for name in names:
            scale = 1.0 / math.sqrt(dk) if name == "scaled" else 1.0
            q, k = tf.Variable(q0), tf.Variable(k0)
            with tf.GradientTape() as tape:
                s = tf.matmul(q, k, transpose_b=True) * scale
                w = tf.nn.softmax(s, axis=-1)
                loss = tf.reduce_sum((w @ v0) * upstream)      # a random downstream use of the output
            gq, gk = tape.gradient(loss, [q, k])
            w = w.numpy()
            ent = -np.sum(w * np.log(np.maximum(w, 1e-30)), axis=-1)
            r = rows[name]
            r["var"].append(float(np.var(s.numpy())))
            r["max_w"].append(float(w.max(axis=-1).mean()))
            r["entropy"].append(float(ent.mean()))
            r["grad_q"].append(float(np.linalg.norm(gq.numpy(), axis=-1).mean()))
            r["grad_k"].append(float(np.linalg.norm(gk.numpy(), axis=-1).mean()))
            if dk == judge_dim:
                metrics[f"{name}_score_variance"] = r["var"][-1]
                metrics[f"{name}_max_weight"] = r["max_w"][-1]
                metrics[f"{name}_entropy"] = r["entropy"][-1]
                metrics[f"{name}_grad_q"] = r["grad_q"][-1]
                metrics[f"{name}_grad_k"] = r["grad_k"][-1]
        # float16: the dot products themselves, TF's softmax, and exp() without the max subtracted.
        q16, k16 = tf.cast(q0, tf.float16), tf.cast(k0, tf.float16)
        for name in names:
            scale = 1.0 / math.sqrt(dk) if name == "scaled" else 1.0
            s16 = tf.matmul(q16, k16, transpose_b=True) * tf.constant(scale, tf.float16)
            tf_soft = tf.nn.softmax(s16, axis=-1).numpy()
            naive = tf.exp(s16).numpy()
            metrics[f"fp16_{name}_tf_softmax_nonfinite_d{dk}"] = bool(not np.isfinite(tf_soft).all())
            metrics[f"fp16_{name}_naive_exp_overflow_share_d{dk}"] = float(np.mean(~np.isfinite(naive)))
    for name in names:
        metrics[f"{name}_max_weight_by_dk"] = [round(x, 4) for x in rows[name]["max_w"]]
        metrics[f"{name}_grad_q_by_dk"] = [float(f"{x:.4g}") for x in rows[name]["grad_q"]]
    metrics["entropy_uniform"] = math.log(keys)
    metrics["judge_dim"] = judge_dim
    metrics["grad_q_ratio_unscaled_over_scaled"] = metrics["unscaled_grad_q"] / metrics["scaled_grad_q"]
    metrics["fp16_unscaled_naive_exp_overflows"] = metrics[f"fp16_unscaled_naive_exp_overflow_share_d{judge_dim}"] > 0
    metrics["fp16_scaled_naive_exp_overflows"] = metrics[f"fp16_scaled_naive_exp_overflow_share_d{judge_dim}"] > 0
    metrics["fp16_unscaled_tf_softmax_nonfinite"] = metrics[f"fp16_unscaled_tf_softmax_nonfinite_d{judge_dim}"]

    # Part 2: trained with and without scaling at several d_k.
    data_rng = np.random.default_rng([seed, 1])
    val = _retrieval_batch(data_rng, test_size, items, vocab_keys, vocab_values)
    test = _retrieval_batch(data_rng, test_size, items, vocab_keys, vocab_values)
    train_dims = tuple(sorted(train_dims))
    trained: dict = {n: [] for n in names}
    convergence: dict = {}
    total, done = len(train_dims) * len(names) * len(learning_rates), 0
    for dk in train_dims:
        for name in names:
            best = None
            for lr in learning_rates:
                progress.step(done, total, f"retrieval d_k {dk} {name} lr {lr:g}")
                done += 1
                fresh(seed)
                out = train_retrieval(seed, dk, name == "scaled", d_model=d_model, items=items, keys=vocab_keys,
                                      values=vocab_values, steps=steps, batch_size=batch_size, learning_rate=lr,
                                      evals=evals, val=val, test=test)
                out["lr"] = lr
                if best is None or out["val_loss"] < best["val_loss"]:
                    best = out
            trained[name].append(best)
            tag = f"{name}_d{dk}"
            metrics[f"trained_{tag}_test_loss"] = best["test_loss"]
            metrics[f"trained_{tag}_test_accuracy"] = best["test_accuracy"]
            metrics[f"trained_{tag}_learning_rate"] = best["lr"]
            metrics[f"trained_{tag}_init_grad_qk"] = best["init_grad_qk"]
            # solved at a validation loss of 0.01 nats (the right item gets >= 99% probability); both
            # arms of the scaled-vs-unscaled comparison are reported (the judged one is the largest d_k)
            conv = convergence_check(best["curve"], steps, evals, floor=0.01, metrics=[f"trained_{tag}_*"] + (
                [f"trained_{name}_test_loss", f"trained_{name}_test_accuracy"] if dk == max(train_dims) else []))
            metrics[f"trained_{tag}_converged"] = conv["converged"]
            convergence[f"retrieval {name} d_k {dk}"] = conv
    top = train_dims[-1]
    for name in names:
        metrics[f"trained_{name}_test_loss"] = metrics[f"trained_{name}_d{top}_test_loss"]
        metrics[f"trained_{name}_test_accuracy"] = metrics[f"trained_{name}_d{top}_test_accuracy"]
    metrics["trained_dim"] = top
    metrics["chance_accuracy"] = 1.0 / vocab_values
    stderr = {f"trained_{n}_test_accuracy": float(np.sqrt(max(a * (1 - a), 1e-12) / test_size))
              for n in names for a in [metrics[f"trained_{n}_test_accuracy"]]}

    fig, _ = plots.figure(13.0, 3.2)
    fig.clear()
    axes = fig.subplots(1, 4)
    for name, style in (("unscaled", "o-"), ("scaled", "s--")):
        axes[0].semilogx(dims, rows[name]["max_w"], style, base=2, label=name)
        axes[1].semilogx(dims, rows[name]["entropy"], style, base=2, label=name)
        axes[2].loglog(dims, rows[name]["grad_q"], style, base=2, label=name)
        axes[3].semilogx(train_dims, [t["test_accuracy"] for t in trained[name]], style, base=2, label=name)
    axes[0].set(xlabel="d_k", ylabel="mean largest weight")
    axes[1].set(xlabel="d_k", ylabel="entropy (nats)")
    axes[2].set(xlabel="d_k", ylabel="|∂L/∂q| through softmax")
    axes[3].set(xlabel="d_k", ylabel="retrieval test accuracy", ylim=(0, 1.02))
    axes[0].legend()
    table = ["d_k," + ",".join(f"{n}_{m}" for n in rows for m in rows[n])]
    for i, dk in enumerate(dims):
        table.append(f"{dk}," + ",".join(f"{rows[n][m][i]:.6g}" for n in rows for m in rows[n]))
    tr = ["d_k,variant,learning_rate,test_loss,test_accuracy,init_grad_qk,val_loss_curve"]
    for name in names:
        for dk, t in zip(train_dims, trained[name]):
            tr.append(f"{dk},{name},{t['lr']:g},{t['test_loss']:.5g},{t['test_accuracy']:.4f},"
                      f"{t['init_grad_qk']:.4g}," + " ".join(f"{x:.4g}" for x in t["curve"]))
    return Result(metrics=metrics, stderr=stderr, test_set={k: "per_seed" for k in stderr}, convergence=convergence,
                  artifacts={"saturation.png": plots.png(fig), "by_dk.csv": "\n".join(table).encode(),
                             "trained.csv": "\n".join(tr).encode()},
                  notes=f"analysis: {queries} queries × {keys} keys, entries N(0,1), judged at d_k = {judge_dim}; "
                        f"trained: retrieval of 1 of {items} items, d_model {d_model}, {steps} Adam steps of "
                        f"{batch_size}, rates {list(learning_rates)} chosen on validation loss, judged at d_k {top}")


def convergence_check(curve: list[float], steps: int, evals: int, higher: bool = False, **kw) -> dict:
    from repro import convergence

    return convergence.check(curve, budget=f"{steps} steps", unit_per_point=steps / max(1, len(curve)),
                             unit="steps", higher=higher, **kw)


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
        offset = np.arange(tk)[None, :] - np.arange(tq)[:, None]          # key position - query position
        d = np.sum(w * np.abs(offset), axis=-1)
        out["distance"] = [float(d[:, h][qmask[:, h]].mean()) for h in range(w.shape[1])]
        # positional roles: the weight a head puts on the previous token, itself, the next token
        for name, off in (("previous", -1), ("self", 0), ("next", 1)):
            share = np.sum(w * (offset == off), axis=-1)
            out[name] = [float(share[:, h][qmask[:, h]].mean()) for h in range(w.shape[1])]
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


def _rare_enrichment(w: np.ndarray, valid_q: np.ndarray, valid_k: np.ndarray, rare_k: np.ndarray) -> list[float]:
    """Per head: the attention weight on rare keys over the share of rare keys among the valid keys
    (1 = no preference; above 1 = the head seeks out rare words), over sentences holding a rare word."""
    rare_k = rare_k & valid_k
    keep = rare_k.any(1)
    if not keep.any():
        return []
    w, valid_q, valid_k, rare_k = w[keep], valid_q[keep], valid_k[keep], rare_k[keep]
    on_rare = np.sum(w * rare_k[:, None, None, :], axis=-1)                       # (B, H, Tq)
    base = rare_k.sum(1) / valid_k.sum(1)                                          # (B,)
    ratio = on_rare / base[:, None, None]
    return [float(ratio[:, h][valid_q].mean()) for h in range(w.shape[1])]


def _attention_stats(model, src: np.ndarray, tgt_in: np.ndarray, rare_src: np.ndarray | None = None) -> dict:
    model.keep_scores = True
    model((tf.constant(src), tf.constant(tgt_in)))
    model.keep_scores = False
    sv, tv = src != PAD, tgt_in != PAD
    w_enc = np.asarray(model.encoder[-1].scores)
    enc = _head_stats(w_enc, sv, sv, True)
    s_self, s_cross = model.decoder[-1].scores
    dec = _head_stats(np.asarray(s_self), tv, tv, True)
    cross = _head_stats(np.asarray(s_cross), tv, sv, False)
    if rare_src is not None:
        enc["rare"] = _rare_enrichment(w_enc, sv, sv, rare_src)
        cross["rare"] = _rare_enrichment(np.asarray(s_cross), tv, sv, rare_src)
    return {"enc_self": enc, "dec_self": dec, "cross": cross}


@experiment("attention_heads", datasets=("tatoeba",))
def attention_heads(*, seed: int, max_src: int = 16, max_tgt: int = 20, test_sentences: int = 1000,
                    train_pairs: int | None = None, min_count: int = 2, d_model: int = 128,
                    heads: int = 4, ff: int = 512, layers: int = 2, lstm_units: int = 256,
                    dropout: float = 0.1, epochs: int = 4, batch_size: int = 64,
                    learning_rate: float = 1e-3, warmup: int = 1000, probe_sentences: int = 300,
                    rare_count: int = 10, ablation: bool = True, transformer_dir: str | None = None,
                    **producer) -> Result:
    """ATT-MULTIHEAD, head roles on the translation Transformer (reported, not judged): per head of
    the last encoder layer and the last decoder layer's self- and cross-attention, the entropy, the
    mean attended distance, the weight on the previous token, itself and the next token (positional
    heads), the weight on rare source words (training count ≤ `rare_count`, or unknown) over their
    share of the sentence (rare-word heads), the Jensen–Shannon divergence between the heads of a
    layer (trained and at initialisation) and, with `ablation`, the BLEU lost when one head's output
    is zeroed. The Transformer is loaded from `transformer_dir` (a `translation_transformer` run of
    this seed: an in-memory copy, the saved files are only read), or trained here when None."""
    model, d, _ = trained_transformer(
        seed, transformer_dir, max_src=max_src, max_tgt=max_tgt, test_sentences=test_sentences,
        train_pairs=train_pairs, min_count=min_count, d_model=d_model, heads=heads, ff=ff, layers=layers,
        dropout=dropout, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, warmup=warmup,
        **producer)
    src = d["src_te"][:probe_sentences]
    counts = np.bincount(d["src_tr"].ravel(), minlength=len(d["src_v"]))
    rare_ids = (counts <= rare_count) | (np.arange(len(counts)) == UNK)
    rare_src = rare_ids[src] & (src != PAD)
    refs = d["zh_te"][:probe_sentences].tolist()
    hyps = translate(model, d, src)
    # Decoder input: ⟨SOS⟩ + the model's own greedy output (⟨EOS⟩, then padding).
    ids = np.concatenate([np.pad(o, ((0, 0), (0, d["max_tgt"] + 1 - o.shape[1])))
                          for o in (greedy_decode(model, src[i:i + 256], d["max_tgt"] + 1)
                                    for i in range(0, len(src), 256))])
    tgt_in = np.concatenate([np.full((len(ids), 1), SOS, "int32"), ids], axis=1)
    trained = _attention_stats(model, src, tgt_in, rare_src)
    fresh(seed)
    untrained = _attention_stats(build("transformer", d, d_model, heads, ff, layers, lstm_units, dropout),
                                 src, tgt_in)

    metrics: dict = {}
    for part, st in trained.items():
        metrics[f"{part}_js_trained"] = st["js"]
        metrics[f"{part}_js_untrained"] = untrained[part]["js"]
        metrics[f"{part}_entropy_by_head"] = [round(e, 4) for e in st["entropy"]]
        metrics[f"{part}_entropy_spread"] = float(max(st["entropy"]) - min(st["entropy"]))
        for role in ("distance", "previous", "self", "next", "rare"):
            if st.get(role):
                metrics[f"{part}_{role}_by_head"] = [round(x, 3) for x in st[role]]
    metrics["rare_token_share"] = float(rare_src.sum() / max(1, (src != PAD).sum()))

    # Ablation: zero one head's slice of the output projection (kernel (heads, head_dim, d_model)).
    base_bleu = scores(hyps, refs)[0]
    metrics["bleu_probe_set"] = base_bleu
    if not ablation:
        return Result(metrics=metrics, notes=f"statistics of the last encoder and decoder layer on {len(refs)} "
                                             f"held-out sentences with the model's greedy output as decoder input")
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


# ---------------------------------------------------------------- ATT-MULTIHEAD: one head or several

def neighbour_task(n: int, length: int, symbols: int, offsets: tuple[int, ...], rng: np.random.Generator):
    """y_{i,j} = x_{i+offsets[j]} (positions taken cyclically): every position must read one token from
    each of len(offsets) other places, and keep which came from where. x (n, length), y (n, length, k)."""
    x = rng.integers(0, symbols, size=(n, length)).astype("int32")
    return x, np.stack([np.roll(x, -o, axis=1) for o in offsets], axis=-1).astype("int32")


class OneLayerEncoder(keras.Model):
    """Token + learned position embedding, one post-norm self-attention layer with `heads` heads of
    d_model / heads (the same parameter count for any number of heads), a feed-forward layer, and
    `outputs` factorised softmaxes of `out_vocab` logits each: (B, T, outputs, out_vocab)."""

    def __init__(self, vocab: int, length: int, d_model: int, heads: int, ff: int, out_vocab: int,
                 outputs: int = 1, **kw):
        super().__init__(**kw)
        self.outputs, self.out_vocab = outputs, out_vocab
        self.embed = keras.layers.Embedding(vocab, d_model)
        self.pos = keras.layers.Embedding(length, d_model)
        self.att = keras.layers.MultiHeadAttention(heads, d_model // heads)
        self.ff = keras.Sequential([keras.layers.Dense(ff, activation="relu"), keras.layers.Dense(d_model)])
        self.n1, self.n2 = keras.layers.LayerNormalization(), keras.layers.LayerNormalization()
        self.out = keras.layers.Dense(outputs * out_vocab)

    def call(self, ids, return_scores=False):
        x = self.embed(ids) + self.pos(tf.range(tf.shape(ids)[1]))[None]
        a, w = self.att(x, x, return_attention_scores=True)
        x = self.n1(x + a)
        logits = self.out(self.n2(x + self.ff(x)))
        logits = tf.reshape(logits, [tf.shape(ids)[0], tf.shape(ids)[1], self.outputs, self.out_vocab])
        return (logits, w) if return_scores else logits


def _train_heads_model(seed: int, heads: int, lr: float, data: dict, *, length: int, symbols: int, d_model: int,
                       ff: int, steps: int, batch_size: int, evals: int) -> dict:
    fresh(seed)
    model = OneLayerEncoder(symbols, length, d_model, heads, ff, symbols, outputs=data["ytr"].shape[-1])
    model(data["xtr"][:2])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    opt = keras.optimizers.Adam(lr)

    step, evaluate = _step_and_evaluate(model, loss_fn, opt, training=None)

    rng = np.random.default_rng([seed, 11])
    curve, every = [], max(1, steps // evals)
    for t in range(steps):
        idx = rng.integers(0, len(data["xtr"]), batch_size)
        step(data["xtr"][idx], data["ytr"][idx])
        if (t + 1) % every == 0:
            curve.append(float(evaluate(data["xva"], data["yva"])[1]))
    vl, _ = evaluate(data["xva"], data["yva"])
    tl, ta = evaluate(data["xte"], data["yte"])
    _, w = model(data["xte"][:500], return_scores=True)
    return {"lr": lr, "val_loss": float(vl), "test_loss": float(tl), "test_accuracy": float(ta),
            "curve": curve, "weights": np.asarray(w), "params": int(model.count_params())}


def _js(p: np.ndarray, q: np.ndarray) -> float:
    """Mean Jensen–Shannon divergence (nats) between attention rows p and q (..., T)."""
    m = 0.5 * (p + q)
    kl = lambda x, y: np.sum(x * (np.log(np.maximum(x, 1e-30)) - np.log(np.maximum(y, 1e-30))), -1)
    return float(np.mean(0.5 * kl(p, m) + 0.5 * kl(q, m)))


def head_divergences(w_a: np.ndarray, w_b: np.ndarray) -> tuple[float, float]:
    """(mean JS between the heads of model a, mean JS between the heads of a and b matched one to one
    by the pairing that makes them most alike). w: (B, H, T, T) on the same inputs."""
    import itertools

    h = w_a.shape[1]
    between = np.mean([_js(w_a[:, i], w_a[:, j]) for i in range(h) for j in range(i + 1, h)])
    cost = np.array([[_js(w_a[:, i], w_b[:, j]) for j in range(h)] for i in range(h)])
    matched = min(np.mean([cost[i, p[i]] for i in range(h)]) for p in itertools.permutations(range(h)))
    return float(between), float(matched)


def _offset_profile(w: np.ndarray) -> np.ndarray:
    """(H, T): mean weight each head puts at each cyclic offset (key - query) mod T."""
    t = w.shape[-1]
    off = (np.arange(t)[None, :] - np.arange(t)[:, None]) % t
    return np.stack([[w[:, h][:, off == o].mean() * t for o in range(t)] for h in range(w.shape[1])]) / t


@experiment("multihead_vs_single")
def multihead_vs_single(*, seed: int, length: int = 10, symbols: int = 10, offsets: tuple[int, ...] = (-2, -1, 1, 2),
                        d_model: int = 32, heads: int = 4, ff: int = 128, train_size: int = 8000,
                        test_size: int = 2000, steps: int = 1500, batch_size: int = 64,
                        learning_rates: tuple[float, ...] = (1e-3, 3e-3), evals: int = 15) -> Result:
    """ATT-MULTIHEAD, judged: several heads against one head of the same size, and a null for "the heads
    attend to different things".

    Regime, and why: the chapter's claim is that heads can attend to different kinds of features; the
    situation it is about is an output that needs information from several places at once. Task: each
    position outputs the tokens at the cyclic offsets (-2, -1, +1, +2), one softmax per offset, one
    post-norm layer (d_model 32, learned positions). One head of 32 can only return one weighted
    average of the four tokens and must keep four symbols and their places apart in it; 4 heads of 8
    can give each offset its own head. Version 1 asked for two neighbours (one class per ordered pair):
    one head solved it by weighting the two unequally, and 1 and 4 heads both reached accuracy 1.0, so
    the comparison could not separate them (transformer-full-dfd8ea09df). Four places are chosen because
    one average then has to carry more than one head's width comfortably holds, while each of 4 heads of
    8 dims has one token to carry: the regime where splitting could help, if it helps at all.
    Equal size: splitting d_model into heads keeps the parameter count the same (checked). Each
    variant gets its own learning rate from the grid (chosen on validation loss). Vaswani et al.
    (2017, Table 3 A) report the same comparison on translation (one head 0.9 BLEU below eight).
    The null: a second multi-head model from another initialisation (restart, same data and rate);
    "the heads of a layer differ" is judged against how much matched heads differ between restarts
    (JS divergence of their attention rows; heads matched one to one by the pairing that makes them
    most alike), so head differences that are only initialisation noise do not count. Head roles:
    each head's attention by cyclic offset (a head at one of the offsets is a positional head).
    Accuracy: per output token (each offset of each position)."""
    offsets = tuple(int(o) for o in offsets)
    rng = np.random.default_rng(seed)
    xtr, ytr = neighbour_task(train_size, length, symbols, offsets, rng)
    xva, yva = neighbour_task(test_size, length, symbols, offsets, rng)
    xte, yte = neighbour_task(test_size, length, symbols, offsets, rng)
    data = {"xtr": xtr, "ytr": ytr, "xva": xva, "yva": yva, "xte": xte, "yte": yte}
    kw = dict(length=length, symbols=symbols, d_model=d_model, ff=ff, steps=steps, batch_size=batch_size,
              evals=evals)
    best: dict[str, dict] = {}
    total, done = 2 * len(learning_rates) + 1, 0
    for name, h in (("single", 1), ("multi", heads)):
        for lr in learning_rates:
            progress.step(done, total, f"{name}-head, rate {lr:g}")
            done += 1
            out = _train_heads_model(seed, h, lr, data, **kw)
            if name not in best or out["val_loss"] < best[name]["val_loss"]:
                best[name] = out
    progress.step(done, total, "multi-head restart")
    restart = _train_heads_model(seed + 10_000, heads, best["multi"]["lr"], data, **kw)
    between, matched = head_divergences(best["multi"]["weights"], restart["weights"])
    between_r, _ = head_divergences(restart["weights"], best["multi"]["weights"])
    metrics: dict = {"multi_between_head_js": between, "restart_matched_head_js": matched,
                     "restart_between_head_js": between_r}
    for name, b in best.items():
        metrics[f"{name}_test_loss"] = b["test_loss"]
        metrics[f"{name}_test_accuracy"] = b["test_accuracy"]
        metrics[f"{name}_learning_rate"] = b["lr"]
        metrics[f"{name}_params"] = b["params"]
    metrics["restart_test_accuracy"] = restart["test_accuracy"]
    prof = _offset_profile(best["multi"]["weights"])
    signed = lambda o: o if o <= length // 2 else o - length
    metrics["multi_head_main_offset"] = [signed(int(np.argmax(p))) for p in prof]
    metrics["multi_head_main_offset_weight"] = [round(float(np.max(p)), 3) for p in prof]
    sp = _offset_profile(best["single"]["weights"])[0]
    metrics["single_head_weight_at_offsets"] = [round(float(sp[o % length]), 3) for o in offsets]
    metrics["chance_accuracy"] = 1.0 / symbols
    convergence = {f"{n}-head": convergence_check(b["curve"], steps, evals, higher=True,
                                                  metrics=[f"{n}_*"] + (["multi_between_head_js"] if n == "multi" else []))
                   for n, b in best.items()}
    n_tok = test_size * length * len(offsets)
    stderr = {f"{n}_test_accuracy": float(np.sqrt(max(b["test_accuracy"] * (1 - b["test_accuracy"]), 1e-12) / n_tok))
              for n, b in best.items()}

    fig, _ = plots.figure(9.0, 3.2)
    fig.clear()
    ax = fig.subplots(1, 2)
    offs = [signed(o) for o in range(length)]
    order = np.argsort(offs)
    for h, p in enumerate(prof):
        ax[0].plot(np.array(offs)[order], p[order], "o-", label=f"head {h}")
    ax[0].plot(np.array(offs)[order], sp[order], "k--", label="single head")
    ax[0].set(xlabel="key offset from query", ylabel="mean attention weight",
              title=f"outputs x[i+o], o in {list(offsets)}, seed {seed}")
    ax[0].legend(fontsize=7)
    ax[1].bar(["single", f"{heads} heads"], [best["single"]["test_accuracy"], best["multi"]["test_accuracy"]])
    ax[1].set(ylabel="test token accuracy", ylim=(0, 1))
    return Result(metrics=metrics, stderr=stderr, test_set={k: "per_seed" for k in stderr}, convergence=convergence,
                  artifacts={"heads.png": plots.png(fig)},
                  notes=f"one post-norm layer, d_model {d_model}, ff {ff}; 1 head vs {heads} heads "
                        f"({best['single']['params']} vs {best['multi']['params']} parameters); {steps} Adam steps "
                        f"of {batch_size}, rates {list(learning_rates)} per variant on validation loss; "
                        f"restart = seed + 10000")


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


# ------------------------------------------------------------------------------------ TRF-NORMRES

class AblationEncoder(keras.Model):
    """A deep post-norm encoder (sub-layer, residual, LayerNorm: the chapter's arrangement) whose
    normalisation and residual connections can each be switched off; sinusoidal positions."""

    def __init__(self, vocab: int, length: int, d_model: int, heads: int, ff: int, layers: int,
                 norm: bool, residual: bool, **kw):
        super().__init__(**kw)
        self.norm, self.residual = norm, residual
        self.embed = keras.layers.Embedding(vocab, d_model)
        self.pe = tf.constant(sinusoidal_encoding(length, d_model))
        self.blocks = []
        for i in range(layers):
            self.blocks.append((keras.layers.MultiHeadAttention(heads, d_model // heads, name=f"att{i}"),
                                keras.Sequential([keras.layers.Dense(ff, activation="relu"),
                                                  keras.layers.Dense(d_model)], name=f"ff{i}"),
                                keras.layers.LayerNormalization(name=f"norm{i}a") if norm else None,
                                keras.layers.LayerNormalization(name=f"norm{i}b") if norm else None))
        self.out = keras.layers.Dense(vocab)

    def _sub(self, x, y, norm):
        y = x + y if self.residual else y
        return norm(y) if norm is not None else y

    def call(self, ids):
        x = self.embed(ids) + self.pe[None, :tf.shape(ids)[1]]
        for att, ff, n1, n2 in self.blocks:
            x = self._sub(x, att(x, x), n1)
            x = self._sub(x, ff(x), n2)
        return self.out(x)

    def layer_variables(self) -> list[list]:
        return [att.trainable_variables + ff.trainable_variables for att, ff, _, _ in self.blocks]


class WarmupConstant(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak`` over ``warmup`` steps, then constant."""

    def __init__(self, peak: float, warmup: int):
        self.peak, self.warmup = peak, warmup

    def __call__(self, step):
        return self.peak * tf.minimum(1.0, (tf.cast(step, tf.float32) + 1.0) / float(self.warmup))

    def get_config(self):
        return {"peak": self.peak, "warmup": self.warmup}


NORMRES_VARIANTS = {"norm_res": (True, True), "res_only": (False, True), "norm_only": (True, False),
                    "neither": (False, False)}


def _train_ablation(seed: int, variant: str, lr: float, data: dict, *, length: int, symbols: int, d_model: int,
                    heads: int, ff: int, layers: int, steps: int, batch_size: int, warmup: int, evals: int,
                    grad_batches: int) -> dict:
    norm, residual = NORMRES_VARIANTS[variant]
    fresh(seed)
    model = AblationEncoder(symbols, length, d_model, heads, ff, layers, norm, residual)
    model(data["xtr"][:2])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    opt = keras.optimizers.Adam(WarmupConstant(lr, warmup), clipnorm=1.0)
    groups = model.layer_variables()

    @tf.function
    def layer_grads(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x))
        g = tape.gradient(loss, [v for gr in groups for v in gr])
        out, i = [], 0
        for gr in groups:
            out.append(tf.linalg.global_norm(g[i:i + len(gr)]))
            i += len(gr)
        return tf.stack(out)

    def grads_now():
        return np.mean([layer_grads(data["xtr"][b * batch_size:(b + 1) * batch_size],
                                    data["ytr"][b * batch_size:(b + 1) * batch_size]).numpy()
                        for b in range(grad_batches)], axis=0)

    step, evaluate = _step_and_evaluate(model, loss_fn, opt, training=True)   # XLA: 1.5x less CPU

    init_grads = grads_now()
    rng = np.random.default_rng([seed, 3])
    n = len(data["xtr"])
    curve, acc_curve = [], []
    every = max(1, steps // evals)
    for t in range(steps):
        idx = rng.integers(0, n, batch_size)
        step(data["xtr"][idx], data["ytr"][idx])
        if (t + 1) % every == 0:
            vl, va = evaluate(data["xva"], data["yva"])
            curve.append(float(vl) if np.isfinite(float(vl)) else 1e3)
            acc_curve.append(float(va))
    tl, ta = (float(v) for v in evaluate(data["xte"], data["yte"]))
    return {"lr": lr, "curve": curve, "acc_curve": acc_curve, "val_loss": curve[-1], "test_loss": tl,
            "test_accuracy": ta, "init_grads": init_grads, "end_grads": grads_now(), "every": every}


@experiment("norm_residual_ablation")
def norm_residual_ablation(*, seed: int, layers: int = 8, length: int = 12, symbols: int = 10, d_model: int = 32,
                           heads: int = 4, ff: int = 64, train_size: int = 8000, test_size: int = 2000,
                           steps: int = 500, batch_size: int = 64, warmup: int = 50,
                           learning_rates: tuple[float, ...] = (5e-4, 2e-3), evals: int = 20,
                           grad_batches: int = 4, target_accuracy: float = 0.9) -> Result:
    """TRF-NORMRES: the chapter says each encoder layer's normalisation stabilises gradients and speeds
    convergence, and its residual connections avoid vanishing gradients.

    Regime, and why: the effects are about depth, so a deep stack (`layers`, 8 by default: more than
    the 6 of the base Transformer, so that vanishing gradients have room to show) of post-norm
    encoder layers (sub-layer, residual, LayerNorm, as the chapter draws it) trained on a small
    sequence task that needs every layer to carry position and content information (reversing 12
    digits, sinusoidal positions). Four variants: both (the chapter's layer), no normalisation,
    no residual connections, neither. Each variant gets its own learning rate from a grid (chosen on
    validation loss at the end), the same warm-up and clipping, so a variant is not judged at a
    rate tuned for another. Measured: the gradient norm of every layer's weights at initialisation
    and at the end (first layer / last layer: below 1 = gradients shrink on the way down), the
    validation loss against steps, its mean over the budget (how fast the loss falls: the
    convergence-speed measure, insensitive to when a threshold is crossed), steps to a target
    token accuracy, test loss and accuracy. Convergence (validation accuracy, which plateaus on a solved
    task where the loss keeps falling) is checked for the chapter's layer; the ablated variants'
    curves are what the claim is about, reported."""
    rng = np.random.default_rng(seed)
    xtr, ytr = reversal_task(train_size, length, symbols, rng)
    xva, yva = reversal_task(test_size, length, symbols, rng)
    xte, yte = reversal_task(test_size, length, symbols, rng)
    data = {"xtr": xtr, "ytr": ytr, "xva": xva, "yva": yva, "xte": xte, "yte": yte}
    metrics: dict = {}
    best: dict[str, dict] = {}
    total, done = len(NORMRES_VARIANTS) * len(learning_rates), 0
    for variant in NORMRES_VARIANTS:
        for lr in learning_rates:
            progress.step(done, total, f"{variant}, rate {lr:g}")
            done += 1
            out = _train_ablation(seed, variant, lr, data, length=length, symbols=symbols, d_model=d_model,
                                  heads=heads, ff=ff, layers=layers, steps=steps, batch_size=batch_size,
                                  warmup=warmup, evals=evals, grad_batches=grad_batches)
            if variant not in best or out["val_loss"] < best[variant]["val_loss"]:
                best[variant] = out
        b = best[variant]
        reach = [i for i, a in enumerate(b["acc_curve"]) if a >= target_accuracy]
        metrics[f"{variant}_learning_rate"] = b["lr"]
        metrics[f"{variant}_mean_val_loss"] = float(np.mean(b["curve"]))
        metrics[f"{variant}_test_loss"] = b["test_loss"]
        metrics[f"{variant}_test_accuracy"] = b["test_accuracy"]
        metrics[f"{variant}_steps_to_target"] = (reach[0] + 1) * b["every"] if reach else None
        metrics[f"{variant}_init_grad_log10_first_over_last"] = float(np.log10(b["init_grads"][0] / b["init_grads"][-1]))
        metrics[f"{variant}_end_grad_log10_first_over_last"] = float(np.log10(b["end_grads"][0] / b["end_grads"][-1]))
        metrics[f"{variant}_init_grad_by_layer"] = [float(f"{g:.4g}") for g in b["init_grads"]]
        metrics[f"{variant}_end_grad_by_layer"] = [float(f"{g:.4g}") for g in b["end_grads"]]
        metrics[f"{variant}_init_grad_log10_spread"] = float(np.std(np.log10(b["init_grads"])))
        metrics[f"{variant}_converged"] = convergence_check(b["acc_curve"], steps, evals, higher=True)["converged"]
    conv = {"norm_res": convergence_check(best["norm_res"]["acc_curve"], steps, evals, higher=True,
                                          metrics=["norm_res_*"])}
    stderr = {f"{v}_test_accuracy": float(np.sqrt(max(best[v]["test_accuracy"] * (1 - best[v]["test_accuracy"]),
                                                      1e-12) / (test_size * length))) for v in best}
    metrics["layers"] = layers
    metrics["chance_accuracy"] = 1.0 / symbols

    fig, _ = plots.figure(10.0, 3.4)
    fig.clear()
    ax = fig.subplots(1, 2)
    for v, b in best.items():
        x = (np.arange(len(b["curve"])) + 1) * b["every"]
        ax[0].semilogy(x, b["curve"], label=f"{v} (rate {b['lr']:g})")
        ax[1].semilogy(np.arange(1, layers + 1), b["init_grads"], "o-", label=v)
    ax[0].set(xlabel="step", ylabel="validation loss", title=f"{layers}-layer post-norm encoder, seed {seed}")
    ax[1].set(xlabel="layer (1 = nearest the input)", ylabel="|gradient| at initialisation")
    ax[0].legend(fontsize=7)
    ax[1].legend(fontsize=7)
    rows = ["variant,learning_rate,step,val_loss,val_accuracy"]
    for v, b in best.items():
        rows += [f"{v},{b['lr']:g},{(i + 1) * b['every']},{l:.5g},{a:.4f}"
                 for i, (l, a) in enumerate(zip(b["curve"], b["acc_curve"]))]
    return Result(metrics=metrics, stderr=stderr, test_set={k: "per_seed" for k in stderr}, convergence=conv,
                  artifacts={"loss_and_gradients.png": plots.png(fig), "curves.csv": "\n".join(rows).encode()},
                  notes=f"{layers} post-norm encoder layers, d {d_model}, {heads} heads, ff {ff}; reverse {length} "
                        f"digits, {train_size} training sequences, {steps} Adam steps of {batch_size} "
                        f"(warm-up {warmup}, clipnorm 1), rates {list(learning_rates)} per variant on validation loss")


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


def _step_and_evaluate(model, loss_fn, opt, *, training):
    """A compiled (XLA) training step and an evaluation giving (loss, accuracy) for a classifier whose
    outputs are logits; ``training`` is passed to the model in the step (None: the layers' default)."""
    @tf.function(jit_compile=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=training))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    @tf.function
    def evaluate(x, y):
        lg = model(x)
        return loss_fn(y, lg), tf.reduce_mean(tf.cast(tf.equal(tf.argmax(lg, -1, output_type=tf.int32), y), tf.float32))

    return step, evaluate
