"""GAN-DSTAR and GAN-VALUE: GANs on 1-D densities known in closed form (7.6)."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from repro import convergence, plots, progress
from repro.experiments.gan_core import GAN, d_loss, train
from repro.models.generative import mlp_discriminator, mlp_generator
from repro.registry import Result, experiment

# ----------------------------------------------------------------------------- GAN-DSTAR

def _normal_pdf(x, mu, sd):
    return np.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))


# name: (p_data as [(weight, mean, sd)], fixed p_G as [(weight, mean, sd)])
DENSITIES = {"gauss": ([(1.0, 0.0, 1.0)], [(1.0, 1.0, 0.5)]),
             "bimodal": ([(0.5, -2.0, 0.5), (0.5, 2.0, 0.5)], [(1.0, 0.0, 1.5)])}


def _pdf(mix, x):
    return sum(w * _normal_pdf(x, m, s) for w, m, s in mix)


def _draw(mix, n, rng):
    k = rng.choice(len(mix), n, p=[w for w, _, _ in mix])
    mu, sd = np.array([m for _, m, _ in mix])[k], np.array([s for _, _, s in mix])[k]
    return (mu + sd * rng.standard_normal(n))[:, None].astype("float32")


def _w1_1d(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(np.sort(a.ravel()) - np.sort(b.ravel()))))


def dstar_argmax_error(p_data, p_g, x: np.ndarray, logit_step: float = 0.01, plant: str = "") -> float:
    """max over x of |argmax_D [p_data(x) log D + p_G(x) log(1 − D)] − p_data/(p_data + p_G)|: the D that
    maximises the chapter's V(G, D) pointwise, found on a grid of D (logit steps of `logit_step`, so a
    grid error of at most logit_step/8 in probability), against the formula. Where either density has
    mass (p_data + p_G above 1e-6 of its peak). `plant` (tests): "inverted" compares with p_G/(p_data + p_G)."""
    p, q = _pdf(p_data, x), _pdf(p_g, x)
    keep = (p + q) > 1e-6 * np.max(p + q)
    p, q = p[keep], q[keep]
    z = np.arange(-round(20 / logit_step), round(20 / logit_step) + 1) * logit_step
    log_d, log_1md = -np.log1p(np.exp(-z)), -np.log1p(np.exp(z))
    best = np.empty_like(p)
    for lo in range(0, len(p), 256):
        v = p[lo:lo + 256, None] * log_d[None] + q[lo:lo + 256, None] * log_1md[None]
        best[lo:lo + 256] = 1.0 / (1.0 + np.exp(-z[np.argmax(v, axis=1)]))
    formula = q / (p + q) if plant == "inverted" else p / (p + q)
    return float(np.max(np.abs(best - formula)))


def _fixed_part(seed: int, hidden, steps: int, batch_size: int, learning_rate: float, grid: np.ndarray,
                metrics: dict, axes) -> None:
    """D trained against a fixed p_G on each density, against D* = p_data/(p_data + p_G)."""
    rng = np.random.default_rng(seed)
    errs = []
    for k, (name, (p_data, p_g)) in enumerate(DENSITIES.items()):
        keras.utils.set_random_seed(seed + k)
        D = mlp_discriminator(inputs=1, hidden=tuple(hidden))
        opt = keras.optimizers.Adam(learning_rate)

        @tf.function
        def d_step(xr, xf):
            with tf.GradientTape() as tape:
                value = d_loss("minimax", D(xr, training=True), D(xf, training=True))
            opt.apply_gradients(zip(tape.gradient(value, D.trainable_variables), D.trainable_variables))
            return value

        for _ in range(steps):
            d_step(_draw(p_data, batch_size, rng), _draw(p_g, batch_size, rng))
        d = tf.sigmoid(D(grid)).numpy()[:, 0]
        pd, pg = _pdf(p_data, grid[:, 0]), _pdf(p_g, grid[:, 0])
        dstar = pd / (pd + pg + 1e-300)
        w = (pd + pg) / 2
        w = w / w.sum()
        err = float(np.sum(w * np.abs(d - dstar)))
        errs.append(err)
        metrics |= {f"fixed_{name}_mean_abs_error": err,
                    f"fixed_{name}_max_abs_error_dense": float(np.max(np.abs(d - dstar)[w > 1e-4])),
                    f"dstar_argmax_{name}_max_abs_error": dstar_argmax_error(p_data, p_g, np.linspace(-8, 8, 3201))}
        ax = axes[0][k]
        ax.plot(grid, dstar, "k--", label="D* = p_data/(p_data+p_G)")
        ax.plot(grid, d, label="trained D")
        ax.fill_between(grid[:, 0], 0, pd / pd.max() * 0.3, alpha=0.2, label="p_data")
        ax.fill_between(grid[:, 0], 0, pg / pg.max() * 0.3, alpha=0.2, label="p_G (fixed)")
        ax.set(title=f"{name}: fixed G, error {err:.3f}", ylim=(0, 1.02))
        ax.legend(fontsize=6)
    metrics["fixed_mean_abs_error"] = float(np.mean(errs))
    metrics["dstar_argmax_max_abs_error"] = max(metrics[f"dstar_argmax_{n}_max_abs_error"] for n in DENSITIES)


def _joint_part(seed: int, hidden, steps: int, batch_size: int, rate: float, final_ratio: float | None,
                hold: float, ema: float | None, checks: int, late: int, grid: np.ndarray, metrics: dict, conv: dict,
                axes) -> None:
    """G and D trained together (the chapter's alternating steps, non-saturating G) on each density: G's
    exact 1-D W1 to the data and D's mean |D − ½| under p_data at every check; the late checks averaged."""
    rng = np.random.default_rng([seed, 1])
    for k, (name, (p_data, _)) in enumerate(DENSITIES.items()):
        keras.utils.set_random_seed(seed + 10 + k)
        gan = GAN(mlp_generator(1, outputs=1, hidden=tuple(hidden), activation="linear"),
                  mlp_discriminator(inputs=1, hidden=tuple(hidden)), "nonsat", learning_rate=rate,
                  final_learning_rate=rate * final_ratio if final_ratio else None, steps=steps, hold=hold, ema=ema)
        xs = _draw(p_data, 200000, rng)
        probe = _draw(p_data, 20000, rng)
        z_probe = rng.standard_normal((20000, 1)).astype("float32")
        w1, dev = [], []
        every = max(1, steps // checks)

        def check(_step):
            w1.append(_w1_1d(gan.sample(z_probe, averaged=bool(ema)), probe))
            dev.append(float(np.mean(np.abs(tf.sigmoid(gan.D(probe)).numpy() - 0.5))))

        train(gan, xs, steps=steps, batch_size=batch_size, rng=rng, every=every, on_check=check, label=f"joint {name}")
        g_samples = gan.sample(z_probe, averaged=bool(ema))
        floor = _w1_1d(_draw(p_data, 20000, rng), probe)
        n = min(late, len(w1))
        metrics |= {f"w1_data_floor_{name}": floor, f"joint_{name}_w1_curve": [round(v, 5) for v in w1],
                    f"joint_{name}_d_curve": [round(v, 5) for v in dev],
                    f"joint_{name}_w1_g_to_data": w1[-1], f"joint_{name}_w1_late": float(np.mean(w1[-n:])),
                    f"joint_{name}_mean_abs_d_minus_half": dev[-1],
                    f"joint_{name}_d_minus_half_late": float(np.mean(dev[-n:])),
                    f"joint_{name}_mean_abs_d_minus_half_on_g":
                        float(np.mean(np.abs(tf.sigmoid(gan.D(g_samples)).numpy() - 0.5)))}
        # solved within twice the W1 of two data samples of this size: G is the data up to sampling; a
        # decaying rate flattens the curve, so flatness is judged on the phase before it (phase_end)
        conv[f"joint_{name}"] = convergence.check(
            w1, budget=f"{steps} steps", unit_per_point=every, unit="steps", floor=2 * floor,
            phase_end=max(1, int(round(hold * len(w1)))) if final_ratio else None,
            metrics=[f"joint_{name}_*", "joint_*_mean", "joint_w1_late_max"])
        ax = axes[1][k]
        ax.hist(probe[:, 0], bins=100, range=(-5, 5), density=True, alpha=0.4, label="data")
        ax.hist(g_samples[:, 0], bins=100, range=(-5, 5), density=True, alpha=0.4, label="G" + (" (averaged)" if ema else ""))
        ax.plot(grid, tf.sigmoid(gan.D(grid)).numpy(), "k", label="D(x)")
        ax.axhline(0.5, color="grey", ls=":")
        ax.set(title=f"{name}: G and D trained, late mean |D−½| {metrics[f'joint_{name}_d_minus_half_late']:.3f}, "
                     f"W1(G, data) {metrics[f'joint_{name}_w1_late']:.3f}", ylim=(0, 1.02))
        ax.title.set_fontsize(8)
        ax.legend(fontsize=6)
        progress.step(k + 1, len(DENSITIES), name)
    metrics["joint_d_minus_half_late_mean"] = float(np.mean([metrics[f"joint_{n}_d_minus_half_late"] for n in DENSITIES]))
    metrics["joint_w1_late_max"] = max(metrics[f"joint_{n}_w1_late"] for n in DENSITIES)


@experiment("gan_optimal_discriminator")
def gan_optimal_discriminator(*, seed: int, parts: list[str] = ("fixed", "joint"), hidden: list[int] = (64, 64),
                              steps: int = 2000, batch_size: int = 512, learning_rate: float = 1e-3,
                              joint_steps: int = 10000, joint_rate: float = 2e-4, final_ratio: float | None = 0.1,
                              hold: float = 0.5, ema: float | None = None, checks: int = 20, late: int = 5) -> Result:
    """GAN-DSTAR on 1-D densities known in closed form (`DENSITIES`), in two parts a run selects (`parts`).

    fixed: D (MLP 1-64-64-1, Adam `learning_rate`, `steps` steps of batch 512) trained against a fixed p_G,
      its error against D* = p_data/(p_data + p_G) weighted by (p_data + p_G)/2; and the formula itself:
      the D that maximises V(G, D) pointwise, found on a grid of D, against p_data/(p_data + p_G).
    joint: G and D trained together (non-saturating G, Adam(`joint_rate`, β1 0.5)), the rate held for the
      `hold` share of `joint_steps` and then decaying exponentially to `final_ratio` of it (or, with `ema`,
      a moving average of G's weights is measured); G's exact 1-D W1 to the data and D's mean |D − ½|
      under p_data at `checks` checks, averaged over the last `late` (a GAN's state wobbles from check
      to check: one check is a noisy reading of it). The W1 of two data samples of this size (the
      sampling floor) is reported beside it and sets the convergence rule's solved level (twice it).

    The chapter's "D(x) = 0.5" is a statement about the state p_G = p_data, so D ≈ ½ alone does not show
    it: a D that cannot tell G's samples from the data is also ½ while G is still off the data."""
    unknown = set(parts) - {"fixed", "joint"}
    if unknown or not parts:
        raise ValueError(f"parts must be among ['fixed', 'joint'], got {list(parts)}")
    metrics: dict = {}
    conv: dict = {}
    grid = np.linspace(-5, 5, 1001)[:, None].astype("float32")
    fig, axes = plots.figure(8, 5.5)
    axes.remove()
    axes = fig.subplots(2, 2)
    if "fixed" in parts:
        _fixed_part(seed, hidden, steps, batch_size, learning_rate, grid, metrics, axes)
    if "joint" in parts:
        _joint_part(seed, hidden, joint_steps, batch_size, joint_rate, final_ratio, hold, ema, checks, late, grid,
                    metrics, conv, axes)
    schedule = (f"held {hold:.0%}, then decaying to {final_ratio:g}x" if final_ratio else "constant") + \
        (f", G's weights averaged (EMA {ema:g})" if ema else "")
    return Result(metrics=metrics, artifacts={"d_vs_dstar.png": plots.png(fig)}, convergence=conv,
                  notes=f"1-D densities {', '.join(DENSITIES)}; MLPs 1-{'-'.join(map(str, hidden))}-1"
                        + (f"; fixed G: {steps} Adam({learning_rate:g}) steps of D (errors weighted by "
                           f"(p_data+p_G)/2)" if "fixed" in parts else "")
                        + (f"; joint: {joint_steps} steps, non-saturating G, Adam({joint_rate:g}, β1 0.5) "
                           f"{schedule}; {checks} checks, the last {late} averaged" if "joint" in parts else ""))


# ----------------------------------------------------------------------------- GAN-VALUE

def _log_pdf(mix, x: np.ndarray) -> np.ndarray:
    """log of a mixture of normals [(weight, mean, sd)], without underflow in the tails."""
    return np.logaddexp.reduce([np.log(w) - 0.5 * ((x - m) / s) ** 2 - np.log(s * np.sqrt(2 * np.pi))
                                for w, m, s in mix], axis=0)


def _entropy(mix, x: np.ndarray, dx: float) -> float:
    """Differential entropy: ½ log(2πe σ²) for one normal, −∫ p log p by quadrature for a mixture."""
    if len(mix) == 1:
        return float(0.5 * np.log(2 * np.pi * np.e * mix[0][2] ** 2))
    lp = _log_pdf(mix, x)
    return float(-np.sum(np.exp(lp) * lp) * dx)


def gan_value_as_written(p_data, p_g, x: np.ndarray, dx: float, plant: str = "") -> float:
    """C(G) = E_{x∼p_data}[log D*_G(x)] + E_{x∼p_g}[log(1 − D*_G(x))] with D*_G = p_data/(p_data + p_G),
    the chapter's first line symbol for symbol, by quadrature on the uniform grid x (step dx), over the
    points where the densities have mass (p_data + p_G above 1e-12 of its peak: what lies outside
    changes C by far less than 1e-9). Where D* or 1 − D* rounds to 0 in float64 (one density below
    1e-16 of the other) its term is dropped: each such term is at most (p_data + p_G)·4e-15.
    `plant` is for tests: "log_d_both" writes log D* in both terms, "inverted_dstar" uses
    D = p_G/(p_data + p_G)."""
    p, q = np.exp(_log_pdf(p_data, x)), np.exp(_log_pdf(p_g, x))
    keep = (p + q) > 1e-12 * np.max(p + q)
    p, q = p[keep], q[keep]
    d = q / (p + q) if plant == "inverted_dstar" else p / (p + q)
    one_minus_d = d if plant == "log_d_both" else 1.0 - d
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where(d > 0, p * np.log(d), 0.0)
        second = np.where(one_minus_d > 0, q * np.log(one_minus_d), 0.0)
    return float(np.sum(first) * dx + np.sum(second) * dx)


# name: (p_data, p_G) as [(weight, mean, sd)]
VALUE_PAIRS = {
    "identical": ([(1.0, 0.0, 1.0)], [(1.0, 0.0, 1.0)]),
    "shift_1": ([(1.0, 0.0, 1.0)], [(1.0, 1.0, 1.0)]),
    "shift_3": ([(1.0, 0.0, 1.0)], [(1.0, 3.0, 1.0)]),
    "wider": ([(1.0, 0.0, 1.0)], [(1.0, 0.0, 2.0)]),
    "bimodal_vs_gauss": ([(0.5, -2.0, 0.5), (0.5, 2.0, 0.5)], [(1.0, 0.0, 1.0)]),
    "bimodal_vs_wide": ([(0.5, -2.0, 0.5), (0.5, 2.0, 0.5)], [(1.0, 0.0, 2.0)]),
}


@experiment("gan_value_function")
def gan_value_function(*, seed: int, x_max: float = 20.0, step: float = 0.001, shifts: list = None,
                       separations: list = None, d_logit_step: float = 0.025, coarse_step: float = 0.02,
                       mc_samples: int = 100000, plant: str = "") -> Result:
    """GAN-VALUE: the chapter's C(G) = max_D V(G, D) = E_{p_data}[log D*_G(x)] + E_{p_g}[log(1 − D*_G(x))]
    with D*_G = p_data/(p_data + p_G), evaluated literally by quadrature (grid step `step` on
    [−x_max, x_max]) for pairs of known 1-D densities (`VALUE_PAIRS`: identical; shifted and wider
    normals; a two-mode mixture against normals), against −log 4 + 2·JSD(p_data‖p_G) computed
    independently as 2·(H(M) − ½H(p_data) − ½H(p_G)) with M = ½(p_data + p_G) (Goodfellow et al. 2014,
    Theorem 1); the entropies of normals in closed form, of mixtures by quadrature.
    At p_G = p_data: C = −log 4, and the D that maximises V(G, D) found numerically (pointwise over a
    grid of D in logit steps of `d_logit_step`, on an x grid of `coarse_step`) is ½ everywhere; the
    same numerical maximum of V gives C(G) for every pair (C(G) = max_D V). Minimum over families of p_G:
    normals N(s, 1) against p_data = N(0, 1) for s in `shifts`, and two-mode mixtures ±a against the
    ±2 data mixture for a in `separations`: the minimum must be at p_G = p_data (s = 0, a = 2).
    The empirical side (F+E): Monte Carlo estimates of C(G) from `mc_samples` draws of each density
    (fixed seed), in standard errors from the quadrature value.
    `plant` (tests) replaces the formula as in `gan_value_as_written`.
    """
    shifts = [s / 10 for s in range(-20, 21)] if shifts is None else shifts
    separations = [a / 10 for a in range(10, 31)] if separations is None else separations
    rng = np.random.default_rng(seed)
    n = int(round(2 * x_max / step))
    x = np.linspace(-x_max, x_max, n + 1)
    dx = 2 * x_max / n
    log4 = np.log(4.0)
    m: dict = {}
    diffs, zs, line2, numeric = [], [], [], []
    for name, (pd, pg) in VALUE_PAIRS.items():
        c = gan_value_as_written(pd, pg, x, dx, plant)
        lp, lq = _log_pdf(pd, x), _log_pdf(pg, x)
        mix = [(0.5 * w, mu, s) for w, mu, s in pd] + [(0.5 * w, mu, s) for w, mu, s in pg]
        jsd = _entropy(mix, x, dx) - 0.5 * _entropy(pd, x, dx) - 0.5 * _entropy(pg, x, dx)
        m[f"c_{name}"] = c
        m[f"jsd_{name}"] = jsd
        diffs.append(abs(c - (-log4 + 2.0 * jsd)))
        # the chapter's second line, E[log p_data/(p_data+p_g)] + E[log p_g/(p_data+p_g)], in logs
        lm = np.logaddexp(lp, lq)
        line2.append(abs(c - float(np.sum(np.exp(lp) * (lp - lm)) * dx + np.sum(np.exp(lq) * (lq - lm)) * dx)))
        # max over D of V(G, D) = ∫ p log D + q log(1 − D), pointwise on grids of x and of D
        xc = np.linspace(-x_max, x_max, int(round(2 * x_max / coarse_step)) + 1)
        pc, qc = np.exp(_log_pdf(pd, xc)), np.exp(_log_pdf(pg, xc))
        z = np.arange(-round(30 / d_logit_step), round(30 / d_logit_step) + 1) * d_logit_step
        log_d, log_1md = -np.log1p(np.exp(-z)), -np.log1p(np.exp(z))
        best_v, best_d = np.empty_like(xc), np.empty_like(xc)
        for lo in range(0, len(xc), 256):
            v = pc[lo:lo + 256, None] * log_d[None] + qc[lo:lo + 256, None] * log_1md[None]
            j = np.argmax(v, axis=1)
            best_v[lo:lo + 256] = v[np.arange(len(j)), j]
            best_d[lo:lo + 256] = 1.0 / (1.0 + np.exp(-z[j]))
        numeric.append(abs(float(np.sum(best_v)) * coarse_step - gan_value_as_written(pd, pg, xc, coarse_step, plant)))
        if name == "identical":
            mass = (pc + qc) > 1e-12 * np.max(pc + qc)
            m["argmax_d_at_p_data_max_abs_minus_half"] = float(np.max(np.abs(best_d[mass] - 0.5)))
            dstar = np.exp(lp) / (np.exp(lp) + np.exp(lq))
            m["dstar_at_p_data_max_abs_minus_half"] = float(np.nanmax(np.abs(dstar - 0.5)))
        # Monte Carlo: samples of p_data and p_G through log D* and log(1 − D*) (in logs)
        xd, xg = _draw(pd, mc_samples, rng)[:, 0].astype("float64"), _draw(pg, mc_samples, rng)[:, 0].astype("float64")
        a = _log_pdf(pd, xd) - np.logaddexp(_log_pdf(pd, xd), _log_pdf(pg, xd))
        b = _log_pdf(pg, xg) - np.logaddexp(_log_pdf(pd, xg), _log_pdf(pg, xg))
        se = np.sqrt(a.var(ddof=1) / mc_samples + b.var(ddof=1) / mc_samples)
        zs.append(abs(a.mean() + b.mean() - c) / max(se, 1e-9))   # identical densities: no spread but round-off
    m["c_vs_jsd_max_abs_diff"] = float(max(diffs))
    m["c_at_p_data"] = m["c_identical"]
    m["c_at_p_data_abs_diff_from_neg_log4"] = float(abs(m["c_identical"] + log4))
    m["line2_vs_line1_max_abs_diff"] = float(max(line2))
    m["max_v_numeric_vs_c_max_abs_diff"] = float(max(numeric))
    m["mc_max_abs_z"] = float(max(zs))

    gauss = [(1.0, 0.0, 1.0)]
    c_shift = [gan_value_as_written(gauss, [(1.0, s, 1.0)], x, dx, plant) for s in shifts]
    data2 = VALUE_PAIRS["bimodal_vs_gauss"][0]
    c_sep = [gan_value_as_written(data2, [(0.5, -a, 0.5), (0.5, a, 0.5)], x, dx, plant) for a in separations]
    m["argmin_shift"] = float(shifts[int(np.argmin(c_shift))])
    m["argmin_separation"] = float(separations[int(np.argmin(c_sep))])
    m["c_min_shift_family"] = float(min(c_shift))
    m["c_min_separation_family"] = float(min(c_sep))
    m["minimum_at_p_data"] = m["argmin_shift"] == 0.0 and m["argmin_separation"] == 2.0
    m["neg_log4"] = float(-log4)

    fig, ax = plots.figure(5.5, 3.4)
    ax.plot(shifts, c_shift, label="N(s, 1) against N(0, 1): C against s")
    ax.plot(separations, c_sep, label="modes ±a against ±2: C against a")
    ax.axhline(-log4, color="grey", ls="--", label="−log 4")
    ax.set(xlabel="parameter of p_G", ylabel="C(G)", title="the chapter's C(G) by quadrature")
    ax.legend(fontsize=8)
    return Result(metrics=m, artifacts={"c_of_g.png": plots.png(fig)},
                  notes=f"quadrature step {dx:g} on [−{x_max:g}, {x_max:g}]; pairs {list(VALUE_PAIRS)}; "
                        f"{mc_samples} Monte Carlo draws per density" + (f"; planted: {plant}" if plant else ""))
