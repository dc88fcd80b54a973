"""Sequence-to-sequence models for translation: the Transformer of 7.7 and an LSTM baseline.

Both take ``(src, tgt_in)`` integer batches (0 = padding) and return logits over the target
vocabulary for every target position; both expose ``encode(src)`` and ``decode(memory, src,
tgt_in)`` so that greedy and beam decoding run the encoder once per sentence.

The Transformer is built from Keras layers (Embedding, MultiHeadAttention, Dense,
LayerNormalization, Dropout) in the post-norm arrangement of the chapter (sub-layer, residual, norm).
Its masks are explicit ``attention_mask`` tensors: a key that is padding is never attended to, and
decoder position t attends to target positions ≤ t only.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

PAD, UNK, SOS, EOS = 0, 1, 2, 3


def sinusoidal_encoding(length: int, d_model: int) -> np.ndarray:
    """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(...), shape (length, d_model)."""
    pos = np.arange(length)[:, None]
    rate = 1.0 / np.power(10000.0, np.arange(0, d_model, 2) / d_model)
    pe = np.zeros((length, d_model), dtype="float32")
    pe[:, 0::2], pe[:, 1::2] = np.sin(pos * rate), np.cos(pos * rate)
    return pe


def key_mask(ids: tf.Tensor) -> tf.Tensor:
    """(B, T) ids -> (B, 1, T) bool: True where the key is a real token."""
    return tf.not_equal(ids, PAD)[:, None, :]


def causal_mask(length: int) -> tf.Tensor:
    """(1, T, T) bool, lower triangular: query t may attend to keys 0..t."""
    return tf.linalg.band_part(tf.ones((length, length), tf.bool), -1, 0)[None]


class TokenAndPosition(keras.layers.Layer):
    """Token embedding × √d plus the sinusoidal position encoding."""

    def __init__(self, vocab: int, d_model: int, max_len: int, **kw):
        super().__init__(**kw)
        self.d_model = d_model
        self.embed = keras.layers.Embedding(vocab, d_model)
        self.pe = tf.constant(sinusoidal_encoding(max_len, d_model))

    def call(self, ids):
        return self.embed(ids) * math.sqrt(self.d_model) + self.pe[None, :tf.shape(ids)[1]]


class EncoderLayer(keras.layers.Layer):
    def __init__(self, d_model: int, heads: int, ff: int, dropout: float, **kw):
        super().__init__(**kw)
        self.att = keras.layers.MultiHeadAttention(heads, d_model // heads, dropout=dropout, name="self_att")
        self.ff1 = keras.layers.Dense(ff, activation="relu")
        self.ff2 = keras.layers.Dense(d_model)
        self.norm1, self.norm2 = keras.layers.LayerNormalization(), keras.layers.LayerNormalization()
        self.drop = keras.layers.Dropout(dropout)
        self.scores = None

    def call(self, x, mask, training=False, keep_scores=False):
        a, scores = self.att(x, x, attention_mask=mask, return_attention_scores=True, training=training)
        self.scores = scores if keep_scores else None
        x = self.norm1(x + self.drop(a, training=training))
        return self.norm2(x + self.drop(self.ff2(self.ff1(x)), training=training))


class DecoderLayer(keras.layers.Layer):
    def __init__(self, d_model: int, heads: int, ff: int, dropout: float, **kw):
        super().__init__(**kw)
        self.self_att = keras.layers.MultiHeadAttention(heads, d_model // heads, dropout=dropout, name="self_att")
        self.cross_att = keras.layers.MultiHeadAttention(heads, d_model // heads, dropout=dropout, name="cross_att")
        self.ff1 = keras.layers.Dense(ff, activation="relu")
        self.ff2 = keras.layers.Dense(d_model)
        self.norms = [keras.layers.LayerNormalization() for _ in range(3)]
        self.drop = keras.layers.Dropout(dropout)
        self.scores = None

    def call(self, y, memory, self_mask, cross_mask, training=False, keep_scores=False):
        a, s_self = self.self_att(y, y, attention_mask=self_mask, return_attention_scores=True,
                                  training=training)
        y = self.norms[0](y + self.drop(a, training=training))
        # Queries from the decoder, keys and values from the encoder's output.
        c, s_cross = self.cross_att(y, memory, attention_mask=cross_mask, return_attention_scores=True,
                                    training=training)
        self.scores = (s_self, s_cross) if keep_scores else None
        y = self.norms[1](y + self.drop(c, training=training))
        return self.norms[2](y + self.drop(self.ff2(self.ff1(y)), training=training))


class Transformer(keras.Model):
    """Encoder–decoder Transformer; ``keep_scores=True`` stores each layer's attention weights."""

    def __init__(self, src_vocab: int, tgt_vocab: int, d_model: int = 128, heads: int = 4,
                 ff: int = 512, layers: int = 2, dropout: float = 0.1, max_len: int = 64, **kw):
        super().__init__(**kw)
        self.src_embed = TokenAndPosition(src_vocab, d_model, max_len, name="src_embed")
        self.tgt_embed = TokenAndPosition(tgt_vocab, d_model, max_len, name="tgt_embed")
        self.encoder = [EncoderLayer(d_model, heads, ff, dropout, name=f"enc{i}") for i in range(layers)]
        self.decoder = [DecoderLayer(d_model, heads, ff, dropout, name=f"dec{i}") for i in range(layers)]
        self.drop = keras.layers.Dropout(dropout)
        self.out = keras.layers.Dense(tgt_vocab, name="logits")
        self.keep_scores = False

    def encode(self, src, training=False):
        x = self.drop(self.src_embed(src), training=training)
        mask = key_mask(src)   # (B, 1, S): broadcast over the queries
        for layer in self.encoder:
            x = layer(x, mask, training=training, keep_scores=self.keep_scores)
        return x

    def decode(self, memory, src, tgt_in, training=False):
        y = self.drop(self.tgt_embed(tgt_in), training=training)
        self_mask = tf.logical_and(causal_mask(tf.shape(tgt_in)[1]), key_mask(tgt_in))
        cross_mask = key_mask(src)
        for layer in self.decoder:
            y = layer(y, memory, self_mask, cross_mask, training=training, keep_scores=self.keep_scores)
        return self.out(y)

    def call(self, inputs, training=False):
        src, tgt_in = inputs
        return self.decode(self.encode(src, training=training), src, tgt_in, training=training)


