"""LSTM-STOCK: next-day direction of real daily prices, SimpleRNN vs LSTM vs two naive baselines.

Claim (7.4, 性能优势): "股票预测任务中，LSTM平均正确率（0.65）高于传统RNN（0.61）".
The chapter gives neither the data nor the task. The task tested here: from the last ``window``
(20, a trading month) daily log returns of one series, predict whether its next close is above
its last one (next-day up / not up), for six real daily series: the adjusted closes of AAPL, IBM,
MSFT (2000-2013) and GOOG (2004-2013), and the S&P 500 and NASDAQ Composite indices (1999-2018);
"accuracy" is the share of test days whose direction is predicted right, averaged over the six
series (the chapter's "平均正确率"). Per series the samples are split by date (train, then
validation for early stopping, then test: no look-ahead), the returns are standardised with the
training period's mean and standard deviation only, and each seed trains one SimpleRNN and one
LSTM of the same width on every series.

Two naive predictors stand beside them: the training period's majority direction, and "tomorrow
moves like today" (persistence). A direction model is only worth comparing if it beats both
(the suite's precondition): on a series that is close to a random walk both recurrent nets sit at
chance and an LSTM-vs-RNN difference there says nothing about the claim. The test period is fixed
by design (the last days of each series), so seeds vary only initialisation and batch order; the
test-day sampling enters as each accuracy's binomial standard error over the test days
(``Result.stderr``, ``test_set`` "fixed"), which the runner adds to the seed-to-seed spread, so every
interval includes it; a paired difference carries the error of the per-day paired difference
(``Result.paired_se``: McNemar's discordant days), not both sides' errors added.
"""
from __future__ import annotations

import gc
import time

import keras
import numpy as np

from repro import convergence, data, plots, progress, stats
from repro.registry import Result, experiment

LAYERS = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM}


