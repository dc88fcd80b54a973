"""CONV1D-TEXT: the chapter's CNN for sentences, built and checked, then trained on real reviews.

Claim (7.2, 自然语言处理（NLP）应用): each row of the matrix is a word's vector; three filter sizes
(2, 3 and 4 rows), two filters each, give the feature maps; max pooling turns each into one number;
they are concatenated and a softmax classifies (after Kim 2014 / Zhang & Wallace 2015).

Part A builds exactly that model on the 7-word, 5-dimensional sentence matrix of Zhang & Wallace's
figure and reads its shapes off the Keras layers. Part E trains it, and a wider variant (100
filters per height with dropout 0.5, Kim's setting), on the Rotten Tomatoes review sentences
(fresh vs rotten), beside a bag-of-words logistic regression and the majority class, all on the
same split. The split keeps each film's reviews on one side and changes with the seed.
"""
from __future__ import annotations


import keras
import numpy as np
import tensorflow as tf

from repro import convergence, data, plots, progress, stats
from repro.kerasutil import dims, fresh
from repro.models.text_cnn import sentence_cnn
from repro.registry import Result, experiment




def chapter_model_shapes(seq_len: int = 7, embed_dim: int = 5) -> dict:
    """The chapter's model on a (seq_len x embed_dim) sentence matrix: shapes read off the layers,
    and a forward pass checking that each pooled value is its feature map's maximum."""
    model = sentence_cnn(seq_len=seq_len, embed_dim=embed_dim)
    heights = (2, 3, 4)
    conv = [model.get_layer(f"conv_h{h}") for h in heights]
    pool = [model.get_layer(f"pool_h{h}") for h in heights]
    x = np.random.default_rng(0).normal(size=(3, seq_len, embed_dim)).astype("float32")
    probe = keras.Model(model.input, [c.output for c in conv] + [p.output for p in pool]
                        + [model.get_layer("features").output, model.output])
    outs = [np.asarray(o) for o in probe(x)]
    fmaps, pooled, features, probs = outs[:3], outs[3:6], outs[6], outs[7]
    # Output rows n - h + 1 of a 'valid' 1-D convolution, checked on Keras for other lengths too.
    rows_ok = all(dims(sentence_cnn(seq_len=n, embed_dim=embed_dim).get_layer(f"conv_h{h}").output.shape)[0]
                  == n - h + 1 for n in (5, 7, 12) for h in heights)
    return {
        "sentence_matrix": [seq_len, embed_dim],
        "filter_heights": [int(c.kernel.shape[0]) for c in conv],
        "filters_per_height": [int(c.kernel.shape[-1]) for c in conv],
        "filter_spans_word_vector": all(int(c.kernel.shape[1]) == embed_dim for c in conv),
        "conv_output_shapes": [dims(c.output.shape) for c in conv],
        "pooled_shapes": [dims(p.output.shape) for p in pool],
        "feature_vector": dims(model.get_layer("features").output.shape),
        "output_shape": dims(model.output.shape),
        "pool_is_max": bool(all(np.allclose(p, f.max(axis=1)) for p, f in zip(pooled, fmaps))),
        "features_concatenate_pools": bool(np.allclose(features, np.concatenate(pooled, axis=1))),
        "softmax_sums_to_one": bool(np.allclose(probs.sum(axis=1), 1.0, atol=1e-6)),
        "conv_rows_formula_matches": bool(rows_ok),
        "chapter_model_params": int(model.count_params()),
    }