class LSTMSeq2Seq(keras.Model):
    """Encoder LSTM (padding skipped through the embedding's mask) whose final state starts the
    decoder LSTM (Sutskever et al. 2014, one layer each, no attention)."""

    def __init__(self, src_vocab: int, tgt_vocab: int, embed_dim: int = 128, units: int = 256,
                 dropout: float = 0.1, **kw):
        super().__init__(**kw)
        self.src_embed = keras.layers.Embedding(src_vocab, embed_dim, mask_zero=True)
        self.tgt_embed = keras.layers.Embedding(tgt_vocab, embed_dim, mask_zero=True)
        self.enc = keras.layers.LSTM(units, return_state=True)
        self.dec = keras.layers.LSTM(units, return_sequences=True)
        self.drop = keras.layers.Dropout(dropout)
        self.out = keras.layers.Dense(tgt_vocab)

    def encode(self, src, training=False):
        _, h, c = self.enc(self.src_embed(src), training=training)
        return tf.stack([h, c], axis=1)   # (B, 2, units): one tensor, so beams can repeat it

    def decode(self, memory, src, tgt_in, training=False):
        y = self.dec(self.tgt_embed(tgt_in), initial_state=[memory[:, 0], memory[:, 1]], training=training)
        return self.out(self.drop(y, training=training))

    def call(self, inputs, training=False):
        src, tgt_in = inputs
        return self.decode(self.encode(src, training=training), src, tgt_in, training=training)


class AttentionLSTMSeq2Seq(keras.Model):
    """LSTM encoder–decoder with global attention (Luong, Pham & Manning 2015, the "general" score
    h_t·W·h̄_s, attentional vector tanh(W_c [c_t; h_t]) fed to the output layer; without their input
    feeding, so the decoder LSTM runs over the whole target at once in training). The encoder's
    final state starts the decoder; padded source positions are never attended to. ``encode``
    returns one tensor (B, S + 2, units): the encoder outputs, then h and c (beams can repeat it)."""

    def __init__(self, src_vocab: int, tgt_vocab: int, embed_dim: int = 128, units: int = 256,
                 dropout: float = 0.1, **kw):
        super().__init__(**kw)
        self.src_embed = keras.layers.Embedding(src_vocab, embed_dim, mask_zero=True)
        self.tgt_embed = keras.layers.Embedding(tgt_vocab, embed_dim, mask_zero=True)
        self.enc = keras.layers.LSTM(units, return_sequences=True, return_state=True)
        self.dec = keras.layers.LSTM(units, return_sequences=True)
        self.score = keras.layers.Dense(units, use_bias=False)
        self.combine = keras.layers.Dense(units, activation="tanh")
        self.drop = keras.layers.Dropout(dropout)
        self.out = keras.layers.Dense(tgt_vocab)

    def encode(self, src, training=False):
        seq, h, c = self.enc(self.src_embed(src), training=training)
        return tf.concat([seq, h[:, None], c[:, None]], axis=1)

    def decode(self, memory, src, tgt_in, training=False):
        seq, h, c = memory[:, :-2], memory[:, -2], memory[:, -1]
        y = self.dec(self.tgt_embed(tgt_in), initial_state=[h, c], training=training)
        s = tf.einsum("btu,bsu->bts", self.score(y), seq)
        s = tf.where(key_mask(src), s, tf.constant(-1e9, s.dtype))
        ctx = tf.einsum("bts,bsu->btu", tf.nn.softmax(s, axis=-1), seq)
        return self.out(self.drop(self.combine(tf.concat([ctx, y], axis=-1)), training=training))

    def call(self, inputs, training=False):
        src, tgt_in = inputs
        return self.decode(self.encode(src, training=training), src, tgt_in, training=training)


