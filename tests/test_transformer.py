"""The transformer suite: masks of the encoder–decoder, decoding, the Tatoeba parser, attention helpers."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from repro.data import tatoeba
from repro.experiments import attention_formula, attention_heads, attention_scaling, position_encoding, translation
from repro.models.transformer import (EOS, PAD, SOS, LSTMSeq2Seq, Transformer, beam_decode,
                                      causal_mask, greedy_decode)

VOCAB = 40


@pytest.fixture(scope="module")
def transformer() -> Transformer:
    keras.utils.set_random_seed(1)
    model = Transformer(VOCAB, VOCAB, d_model=32, heads=4, ff=64, layers=2, dropout=0.1, max_len=32)
    model((np.ones((1, 4), "int32"), np.ones((1, 3), "int32")))
    return model


def _padded_pair(length: int = 5, longer: int = 11):
    rng = np.random.default_rng(0)
    sentence = rng.integers(4, VOCAB, size=(1, length)).astype("int32")
    other = rng.integers(4, VOCAB, size=(1, longer)).astype("int32")
    batch = np.zeros((2, longer), "int32")
    batch[0, :length], batch[1] = sentence[0], other[0]
    return sentence, batch


def test_padded_batch_decodes_exactly_as_the_unpadded_sentence(transformer):
    sentence, batch = _padded_pair()
    alone = greedy_decode(transformer, sentence, max_len=12)
    in_batch = greedy_decode(transformer, batch, max_len=12)
    n = alone.shape[1]
    assert np.array_equal(alone[0], in_batch[0, :n]) and np.all(in_batch[0, n:] == PAD)
    # The logits themselves agree, not only their argmax.
    tgt_in = np.array([[SOS, 7, 9, 11]], "int32")
    l_alone = transformer((sentence, tgt_in)).numpy()
    l_batch = transformer((batch, np.repeat(tgt_in, 2, 0))).numpy()
    np.testing.assert_allclose(l_alone[0], l_batch[0], atol=1e-5)
    # ... and the test can fail: the same sentence with the pads replaced by a real token differs.
    unmasked = batch.copy()
    unmasked[0, sentence.shape[1]:] = 5
    assert not np.allclose(transformer((unmasked, np.repeat(tgt_in, 2, 0))).numpy()[0], l_alone[0], atol=1e-3)


def test_decoder_output_at_t_ignores_future_target_tokens(transformer):
    rng = np.random.default_rng(1)
    src = rng.integers(4, VOCAB, size=(1, 6)).astype("int32")
    tgt = np.concatenate([[[SOS]], rng.integers(4, VOCAB, size=(1, 9))], axis=1).astype("int32")
    base = transformer((src, tgt)).numpy()
    for t in (0, 3, 7):
        changed = tgt.copy()
        changed[0, t + 1:] = rng.integers(4, VOCAB, size=tgt.shape[1] - t - 1)
        out = transformer((src, changed)).numpy()
        np.testing.assert_allclose(out[0, :t + 1], base[0, :t + 1], atol=1e-5)
        assert not np.allclose(out[0, t + 1:], base[0, t + 1:], atol=1e-4)   # the future did change


def test_causal_mask_is_lower_triangular():
    m = causal_mask(4).numpy()[0]
    assert m.shape == (4, 4) and np.array_equal(m, np.tril(np.ones((4, 4), bool)))


def test_lstm_baseline_skips_source_padding():
    keras.utils.set_random_seed(2)
    model = LSTMSeq2Seq(VOCAB, VOCAB, embed_dim=16, units=16)
    sentence, batch = _padded_pair()
    tgt_in = np.array([[SOS, 7, 9]], "int32")
    a = model((sentence, tgt_in)).numpy()[0]
    b = model((batch, np.repeat(tgt_in, 2, 0))).numpy()[0]
    np.testing.assert_allclose(a, b, atol=1e-5)


class _Scripted:
    """A stand-in model whose next-token distribution spells a fixed answer, then ⟨EOS⟩."""

    answer = [5, 6, 7, EOS]

    def encode(self, src):
        return src

    def decode(self, memory, src, tgt_in):
        b, t = tgt_in.shape
        logits = np.full((b, t, 10), -5.0, "float32")
        for pos in range(t):
            logits[:, pos, self.answer[min(pos, len(self.answer) - 1)]] = 5.0
        return tf.constant(logits)


def test_greedy_and_beam_decode_stop_at_eos():
    src = np.ones((3, 4), "int32")
    g = greedy_decode(_Scripted(), src, max_len=8)
    b = beam_decode(_Scripted(), src, max_len=8, beam=3)
    for out in (g, b):
        assert out.shape[0] == 3 and all(list(row[:4]) == [5, 6, 7, EOS] for row in out)
        assert np.all(out[:, 4:] == PAD)


def test_zeroing_a_heads_output_slice_removes_that_head():
    keras.utils.set_random_seed(3)
    mha = keras.layers.MultiHeadAttention(4, 8)
    x = np.random.default_rng(0).normal(size=(2, 5, 32)).astype("float32")
    full = mha(x, x).numpy()
    kernel = mha._output_dense.kernel
    assert tuple(kernel.shape) == (4, 8, 32)
    saved = kernel.numpy()
    kernel.assign(np.zeros_like(saved))
    bias_only = mha(x, x).numpy()
    parts = []
    for h in range(4):
        one = np.zeros_like(saved)
        one[h] = saved[h]
        kernel.assign(one)
        parts.append(mha(x, x).numpy() - bias_only)
    kernel.assign(saved)
    np.testing.assert_allclose(bias_only + sum(parts), full, atol=1e-5)


def test_tatoeba_parser_keeps_text_and_strips_bom():
    tsv = '\ufeff1\t我們試試看！\t1276\tLet\'s try "something".\r\n2\t北京冬奧會\t3\tBeijing Winter Games\r\n'
    arrays = tatoeba.parse_tsv(tsv.encode("utf-8"))
    assert arrays["zh_id"].tolist() == [1, 2] and arrays["en_id"].tolist() == [1276, 3]
    assert tatoeba._unpack(arrays["en_utf8"], arrays["en_end"]) == ['Let\'s try "something".', "Beijing Winter Games"]
    assert tatoeba._unpack(arrays["zh_utf8"], arrays["zh_end"])[1] == "北京冬奧會"
    with pytest.raises(tatoeba.SourceError):
        tatoeba.parse_tsv(b"1\tonly two\n")


def test_opencc_converts_to_simplified():
    assert list(tatoeba.to_simplified(("北京冬奧會", "我們試試看！"))) == ["北京冬奥会", "我们试试看！"]


def test_simplified_text_is_kept_in_the_data_cache(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path))
    zh = ["北京冬奧會", "我們試試看！"]
    blob = np.frombuffer("".join(zh).encode(), dtype=np.uint8)
    first = tatoeba._simplified(blob, zh)
    (cached,) = tmp_path.glob("tatoeba-zh-simplified-*.npy")
    assert list(first) == ["北京冬奥会", "我们试试看！"] and list(np.load(cached)) == list(first)


def test_tokenizers_and_vocab():
    assert translation.tokenize_en("Let's go, Tom!") == ["let's", "go", ",", "tom", "!"]
    assert translation.tokenize_zh("北京 冬奥会") == list("北京冬奥会")
    v = translation.Vocab([["a", "b"], ["a"]], min_count=2)
    ids = v.encode(["a", "b", "<eos>"], 5)
    assert ids.tolist() == [4, 1, EOS, PAD, PAD] and v.decode(ids) == "a<unk>"


def test_bucketed_batches_cover_every_pair_once_with_few_shapes():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 16, size=300)
    src = np.zeros((300, 16), "int32")
    tgt = np.zeros((300, 22), "int32")
    for i, n in enumerate(lengths):
        src[i, :n] = i + 4
        tgt[i, :n + 2] = i + 4
    batches = translation.bucketed_batches(src, tgt, 32, np.random.default_rng(1))
    seen = sorted(int(s[j, 0]) - 4 for s, _ in batches for j in range(len(s)))
    assert seen == list(range(300))
    assert len({(s.shape[1], t.shape[1]) for s, t in batches}) <= 4
    assert all((s != PAD).sum(1).max() <= s.shape[1] for s, _ in batches)


def test_scaled_dot_product_small():
    m = attention_scaling.scaled_dot_product(seed=0, dims=(4, 64), queries=128, judge_dim=256, train_dims=(16,), steps=5,
                                     learning_rates=(1e-3,), evals=2, test_size=50).metrics
    assert abs(m["scaled_score_variance"] - 1) < 0.2 and abs(m["unscaled_score_variance"] / 256 - 1) < 0.2
    assert m["unscaled_entropy"] < m["scaled_entropy"] <= math.log(32)
    assert m["fp16_unscaled_naive_exp_overflows"] and not m["fp16_scaled_naive_exp_overflows"]


def test_rotary_scores_depend_only_on_relative_position():
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(1, 1, 1, 8)).astype("float32"), rng.normal(size=(1, 1, 1, 8)).astype("float32")
    tiled = lambda v: tf.constant(np.repeat(v, 10, axis=1))
    rq, rk = position_encoding._rotate(tiled(q)).numpy()[0, :, 0], position_encoding._rotate(tiled(k)).numpy()[0, :, 0]
    np.testing.assert_allclose(np.linalg.norm(rq, axis=1), np.linalg.norm(q), rtol=1e-5)
    np.testing.assert_allclose(rq[5] @ rk[2], rq[7] @ rk[4], rtol=1e-4)


def test_reversal_task_and_invariant_bound():
    x, y = position_encoding.reversal_task(500, 6, 3, np.random.default_rng(0))
    assert np.array_equal(y, x[:, ::-1])
    assert 1 / 3 < position_encoding.invariant_bound(x) < 1.0


# ------------------------------------------------------------------ the trained Transformer as a run

@pytest.fixture
def tiny_tatoeba(monkeypatch):
    """Sixty made-up pairs (a few English words, each one Chinese character), no download."""
    words = ["red", "blue", "cat", "dog", "big", "small"]
    chars = "红蓝猫狗大小"
    rng = np.random.default_rng(0)
    en, zh = [], []
    for _ in range(60):
        idx = rng.integers(0, len(words), rng.integers(1, 4))
        en.append(" ".join(words[i] for i in idx))
        zh.append("".join(chars[i] for i in idx))
    monkeypatch.setattr(translation.data, "load_tatoeba", lambda: (np.array(zh), np.array(en)))


TINY = dict(max_src=4, max_tgt=4, test_sentences=5, train_pairs=None, min_count=1, d_model=16, heads=2, ff=16,
            layers=1, dropout=0.1, epochs=1, batch_size=16, learning_rate=1e-3, warmup=5)


def test_producer_saves_the_transformer_that_consumers_load(tiny_tatoeba, tmp_path):
    r = translation.translation_transformer(seed=3, artifact_dir=str(tmp_path), **TINY)
    assert r.metrics["transformer_train_seconds"] > 0 and r.metrics["transformer_params"] > 0
    trained, d, _ = translation.train_transformer(3, TINY)         # training is deterministic for a seed
    loaded, d2, stats = translation.load_transformer(tmp_path, 3, TINY)
    assert stats["loss"] == r.metrics["transformer_train_loss"] and d2["src_v"].itos == d["src_v"].itos
    for a, b in zip(trained.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir())
    m = attention_heads.attention_heads(seed=3, lstm_units=8, probe_sentences=5, transformer_dir=str(tmp_path), **TINY)
    assert len(m.metrics["enc_self_entropy_by_head"]) == 2
    t = translation.translate_en_zh(seed=3, lstm_units=8, beam=2, beam_sentences=3, examples=2,
                                    transformer_dir=str(tmp_path), **TINY)
    assert t.metrics["transformer_train_seconds"] == r.metrics["transformer_train_seconds"]   # the producer's
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.iterdir()) == before      # files only read
    with pytest.raises(ValueError, match="seed 3"):
        translation.load_transformer(tmp_path, 4, TINY)
    with pytest.raises(ValueError, match="d_model"):
        translation.load_transformer(tmp_path, 3, TINY | {"d_model": 32})


# ------------------------------------------------------------------------------------ ATT-EQ

def test_multihead_formula_agrees_with_keras_without_bias_and_names_the_bias():
    m = attention_formula.multihead_attention_formula(seed=0).metrics
    assert m["max_abs_diff_aligned"] < 1e-5
    assert m["max_abs_diff_with_biases"] < 1e-5 and m["max_abs_diff_default_zero_bias"] < 1e-5
    assert m["max_abs_diff_as_written"] > 1e-2 and m["deviation_omits_bias"]
    assert m["max_abs_diff_unscaled"] > 1e-2


def test_multihead_as_written_by_hand_with_one_head():
    """One head, identity projections, one key: the output is W^o v whatever the query."""
    q, k, v = np.ones((1, 2, 2)), np.ones((1, 1, 2)), np.array([[[3.0, -1.0]]])
    eye = [np.eye(2)]
    w_o = np.array([[1.0, 2.0], [0.0, 1.0]])
    out = attention_formula.multihead_as_written(q, k, v, eye, eye, eye, w_o)
    assert np.allclose(out, [[[1.0, -1.0], [1.0, -1.0]]])


@pytest.mark.parametrize("plant", ["no_scale", "head_order"])
def test_multihead_formula_catches_a_planted_error(plant):
    m = attention_formula.multihead_attention_formula(seed=0, plant=plant).metrics
    assert m["max_abs_diff_aligned"] > 1e-2
