"""GAN-CGAN and GAN-DCGAN: GANs that draw MNIST digits (7.6)."""
from __future__ import annotations

import os
import time

import keras
import numpy as np

from repro import convergence, data, plots
from repro.experiments.gan_core import GAN, train
from repro.experiments.mnist_scoring import scorer
from repro.models.generative import (dcgan_discriminator, dcgan_generator, mirza_discriminator, mirza_generator,
                                     mlp_discriminator, mlp_generator)
from repro.registry import Result, experiment

# ----------------------------------------------------------------------------- MNIST GANs

def _mnist_tanh(train_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The training images in [-1, 1]: each seed draws its own subset."""
    (x, y), _ = data.load_mnist(train_size=train_size, test_size=1, seed=seed)
    return (x.reshape(len(x), -1).astype("float32") / 127.5 - 1.0), y.astype("int64")


def _to01(x: np.ndarray) -> np.ndarray:
    return np.clip((x + 1.0) / 2.0, 0.0, 1.0)


def _sample_grid(x01: np.ndarray, rows: int, title: str) -> bytes:
    cols = len(x01) // rows
    img = x01[:rows * cols].reshape(rows, cols, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, cols * 28)
    fig, ax = plots.figure(0.45 * cols + 0.4, 0.45 * rows + 0.6)
    ax.imshow(img, cmap="gray_r", vmin=0, vmax=1)
    ax.set(xticks=[], yticks=[], title=title)
    ax.title.set_fontsize(8)
    return plots.png(fig)


CGAN_ARCHS = ("dcgan", "mlp", "mirza")


# No XLA for the MNIST GANs (_NO_XLA): on this machine's CPU, XLA runs the DCGAN's convolutions and
# transposed convolutions far slower than TensorFlow's own kernels. Measured A/B in one process at
# 0b02a3b (100-step chunks after a 100-step warm-up, 2 cores, nothing else running), ms per G step:
# DCGAN conditional 89 without XLA / 512 with, unconditional 76 / 349; MLP conditional 21 / 15,
# unconditional 20 / 14. CGAN seed 0 of the full run at 0b02a3b (XLA on) took 1,865 s for the DCGAN's
# 3,000 steps. GAN-DCGAN's equal-time step counts (800 against 2,700) rest on a DCGAN:MLP cost ratio
# of 3.4 measured without XLA (3.8 today); with XLA it would be 25.
_NO_XLA = True


def _cpu() -> float:
    """This process's CPU seconds (user + system): time that other processes on the cores do not inflate."""
    t = os.times()
    return t.user + t.system


def _mnist_pair(arch: str, *, latent: int, width: int, g_hidden: list[int], d_hidden: list[int],
                conditions: int = 0) -> tuple[keras.Model, keras.Model]:
    """(G, D) for 28x28 digits, built in that order (so one seed gives the same weights everywhere)."""
    if arch == "dcgan":
        G = dcgan_generator(latent, width=width, conditions=conditions)
        return G, dcgan_discriminator(width=width, conditions=conditions)
    if arch == "mirza":
        return mirza_generator(latent, conditions=conditions), mirza_discriminator(conditions=conditions)
    G = mlp_generator(latent, hidden=tuple(g_hidden), conditions=conditions)
    return G, mlp_discriminator(hidden=tuple(d_hidden), conditions=conditions)


def label_use(gan: GAN, x: np.ndarray, y: np.ndarray, z: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """(D's label preference, G's label effect): the share of real images whose D logit is higher with
    their own label than with another drawn at random (½: D ignores the label); and the mean pixel
    change of G's image when the label alone changes (0 → 7, same noise) over that when the noise alone
    changes (same label 0): 0 when G ignores the label."""
    eye = np.eye(10, dtype="float32")
    wrong = (y + 1 + rng.integers(0, 9, len(y))) % 10
    d_true = gan.D(np.concatenate([x, eye[y]], 1), training=False).numpy()[:, 0]
    d_wrong = gan.D(np.concatenate([x, eye[wrong]], 1), training=False).numpy()[:, 0]
    half = len(z) // 2
    g0 = gan.sample(z[:half], eye[np.zeros(half, int)])
    g7 = gan.sample(z[:half], eye[np.full(half, 7)])
    g0b = gan.sample(z[half:2 * half], eye[np.zeros(half, int)])
    preference = np.mean(d_true > d_wrong) + 0.5 * np.mean(d_true == d_wrong)     # ties: half
    return float(preference), float(np.mean(np.abs(g0 - g7)) / max(np.mean(np.abs(g0 - g0b)), 1e-9))


@experiment("cgan_mnist", datasets=("mnist",))
def cgan_mnist(*, seed: int, archs: list[str] = ("dcgan", "mlp"), latent: int = 64, width: int = 64,
               g_hidden: list[int] = (256, 512), d_hidden: list[int] = (512, 256), train_size: int = 20000,
               steps: int = 3000, batch_size: int = 64, per_label: int = 200, checks: int = 10,
               scorer_train_size: int = 20000, scorer_epochs: int = 2, reference_size: int = 5000,
               scorer_dir: str | None = None) -> Result:
    """Conditional GANs, non-saturating loss, the same data, optimiser, batch and steps. The one-hot label
    is appended to G's noise and enters D with the image: `dcgan` as ten constant channels beside the
    image (convolutional G and D as in dcgan_vs_mlp; the keras.io conditional GAN example's design);
    `mlp` appended to the flat image of an MLP D (and to G's noise: the common tutorial design); `mirza`
    Mirza & Osindero 2014's own MLPs, where the label has hidden layers of its own in G (1,000 ReLU) and
    D (maxout 50x5). A real-MNIST classifier reads the digits generated for each requested label.
    Beside it, at each check, whether D and G use the label at all (`label_use`): D's preference for the
    true label on 1,000 real images, G's image change under a label change relative to a noise change.

    Regime, and why: "controllable" is read as G drawing the requested digit, so the measure is the
    share of generated digits a real-MNIST classifier reads as the requested label, over the same
    `per_label` noise vectors at `checks` checks; its curve decides whether the judged (convolutional)
    design converged (convergence.check). The MLP design is trained with the same budget and reported
    (its label accuracy in the notes): at version 1's budget it drew digits but ignored the label."""
    unknown = set(archs) - set(CGAN_ARCHS)
    if unknown:
        raise ValueError(f"archs must be among {CGAN_ARCHS}, got {sorted(unknown)}")
    sc = scorer(seed=seed, train_size=scorer_train_size, epochs=scorer_epochs, reference_size=reference_size,
                path=scorer_dir)
    x, y = _mnist_tanh(train_size, seed)
    want = np.repeat(np.arange(10), per_label)
    z_eval = np.random.default_rng([seed, 98]).standard_normal((len(want), latent)).astype("float32")
    c_eval = np.eye(10, dtype="float32")[want]
    metrics: dict = {"chance_accuracy": 0.1, "scorer_test_accuracy": sc.test_accuracy}
    artifacts, notes, conv = {}, [], {}
    fig, ax = plots.figure(5.0, 3.2)
    for arch in archs:
        keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        G, D = _mnist_pair(arch, latent=latent, width=width, g_hidden=g_hidden, d_hidden=d_hidden, conditions=10)
        gan = GAN(G, D, "nonsat", classes=10, jit_compile=not _NO_XLA)   # see _NO_XLA
        curve, at, spent, d_pref, g_eff = [], [], [0.0], [], []
        use_rng = np.random.default_rng([seed, 97])

        def check(step):
            t = time.perf_counter()
            pred = sc.probabilities(_to01(gan.sample(z_eval, c_eval))).argmax(1)
            curve.append(float(np.mean(pred == want)))
            a, b = label_use(gan, x[:1000], y[:1000], z_eval[:400], use_rng)
            d_pref.append(a)
            g_eff.append(b)
            at.append(step)
            spent[0] += time.perf_counter() - t

        every = max(1, steps // checks)
        t0 = time.perf_counter()
        train(gan, x, steps=steps, batch_size=batch_size, rng=rng, labels=y, every=every,
               on_check=check, label=f"{arch} CGAN")
        seconds = time.perf_counter() - t0 - spent[0]
        out = _to01(gan.sample(z_eval, c_eval))
        pred = sc.probabilities(out).argmax(1)
        per = [float(np.mean(pred[want == d] == d)) for d in range(10)]
        metrics |= {f"{arch}_label_accuracy": float(np.mean(pred == want)), f"{arch}_min_label_accuracy": min(per),
                    f"{arch}_label_accuracy_by_digit": [round(a, 4) for a in per],
                    f"{arch}_label_accuracy_curve": [round(a, 4) for a in curve],
                    f"{arch}_d_label_preference": d_pref[-1], f"{arch}_g_label_effect": g_eff[-1],
                    f"{arch}_d_label_preference_curve": [round(a, 3) for a in d_pref],
                    f"{arch}_g_label_effect_curve": [round(a, 4) for a in g_eff],
                    f"{arch}_train_seconds": seconds, f"{arch}_g_params": int(G.count_params()),
                    f"{arch}_d_params": int(D.count_params())}
        metrics |= sc.score(out, arch)
        if arch == "dcgan":                 # the judged design; the MLP design is reported
            conv["dcgan_cgan"] = convergence.check(curve, budget=f"{steps} steps", higher=True,
                                                   unit_per_point=every, unit="steps", metrics=["dcgan_*"])
        ax.plot(at, curve, "o-", label=arch)
        grid = np.concatenate([out[want == d][:10] for d in range(10)])
        artifacts[f"{arch}_cgan_samples.png"] = _sample_grid(
            grid, 10, f"{arch} CGAN, {steps} steps: row d = requested digit d, seed {seed}")
        design = {"dcgan": "label as 10 constant channels beside the image",
                  "mlp": "label concatenated to the flat image and to the noise",
                  "mirza": "Mirza & Osindero's label pathways"}[arch]
        notes.append(f"{arch} design ({design}; G {metrics[f'{arch}_g_params']}, D {metrics[f'{arch}_d_params']} "
                     f"parameters): label accuracy {metrics[f'{arch}_label_accuracy']:.3f} against chance 0.100; "
                     f"D prefers the true label on {d_pref[-1]:.0%} of real images, G's label effect "
                     f"{g_eff[-1]:.2f} of its noise effect")
    ax.axhline(0.1, color="grey", ls=":", label="chance")
    ax.set(xlabel="G step", ylabel="label accuracy", ylim=(0, 1), title=f"requested digit drawn, seed {seed}")
    ax.legend(fontsize=7)
    artifacts["label_accuracy.png"] = plots.png(fig)
    return Result(metrics=metrics, artifacts=artifacts, convergence=conv,
                  notes=f"seed {seed}: {len(x)} MNIST images, {steps} steps of batch {batch_size}, Adam(2e-4, β1 0.5), "
                        f"{per_label} samples per label; " + "; ".join(notes))


@experiment("dcgan_vs_mlp", datasets=("mnist",))
def dcgan_vs_mlp(*, seed: int, latent: int = 64, width: int = 64, g_hidden: list[int] = (256, 512),
                 d_hidden: list[int] = (512, 256), train_size: int = 20000, steps: int = 3000,
                 mlp_steps: int | None = None, batch_size: int = 64, samples: int = 2000, checks: int = 4,
                 check_samples: int = 1000, scorer_train_size: int = 20000, scorer_epochs: int = 2,
                 reference_size: int = 5000, scorer_dir: str | None = None) -> Result:
    """DCGAN and an MLP GAN, same data, loss (non-saturating), optimiser and batch, both judged by the
    Fréchet distance on the real-MNIST classifier's features.

    Regime, and why: compared at equal wall time. An MLP step costs about a third of a DCGAN step on
    this CPU, so equal steps would handicap the MLP; `mlp_steps` gives it as many steps as fit in the
    DCGAN's training time (the suite sets it from measured step times; both times are reported, and
    their ratio). FID at `checks` checks (on `check_samples` samples) shows where each curve stands."""
    mlp_steps = mlp_steps or steps
    sc = scorer(seed=seed, train_size=scorer_train_size, epochs=scorer_epochs, reference_size=reference_size,
                path=scorer_dir)
    x, _ = _mnist_tanh(train_size, seed)
    metrics: dict = {"scorer_test_accuracy": sc.test_accuracy}
    artifacts: dict = {}
    conv: dict = {}
    z_eval = np.random.default_rng([seed, 99]).standard_normal((samples, latent)).astype("float32")
    fig, ax = plots.figure(5.0, 3.2)
    for name, n_steps in (("dcgan", steps), ("mlp", mlp_steps)):
        keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        gan = GAN(*_mnist_pair(name, latent=latent, width=width, g_hidden=g_hidden, d_hidden=d_hidden), "nonsat",
                  jit_compile=not _NO_XLA)   # both arms alike: the equal-time step counts assume it
        curve, at, spent = [], [], [0.0]

        cpu_spent = [0.0]

        def check(step):
            t, c = time.perf_counter(), _cpu()
            curve.append(sc.frechet(_to01(gan.sample(z_eval[:check_samples]))))
            at.append(step)
            spent[0] += time.perf_counter() - t
            cpu_spent[0] += _cpu() - c

        every = max(1, n_steps // checks)
        t0, c0 = time.perf_counter(), _cpu()
        train(gan, x, steps=n_steps, batch_size=batch_size, rng=rng, every=every, on_check=check,
               label=name)
        metrics[f"{name}_train_seconds"] = time.perf_counter() - t0 - spent[0]
        metrics[f"{name}_cpu_seconds"] = _cpu() - c0 - cpu_spent[0]
        metrics[f"{name}_steps"] = n_steps
        metrics[f"{name}_fid_curve"] = [round(v, 3) for v in curve]
        conv[name] = convergence.check(curve, budget=f"{n_steps} steps", unit_per_point=every, unit="steps",
                                       metrics=[f"{name}_*"])
        out = _to01(gan.sample(z_eval))
        metrics |= sc.score(out, name)
        metrics |= {f"{name}_g_params": int(gan.G.count_params()), f"{name}_d_params": int(gan.D.count_params())}
        artifacts[f"{name}_samples.png"] = _sample_grid(out[:100], 10, f"{name}, {n_steps} steps, seed {seed}")
        ax.plot(np.array(at) * metrics[f"{name}_train_seconds"] / n_steps, curve, "o-", label=f"{name} ({n_steps} steps)")
    metrics["mlp_to_dcgan_seconds"] = metrics["mlp_train_seconds"] / metrics["dcgan_train_seconds"]
    metrics["mlp_to_dcgan_cpu_seconds"] = metrics["mlp_cpu_seconds"] / max(metrics["dcgan_cpu_seconds"], 1e-9)
    ax.set(xlabel="training seconds", ylabel=f"FID ({check_samples} samples)", yscale="log",
           title=f"sample quality against wall time, seed {seed}")
    ax.legend(fontsize=7)
    artifacts["fid_vs_time.png"] = plots.png(fig)
    real = (x[np.random.default_rng(seed).choice(len(x), samples, replace=False)] + 1) / 2
    metrics |= sc.score(real, "real")
    return Result(metrics=metrics, artifacts=artifacts, convergence=conv,
                  notes=f"{len(x)} MNIST images; DCGAN {steps} and MLP GAN {mlp_steps} steps of batch {batch_size} "
                        f"(equal wall time: MLP/DCGAN training seconds {metrics['mlp_to_dcgan_seconds']:.2f}), "
                        f"Adam(2e-4, β1 0.5); FID of {samples} samples against {reference_size} real test images "
                        f"on the scoring CNN's features")