def direction_samples(prices: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows of log returns and next-day direction: x[i] = r[i-window+1 .. i], y[i] = r[i+1] > 0.

    Returns (x (n, window) float64, y (n,) uint8, last_return (n,) = r[i], for the persistence
    baseline). Sample i uses prices up to day i+1 for its target and up to day i for its input.
    """
    r = np.diff(np.log(np.asarray(prices, dtype=np.float64)))
    n = len(r) - window
    if n <= 0:
        raise ValueError(f"{len(prices)} prices are too few for a window of {window} returns")
    idx = np.arange(window - 1, window - 1 + n)                    # index of the input's last return
    x = np.stack([r[i - window + 1: i + 1] for i in idx])
    y = (r[idx + 1] > 0).astype(np.uint8)
    return x, y, r[idx]


def chronological_split(n: int, train_frac: float, val_frac: float) -> tuple[slice, slice, slice]:
    """First ``train_frac`` of the samples, the next ``val_frac``, then the rest (the test period)."""
    n_train, n_val = int(n * train_frac), int(n * val_frac)
    if n_train < 1 or n_val < 1 or n - n_train - n_val < 1:
        raise ValueError(f"{n} samples cannot be split {train_frac}/{val_frac}/rest")
    return slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, n)


def standardise(x: np.ndarray, train: slice) -> np.ndarray:
    """Scale returns by the mean and std of the training windows only (no test statistics leak)."""
    mu, sd = float(x[train].mean()), float(x[train].std())
    return ((x - mu) / sd)[..., None].astype("float32")


def train_direction_model(kind: str, x: np.ndarray, y: np.ndarray, split: tuple[slice, slice, slice], *,
                          seed: int, units: int, epochs: int, batch_size: int, learning_rate: float,
                          patience: int) -> tuple[np.ndarray, int, dict]:
    """Fit ``kind`` on the training period with early stopping on the validation period; returns
    the predicted probabilities of "up" on the test period, the epochs run and the convergence
    (what the stop rule watches: converged when early stopping fired, else ``convergence.check``
    on the validation loss)."""
    train, val, test = split
    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(x.shape[1:]), LAYERS[kind](units),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy",
                  metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                         restore_best_weights=True)
    history = model.fit(x[train], y[train], validation_data=(x[val], y[val]), epochs=epochs,
                        batch_size=batch_size, shuffle=True, verbose=0, callbacks=[stop])
    ran = len(history.history["loss"])
    conv = convergence.from_early_stopping(history, stop, patience=patience, epochs=epochs)
    return model.predict(x[test], batch_size=1024, verbose=0)[:, 0], ran, conv


@experiment("stock_direction", datasets=("stocks", "sp500", "nasdaq"))
def stock_direction(*, seed: int, tickers: list[str] = ("AAPL", "IBM", "MSFT", "GOOG", "SP500", "NASDAQ"),
                    window: int = 20, units: int = 32, epochs: int = 30, batch_size: int = 64,
                    learning_rate: float = 1e-3, patience: int = 5, train_frac: float = 0.7,
                    val_frac: float = 0.1, max_days: int | None = None) -> Result:
    """Test accuracy of next-day direction (up / not up) for SimpleRNN and LSTM from the last
    ``window`` daily log returns, averaged over the series, beside the majority direction of the
    training period and persistence (see the module docstring for the task and the regime)."""
    series = data.load_prices(list(tickers))
    per: dict[str, dict[str, float]] = {}
    converged: dict[str, dict] = {}
    test_days = 0
    correct: dict[str, dict[str, np.ndarray]] = {}   # ticker -> predictor -> right (1) or wrong (0) per test day
    t0 = time.perf_counter()
    for i, (ticker, (dates, prices)) in enumerate(series.items()):
        if max_days is not None:        # small profiles: the most recent max_days of the series
            dates, prices = dates[-max_days:], prices[-max_days:]
        x, y, last = direction_samples(prices, window)
        split = chronological_split(len(y), train_frac, val_frac)
        xs = standardise(x, split[0])
        y_test = y[split[2]]
        majority = int(y[split[0]].mean() >= 0.5)
        row = {"majority": float(np.mean(y_test == majority)),
               "persistence": float(np.mean(y_test == (last[split[2]] > 0))),
               "up_share_test": float(y_test.mean())}
        correct[ticker] = {"majority": (y_test == majority).astype(float),
                           "persistence": (y_test == (last[split[2]] > 0)).astype(float)}
        for kind in LAYERS:
            prob, ran, converged[f"{kind}_{ticker}"] = train_direction_model(
                kind, xs, y, split, seed=seed, units=units, epochs=epochs, batch_size=batch_size,
                learning_rate=learning_rate, patience=patience)
            converged[f"{kind}_{ticker}"]["metrics"] = [f"{kind}_*"]
            pred = (prob >= 0.5).astype(np.uint8)
            row[kind] = float(np.mean(pred == y_test))
            correct[ticker][kind] = (pred == y_test).astype(float)
            row[f"{kind}_up_share"] = float(pred.mean())
            row[f"{kind}_epochs"] = ran
        row["test_from"], row["test_days"] = int(dates[window + 1 + split[2].start]), len(y_test)
        per[ticker] = row
        test_days += len(y_test)
        progress.step(i + 1, len(series), f"{ticker}: lstm {row['lstm']:.3f} rnn {row['rnn']:.3f} "
                                          f"majority {row['majority']:.3f}")

    def avg(key: str) -> float:
        return float(np.mean([row[key] for row in per.values()]))

    metrics: dict = {"lstm_accuracy": avg("lstm"), "rnn_accuracy": avg("rnn"),
                     "majority_accuracy": avg("majority"), "persistence_accuracy": avg("persistence"),
                     "lstm_up_share": avg("lstm_up_share"), "rnn_up_share": avg("rnn_up_share"),
                     "up_share_test": avg("up_share_test"), "test_days": test_days,
                     "lstm_epochs": avg("lstm_epochs"), "rnn_epochs": avg("rnn_epochs"),
                     # the spread that the test sample alone gives an accuracy near 0.5
                     "sampling_se": float(np.sqrt(0.25 / test_days) if test_days else 0.0),
                     "train_seconds": round(time.perf_counter() - t0, 2)}
    for ticker, row in per.items():
        for key in ("lstm", "rnn", "majority", "persistence"):
            metrics[f"{key}_accuracy_{ticker}"] = row[key]

    # Test-day sampling: binomial per series; an average of S series' proportions has
    # SE = sqrt(sum_i p_i (1 - p_i) / n_i) / S (the series' test days taken as independent).
    def avg_se(key: str) -> float:
        return float(np.sqrt(sum(stats.binomial_se(row[key], row["test_days"]) ** 2
                                 for row in per.values())) / len(per))

    stderr = {f"{key}_accuracy": avg_se(key) for key in ("lstm", "rnn", "majority", "persistence")}
    stderr |= {key: avg_se(key) for key in ("lstm_up_share", "rnn_up_share", "up_share_test")}
    for ticker, row in per.items():
        for key in ("lstm", "rnn", "majority", "persistence"):
            stderr[f"{key}_accuracy_{ticker}"] = stats.binomial_se(row[key], row["test_days"])

    # Paired on the same test days: the SE of a difference of two predictors' accuracies from the
    # days on which exactly one of them is right (McNemar), averaged over the series like the accuracies.
    paired_se = {f"{a}_accuracy|{b}_accuracy": float(np.sqrt(sum(
        stats.paired_item_se(c[a], c[b]) ** 2 for c in correct.values())) / len(correct))
        for a, b in (("rnn", "lstm"), ("majority", "lstm"), ("persistence", "lstm"))}

    fig, ax = plots.figure(6.0, 3.5)
    names = list(per)
    width = 0.2
    for j, (key, label) in enumerate([("lstm", "LSTM"), ("rnn", "SimpleRNN"),
                                      ("majority", "majority class"), ("persistence", "yesterday's move")]):
        ax.bar(np.arange(len(names)) + (j - 1.5) * width, [per[t][key] for t in names], width, label=label)
    ax.axhline(0.65, color="C0", ls=":", lw=1, label="chapter: LSTM 0.65")
    ax.axhline(0.61, color="C1", ls=":", lw=1, label="chapter: RNN 0.61")
    ax.set_xticks(np.arange(len(names)), names)
    ax.set(ylabel="test accuracy (next-day direction)", ylim=(0.4, 0.7), title=f"seed {seed}")
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    periods = ", ".join(f"{t} from {row['test_from']} ({row['test_days']} d)" for t, row in per.items())
    return Result(metrics=metrics, artifacts={"accuracy.png": plots.png(fig)},
                  stderr=stderr, test_set={k: "fixed" for k in stderr},   # the last days of each series
                  paired_se=paired_se,
                  convergence=converged,
                  notes=f"window {window} log returns, {units} units, Adam {learning_rate:g}, early "
                        f"stopping (patience {patience}) on the validation period; test periods: {periods}")
