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
from repro.models.transformer import (EOS, PAD, SOS, UNK, LSTMSeq2Seq, Transformer,
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
            min_count: int) -> dict:
    """Tokenised, length-filtered pairs, split by unique English sentence; id arrays and vocabularies."""
    zh, en = data.load_tatoeba()
    src_tok = [tokenize_en(s) for s in en]
    tgt_tok = [tokenize_zh(s) for s in zh]
    keep = np.array([0 < len(a) <= max_src and 0 < len(b) <= max_tgt for a, b in zip(src_tok, tgt_tok)])
    rng = np.random.default_rng(seed)
    unique_en = np.unique(en[keep])
    rng.shuffle(unique_en)
    test_en = set(unique_en[:test_sentences].tolist())
    is_test = np.array([e in test_en for e in en]) & keep
    train_idx = np.flatnonzero(keep & ~is_test)
    rng.shuffle(train_idx)
    if train_pairs is not None:
        train_idx = train_idx[:train_pairs]
    first: dict[str, int] = {}
    for i in np.flatnonzero(is_test):
        first.setdefault(en[i], int(i))
    test_idx = np.array(sorted(first.values()))
    src_v = Vocab([src_tok[i] for i in train_idx], min_count)
    tgt_v = Vocab([tgt_tok[i] for i in train_idx], min_count)

    def arrays(idx):
        src = np.stack([src_v.encode(src_tok[i], max_src) for i in idx])
        tgt = np.stack([tgt_v.encode(["<sos>"] + tgt_tok[i] + ["<eos>"], max_tgt + 2) for i in idx])
        tgt[:, 0] = SOS
        for row, i in zip(tgt, idx):   # <sos>/<eos> are not words of the corpus: set them by id
            row[len(tgt_tok[i]) + 1] = EOS
        return src, tgt

    (src_tr, tgt_tr), (src_te, _) = arrays(train_idx), arrays(test_idx)
    return {"src_v": src_v, "tgt_v": tgt_v, "src_tr": src_tr, "tgt_tr": tgt_tr, "src_te": src_te,
            "en_te": en[test_idx], "zh_te": zh[test_idx], "max_src": max_src, "max_tgt": max_tgt,
            "pairs_kept": int(keep.sum()), "pairs_total": len(en)}


def build(kind: str, d: dict, d_model: int, heads: int, ff: int, layers: int, lstm_units: int,
          dropout: float) -> keras.Model:
    if kind == "transformer":
        model = Transformer(len(d["src_v"]), len(d["tgt_v"]), d_model=d_model, heads=heads, ff=ff,
                            layers=layers, dropout=dropout, max_len=max(d["max_src"], d["max_tgt"]) + 2)
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


def train(model: keras.Model, d: dict, seed: int, epochs: int, batch_size: int, learning_rate: float,
          warmup: int, label: str) -> dict:
    """Teacher forcing: input ⟨SOS⟩ y1..yn, target y1..yn ⟨EOS⟩; cross-entropy ignoring padding."""
    src, tgt = d["src_tr"], d["tgt_tr"]
    rng = np.random.default_rng(seed)

    def batches():   # a fresh shuffle each epoch, from a generator seeded once: deterministic
        for s, t in bucketed_batches(src, tgt, batch_size, rng):
            yield (s, t[:, :-1]), t[:, 1:]

    spec = tf.TensorSpec((None, None), tf.int32)
    ds = tf.data.Dataset.from_generator(batches, output_signature=((spec, spec), spec)).prefetch(2)
    model.compile(optimizer=keras.optimizers.Adam(WarmupInverseSqrt(learning_rate, warmup),
                                                  beta_2=0.98, epsilon=1e-9, clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD))
    t0 = time.perf_counter()
    hist = model.fit(ds, epochs=epochs, verbose=0, callbacks=[progress.epochs(epochs, label)])
    seconds = time.perf_counter() - t0
    tokens = int(np.sum(tgt[:, 1:] != PAD)) * epochs
    return {"loss": float(hist.history["loss"][-1]), "seconds": seconds, "tokens_per_s": tokens / seconds,
            "loss_curve": [float(x) for x in hist.history["loss"]]}


