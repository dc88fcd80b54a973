"""Scoring generated digits with a classifier trained on real MNIST (used by AE-NOTGEN, GAN-CGAN,
GAN-DCGAN): confidence, class entropy, and a Fréchet distance between the classifier's penultimate
features of generated and real test images (FID's recipe with a small MNIST CNN in place of
Inception, so the numbers are comparable within this suite only).

The classifier is a measuring instrument, not part of any claim: it is trained once per process for
a given set of parameters, with its own fixed seed, and cached. Callers get it first and then re-seed
with their claim's seed (`scorer(...)` does that), so a claim's numbers do not depend on whether the
classifier was already cached.
"""
from __future__ import annotations

import json

import keras
import numpy as np

from repro import data

_CACHE: dict[str, "Scorer"] = {}


class Scorer:
    def __init__(self, model: keras.Model, reference: np.ndarray, test_accuracy: float):
        self.model = model
        self.features_model = keras.Model(model.inputs, model.get_layer("features").output)
        self.test_accuracy = test_accuracy
        self.ref_mu, self.ref_cov = _moments(self.features(reference))
        self.reference_size = len(reference)

    def probabilities(self, x01: np.ndarray) -> np.ndarray:
        """Class probabilities of flat or square images with pixels in [0, 1]."""
        return self.model.predict(x01.reshape(-1, 28, 28, 1).astype("float32"), batch_size=1000, verbose=0)

    def features(self, x01: np.ndarray) -> np.ndarray:
        return self.features_model.predict(x01.reshape(-1, 28, 28, 1).astype("float32"), batch_size=1000,
                                           verbose=0).astype("float64")

    def frechet(self, x01: np.ndarray) -> float:
        """Fréchet distance between Gaussians fitted to the features of x01 and of the real test images."""
        mu, cov = _moments(self.features(x01))
        return frechet_distance(mu, cov, self.ref_mu, self.ref_cov)

    def score(self, x01: np.ndarray, prefix: str) -> dict[str, float]:
        p = self.probabilities(x01)
        return {f"{prefix}_confidence": float(np.mean(p.max(axis=1))),           # clear: one class stands out
                f"{prefix}_entropy": float(np.mean(entropy(p))),                   # in nats, 0 = certain
                f"{prefix}_class_entropy": float(entropy(np.bincount(p.argmax(1), minlength=10)[None] / len(p))[0]),
                f"{prefix}_fid": self.frechet(x01)}


def entropy(p: np.ndarray) -> np.ndarray:
    return -np.sum(p * np.log(np.clip(p, 1e-12, 1.0)), axis=-1)


def _moments(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """‖μ1-μ2‖² + tr(C1 + C2 - 2 (C1 C2)^½); tr (C1 C2)^½ = Σ √λ of the symmetric C1^½ C2 C1^½."""
    w, v = np.linalg.eigh(cov1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    lam = np.linalg.eigvalsh(root1 @ cov2 @ root1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.sum(np.sqrt(np.clip(lam, 0, None))))


def classifier() -> keras.Model:
    """A small CNN (about 99% on MNIST): conv32-pool-conv64-pool-dense128 ('features')-softmax."""
    L = keras.layers
    return keras.Sequential([keras.Input((28, 28, 1)),
                             L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(),
                             L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(),
                             L.Flatten(), L.Dense(128, activation="relu", name="features"),
                             L.Dense(10, activation="softmax")])


def scorer(*, seed: int, train_size: int = 20000, epochs: int = 2, reference_size: int = 5000) -> Scorer:
    """The cached scorer for these parameters; re-seeds with `seed` before returning."""
    key = json.dumps([train_size, epochs, reference_size])
    if key not in _CACHE:
        keras.utils.set_random_seed(12345)
        (xtr, ytr), (xte, yte) = data.load_mnist(train_size=train_size, test_size=None)
        prep = lambda x: (x.astype("float32") / 255.0)[..., None]  # noqa: E731
        model = classifier()
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(prep(xtr), ytr.astype("int32"), batch_size=128, epochs=epochs, verbose=0)
        acc = float(model.evaluate(prep(xte), yte.astype("int32"), batch_size=1000, verbose=0)[1])
        _CACHE[key] = Scorer(model, prep(xte[:reference_size]), acc)
    keras.utils.set_random_seed(seed)
    return _CACHE[key]
