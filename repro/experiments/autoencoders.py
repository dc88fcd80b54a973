"""AE-RECON, AE-ANOMALY, AE-NOTGEN, VAE-LOSS: deep autoencoders and the VAE on real data (7.5).

Autoencoders are the chapter's: a dense encoder to a code, a mirrored decoder, trained to reproduce
the input (squared error, "常用重构损失：均方误差损失"). The VAE is the standard one (Kingma & Welling
2014): the encoder gives a mean m and a log-variance s, the code is z = m + exp(s/2)·ε with ε ~ N(0, I),
and the loss is reconstruction (Bernoulli cross-entropy over the pixels) + KL(N(m, e^s) ‖ N(0, I)).
Cost on 2 CPU cores per seed at the full profile: about 20 s (RECON), 60 s (ANOMALY), 30 s (NOTGEN),
10 s (VAE-LOSS), plus 25 s once per process for the scoring classifier.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from repro import data, plots, progress
from repro.experiments.mnist_scoring import scorer
from repro.models.generative import autoencoder, dense_decoder, dense_encoder
from repro.registry import Result, experiment


def _flat01(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1).astype("float32") / 255.0


def _train_ae(model: keras.Model, x: np.ndarray, *, epochs: int, batch_size: int, learning_rate: float,
              loss: str = "mse", label: str = "") -> float:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    hist = model.fit(x, x, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True,
                     callbacks=[progress.epochs(epochs, label)])
    return float(hist.history["loss"][-1])


def _errors(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.mean((model.predict(x, batch_size=1000, verbose=0) - x) ** 2, axis=1)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a random positive > that of a random negative), ties ½."""
    scores, labels = np.asarray(scores, float), np.asarray(labels).astype(bool)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_s = scores[order]
    # average ranks over ties
    _, start, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_recall(flagged: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    flagged, labels = np.asarray(flagged, bool), np.asarray(labels, bool)
    tp = np.sum(flagged & labels)
    return (float(tp / flagged.sum()) if flagged.sum() else 0.0), float(tp / labels.sum())


def _grid(rows: list[np.ndarray], titles: list[str], title: str) -> bytes:
    """Rows of 28x28 images (each row an array (k, 784)) as one PNG."""
    k = len(rows[0])
    fig, ax0 = plots.figure(1.0 * k, 1.05 * len(rows) + 0.3)
    ax0.remove()
    axes = fig.subplots(len(rows), k, squeeze=False)
    for r, (row, name) in enumerate(zip(rows, titles)):
        for c in range(k):
            ax = axes[r][c]
            ax.imshow(np.clip(row[c].reshape(28, 28), 0, 1), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=7)
    fig.suptitle(title, fontsize=9)
    return plots.png(fig)


# ----------------------------------------------------------------------------- AE-RECON

@experiment("ae_code_sizes", datasets=("mnist",))
def ae_code_sizes(*, seed: int, codes: list[int] = (2, 8, 32, 64), hidden: list[int] = (256, 128),
                  train_size: int = 10000, test_size: int = 2000, epochs: int = 10, batch_size: int = 128,
                  learning_rate: float = 1e-3) -> Result:
    """Test reconstruction error of a deep AE against code size, beside PCA with as many components."""
    (xtr, _), (xte, _) = data.load_mnist(train_size=train_size, test_size=test_size, seed=seed)  # subsets per seed
    xtr, xte = _flat01(xtr), _flat01(xte)
    pixel_var = float(np.mean(np.var(xte, axis=0)))        # MSE of predicting the mean image
    mean = xtr.mean(axis=0)
    _, _, vt = np.linalg.svd(xtr - mean, full_matrices=False)
    metrics: dict = {"pixel_variance": pixel_var, "input_dims": 784}
    recons = {}
    for k, code in enumerate(codes):
        keras.utils.set_random_seed(seed)
        model, _, _ = autoencoder(code, hidden=tuple(hidden))
        train_loss = _train_ae(model, xtr, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                               label=f"code {code}")
        mse = float(np.mean(_errors(model, xte)))
        p = vt[:code]
        pca_mse = float(np.mean(((xte - mean) @ p.T @ p + mean - xte) ** 2))
        recons[code] = model.predict(xte[:10], verbose=0)
        metrics |= {f"ae_mse_code{code}": mse, f"pca_mse_code{code}": pca_mse,
                    f"ae_r2_code{code}": 1 - mse / pixel_var, f"ae_train_mse_code{code}": train_loss,
                    f"compression_code{code}": 784 / code}
        progress.step(k + 1, len(codes), f"code {code}: test MSE {mse:.4f} (PCA {pca_mse:.4f})")
    mses = [metrics[f"ae_mse_code{c}"] for c in codes]
    metrics["ae_mse_by_code"] = mses
    metrics["ae_mse_decreasing"] = bool(np.all(np.diff(mses) < 0))

    fig, ax = plots.figure()
    ax.plot(codes, mses, marker="o", label="deep autoencoder")
    ax.plot(codes, [metrics[f"pca_mse_code{c}"] for c in codes], marker="s", label="PCA (linear)")
    ax.axhline(pixel_var, color="grey", ls=":", label="mean image")
    ax.set(xscale="log", yscale="log", xlabel="code size", ylabel="test MSE per pixel",
           title=f"MNIST reconstruction vs code size, seed {seed}")
    ax.legend(fontsize=7)
    artifacts = {"recon_vs_code.png": plots.png(fig),
                 "reconstructions.png": _grid([xte[:10]] + [recons[c] for c in codes],
                                              ["input"] + [f"code {c}" for c in codes],
                                              "test digits and their reconstructions")}
    return Result(metrics=metrics, artifacts=artifacts,
                  notes=f"{len(xtr)} train / {len(xte)} test MNIST images; AE 784-{'-'.join(map(str, hidden))}-code, "
                        f"mirrored decoder, sigmoid output, MSE, Adam {learning_rate}, {epochs} epochs")


# ----------------------------------------------------------------------------- AE-ANOMALY

def _ecg_windows(x: np.ndarray, window: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(x, window).astype("float32")


def _point_scores(win_err: np.ndarray, n: int, window: int) -> np.ndarray:
    """Each sample's score: the mean error of the windows that contain it."""
    total = np.convolve(win_err, np.ones(window))[:n]
    count = np.convolve(np.ones(len(win_err)), np.ones(window))[:n]
    return total / count


@experiment("ae_anomaly", datasets=("mnist", "mitdb"))
def ae_anomaly(*, seed: int, digits: list[int] = tuple(range(10)), code: int = 32,
               hidden: list[int] = (256, 128), train_per_digit: int | None = None, test_size: int | None = None,
               epochs: int = 10, batch_size: int = 128, learning_rate: float = 1e-3,
               ecg_train_end: int = 4000, ecg_window: int = 128, ecg_code: int = 8,
               ecg_hidden: list[int] = (64, 32), ecg_epochs: int = 30) -> Result:
    """The chapter's four steps: train on normal data only, score by reconstruction error, threshold.

    Threshold rule (both data sets): flag as anomalous what reconstructs worse than the worst
    training (normal) example did.
    """
    metrics: dict = {}
    artifacts: dict = {}
    # (1) one-class MNIST: normal = one digit, anomalies = the other nine, on the real test set.
    (xtr, ytr), (xte, yte) = data.load_mnist(train_size=None, test_size=test_size, seed=seed)
    xtr, xte = _flat01(xtr), _flat01(xte)
    aucs, precs, recs = [], [], []
    rows = ["normal_digit,roc_auc,precision,recall,train_images"]
    for k, d in enumerate(digits):
        keras.utils.set_random_seed(seed)
        xd = xtr[ytr == d][:train_per_digit]
        model, _, _ = autoencoder(code, hidden=tuple(hidden))
        _train_ae(model, xd, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
        threshold = float(_errors(model, xd).max())
        err = _errors(model, xte)
        anomalous = yte != d
        aucs.append(roc_auc(err, anomalous))
        p, r = precision_recall(err > threshold, anomalous)
        precs.append(p), recs.append(r)
        rows.append(f"{d},{aucs[-1]:.4f},{p:.4f},{r:.4f},{len(xd)}")
        metrics |= {f"auc_digit{d}": aucs[-1]}
        progress.step(k + 1, len(digits) + 1, f"digit {d}: AUC {aucs[-1]:.3f}")
    metrics |= {"mnist_mean_auc": float(np.mean(aucs)), "mnist_min_auc": float(np.min(aucs)),
                "mnist_auc_by_digit": [round(a, 4) for a in aucs],
                "mnist_mean_precision": float(np.mean(precs)), "mnist_mean_recall": float(np.mean(recs)),
                "mnist_train_per_digit": int(min(np.bincount(ytr).min(), train_per_digit or 10**9)),
                "mnist_test_images": int(len(xte))}

    # (2) ECG: train on the first samples (all normal), test on the rest, which holds the anomaly.
    ecg, label = data.load_mitdb()
    mu, sd = ecg[:ecg_train_end].mean(), ecg[:ecg_train_end].std()
    z = (ecg - mu) / sd
    wtr = _ecg_windows(z[:ecg_train_end], ecg_window)
    wall = _ecg_windows(z, ecg_window)
    keras.utils.set_random_seed(seed)
    # linear output: the standardised ECG is not confined to [0, 1]
    model = keras.Sequential([keras.Input((ecg_window,)), dense_encoder(ecg_code, inputs=ecg_window, hidden=ecg_hidden),
                              dense_decoder(ecg_code, outputs=ecg_window, hidden=tuple(reversed(ecg_hidden)),
                                            activation="linear")])
    _train_ae(model, wtr, epochs=ecg_epochs, batch_size=64, learning_rate=learning_rate)
    scores = _point_scores(_errors(model, wall), len(z), ecg_window)
    threshold = float(scores[:ecg_train_end].max())
    test = slice(ecg_train_end, None)
    p, r = precision_recall(scores[test] > threshold, label[test])
    metrics |= {"ecg_auc": roc_auc(scores[test], label[test]), "ecg_precision": p, "ecg_recall": r,
                "ecg_threshold": threshold, "ecg_test_samples": int(len(z) - ecg_train_end),
                "ecg_test_anomalous": int(label[test].sum())}
    progress.step(len(digits) + 1, len(digits) + 1, f"ECG: AUC {metrics['ecg_auc']:.3f}")

    fig, ax = plots.figure(5.5, 3.2)
    ax.bar(digits, aucs)
    ax.axhline(0.5, color="grey", ls=":")
    ax.set(ylim=(0.4, 1.0), xticks=list(digits), xlabel="normal digit", ylabel="ROC AUC",
           title=f"one-class MNIST, mean AUC {np.mean(aucs):.3f}, seed {seed}")
    artifacts["mnist_auc_by_digit.png"] = plots.png(fig)
    artifacts["mnist_auc_by_digit.csv"] = ("\n".join(rows) + "\n").encode()
    fig, ax0 = plots.figure(7.5, 4.0)
    ax0.remove()
    a1, a2 = fig.subplots(2, 1, sharex=True)
    t = np.arange(len(z)) / 360.0
    a1.plot(t, ecg, lw=0.6)
    a1.fill_between(t, ecg.min(), ecg.max(), where=label == 1, color="red", alpha=0.2, label="labelled anomaly")
    a1.axvline(ecg_train_end / 360.0, color="k", ls="--", lw=0.8, label="train | test")
    a1.set(ylabel="ECG (mV)", title=f"MIT-BIH ECG: AUC {metrics['ecg_auc']:.3f}, precision {p:.2f}, recall {r:.2f}")
    a1.legend(fontsize=6, loc="upper left")
    a2.plot(t, scores, lw=0.8)
    a2.axhline(threshold, color="red", ls=":", label="max training error")
    a2.set(yscale="log", xlabel="seconds", ylabel="reconstruction error")
    a2.legend(fontsize=6, loc="upper left")
    artifacts["ecg_scores.png"] = plots.png(fig)
    return Result(metrics=metrics, artifacts=artifacts,
                  notes=f"MNIST: AE 784-{'-'.join(map(str, hidden))}-{code} per digit, {epochs} epochs, "
                        f"test on {len(xte)} real test images; ECG: windows of {ecg_window} samples, "
                        f"AE {ecg_window}-{'-'.join(map(str, ecg_hidden))}-{ecg_code}, trained on samples "
                        f"0..{ecg_train_end - 1}; threshold = max training error")


# ----------------------------------------------------------------------------- VAE

class VAE:
    """Encoder (m, s = log σ²), decoder; z = m + exp(s/2)·ε; loss = BCE(x, x̃) + KL, summed over dims."""

    def __init__(self, code: int, hidden: tuple[int, ...], regulariser: str = "kl"):
        self.encoder = dense_encoder(code, hidden=hidden, outputs=2)
        self.decoder = dense_decoder(code, hidden=tuple(reversed(hidden)))
        self.code, self.regulariser = code, regulariser

    @staticmethod
    def kl(m, s):
        """KL(N(m, e^s) ‖ N(0, 1)) summed over the code: ½ Σ (e^s − 1 − s + m²)."""
        return 0.5 * tf.reduce_sum(tf.exp(s) - 1.0 - s + m ** 2, axis=-1)

    @staticmethod
    def chapter_reg(m, s):
        """The chapter's 'log L − R + L + O²' read with L = e^s (the variance), R = 1, O = m."""
        return tf.reduce_sum(s - 1.0 + tf.exp(s) + m ** 2, axis=-1)

    def losses(self, x, eps):
        m, s = self.encoder(x, training=True)
        z = m + tf.exp(0.5 * s) * eps
        xr = self.decoder(z, training=True)
        xr = tf.clip_by_value(xr, 1e-7, 1 - 1e-7)
        recon = -tf.reduce_sum(x * tf.math.log(xr) + (1 - x) * tf.math.log(1 - xr), axis=-1)
        reg = self.kl(m, s) if self.regulariser == "kl" else self.chapter_reg(m, s)
        return tf.reduce_mean(recon), tf.reduce_mean(reg)

    def fit(self, x: np.ndarray, *, seed: int, epochs: int, batch_size: int, learning_rate: float) -> list[float]:
        opt = keras.optimizers.Adam(learning_rate)
        weights = self.encoder.trainable_variables + self.decoder.trainable_variables

        @tf.function
        def step(xb, eps):
            with tf.GradientTape() as tape:
                recon, reg = self.losses(xb, eps)
                loss = recon + reg
            opt.apply_gradients(zip(tape.gradient(loss, weights), weights))
            return recon, reg

        rng = np.random.default_rng(seed)
        history = []
        for e in range(epochs):
            order = rng.permutation(len(x))
            tot = []
            for i in range(0, len(x) - batch_size + 1, batch_size):
                idx = order[i:i + batch_size]
                r, g = step(x[idx], rng.standard_normal((batch_size, self.code)).astype("float32"))
                tot.append(float(r) + float(g))
            history.append(float(np.mean(tot)))
            progress.step(e + 1, epochs, f"VAE ({self.regulariser}) epoch {e + 1}: loss {history[-1]:.1f}")
        return history

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m, s = self.encoder.predict(x, batch_size=1000, verbose=0)
        return m, s


@experiment("ae_vs_vae_samples", datasets=("mnist",))
def ae_vs_vae_samples(*, seed: int, code: int = 8, hidden: list[int] = (256, 128), train_size: int = 20000,
                      epochs: int = 10, batch_size: int = 128, learning_rate: float = 1e-3, samples: int = 2000,
                      scorer_train_size: int = 20000, scorer_epochs: int = 2, reference_size: int = 5000,
                      scorer_dir: str | None = None) -> Result:
    """Decode random codes with a plain AE's decoder and a VAE's; score them with a real-MNIST classifier
    (loaded from `scorer_dir`, an `mnist_scorer` run's artifacts; None: trained here)."""
    sc = scorer(seed=seed, train_size=scorer_train_size, epochs=scorer_epochs, reference_size=reference_size,
                path=scorer_dir)
    (xtr, _), _ = data.load_mnist(train_size=train_size, test_size=1, seed=seed)
    xtr = _flat01(xtr)
    rng = np.random.default_rng(seed + 1000)

    # Plain AE, trained with the VAE's reconstruction loss (cross-entropy) so only the KL term differs.
    ae, enc, dec = autoencoder(code, hidden=tuple(hidden))
    _train_ae(ae, xtr, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
              loss="binary_crossentropy", label="AE")
    keras.utils.set_random_seed(seed)
    vae = VAE(code, tuple(hidden))
    vae.fit(xtr, seed=seed, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)

    prior = rng.standard_normal((samples, code)).astype("float32")
    codes = enc.predict(xtr, batch_size=1000, verbose=0)
    fitted = (codes.mean(0) + rng.standard_normal((samples, code)) @ np.linalg.cholesky(np.cov(codes, rowvar=False)).T
              ).astype("float32")
    ae_prior = dec.predict(prior, batch_size=1000, verbose=0)
    ae_fitted = dec.predict(fitted, batch_size=1000, verbose=0)
    vae_prior = vae.decoder.predict(prior, batch_size=1000, verbose=0)
    real = xtr[rng.choice(len(xtr), samples, replace=False)]
    metrics: dict = {}
    for name, x in (("ae_prior", ae_prior), ("ae_fitted", ae_fitted), ("vae", vae_prior), ("real", real)):
        metrics |= sc.score(x, name)
    metrics |= {"ae_code_std": float(codes.std()), "scorer_test_accuracy": sc.test_accuracy,
                "samples": samples}
    artifacts = {"samples.png": _grid([real[:10], ae_prior[:10], ae_fitted[:10], vae_prior[:10]],
                                      ["real", "AE, N(0,I)", "AE, fitted", "VAE, N(0,I)"],
                                      f"decoded random codes (code size {code}), seed {seed}")}
    return Result(metrics=metrics, artifacts=artifacts,
                  notes=f"{len(xtr)} MNIST images, AE and VAE 784-{'-'.join(map(str, hidden))}-{code}, "
                        f"{epochs} epochs each; {samples} decoded codes; FID on the scoring CNN's 128 features "
                        f"against {reference_size} real test images (scorer accuracy {sc.test_accuracy:.4f})")


@experiment("vae_formulas", datasets=("mnist",))
def vae_formulas(*, seed: int, code: int = 8, hidden: list[int] = (256, 128), train_size: int = 10000,
                 epochs: int = 5, batch_size: int = 128, learning_rate: float = 1e-3, probe_images: int = 500,
                 mc_samples: int = 2000) -> Result:
    """The chapter's code 'H = log(S)×N + O' and regulariser 'log L − R + L + O²' against the standard VAE.

    Letters read as the lecture they come from (Lee's VAE slides: c = exp(σ)·e + m and
    Σ(exp(σ) − (1 + σ) + m²)): O = the original code m, S = the noise code σ, N = ε ~ N(0, 1); in the
    regulariser L = the variance e^σ, R = 1. The standard VAE here outputs σ = s = log σ².
    """
    (xtr, _), (xte, _) = data.load_mnist(train_size=train_size, test_size=probe_images)
    xtr, xte = _flat01(xtr), _flat01(xte)
    metrics: dict = {}
    trained = {}
    for reg in ("kl", "chapter"):
        keras.utils.set_random_seed(seed)
        vae = VAE(code, tuple(hidden), regulariser=reg)
        hist = vae.fit(xtr, seed=seed, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
        trained[reg] = vae
        m, s = vae.encode(xte)
        metrics |= {f"{reg}_trained_mean_variance": float(np.mean(np.exp(s))), f"{reg}_final_loss": hist[-1]}
    m, s = trained["kl"].encode(xte)
    m, s = m.astype("float64"), s.astype("float64")
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((mc_samples,) + m.shape)

    # The standard code: its noise is N(0, e^s) around m (Monte Carlo against the formula).
    z = m + np.exp(0.5 * s) * eps
    std_err = np.abs(z.std(0) / np.exp(0.5 * s) - 1)
    resid = ((z - m) / np.exp(0.5 * s)).ravel()
    metrics["standard_code_std_rel_error"] = float(np.median(std_err))
    metrics["standard_code_noise_is_gaussian"] = bool(abs(resid.mean()) < 0.01 and abs(resid.std() - 1) < 0.01
                                                      and abs(np.mean(resid ** 4) - 3) < 0.1)
    # Its KL term against a Monte Carlo estimate of E_q[log q(z) − log p(z)].
    logq = -0.5 * (eps ** 2 + s + np.log(2 * np.pi))
    logp = -0.5 * (z ** 2 + np.log(2 * np.pi))
    kl_mc = np.mean(np.sum(logq - logp, axis=-1), axis=0)
    kl = np.asarray(VAE.kl(m, s))
    metrics["kl_closed_form_mc_rel_error"] = float(np.median(np.abs(kl_mc / kl - 1)))
    metrics["standard_loss_terms"] = "BCE(x, x̃) + ½Σ(e^s − 1 − s + m²), z = m + e^(s/2)·ε"

    # The chapter's code H = log(S)·N + O, with S the encoder's noise code.
    metrics["chapter_code_undefined_fraction"] = float(np.mean(s <= 0))   # log of a non-positive number
    # ... and with S read as the standard deviation itself (always positive): noise scale |log S| vs S.
    sd = np.exp(0.5 * s)
    metrics["chapter_code_noise_scale_ratio"] = float(np.median(np.abs(np.log(sd)) / sd))
    metrics["chapter_code_matches_standard"] = bool(metrics["chapter_code_undefined_fraction"] == 0
                                                    and abs(metrics["chapter_code_noise_scale_ratio"] - 1) < 0.1)

    # The chapter's regulariser against 2·KL (Lee's form) on the trained encoder's outputs and on a grid.
    chap = np.asarray(VAE.chapter_reg(m, s))
    metrics["chapter_reg_rel_diff_from_2kl"] = float(np.median(np.abs(chap / (2 * kl) - 1)))
    grid = np.linspace(-20, 5, 2501)[:, None]
    chap_grid = np.asarray(VAE.chapter_reg(np.zeros_like(grid), grid))
    kl_grid = np.asarray(VAE.kl(np.zeros_like(grid), grid))
    metrics["chapter_reg_min_on_grid"] = float(chap_grid.min())
    metrics["chapter_reg_argmin_variance"] = float(np.exp(grid[np.argmin(chap_grid), 0]))
    metrics["kl_min_on_grid"] = float(kl_grid.min())
    metrics["kl_argmin_variance"] = float(np.exp(grid[np.argmin(kl_grid), 0]))
    metrics["chapter_reg_matches_kl"] = bool(metrics["chapter_reg_rel_diff_from_2kl"] < 0.01
                                             and chap_grid.min() >= -1e-9)

    fig, ax = plots.figure()
    ax.plot(grid[:, 0], 2 * kl_grid, label="2·KL = e^s − 1 − s (m = 0)")
    ax.plot(grid[:, 0], chap_grid, label="chapter: log L − R + L, L = e^s, R = 1")
    ax.set(xlabel="s = log σ²", ylabel="regulariser", ylim=(-15, 15), title="VAE regulariser as written vs KL")
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=7)
    samples = {k: v.decoder.predict(np.random.default_rng(seed).standard_normal((10, code)).astype("float32"),
                                    verbose=0) for k, v in trained.items()}
    return Result(metrics=metrics,
                  artifacts={"regulariser.png": plots.png(fig),
                             "prior_samples.png": _grid([samples["kl"], samples["chapter"]],
                                                        ["KL", "chapter's"], "VAE samples from N(0, I)")},
                  notes=f"VAE 784-{'-'.join(map(str, hidden))}-{code}, {epochs} epochs on {len(xtr)} images, "
                        f"trained once with the KL and once with the chapter's regulariser; "
                        f"{probe_images} test images probed, {mc_samples} Monte Carlo draws")
