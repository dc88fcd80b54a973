"""7.7 Scaled dot-product attention (ATT-SCALE).

Queries and keys with independent N(0, 1) entries; for growing d_k the variance of q·k, how peaked
softmax(q·k) is (largest weight, entropy) and the norm of the gradient that flows back through the
softmax into q, with and without the 1/√d_k of scaled dot-product attention; whether anything
overflows in float16, both for TensorFlow's softmax (which subtracts the row maximum) and for a
textbook exp(s) / Σ exp(s); and one attention layer trained on key–value retrieval with and without
the scaling.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from repro import plots, progress
from repro.experiments.attention_common import convergence_check
from repro.kerasutil import fresh
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


FP16_MAX = 65504.0


def softmax_overflow_check(softmax=None) -> dict:
    """Does `softmax` (default: TensorFlow's) stay finite and exact where exp(score) overflows?
    Deterministic: float16 rows of scores up to the format's largest value (65,504; exp overflows
    float16 above 11.1 and float32 above 88.7) and a float32 row shifted by 10⁴, against the
    max-subtracted softmax in float64. An implementation that exponentiates the raw scores (the
    textbook exp(s)/Σexp(s)) returns inf/NaN here: the check can fail.
    {"finite": all outputs finite, "max_error": largest |softmax - reference|}."""
    softmax = softmax or (lambda s: tf.nn.softmax(s, axis=-1))
    rows16 = np.array([[FP16_MAX, FP16_MAX - 32, 0.0, -FP16_MAX], [12.0, 11.0, 10.0, -3.0],
                       [100.0, 90.0, 80.0, 70.0]], dtype=np.float16)
    rows32 = np.array([[1e4 + 2.0, 1e4 + 1.0, 1e4, 1e4 - 5.0]], dtype=np.float32)
    finite, err = True, 0.0
    for rows in (rows16, rows32):
        out = np.asarray(softmax(tf.constant(rows)), dtype=np.float64)
        z = rows.astype(np.float64)
        ref = np.exp(z - z.max(-1, keepdims=True))
        ref /= ref.sum(-1, keepdims=True)
        finite &= bool(np.isfinite(out).all())
        err = max(err, float(np.nanmax(np.abs(out - ref))) if np.isfinite(out).any() else float("inf"))
    return {"finite": finite, "max_error": err if finite else float("inf")}


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
    `judge_dim`. Overflow is checked literally in float16 (the smallest common format): TensorFlow's
    softmax on the random scores (judged: the chapter's reason), and why it never overflows
    (`softmax_overflow_check`: it stays finite and exact at float16's largest scores, because it
    subtracts each row's maximum); a textbook exp(s)/Σexp(s), which can overflow, is reported beside.

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
    # Why the real softmax never overflows: it subtracts each row's maximum before exp (checked at
    # float16's largest scores, where the textbook formula returns inf/NaN).
    check = softmax_overflow_check()
    metrics["tf_softmax_finite_at_extreme_scores"] = check["finite"]
    metrics["tf_softmax_extreme_scores_max_error"] = check["max_error"]

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
