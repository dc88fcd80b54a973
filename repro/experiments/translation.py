"""7.7 English → Chinese translation on Tatoeba: the trained Transformer (a producer run), TRF-TRANSLATE,
TRF-PARALLEL.

Data: the Tatoeba pairs (Chinese converted to Simplified by OpenCC at load time). English is split
into lower-cased words and punctuation, Chinese into characters; vocabularies come from the training
pairs only (tokens seen at least twice, the rest ⟨UNK⟩). The split is by unique English sentence
(per seed), so no test sentence was seen in training; each test English sentence appears once, its
reference being its first Chinese translation in the file.

Training as the chapter describes: the decoder reads ⟨SOS⟩ + target (teacher forcing) and is scored
by cross-entropy against target + ⟨EOS⟩ (shifted by one), padding ignored. Decoding starts at ⟨SOS⟩
and feeds back its own tokens until ⟨EOS⟩, greedily and by beam search. BLEU (sacrebleu, tokenizer
"zh") and chrF are computed on the held-out sentences.
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from repro import data, plots, progress
from repro.kerasutil import fresh
from repro.models.transformer import (EOS, PAD, SOS, UNK, AttentionLSTMSeq2Seq, LSTMSeq2Seq, Transformer,
                                      WarmupInverseSqrt, beam_decode, greedy_decode)
from repro.registry import Result, experiment

EXAMPLE = "Beijing Winter Games"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")



def tokenize_en(s: str) -> list[str]:
    return _WORD.findall(s.lower())


def tokenize_zh(s: str) -> list[str]:
    return [c for c in s if not c.isspace()]


class Vocab:
    """Token ↔ id; 0..3 are ⟨PAD⟩, ⟨UNK⟩, ⟨SOS⟩, ⟨EOS⟩."""

    def __init__(self, sentences: list[list[str]], min_count: int):
        counts = Counter(t for s in sentences for t in s)
        self.itos = ["<pad>", "<unk>", "<sos>", "<eos>"] + sorted(t for t, c in counts.items() if c >= min_count)
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: list[str], length: int) -> np.ndarray:
        ids = [self.stoi.get(t, UNK) for t in tokens][:length]
        return np.array(ids + [PAD] * (length - len(ids)), dtype="int32")

    def decode(self, ids, sep: str = "") -> str:
        out = []
        for i in ids:
            if i in (EOS, PAD):
                break
            out.append(self.itos[int(i)])
        return sep.join(out)


def prepare(seed: int, max_src: int, max_tgt: int, test_sentences: int, train_pairs: int | None,
            min_count: int, val_sentences: int = 0) -> dict:
    """Tokenised, length-filtered pairs, split by unique English sentence (test, validation, train);
    id arrays and vocabularies. Each test English sentence appears once, with every Chinese
    translation the file holds for it as its references (``zh_refs_te``; ``zh_te`` is the first).
    The Chinese side is de-duplicated too: a training pair whose Chinese sentence is a reference of a
    test or validation sentence is dropped (Tatoeba links one Chinese sentence to several English
    paraphrases, so splitting by English alone leaks test targets into training)."""
    zh, en = data.load_tatoeba()
    src_tok = [tokenize_en(s) for s in en]
    tgt_tok = [tokenize_zh(s) for s in zh]
    keep = np.array([0 < len(a) <= max_src and 0 < len(b) <= max_tgt for a, b in zip(src_tok, tgt_tok)])
    rng = np.random.default_rng(seed)
    unique_en = np.unique(en[keep])
    rng.shuffle(unique_en)
    test_en = set(unique_en[:test_sentences].tolist())
    val_en = set(unique_en[test_sentences:test_sentences + val_sentences].tolist())
    is_test = np.array([e in test_en for e in en])
    is_val = np.array([e in val_en for e in en])
    held_zh = set(zh[is_test | is_val].tolist())
    leak = np.array([z in held_zh for z in zh]) & ~is_test & ~is_val & keep
    train_idx = np.flatnonzero(keep & ~is_test & ~is_val & ~leak)
    rng.shuffle(train_idx)
    if train_pairs is not None:
        train_idx = train_idx[:train_pairs]
    first: dict[str, int] = {}
    refs: dict[str, list[str]] = {}
    for i in np.flatnonzero(is_test):
        if keep[i]:
            first.setdefault(en[i], int(i))
        if zh[i] not in refs.setdefault(en[i], []):
            refs[en[i]].append(str(zh[i]))
    test_idx = np.array(sorted(first.values()), dtype=int)
    val_idx = np.flatnonzero(is_val & keep)
    src_v = Vocab([src_tok[i] for i in train_idx], min_count)
    tgt_v = Vocab([tgt_tok[i] for i in train_idx], min_count)

    def arrays(idx):
        if len(idx) == 0:
            return np.zeros((0, max_src), "int32"), np.zeros((0, max_tgt + 2), "int32")
        src = np.stack([src_v.encode(src_tok[i], max_src) for i in idx])
        tgt = np.stack([tgt_v.encode(["<sos>"] + tgt_tok[i] + ["<eos>"], max_tgt + 2) for i in idx])
        tgt[:, 0] = SOS
        for row, i in zip(tgt, idx):   # <sos>/<eos> are not words of the corpus: set them by id
            row[len(tgt_tok[i]) + 1] = EOS
        return src, tgt

    (src_tr, tgt_tr), (src_te, _), (src_va, tgt_va) = arrays(train_idx), arrays(test_idx), arrays(val_idx)
    return {"src_v": src_v, "tgt_v": tgt_v, "src_tr": src_tr, "tgt_tr": tgt_tr, "src_te": src_te,
            "src_va": src_va, "tgt_va": tgt_va,
            "en_te": en[test_idx], "zh_te": zh[test_idx], "zh_refs_te": [refs[e] for e in en[test_idx]],
            "max_src": max_src, "max_tgt": max_tgt, "pairs_kept": int(keep.sum()), "pairs_total": len(en),
            "train_pairs_dropped_zh_overlap": int(leak.sum())}


def build(kind: str, d: dict, d_model: int, heads: int, ff: int, layers: int, lstm_units: int,
          dropout: float) -> keras.Model:
    if kind == "transformer":
        model = Transformer(len(d["src_v"]), len(d["tgt_v"]), d_model=d_model, heads=heads, ff=ff,
                            layers=layers, dropout=dropout, max_len=max(d["max_src"], d["max_tgt"]) + 2)
    elif kind == "lstm_attention":
        model = AttentionLSTMSeq2Seq(len(d["src_v"]), len(d["tgt_v"]), embed_dim=d_model, units=lstm_units,
                                     dropout=dropout)
    else:
        model = LSTMSeq2Seq(len(d["src_v"]), len(d["tgt_v"]), embed_dim=d_model, units=lstm_units,
                            dropout=dropout)
    model((d["src_tr"][:2], d["tgt_tr"][:2, :-1]))   # build the weights
    return model


def bucketed_batches(src: np.ndarray, tgt: np.ndarray, batch_size: int, rng: np.random.Generator,
                     edges: tuple[int, ...] = (8, 12, 16)) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches of pairs of similar length, cut to the longest sentence of their bucket, in random
    order: half the positions of a padded Tatoeba batch would otherwise be padding. Each bucket
    has one fixed shape, so the train step is traced once per bucket only."""
    src_len, tgt_len = (src != PAD).sum(1), (tgt != PAD).sum(1)
    size = np.maximum(src_len, tgt_len - 2)
    bucket = np.searchsorted(np.array(edges), size)      # 0 .. len(edges)
    out = []
    for b in range(len(edges) + 1):
        idx = rng.permutation(np.flatnonzero(bucket == b))
        if len(idx) == 0:
            continue
        top = edges[b] if b < len(edges) else max(src.shape[1], tgt.shape[1] - 2)
        s_cut, t_cut = min(top, src.shape[1]), min(top + 2, tgt.shape[1])
        out += [(src[idx[i:i + batch_size], :s_cut], tgt[idx[i:i + batch_size], :t_cut])
                for i in range(0, len(idx), batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


def batches_per_pass(tgt: np.ndarray, src: np.ndarray, batch_size: int, edges: tuple[int, ...] = (8, 12, 16)) -> int:
    """How many batches `bucketed_batches` cuts one pass over the pairs into (fixed by the bucket sizes)."""
    size = np.maximum((src != PAD).sum(1), (tgt != PAD).sum(1) - 2)
    counts = np.bincount(np.searchsorted(np.array(edges), size), minlength=len(edges) + 1)
    return int(sum(-(-c // batch_size) for c in counts if c))


def train(model: keras.Model, d: dict, seed: int, epochs: int, batch_size: int, learning_rate: float,
          warmup: int, label: str, patience: int | None = None, checks_per_epoch: int = 1) -> dict:
    """Teacher forcing: input ⟨SOS⟩ y1..yn, target y1..yn ⟨EOS⟩; cross-entropy ignoring padding.
    ``warmup`` > 0: linear warm-up and 1/√step decay (Vaswani et al.); 0: a constant rate. With
    validation pairs, the validation loss is measured ``checks_per_epoch`` times per pass over the
    training pairs (a check); with ``patience`` (in checks), training stops when it has not improved
    for that many checks and the best weights are restored (at most ``epochs`` passes); convergence
    is judged on it. Reports the wall and the process CPU seconds of training."""
    from repro import convergence

    src, tgt = d["src_tr"], d["tgt_tr"]
    rng = np.random.default_rng(seed)

    def batches():   # a fresh shuffle each pass, from a generator seeded once: deterministic
        while True:
            for s, t in bucketed_batches(src, tgt, batch_size, rng):
                yield (s, t[:, :-1]), t[:, 1:]

    spec = tf.TensorSpec((None, None), tf.int32)
    sig = ((spec, spec), spec)
    ds = tf.data.Dataset.from_generator(batches, output_signature=sig).prefetch(2)
    per_pass = batches_per_pass(tgt, src, batch_size)
    checks = max(1, int(checks_per_epoch))
    steps_per_check = max(1, per_pass // checks)
    total_checks = epochs * checks
    has_val = len(d.get("src_va", [])) > 0
    val = None
    if has_val:
        vb = bucketed_batches(d["src_va"], d["tgt_va"], 256, np.random.default_rng(0))
        val = tf.data.Dataset.from_generator(lambda: (((s, t[:, :-1]), t[:, 1:]) for s, t in vb),
                                             output_signature=sig)
    rate = WarmupInverseSqrt(learning_rate, warmup) if warmup > 0 else learning_rate
    model.compile(optimizer=keras.optimizers.Adam(rate, beta_2=0.98, epsilon=1e-9, clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD))
    callbacks = [progress.epochs(total_checks, label)]
    stop = None
    if has_val and patience:
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
        callbacks.append(stop)
    t0, c0 = time.perf_counter(), time.process_time()
    hist = model.fit(ds, epochs=total_checks, steps_per_epoch=steps_per_check, verbose=0, validation_data=val,
                     callbacks=callbacks)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    ran = len(hist.history["loss"])
    tokens = int(np.sum(tgt[:, 1:] != PAD)) * ran * steps_per_check / per_pass
    out = {"loss": float(hist.history["loss"][-1]), "seconds": seconds, "cpu_seconds": cpu,
           "tokens_per_s": tokens / seconds, "loss_curve": [float(x) for x in hist.history["loss"]],
           "checks_run": ran, "epochs_run": ran / checks, "steps_per_check": steps_per_check}
    if has_val:
        out["val_curve"] = [float(x) for x in hist.history["val_loss"]]
        out["val_loss"] = float(min(out["val_curve"]))
        out["best_check"] = int(np.argmin(out["val_curve"])) + 1
        out["convergence"] = (convergence.from_early_stopping(hist, stop, patience=patience, epochs=total_checks)
                              if stop is not None else
                              convergence.from_history(hist, monitor="val_loss", budget=f"{ran} checks"))
        out["convergence"]["rule"] = out["convergence"]["rule"].replace(f"{patience} epochs", f"{patience} checks")
        out["convergence"]["budget"] = (f"{ran} checks of {steps_per_check} steps ({ran / checks:g} of at most "
                                        f"{epochs} passes over the training pairs)")
    return out


def translate(model: keras.Model, d: dict, src: np.ndarray, beam: int = 1, batch: int = 256) -> list[str]:
    out = []
    for i in range(0, len(src), batch):
        chunk = src[i:i + batch]
        ids = (greedy_decode(model, chunk, d["max_tgt"] + 1) if beam == 1
               else beam_decode(model, chunk, d["max_tgt"] + 1, beam=beam))
        out += [d["tgt_v"].decode(row) for row in ids]
    return out


def scores(hyps: list[str], refs: list) -> tuple[float, float]:
    """Corpus BLEU (sacrebleu, tokenizer "zh": Chinese by character) and chrF. ``refs`` holds one
    reference per sentence, or a list of references per sentence (all of them are used)."""
    import sacrebleu

    multi = [r if isinstance(r, (list, tuple)) else [r] for r in refs]
    streams = [[r[j] if j < len(r) else None for r in multi] for j in range(max(len(r) for r in multi))]
    return (float(sacrebleu.corpus_bleu(hyps, streams, tokenize="zh").score),
            float(sacrebleu.corpus_chrf(hyps, streams).score))


def encode_english(d: dict, sentences: list[str]) -> np.ndarray:
    return np.stack([d["src_v"].encode(tokenize_en(s), d["max_src"]) for s in sentences])


# --------------------------------------------------------------- the trained Transformer (a producer)
# TRF-TRANSLATE and ATT-MULTIHEAD judge the same trained Transformer of a seed. It is trained once by
# the producer run `translation_transformer`, which saves its weights, the parameters it was trained
# with and its vocabularies into its artifact directory; the consumers (`translate_en_zh`,
# `attention_heads`) take that directory as `transformer_dir` and load the model from it (the files are
# only read). The data are re-derived from seed + parameters (deterministic) and checked against the
# saved vocabularies. Without a directory (tests) a consumer trains the model itself.

MODEL_PARAMS = ("max_src", "max_tgt", "test_sentences", "train_pairs", "min_count", "d_model", "heads", "ff",
                "layers", "dropout", "epochs", "batch_size", "learning_rate", "warmup", "val_sentences", "patience",
                "checks_per_epoch")
MODEL_DEFAULTS = {"val_sentences": 0, "patience": None, "checks_per_epoch": 1}
WEIGHTS, CONFIG = "transformer.weights.h5", "transformer.json"


def _data(seed: int, c: dict) -> dict:
    return prepare(seed, c["max_src"], c["max_tgt"], c["test_sentences"], c["train_pairs"], c["min_count"],
                   c.get("val_sentences", 0))


def _build_transformer(seed: int, d: dict, c: dict) -> keras.Model:
    fresh(seed)
    # lstm_units is not used by the Transformer
    return build("transformer", d, c["d_model"], c["heads"], c["ff"], c["layers"], 0, c["dropout"])


def train_transformer(seed: int, c: dict) -> tuple[keras.Model, dict, dict]:
    """(model, data, training stats) for the parameters `c` (the keys of MODEL_PARAMS)."""
    d = _data(seed, c)
    model = _build_transformer(seed, d, c)
    stats = train(model, d, seed, c["epochs"], c["batch_size"], c["learning_rate"], c["warmup"], "transformer",
                  patience=c.get("patience"), checks_per_epoch=c.get("checks_per_epoch", 1))
    return model, d, stats


def save_transformer(directory: str | Path, seed: int, c: dict, model: keras.Model, d: dict, stats: dict) -> None:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    model.save_weights(out / WEIGHTS)
    (out / CONFIG).write_text(json.dumps({"seed": seed, "params": c, "stats": stats,
                                          "src_vocab": d["src_v"].itos, "tgt_vocab": d["tgt_v"].itos,
                                          "train_pairs": len(d["src_tr"])}, ensure_ascii=False))


def load_transformer(directory: str | Path, seed: int, c: dict) -> tuple[keras.Model, dict, dict]:
    """The Transformer a `translation_transformer` run saved for this seed and these parameters:
    (model, data, the producer's training stats). Refuses a directory saved for anything else."""
    src = Path(directory)
    c = {**MODEL_DEFAULTS, **c}
    saved = json.loads((src / CONFIG).read_text())
    if saved["seed"] != seed or saved["params"] != c:
        diff = {k: (saved["params"].get(k), v) for k, v in c.items() if saved["params"].get(k) != v}
        raise ValueError(f"the Transformer in {directory} was trained for seed {saved['seed']} "
                         f"(this run: {seed}); differing parameters (saved, wanted): {diff}")
    d = _data(seed, c)
    if d["src_v"].itos != saved["src_vocab"] or d["tgt_v"].itos != saved["tgt_vocab"] \
            or len(d["src_tr"]) != saved["train_pairs"]:
        raise ValueError(f"the data re-derived for seed {seed} differ from those the Transformer in "
                         f"{directory} was trained on (vocabulary or training pairs)")
    model = _build_transformer(seed, d, c)
    model.load_weights(src / WEIGHTS)
    return model, d, saved["stats"]


def trained_transformer(seed: int, transformer_dir: str | None, **params) -> tuple[keras.Model, dict, dict]:
    """Loaded from `transformer_dir` when given, else trained here (tests); `params` holds at least
    MODEL_PARAMS (other keys are ignored)."""
    c = {k: params[k] if k in params else MODEL_DEFAULTS[k] for k in MODEL_PARAMS}
    if transformer_dir is not None:
        return load_transformer(transformer_dir, seed, c)
    return train_transformer(seed, c)


@experiment("translation_transformer", datasets=("tatoeba",))
def translation_transformer(*, seed: int, max_src: int = 16, max_tgt: int = 20, test_sentences: int = 1000,
                            train_pairs: int | None = None, min_count: int = 2, d_model: int = 128,
                            heads: int = 4, ff: int = 512, layers: int = 2, dropout: float = 0.1,
                            epochs: int = 4, batch_size: int = 64, learning_rate: float = 1e-3,
                            warmup: int = 1000, val_sentences: int = 0, patience: int | None = None,
                            checks_per_epoch: int = 1, artifact_dir: str | None = None) -> Result:
    """Producer: trains the Transformer of this seed (with `val_sentences` held out and `patience`:
    early stopping on validation loss, checked `checks_per_epoch` times a pass, at most `epochs`
    passes) and saves it into `artifact_dir` for TRF-TRANSLATE's and ATT-MULTIHEAD's runs; reports its
    training loss, time (wall and process CPU), size, convergence."""
    c = dict(max_src=max_src, max_tgt=max_tgt, test_sentences=test_sentences, train_pairs=train_pairs,
             min_count=min_count, d_model=d_model, heads=heads, ff=ff, layers=layers, dropout=dropout,
             epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, warmup=warmup,
             val_sentences=val_sentences, patience=patience, checks_per_epoch=checks_per_epoch)
    model, d, stats = train_transformer(seed, c)
    if artifact_dir is not None:
        save_transformer(artifact_dir, seed, c, model, d, stats)
    metrics = {"transformer_train_loss": stats["loss"],
               "transformer_loss_by_epoch": [round(x, 5) for x in stats["loss_curve"]],
               "transformer_train_seconds": stats["seconds"],
               "transformer_train_cpu_seconds": stats["cpu_seconds"],
               "transformer_epochs_run": stats["epochs_run"],
               "transformer_tokens_per_s": stats["tokens_per_s"],
               "transformer_params": int(model.count_params()),
               "train_pairs": len(d["src_tr"]), "src_vocab": len(d["src_v"]), "tgt_vocab": len(d["tgt_v"]),
               "train_pairs_dropped_zh_overlap": d["train_pairs_dropped_zh_overlap"]}
    if "val_curve" in stats:
        metrics["transformer_val_loss_by_check"] = [round(x, 5) for x in stats["val_curve"]]
    return Result(metrics=metrics,
                  convergence={"transformer": stats["convergence"]} if "convergence" in stats else {},
                  notes=f"Transformer d={d_model}, {heads} heads, ff {ff}, {layers}+{layers} layers; "
                        f"{stats['epochs_run']:g} of at most {epochs} passes over {len(d['src_tr'])} pairs, batch "
                        f"{batch_size}, Adam peak {learning_rate:g} with {warmup} warm-up steps; saved for the "
                        f"runs that use it")


EXAMPLE_ZH = "北京冬奥会"
EXAMPLE_ZH_PARTS = ("北京", "冬", "奥", "奥运", "冬奥会", "北京冬奥会")


def example_counts(d: dict) -> dict:
    """How often the chapter's example occurs in this seed's training pairs: per English word of
    "Beijing Winter Games", the training pairs whose English holds it; per part of 北京冬奥会, the
    training pairs whose Chinese holds it (the phrase itself, as a whole, is never in Tatoeba)."""
    src_ids = [d["src_v"].stoi.get(w) for w in tokenize_en(EXAMPLE)]
    zh_train = [d["tgt_v"].decode(row[1:]) for row in d["tgt_tr"]]
    en = {w: int(np.sum(np.any(d["src_tr"] == i, axis=1))) if i is not None else 0
          for w, i in zip(tokenize_en(EXAMPLE), src_ids)}
    words = tokenize_en(EXAMPLE)
    together = int(np.sum(np.all([np.any(d["src_tr"] == i, axis=1) for i in src_ids if i is not None], axis=0))) \
        if all(i is not None for i in src_ids) else 0
    return {"en": en, "en_all_three": together, "unknown": [w for w, i in zip(words, src_ids) if i is None],
            "zh": {part: sum(part in z for z in zh_train) for part in EXAMPLE_ZH_PARTS}}


@experiment("translate_en_zh", datasets=("tatoeba",))
def translate_en_zh(*, seed: int, max_src: int = 16, max_tgt: int = 20, test_sentences: int = 1000,
                    train_pairs: int | None = None, min_count: int = 2, d_model: int = 128,
                    heads: int = 4, ff: int = 512, layers: int = 2, lstm_units: int = 256,
                    lstm_embed: int | None = None, dropout: float = 0.1, epochs: int = 4, batch_size: int = 64,
                    learning_rate: float = 1e-3, warmup: int = 1000, val_sentences: int = 0,
                    patience: int | None = None, checks_per_epoch: int = 1,
                    lstm_learning_rates: tuple[float, ...] = (1e-3,), lstm_epochs: int | None = None,
                    beam: int = 4, beam_sentences: int = 500, examples: int = 12,
                    transformer_dir: str | None = None) -> Result:
    """TRF-TRANSLATE: BLEU/chrF of the Transformer and of an attention-LSTM baseline on held-out
    Tatoeba sentences, every reference of a test sentence used, and the chapter's own example.

    Regime, and why: the claim is that the chapter's training recipe (shifted targets, teacher
    forcing, cross-entropy) and decoding (from ⟨SOS⟩ until ⟨EOS⟩) give a model that translates.
    Data: Tatoeba en→zh, split by English sentence, the Chinese side de-duplicated between train
    and test (a training pair whose Chinese is a test reference is dropped), all references of a
    test sentence used for BLEU and chrF. The Transformer is loaded from `transformer_dir` (the
    `translation_transformer` run of this seed; its training loss, time and convergence are that
    run's) or trained here when None. The baseline is the strong recurrent model of its time, an
    LSTM encoder–decoder with global attention (Luong et al. 2015; `lstm_units` units, embeddings of
    `lstm_embed`, default d_model), with its own schedule (constant Adam rate, no warm-up) and its
    own rate from `lstm_learning_rates` (chosen on validation loss), the same data, batches, budget
    (`lstm_epochs`, default `epochs` passes) and early stopping as the Transformer. Both trained
    models report their convergence state and training CPU seconds. Beam 4 with length penalty 0.6
    (Wu et al. 2016) on the first `beam_sentences` test sentences. The chapter's example "Beijing
    Winter Games" → 北京冬奥会 is decoded by both models, and how often its words occur in this
    seed's training pairs is counted (`example_counts`)."""
    trf, d, trf_stats = trained_transformer(
        seed, transformer_dir, max_src=max_src, max_tgt=max_tgt, test_sentences=test_sentences,
        train_pairs=train_pairs, min_count=min_count, d_model=d_model, heads=heads, ff=ff, layers=layers,
        dropout=dropout, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, warmup=warmup,
        val_sentences=val_sentences, patience=patience, checks_per_epoch=checks_per_epoch)
    lstm, lstm_stats, lstm_rates, lstm_rate_states = None, None, {}, {}
    for lr in lstm_learning_rates:
        fresh(seed)
        model = build("lstm_attention", d, lstm_embed or d_model, heads, ff, layers, lstm_units, dropout)
        stats = train(model, d, seed, lstm_epochs or epochs, batch_size, lr, 0, f"lstm {lr:g}", patience=patience,
                      checks_per_epoch=checks_per_epoch)
        stats["lr"] = lr
        lstm_rates[lr] = stats.get("val_loss", stats["loss"])
        lstm_rate_states[lr] = (stats.get("convergence") or {}).get("state")
        if lstm is None or lstm_rates[lr] < lstm_stats.get("val_loss", lstm_stats["loss"]):
            lstm, lstm_stats = model, stats

    refs = d["zh_refs_te"]
    nb = min(beam_sentences, len(refs))   # beam search on the first sentences only (it is slower)
    metrics: dict = {}
    outputs: dict[str, list[str]] = {}
    for name, model, stats in (("transformer", trf, trf_stats), ("lstm", lstm, lstm_stats)):
        progress.step(0, 2, f"decoding {name}")
        greedy = translate(model, d, d["src_te"])
        beamed = translate(model, d, d["src_te"][:nb], beam=beam)
        metrics[f"{name}_bleu_greedy"], metrics[f"{name}_chrf_greedy"] = scores(greedy, refs)
        metrics[f"{name}_bleu_beam"], metrics[f"{name}_chrf_beam"] = scores(beamed, refs[:nb])
        metrics[f"{name}_bleu_greedy_beamset"] = scores(greedy[:nb], refs[:nb])[0]
        metrics[f"{name}_bleu_greedy_first_ref"] = scores(greedy, [r[0] for r in refs])[0]
        metrics[f"{name}_params"] = int(model.count_params())
        metrics[f"{name}_train_loss"] = stats["loss"]
        metrics[f"{name}_train_seconds"] = stats["seconds"]
        if "cpu_seconds" in stats:       # a Transformer trained by an older producer has none
            metrics[f"{name}_train_cpu_seconds"] = stats["cpu_seconds"]
        metrics[f"{name}_epochs_run"] = stats.get("epochs_run", len(stats.get("loss_curve", [])))
        if "val_curve" in stats:
            metrics[f"{name}_val_loss_by_check"] = [round(x, 4) for x in stats["val_curve"]]
            metrics[f"{name}_best_val_loss"] = float(min(stats["val_curve"]))
        ex = encode_english(d, [EXAMPLE])
        metrics[f"{name}_beijing_winter_games"] = translate(model, d, ex)[0]
        metrics[f"{name}_beijing_winter_games_beam"] = translate(model, d, ex, beam=beam)[0]
        outputs[name], outputs[f"{name}_beam"] = greedy, beamed
    metrics["lstm_learning_rate"] = lstm_stats["lr"]
    metrics["lstm_val_loss_by_rate"] = {f"{k:g}": round(v, 4) for k, v in lstm_rates.items()}
    metrics["lstm_state_by_rate"] = {f"{k:g}": v for k, v in lstm_rate_states.items()}
    metrics["bleu_transformer_minus_lstm"] = metrics["transformer_bleu_greedy"] - metrics["lstm_bleu_greedy"]
    if "transformer_train_cpu_seconds" in metrics:
        metrics["train_cpu_ratio_lstm_over_transformer"] = (metrics["lstm_train_cpu_seconds"]
                                                            / metrics["transformer_train_cpu_seconds"])
    counts = example_counts(d)
    metrics["beijing_winter_games_unknown_words"] = counts["unknown"]
    metrics["beijing_winter_games_en_pairs_by_word"] = counts["en"]
    metrics["beijing_winter_games_en_pairs_all_three"] = counts["en_all_three"]
    metrics["beijing_winter_games_zh_pairs_by_part"] = counts["zh"]
    metrics.update({"train_pairs": len(d["src_tr"]), "test_sentences": len(refs),
                    "references_per_sentence": float(np.mean([len(r) for r in refs])),
                    "train_pairs_dropped_zh_overlap": d["train_pairs_dropped_zh_overlap"],
                    "beam_sentences": nb, "src_vocab": len(d["src_v"]), "tgt_vocab": len(d["tgt_v"])})
    convergence = {}
    for name, stats in (("transformer", trf_stats), ("lstm", lstm_stats)):
        if "convergence" in stats:
            convergence[name] = dict(stats["convergence"], metrics=[f"{name}_*"])

    # Artifacts: the held-out translations (all of them) and a table of the first few.
    lines = ["english\treferences\ttransformer_greedy\ttransformer_beam\tlstm_greedy\tlstm_beam"]
    for i, (e, r) in enumerate(zip(d["en_te"], refs)):
        beam_t = outputs["transformer_beam"][i] if i < nb else ""
        beam_l = outputs["lstm_beam"][i] if i < nb else ""
        lines.append("\t".join([e, " | ".join(r), outputs["transformer"][i], beam_t, outputs["lstm"][i], beam_l]))
    md = ["| English | references | Transformer (greedy) | Transformer (beam) | LSTM+attention (greedy) |",
          "|---|---|---|---|---|"]
    for i in range(min(examples, nb)):
        md.append(f"| {d['en_te'][i]} | {' / '.join(refs[i])} | {outputs['transformer'][i]} | "
                  f"{outputs['transformer_beam'][i]} | {outputs['lstm'][i]} |")
    md.append(f"| {EXAMPLE} | 北京冬奥会 (the chapter's) | {metrics['transformer_beijing_winter_games']} | "
              f"{metrics['transformer_beijing_winter_games_beam']} | {metrics['lstm_beijing_winter_games']} |")
    table = ["| model | BLEU greedy | chrF greedy | BLEU beam | chrF beam | parameters |", "|---|---|---|---|---|---|"]
    for name in ("transformer", "lstm"):
        table.append(f"| {name} | {metrics[f'{name}_bleu_greedy']:.2f} | {metrics[f'{name}_chrf_greedy']:.2f} | "
                     f"{metrics[f'{name}_bleu_beam']:.2f} | {metrics[f'{name}_chrf_beam']:.2f} | "
                     f"{metrics[f'{name}_params']:,} |")

    fig, ax = plots.figure(5.0, 3.2)
    names = ["transformer", "lstm"]
    x = np.arange(2)
    ax.bar(x - 0.2, [metrics[f"{n}_bleu_greedy"] for n in names], 0.4, label="greedy")
    ax.bar(x + 0.2, [metrics[f"{n}_bleu_beam"] for n in names], 0.4, label=f"beam {beam}")
    ax.set_xticks(x, ["transformer", "LSTM+attention"])
    ax.set(ylabel="BLEU (sacrebleu, zh)", title=f"Tatoeba en→zh, seed {seed}, {len(refs)} held-out sentences")
    ax.legend()
    return Result(
        metrics=metrics, convergence=convergence,
        artifacts={"translations.tsv": "\n".join(lines).encode(),
                   "translations.md": ("\n".join(table) + "\n\n" + "\n".join(md) + "\n").encode(),
                   "bleu.png": plots.png(fig)},
        notes=f"Transformer d={d_model}, {heads} heads, ff {ff}, {layers}+{layers} layers, "
              f"{trf_stats.get('epochs_run', epochs):g} passes; LSTM+attention {lstm_units} units, embeddings "
              f"{lstm_embed or d_model}, rate {lstm_stats['lr']:g} of {list(lstm_learning_rates)}, "
              f"{lstm_stats.get('epochs_run'):g} passes; "
              f"{len(d['src_tr'])} training pairs, batch {batch_size}; all references "
              f"({metrics['references_per_sentence']:.2f} per sentence); beam {beam} on {nb} sentences")


# --------------------------------------------------------------------------------- TRF-PARALLEL

def transformer_flops_per_token(d_model: int, ff: int, layers: int, vocab: int, length: int) -> float:
    """Forward FLOPs (2 per multiply-add) per target token of the encoder–decoder Transformer, source
    and target both `length` long: per layer the projections (4d² self-attention; the decoder 8d²
    with cross-attention), the feed-forward 2·d·ff, the attention scores and weighted sums 2·L·d per
    attention; the output projection d·V. Embeddings and norms are negligible."""
    d = d_model
    enc = 4 * d * d + 2 * d * ff + 2 * length * d
    dec = 8 * d * d + 2 * d * ff + 4 * length * d
    return 2.0 * (layers * (enc + dec) + d * vocab)


def lstm_flops_per_token(embed: int, units: int, vocab: int, layers: int = 1) -> float:
    """Forward FLOPs per target token of the LSTM encoder–decoder (one source token per target token):
    each LSTM step 4u(e + u) multiply-adds, an encoder and a decoder stack, the output projection u·V."""
    per = 4 * units * (embed + units) + (layers - 1) * 4 * units * 2 * units
    return 2.0 * (2 * per + units * vocab)


def flop_matched_units(target: float, embed: int, vocab: int) -> int:
    """The LSTM width whose FLOPs per token come closest to `target`."""
    return int(min(range(8, 4097), key=lambda u: abs(lstm_flops_per_token(embed, u, vocab) - target)))


def _step_fn(model: keras.Model):
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD)
    opt = keras.optimizers.Adam(1e-4)

    @tf.function
    def step(s, ti, to):
        with tf.GradientTape() as tape:
            loss = loss_fn(to, model((s, ti), training=True))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    return step


def _median_time(fn, args, steps: int) -> float:
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        out = fn(*args)
        np.asarray(out)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def parallel_headroom(rows: int, length: int, units: int, steps: int) -> float:
    """How much faster the device does the recurrent matrix product of an LSTM (rows × u by u × 4u)
    for all `length` positions at once than position by position, each position waiting for the
    previous one (what a recurrence forces): time(sequential) / time(one product over all positions),
    the same FLOPs. Near 1: the device is already full with one position's work, so computing the
    positions in parallel (what attention allows) cannot pay; well above 1: it has room."""
    rng = np.random.default_rng(0)
    w = tf.constant(rng.normal(0, 1 / np.sqrt(units), (units, 4 * units)).astype("float32"))
    h0 = tf.constant(rng.normal(size=(rows, units)).astype("float32"))
    whole = tf.constant(rng.normal(size=(rows * length, units)).astype("float32"))

    @tf.function
    def sequential(h):
        for _ in tf.range(length):
            h = tf.tanh(tf.matmul(h, w)[:, :units])
        return h

    @tf.function
    def parallel(x):
        return tf.tanh(tf.matmul(x, w)[:, :units])

    sequential(h0), parallel(whole)           # trace
    seq, par = [], []
    for _ in range(steps):                    # interleaved, so a load change hits both
        seq.append(_median_time(sequential, (h0,), 1))
        par.append(_median_time(parallel, (whole,), 1))
    return float(np.median(seq) / np.median(par))


@experiment("seq2seq_throughput")
def seq2seq_throughput(*, seed: int, lengths: tuple[int, ...] = (8, 16, 32, 64, 128), tokens: int = 4096,
                       vocab: int = 4000, d_model: int = 128, heads: int = 4, ff: int = 512,
                       layers: int = 2, lstm_units: int | None = None, steps: int = 5, repeats: int = 2) -> Result:
    """TRF-PARALLEL: training step time of a Transformer and of an LSTM encoder–decoder with the same
    FLOPs per token, against sequence length at a fixed number of tokens per batch.

    Regime, and why: the claim is that attention computes all positions of a sequence at once where
    a recurrence must wait for the previous position. Holding the tokens per batch fixed (batch =
    tokens / length) keeps the work per step the same at every length, so the Transformer's step time
    should stay nearly flat while the LSTM's grows with the number of sequential steps (its per-step
    batch shrinks) -- but only where the device has parallel capacity that one position's work leaves
    idle. The models are FLOP-matched (the LSTM's width solved so that its forward FLOPs per token
    equal the Transformer's at the middle length; the old comparison gave the LSTM ~20% more), so a
    difference in speed is not a difference in work. The device's parallel headroom is measured
    beside it (`parallel_headroom`: the LSTM's recurrent product position by position against all
    positions at once): on 2 CPU cores it is small, and the claim cannot show; the `paper` profile
    (the base model's sizes, lengths to 512) is for a GPU, where it is large.
    Token ids are random: a step's cost does not depend on which tokens they are. Repeats are
    interleaved (Transformer, LSTM, Transformer, ...) so a change of machine load hits both."""
    rng = np.random.default_rng(seed)
    lengths = sorted(lengths)
    ref = lengths[len(lengths) // 2]
    f_trf = transformer_flops_per_token(d_model, ff, layers, vocab, ref)
    units = lstm_units or flop_matched_units(f_trf, d_model, vocab)
    metrics: dict = {"lstm_units": units, "flop_match_length": ref, "tokens_per_batch": tokens,
                     "transformer_gflops_per_step_ref": 3 * tokens * f_trf / 1e9,
                     "lstm_gflops_per_step_ref": 3 * tokens * lstm_flops_per_token(d_model, units, vocab) / 1e9}
    times: dict[str, list[float]] = {"transformer": [], "lstm": []}
    for j, n in enumerate(lengths):
        batch = max(1, tokens // n)
        src = rng.integers(4, vocab, size=(batch, n)).astype("int32")
        tgt = rng.integers(4, vocab, size=(batch, n + 1)).astype("int32")
        fake = {"src_v": range(vocab), "tgt_v": range(vocab), "max_src": n, "max_tgt": n,
                "src_tr": src, "tgt_tr": tgt}
        steps_fn = {}
        for kind in ("transformer", "lstm"):
            fresh(seed)
            model = build(kind, fake, d_model, heads, ff, layers, units, 0.1)
            metrics.setdefault(f"{kind}_params", int(model.count_params()))
            steps_fn[kind] = _step_fn(model)
        args = (tf.constant(src), tf.constant(tgt[:, :-1]), tf.constant(tgt[:, 1:]))
        for kind in steps_fn:                       # trace and warm up
            for _ in range(2):
                np.asarray(steps_fn[kind](*args))
        got: dict[str, list[float]] = {"transformer": [], "lstm": []}
        for r in range(repeats):
            for kind in steps_fn:
                progress.step(j * repeats + r, len(lengths) * repeats, f"{kind} length {n}, batch {batch}")
                got[kind].append(_median_time(steps_fn[kind], args, steps))
        for kind in got:
            t = float(np.median(got[kind]))
            times[kind].append(t)
            metrics[f"{kind}_step_ms_len{n}"] = 1000 * t
        metrics[f"flop_ratio_lstm_over_transformer_len{n}"] = (
            lstm_flops_per_token(d_model, units, vocab) / transformer_flops_per_token(d_model, ff, layers, vocab, n))
        metrics[f"speedup_len{n}"] = times["lstm"][-1] / times["transformer"][-1]
    total_tokens = tokens * len(lengths)
    for kind in times:
        # tokens per second over all lengths together: one number a noisy step at one length cannot swing
        metrics[f"{kind}_tokens_per_s"] = total_tokens / float(sum(times[kind]))
        # growth of step time with length at fixed tokens: 0 = flat (parallel), 1 = linear in length
        metrics[f"{kind}_time_exponent"] = float(np.polyfit(np.log(lengths), np.log(times[kind]), 1)[0])
    metrics["speedup_transformer_over_lstm"] = metrics["transformer_tokens_per_s"] / metrics["lstm_tokens_per_s"]
    metrics["speedup_longest"] = metrics[f"speedup_len{lengths[-1]}"]
    progress.step(1, 1, "parallel headroom")
    metrics["parallel_headroom"] = parallel_headroom(max(1, tokens // lengths[-1]), lengths[-1], units, 2 * steps)

    device = tf.config.list_logical_devices()[-1].device_type
    fig, ax = plots.figure(5.0, 3.2)
    for kind in times:
        ax.loglog(lengths, [1000 * t for t in times[kind]], "o-", base=2, label=kind)
    ax.set(xlabel="sequence length (source = target)", ylabel="ms per training step",
           title=f"{tokens} tokens per batch, {device}")
    ax.legend()
    return Result(metrics=metrics, artifacts={"step_time.png": plots.png(fig)},
                  notes=f"Transformer d_model {d_model}, {layers}+{layers} layers, ff {ff} vs LSTM {units} units "
                        f"(FLOP-matched at length {ref}); {tokens} target tokens per batch; median of {steps} steps "
                        f"× {repeats} interleaved repeats after 2 warm-up steps; {device}")
