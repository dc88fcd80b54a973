"""7.7 The multi-head attention formula (ATT-EQ), evaluated as written against Keras."""
from __future__ import annotations

import keras
import numpy as np

from repro.kerasutil import fresh
from repro.registry import Result, experiment


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