class WarmupInverseSqrt(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak`` over ``warmup`` steps, then decay as 1/√step (Vaswani et al.)."""

    def __init__(self, peak: float, warmup: int):
        self.peak, self.warmup = peak, warmup

    def __call__(self, step):
        step = tf.cast(step, tf.float32) + 1.0
        w = float(self.warmup)
        return self.peak * tf.minimum(step / w, tf.sqrt(w / step))

    def get_config(self):
        return {"peak": self.peak, "warmup": self.warmup}


def greedy_decode(model: keras.Model, src: np.ndarray, max_len: int) -> np.ndarray:
    """From ⟨SOS⟩, feed back the most likely token until every sentence has produced ⟨EOS⟩ or
    ``max_len`` tokens; returns (B, ≤ max_len) ids with everything after ⟨EOS⟩ set to padding."""
    src = tf.constant(src)
    memory = model.encode(src)
    out = np.full((src.shape[0], 1), SOS, dtype="int32")
    done = np.zeros(src.shape[0], bool)
    for _ in range(max_len):
        logits = model.decode(memory, src, tf.constant(out))[:, -1]
        nxt = np.argmax(np.asarray(logits), axis=-1).astype("int32")
        nxt[done] = PAD
        out = np.concatenate([out, nxt[:, None]], axis=1)
        done |= nxt == EOS
        if done.all():
            break
    return out[:, 1:]


def beam_decode(model: keras.Model, src: np.ndarray, max_len: int, beam: int = 4,
                alpha: float = 0.6) -> np.ndarray:
    """Beam search: keep the ``beam`` best prefixes by summed log-probability; finished ones (⟨EOS⟩)
    are ranked by the length-normalised score log p / ((5 + n) / 6)^alpha (Wu et al. 2016)."""
    b = src.shape[0]
    src_t = tf.repeat(tf.constant(src), beam, axis=0)
    memory = model.encode(src_t)
    seqs = np.full((b, beam, 1), SOS, dtype="int32")
    scores = np.zeros((b, beam))
    scores[:, 1:] = -np.inf          # start from one live prefix, not beam copies of it
    best = [None] * b
    best_score = np.full(b, -np.inf)
    for step in range(1, max_len + 1):
        logits = model.decode(memory, src_t, tf.constant(seqs.reshape(b * beam, -1)))[:, -1]
        logp = np.asarray(tf.nn.log_softmax(logits)).reshape(b, beam, -1)
        vocab = logp.shape[-1]
        total = (scores[:, :, None] + logp).reshape(b, -1)
        top = np.argsort(-total, axis=1, kind="stable")[:, :2 * beam]
        new_seqs = np.zeros((b, beam, step + 1), dtype="int32")
        new_scores = np.full((b, beam), -np.inf)
        for i in range(b):
            k = 0
            for flat in top[i]:
                sc = total[i, flat]
                if not np.isfinite(sc):
                    break
                origin, tok = divmod(int(flat), vocab)
                if tok == EOS:
                    norm = sc / (((5 + step) / 6) ** alpha)
                    if norm > best_score[i]:
                        best_score[i], best[i] = norm, seqs[i, origin, 1:].tolist() + [EOS]
                    continue
                if k < beam:
                    new_seqs[i, k, :step] = seqs[i, origin]
                    new_seqs[i, k, step] = tok
                    new_scores[i, k] = sc
                    k += 1
        seqs, scores = new_seqs, new_scores
        # Stop when no live prefix could still beat the finished one (scores only fall).
        live_best = scores.max(axis=1) / (((5 + max_len) / 6) ** alpha)
        if np.all(best_score >= live_best):
            break
    out = np.zeros((b, max_len + 1), dtype="int32")
    for i in range(b):
        seq = best[i] if best[i] is not None else seqs[i, int(np.argmax(scores[i])), 1:].tolist()
        out[i, :len(seq)] = seq[:max_len + 1]
    return out
