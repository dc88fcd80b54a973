"""Scoring generated digits with a classifier trained on real MNIST (used by AE-NOTGEN, GAN-CGAN,
GAN-DCGAN): confidence, class entropy, and a Fréchet distance between the classifier's penultimate
features of generated and real test images (FID's recipe with a small MNIST CNN in place of
Inception, so the numbers are comparable within this suite only).

The classifier is a measuring instrument, not part of any claim: it is trained with its own fixed
seed by the producer run `mnist_scorer`, which saves it (weights, reference feature moments, its
test accuracy) into its artifact directory. The consumers take that directory (`scorer_dir`, passed
by the runner from the suite's `uses`) and load it; without one (tests) they train it in-process.
`scorer(...)` re-seeds with the caller's seed before returning, so a claim's numbers do not depend
on how the scorer was obtained.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np

from repro import data
from repro.registry import Result, experiment

SCORER_SEED = 12345                      # the instrument's own seed, whatever the caller's
WEIGHTS, MOMENTS, CONFIG = "classifier.weights.h5", "reference_moments.npz", "scorer.json"


class Scorer:
    def __init__(self, model: keras.Model, test_accuracy: float, ref_mu: np.ndarray, ref_cov: np.ndarray,
                 reference_size: int):
        self.model = model
        self.features_model = keras.Model(model.inputs, model.get_layer("features").output)
        self.test_accuracy = test_accuracy
        self.ref_mu, self.ref_cov = ref_mu, ref_cov
        self.reference_size = reference_size

    @classmethod
    def from_reference(cls, model: keras.Model, reference: np.ndarray, test_accuracy: float) -> "Scorer":
        sc = cls(model, test_accuracy, np.zeros(0), np.zeros((0, 0)), len(reference))
        sc.ref_mu, sc.ref_cov = _moments(sc.features(reference))
        return sc

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

    def save(self, directory: str | Path, config: dict) -> None:
        """Weights, reference moments and `config` (the parameters it was trained with, its accuracy)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(d / WEIGHTS)
        np.savez(d / MOMENTS, mu=self.ref_mu, cov=self.ref_cov)
        (d / CONFIG).write_text(json.dumps(config | {"test_accuracy": self.test_accuracy,
                                                     "reference_size": self.reference_size}, indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> tuple["Scorer", dict]:
        """The scorer a `mnist_scorer` run saved, and the config it was saved with (files only read)."""
        d = Path(directory)
        config = json.loads((d / CONFIG).read_text())
        model = classifier()
        model.load_weights(d / WEIGHTS)
        with np.load(d / MOMENTS) as m:
            mu, cov = m["mu"], m["cov"]
        return cls(model, float(config["test_accuracy"]), mu, cov, int(config["reference_size"])), config


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


def train_scorer(*, train_size: int = 20000, epochs: int = 2, reference_size: int = 5000) -> tuple[Scorer, float]:
    """Train the classifier with the instrument's own seed; (scorer, training seconds)."""
    keras.utils.set_random_seed(SCORER_SEED)
    (xtr, ytr), (xte, yte) = data.load_mnist(train_size=train_size, test_size=None)
    prep = lambda x: (x.astype("float32") / 255.0)[..., None]  # noqa: E731
    model = classifier()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(prep(xtr), ytr.astype("int32"), batch_size=128, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - t0
    acc = float(model.evaluate(prep(xte), yte.astype("int32"), batch_size=1000, verbose=0)[1])
    return Scorer.from_reference(model, prep(xte[:reference_size]), acc), seconds


@experiment("mnist_scorer", datasets=("mnist",))
def mnist_scorer(*, seed: int, train_size: int = 20000, epochs: int = 2, reference_size: int = 5000,
                 artifact_dir: str | None = None) -> Result:
    """Producer: the scoring classifier (its own fixed seed; `seed` is ignored, the run is deterministic),
    saved into `artifact_dir` for the runs that score generated digits with it."""
    del seed                                # a measuring instrument: the same one for every caller
    sc, seconds = train_scorer(train_size=train_size, epochs=epochs, reference_size=reference_size)
    if artifact_dir is not None:
        sc.save(artifact_dir, {"train_size": train_size, "epochs": epochs, "seed": SCORER_SEED})
    return Result(metrics={"scorer_test_accuracy": sc.test_accuracy, "scorer_train_seconds": seconds,
                           "scorer_params": int(sc.model.count_params()), "reference_size": reference_size},
                  notes=f"CNN trained {epochs} epochs on {train_size} MNIST images (seed {SCORER_SEED}); "
                        f"reference moments of {reference_size} real test images")


def scorer(*, seed: int, train_size: int = 20000, epochs: int = 2, reference_size: int = 5000,
           path: str | None = None) -> Scorer:
    """The scorer for these parameters: loaded from `path` (a `mnist_scorer` run's artifact directory,
    which must have been trained with the same parameters), else trained here. Re-seeds with `seed`."""
    if path is not None:
        sc, config = Scorer.load(path)
        want = {"train_size": train_size, "epochs": epochs, "reference_size": reference_size}
        got = {k: config.get(k) for k in want}
        if got != want:
            raise ValueError(f"the scorer in {path} was trained with {got}, this run asks for {want}: "
                             f"the suite's mnist_scorer run and this run disagree")
    else:
        sc, _ = train_scorer(train_size=train_size, epochs=epochs, reference_size=reference_size)
    keras.utils.set_random_seed(seed)
    return sc