def translate(model: keras.Model, d: dict, src: np.ndarray, beam: int = 1, batch: int = 256) -> list[str]:
    out = []
    for i in range(0, len(src), batch):
        chunk = src[i:i + batch]
        ids = (greedy_decode(model, chunk, d["max_tgt"] + 1) if beam == 1
               else beam_decode(model, chunk, d["max_tgt"] + 1, beam=beam))
        out += [d["tgt_v"].decode(row) for row in ids]
    return out


def scores(hyps: list[str], refs: list[str]) -> tuple[float, float]:
    import sacrebleu

    return (float(sacrebleu.corpus_bleu(hyps, [refs], tokenize="zh").score),
            float(sacrebleu.corpus_chrf(hyps, [refs]).score))


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
                "layers", "dropout", "epochs", "batch_size", "learning_rate", "warmup")
WEIGHTS, CONFIG = "transformer.weights.h5", "transformer.json"


def _data(seed: int, c: dict) -> dict:
    return prepare(seed, c["max_src"], c["max_tgt"], c["test_sentences"], c["train_pairs"], c["min_count"])


def _build_transformer(seed: int, d: dict, c: dict) -> keras.Model:
    fresh(seed)
    # lstm_units is not used by the Transformer
    return build("transformer", d, c["d_model"], c["heads"], c["ff"], c["layers"], 0, c["dropout"])


def train_transformer(seed: int, c: dict) -> tuple[keras.Model, dict, dict]:
    """(model, data, training stats) for the parameters `c` (the keys of MODEL_PARAMS)."""
    d = _data(seed, c)
    model = _build_transformer(seed, d, c)
    stats = train(model, d, seed, c["epochs"], c["batch_size"], c["learning_rate"], c["warmup"], "transformer")
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
    c = {k: params[k] for k in MODEL_PARAMS}
    if transformer_dir is not None:
        return load_transformer(transformer_dir, seed, c)
    return train_transformer(seed, c)


@experiment("translation_transformer", datasets=("tatoeba",))
def translation_transformer(*, seed: int, max_src: int = 16, max_tgt: int = 20, test_sentences: int = 1000,
                            train_pairs: int | None = None, min_count: int = 2, d_model: int = 128,
                            heads: int = 4, ff: int = 512, layers: int = 2, dropout: float = 0.1,
                            epochs: int = 4, batch_size: int = 64, learning_rate: float = 1e-3,
                            warmup: int = 1000, artifact_dir: str | None = None) -> Result:
    """Producer: trains the Transformer of this seed and saves it into `artifact_dir` for
    TRF-TRANSLATE's and ATT-MULTIHEAD's runs; reports its training loss, time and size."""
    c = dict(max_src=max_src, max_tgt=max_tgt, test_sentences=test_sentences, train_pairs=train_pairs,
             min_count=min_count, d_model=d_model, heads=heads, ff=ff, layers=layers, dropout=dropout,
             epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, warmup=warmup)
    model, d, stats = train_transformer(seed, c)
    if artifact_dir is not None:
        save_transformer(artifact_dir, seed, c, model, d, stats)
    return Result(metrics={"transformer_train_loss": stats["loss"],
                           "transformer_loss_by_epoch": [round(x, 5) for x in stats["loss_curve"]],
                           "transformer_train_seconds": stats["seconds"],
                           "transformer_tokens_per_s": stats["tokens_per_s"],
                           "transformer_params": int(model.count_params()),
                           "train_pairs": len(d["src_tr"]), "src_vocab": len(d["src_v"]),
                           "tgt_vocab": len(d["tgt_v"])},
                  notes=f"Transformer d={d_model}, {heads} heads, ff {ff}, {layers}+{layers} layers; {epochs} "
                        f"epochs of {len(d['src_tr'])} pairs, batch {batch_size}, Adam peak {learning_rate:g} "
                        f"with {warmup} warm-up steps; saved for the runs that use it")


