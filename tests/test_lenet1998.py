"""LeNet-5 in the 1998 flavour (repro.models.lenet1998) and its MNIST experiment: the paper's
squashing function, subsampling, connection table and parameter count, and a tiny training run."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from repro.models import lenet1998 as L


def test_squashing_function_is_lecuns():
    x = np.array([-1.0, 0.0, 1.0, 10.0], "float32")
    y = np.asarray(L.scaled_tanh(x))
    np.testing.assert_allclose(y[:3], [-1.0, 0.0, 1.0], atol=1e-4)      # f(±1) = ±1 (A, S of appendix A)
    assert abs(y[3] - 1.7159) < 1e-4                                      # saturates at A


def test_c3_connection_table_is_table_one():
    m = L.c3_mask()[0, 0]
    assert m.shape == (6, 16) and m.sum() == 60
    assert list(m.sum(axis=0)) == [3] * 6 + [4] * 9 + [6]
    assert list(np.nonzero(m[:, 14])[0]) == [0, 2, 3, 5]                  # the one non-contiguous four


def test_the_paper_parameter_count():
    model = L.lenet5_1998(seed=0)
    counts = {l.name: l.count_params() for l in model.layers}
    assert counts["C1"] == 156 and counts["S2"] == 12 and counts["S4"] == 32
    assert model.get_layer("C3").effective_params() == 1516
    assert counts["C5"] == 48_120 and counts["F6"] == 10_164
    # the paper's 60,000 trainable parameters, plus our 84x10+10 softmax layer instead of fixed RBF codes
    assert L.effective_params(model) == 60_000 + 850
    assert model.output_shape == (None, 10)


def test_masked_kernel_entries_do_not_act():
    """A C3 map ignores the S2 maps the table does not connect to it."""
    model = L.lenet5_1998(seed=0)
    c3 = model.get_layer("C3")
    x = np.zeros((1, 14, 14, 6), "float32")
    x[..., 3] = 1.0                           # only S2 map 3 is on
    out = np.asarray(c3(x))[0, 0, 0]
    bias = np.asarray(c3.bias)
    table = L.c3_mask()[0, 0]
    for j in range(16):
        if table[3, j] == 0:
            assert abs(out[j] - float(L.scaled_tanh(bias[j]))) < 1e-5


def test_subsampling_is_a_scaled_average_plus_bias_then_squashing():
    layer = L.Subsampling()
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1) / 16
    layer.build(x.shape)
    layer.coef.assign([2.0])
    layer.bias.assign([-0.5])
    y = np.asarray(layer(x))[0, :, :, 0]
    avg = x[0, :, :, 0].reshape(2, 2, 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(y, np.asarray(L.scaled_tanh(2.0 * avg - 0.5)), atol=1e-6)


def test_paper_input_scaling():
    np.testing.assert_allclose(L.scale_pixels(np.array([0, 255], np.uint8)), [-0.1, 1.175], atol=1e-6)


def test_step_schedule_has_the_paper_shape():
    from repro.experiments.lenet_mnist import _step_schedule
    sched = _step_schedule(0.2, 100)
    rates = [float(sched(s)) for s in (0, 9, 11, 24, 26, 39, 41, 59, 61, 99)]
    np.testing.assert_allclose(rates, [0.2, 0.2, 0.08, 0.08, 0.04, 0.04, 0.02, 0.02, 0.004, 0.004], rtol=1e-6)


def test_lenet1998_trains_on_a_small_mnist_slice():
    from repro import data
    try:
        data.load_mnist(train_size=0, test_size=10)
    except Exception as e:  # noqa: BLE001  the data layer is tested elsewhere
        pytest.skip(f"MNIST not available here: {e}")
    from repro.experiments.lenet_mnist import lenet5_mnist_1998
    r = lenet5_mnist_1998(seed=0, epochs=3, train_size=2000, test_size=500)
    m = r.metrics
    assert m["train_size"] == 2000 and m["test_size"] == 500 and m["effective_params"] == 60_850
    assert m["test_error"] < 0.5                       # far from chance (0.9) after 3 short epochs
    assert 0 < r.stderr["test_error"] < 0.05
    assert set(r.convergence) == {"lenet1998"}
    keras.backend.clear_session()
