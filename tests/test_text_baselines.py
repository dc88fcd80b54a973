"""CONV1D-TEXT's n-gram baselines (repro.experiments.text_cnn): features, the L-BFGS logistic
regression against a closed-form check, naive Bayes, and the paired gap the claim judges."""
from __future__ import annotations

import numpy as np

from repro.experiments import text_cnn as tc


def test_ngrams_are_binary_unigrams_and_bigrams():
    assert tc.ngrams("Not good, not GOOD!") == {"not", "good", "!", "not good", "good not", "good !"}
    feats = tc.Ngrams(["a b", "b c"])
    rows, cols, n = feats(["a b c", "z"])
    assert n == 2 and set(rows.tolist()) == {0}            # 'z' is unseen: the second row is empty
    assert sorted(cols.tolist()) == sorted(feats.vocab[g] for g in ("a", "b", "c", "a b", "b c"))


def test_lbfgs_finds_the_minimum_of_a_quadratic():
    a = np.diag(np.linspace(1, 100, 50))
    b = np.ones(50)
    x, curve = tc._lbfgs(lambda x: (0.5 * x @ a @ x - b @ x, a @ x - b), np.zeros(50), gtol=1e-10)
    np.testing.assert_allclose(x, np.linalg.solve(a, b), rtol=1e-6)
    assert curve[-1] <= curve[0] and all(c2 <= c1 + 1e-12 for c1, c2 in zip(curve, curve[1:]))


def test_logistic_regression_gradient_is_zero_at_its_optimum():
    rng = np.random.default_rng(0)
    n, dim = 200, 30
    dense = (rng.random((n, dim)) < 0.2).astype(float)
    w_true = rng.normal(size=dim)
    y = (dense @ w_true + rng.normal(size=n) > 0).astype(int)
    rows, cols = np.nonzero(dense)
    X = (rows, cols, n)
    l2 = 1e-2
    theta, curve = tc.logistic_regression(X, y, l2, dim)
    z = dense @ theta[:-1] + theta[-1]
    p = 1 / (1 + np.exp(-z))
    grad_w = dense.T @ (p - y) / n + l2 * theta[:-1]
    assert np.abs(grad_w).max() < 1e-5 and abs(np.mean(p - y)) < 1e-5
    np.testing.assert_allclose(tc.linear_scores(theta, X), z, atol=1e-9)
    assert np.mean((z > 0) == y) > 0.8


def test_naive_bayes_reads_the_words_that_give_the_label_away():
    texts = np.array(["good film", "great film", "bad film", "awful film"] * 5)
    y = np.array([1, 1, 0, 0] * 5)
    feats = tc.Ngrams(texts)
    nb = tc.naive_bayes_weights(feats(texts), y, len(feats.vocab))
    assert nb[feats.vocab["good"]] > 0 > nb[feats.vocab["bad"]] and abs(nb[feats.vocab["film"]]) < 1e-9
    assert np.all((tc.linear_scores(nb, feats(texts)) > 0) == y)


def test_ngram_baselines_on_made_up_sentences():
    rng = np.random.default_rng(1)
    words = ["good", "great", "fine"], ["bad", "dull", "awful"]
    labels = rng.integers(0, 2, 300).astype(np.int32)
    texts = np.array([" ".join(rng.choice(words[1 - y], 3)) + " film" for y in labels], dtype=str)
    idx = np.arange(300)
    tr, va, te = idx < 200, (idx >= 200) & (idx < 250), idx >= 250
    out = tc.ngram_baselines(texts, labels, tr, va, te, [1e-4, 1e-2])
    assert np.mean(out["logreg_pred"] == labels[te]) > 0.95 and np.mean(out["mnb_pred"] == labels[te]) > 0.95
    assert out["l2"] in (1e-4, 1e-2) and out["convergence"]["converged"]