def film_split(movies: np.ndarray, seed: int, test_frac: float, val_frac: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean masks (train, val, test) that keep every film's reviews on one side."""
    films = np.unique(movies)
    np.random.default_rng(seed).shuffle(films)
    n_test, n_val = round(len(films) * test_frac), round(len(films) * val_frac)
    test = np.isin(movies, films[:n_test])
    val = np.isin(movies, films[n_test:n_test + n_val])
    return ~(test | val), val, test


PATIENCE = 2   # early stopping on the validation films' loss


def _fit(model: keras.Model, train: tf.data.Dataset, val: tf.data.Dataset, test: tf.data.Dataset,
         epochs: int, learning_rate: float, label: str) -> tuple[float, int, dict]:
    """Train with early stopping on val_loss; (test accuracy, epochs run, convergence).

    Convergence is judged on what the stop rule watches: converged when early stopping fired, else
    by ``convergence.check`` on the validation loss over the epochs run."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=PATIENCE, restore_best_weights=True)
    history = model.fit(train, validation_data=val, epochs=epochs, shuffle=False, verbose=0,
                        callbacks=[stop, progress.epochs(epochs, label)])
    ran = len(history.history["loss"])
    conv = convergence.from_early_stopping(history, stop, patience=PATIENCE, epochs=epochs)
    return float(model.evaluate(test, verbose=0)[1]), ran, conv


@experiment("sentence_cnn_reviews", datasets=("rotten_tomatoes",))
def sentence_cnn_reviews(*, seed: int, embed_dim: int = 64, seq_len: int = 56, max_tokens: int = 20_000,
                         wide_filters: int = 100, wide_dropout: float = 0.5, epochs: int = 10,
                         batch_size: int = 50, learning_rate: float = 1e-3, test_frac: float = 0.2,
                         val_frac: float = 0.1, max_reviews: int | None = None) -> Result:
    """Shapes of the chapter's model; test accuracy of it, a wide variant and BoW logistic regression."""
    metrics: dict = chapter_model_shapes()

    # Data: real review sentences; films split at random (per seed) into train / val / test.
    texts, labels, movies = data.load_rotten_tomatoes()
    if max_reviews is not None:     # small profiles: a random subset of the sentences
        keep = np.sort(np.random.default_rng(seed).permutation(len(texts))[:max_reviews])
        texts, labels, movies = texts[keep], labels[keep], movies[keep]
    tr, va, te = film_split(movies, seed, test_frac, val_frac)
    labels = labels.astype("int32")

    # Sequences of word ids for the CNNs; the vocabulary comes from the training sentences only.
    fresh(seed)
    to_ids = keras.layers.TextVectorization(max_tokens=max_tokens, output_sequence_length=seq_len)
    to_ids.adapt(texts[tr])
    ids = np.asarray(to_ids(texts)).astype("int32")
    vocab = int(to_ids.vocabulary_size())

    def batches(x, mask: np.ndarray, shuffle: bool = False) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices((x[mask], labels[mask]))
        if shuffle:
            ds = ds.shuffle(int(mask.sum()), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(2)

    results = {}
    converged: dict[str, dict] = {}
    for name, filters, dropout in (("chapter_cnn", 2, 0.0), ("wide_cnn", wide_filters, wide_dropout)):
        fresh(seed)
        model = sentence_cnn(seq_len=seq_len, embed_dim=embed_dim, vocab_size=vocab, filters=filters,
                             dropout=dropout)
        acc, ran, converged[name] = _fit(model, batches(ids, tr, True), batches(ids, va), batches(ids, te),
                                         epochs, learning_rate, name)
        results[name] = acc
        metrics[f"{name}_epochs"] = ran
        metrics[f"{name}_params"] = int(model.count_params())

    # Bag-of-words logistic regression: TF-IDF of the training vocabulary -> one softmax layer.
    fresh(seed)
    to_bow = keras.layers.TextVectorization(max_tokens=max_tokens, output_mode="tf_idf")
    to_bow.adapt(texts[tr])

    def bow(mask: np.ndarray, shuffle: bool = False) -> tf.data.Dataset:
        return batches(texts, mask, shuffle).map(lambda t, y: (to_bow(t), y))

    logreg = keras.Sequential([keras.Input((to_bow.vocabulary_size(),)),
                               keras.layers.Dense(2, activation="softmax")], name="logreg")
    results["logreg"], metrics["logreg_epochs"], converged["logreg"] = _fit(
        logreg, bow(tr, True), bow(va), bow(te), epochs, learning_rate, "logreg")
    majority = int(labels[tr].mean() >= 0.5)
    results["majority"] = float(np.mean(labels[te] == majority))

    for name, acc in results.items():
        metrics[f"{name}_accuracy"] = acc
    metrics.update({"train_sentences": int(tr.sum()), "val_sentences": int(va.sum()),
                    "test_sentences": int(te.sum()), "vocabulary": vocab,
                    "fresh_share_test": float(labels[te].mean())})

    fig, ax = plots.figure(5.0, 3.2)
    names = ["chapter_cnn", "wide_cnn", "logreg", "majority"]
    ax.bar(names, [results[n] for n in names], color=["C0", "C1", "C2", "grey"])
    ax.set(ylabel="test accuracy", ylim=(0.4, 0.85),
           title=f"Rotten Tomatoes fresh/rotten, seed {seed} ({int(te.sum())} test sentences)")
    n_test = int(te.sum())
    stderr = {f"{name}_accuracy": stats.binomial_se(acc, n_test) for name, acc in results.items()}
    stderr["fresh_share_test"] = stats.binomial_se(metrics["fresh_share_test"], n_test)
    return Result(metrics=metrics, artifacts={"accuracy.png": plots.png(fig)},
                  stderr=stderr, convergence=converged,
                  notes=f"embedding {embed_dim} (random init, trained), {seq_len} tokens, vocabulary "
                        f"{vocab}; Adam {learning_rate:g}, batch {batch_size}, early stopping on the "
                        f"validation films; wide: {wide_filters} filters per height, dropout {wide_dropout}")