@experiment("translate_en_zh", datasets=("tatoeba",))
def translate_en_zh(*, seed: int, max_src: int = 16, max_tgt: int = 20, test_sentences: int = 1000,
                    train_pairs: int | None = None, min_count: int = 2, d_model: int = 128,
                    heads: int = 4, ff: int = 512, layers: int = 2, lstm_units: int = 256,
                    dropout: float = 0.1, epochs: int = 4, batch_size: int = 64,
                    learning_rate: float = 1e-3, warmup: int = 1000, beam: int = 4,
                    beam_sentences: int = 500, examples: int = 12, transformer_dir: str | None = None) -> Result:
    """BLEU/chrF of the Transformer and the LSTM baseline on held-out Tatoeba sentences. The Transformer
    is loaded from `transformer_dir` (a `translation_transformer` run of this seed; its training loss and
    time are that run's), or trained here when None."""
    trf, d, trf_stats = trained_transformer(
        seed, transformer_dir, max_src=max_src, max_tgt=max_tgt, test_sentences=test_sentences,
        train_pairs=train_pairs, min_count=min_count, d_model=d_model, heads=heads, ff=ff, layers=layers,
        dropout=dropout, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, warmup=warmup)
    fresh(seed)
    lstm = build("lstm", d, d_model, heads, ff, layers, lstm_units, dropout)
    lstm_stats = train(lstm, d, seed, epochs, batch_size, learning_rate, warmup, "lstm")

    refs = d["zh_te"].tolist()
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
        metrics[f"{name}_params"] = int(model.count_params())
        metrics[f"{name}_train_loss"] = stats["loss"]
        metrics[f"{name}_train_seconds"] = stats["seconds"]
        ex = encode_english(d, [EXAMPLE])
        metrics[f"{name}_beijing_winter_games"] = translate(model, d, ex)[0]
        metrics[f"{name}_beijing_winter_games_beam"] = translate(model, d, ex, beam=beam)[0]
        outputs[name], outputs[f"{name}_beam"] = greedy, beamed
    metrics["beijing_winter_games_unknown_words"] = [w for w in tokenize_en(EXAMPLE)
                                                     if w not in d["src_v"].stoi]
    metrics.update({"train_pairs": len(d["src_tr"]), "test_sentences": len(refs),
                    "beam_sentences": nb, "src_vocab": len(d["src_v"]), "tgt_vocab": len(d["tgt_v"])})

    # Artifacts: the held-out translations (all of them) and a table of the first few.
    lines = ["english\treference\ttransformer_greedy\ttransformer_beam\tlstm_greedy\tlstm_beam"]
    for i, (e, r) in enumerate(zip(d["en_te"], refs)):
        beam_t = outputs["transformer_beam"][i] if i < nb else ""
        beam_l = outputs["lstm_beam"][i] if i < nb else ""
        lines.append("\t".join([e, r, outputs["transformer"][i], beam_t, outputs["lstm"][i], beam_l]))
    md = ["| English | reference | Transformer (greedy) | Transformer (beam) | LSTM (greedy) |",
          "|---|---|---|---|---|"]
    for i in range(min(examples, nb)):
        md.append(f"| {d['en_te'][i]} | {refs[i]} | {outputs['transformer'][i]} | "
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
    ax.set_xticks(x, names)
    ax.set(ylabel="BLEU (sacrebleu, zh)", title=f"Tatoeba en→zh, seed {seed}, {len(refs)} held-out sentences")
    ax.legend()
    return Result(
        metrics=metrics,
        artifacts={"translations.tsv": "\n".join(lines).encode(),
                   "translations.md": ("\n".join(table) + "\n\n" + "\n".join(md) + "\n").encode(),
                   "bleu.png": plots.png(fig)},
        notes=f"Transformer d={d_model}, {heads} heads, ff {ff}, {layers}+{layers} layers; LSTM {lstm_units} "
              f"units; {epochs} epochs of {len(d['src_tr'])} pairs, batch {batch_size}, Adam peak "
              f"{learning_rate:g} with {warmup} warm-up steps; beam {beam} on {nb} sentences")


# --------------------------------------------------------------------------------- TRF-PARALLEL

def _step_time(model: keras.Model, src: np.ndarray, tgt: np.ndarray, steps: int) -> float:
    """Median seconds of one optimizer step (after two traced warm-up steps)."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD)
    opt = keras.optimizers.Adam(1e-4)

    @tf.function
    def step(s, ti, to):
        with tf.GradientTape() as tape:
            loss = loss_fn(to, model((s, ti), training=True))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    args = (tf.constant(src), tf.constant(tgt[:, :-1]), tf.constant(tgt[:, 1:]))
    for _ in range(2):
        step(*args).numpy()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step(*args).numpy()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


@experiment("seq2seq_throughput")
def seq2seq_throughput(*, seed: int, lengths: tuple[int, ...] = (8, 16, 32, 64), batch_size: int = 64,
                       vocab: int = 4000, d_model: int = 128, heads: int = 4, ff: int = 512,
                       layers: int = 2, lstm_units: int = 256, steps: int = 5) -> Result:
    """Training step time and target tokens per second of the two models, same batch, growing length."""
    rng = np.random.default_rng(seed)
    metrics: dict = {}
    times: dict[str, list[float]] = {"transformer": [], "lstm": []}
    for j, n in enumerate(lengths):
        # Token ids drawn at random: the cost of a step does not depend on which tokens they are.
        src = rng.integers(4, vocab, size=(batch_size, n)).astype("int32")
        tgt = rng.integers(4, vocab, size=(batch_size, n + 1)).astype("int32")
        fake = {"src_v": range(vocab), "tgt_v": range(vocab), "max_src": n, "max_tgt": n,
                "src_tr": src, "tgt_tr": tgt}
        for kind in ("transformer", "lstm"):
            progress.step(2 * j + (kind == "lstm"), 2 * len(lengths), f"{kind} length {n}")
            fresh(seed)
            model = build(kind, fake, d_model, heads, ff, layers, lstm_units, 0.1)
            if j == 0:
                metrics[f"{kind}_params"] = int(model.count_params())
            t = _step_time(model, src, tgt, steps)
            times[kind].append(t)
            metrics[f"{kind}_step_ms_len{n}"] = 1000 * t
            metrics[f"{kind}_tokens_per_s_len{n}"] = batch_size * n / t
    for kind in times:
        # Over all lengths together (tokens of one step at each length / their summed time): one
        # number per model that a noisy step at a single length cannot swing much.
        metrics[f"{kind}_tokens_per_s"] = batch_size * float(sum(lengths)) / float(sum(times[kind]))
        # Growth exponent: slope of log(step time) against log(length).
        metrics[f"{kind}_time_exponent"] = float(np.polyfit(np.log(lengths), np.log(times[kind]), 1)[0])
    metrics["speedup_transformer_over_lstm"] = metrics["transformer_tokens_per_s"] / metrics["lstm_tokens_per_s"]

    fig, ax = plots.figure(5.0, 3.2)
    for kind in times:
        ax.loglog(lengths, [1000 * t for t in times[kind]], "o-", label=kind)
    ax.set(xlabel="sequence length (source = target)", ylabel="ms per training step",
           title=f"batch {batch_size}, {tf.config.list_logical_devices()[-1].device_type}")
    ax.legend()
    return Result(metrics=metrics, artifacts={"step_time.png": plots.png(fig)},
                  notes=f"d_model {d_model}, {layers}+{layers} layers vs LSTM {lstm_units} units; median of "
                        f"{steps} steps after 2 warm-up steps, tf.function, batch {batch_size}")
