"""Fast tests of the 7.2 architecture experiments: each is called once and its numbers are checked
against what Keras itself gives (built here independently) or against exact arithmetic."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from repro import convergence, registry
from repro.experiments import cnn_architecture as ca
from repro.models.alexnet import alexnet
from repro.models.locally_connected import LocallyConnected2D

PNG = b"\x89PNG"


def test_experiments_are_registered():
    for name in ("cnn_local_params", "conv_output_shapes", "conv_weight_sharing", "conv_channels",
                 "pooling_shape_invariance", "receptive_field_depth", "lenet5_layer_census",
                 "alexnet_layer_census", "vgg16_layer_census", "small_vs_large_kernels",
                 "resnet_stage_census", "resnet_cost", "conv3d_vs_conv2d"):
        assert registry.EXPERIMENTS[name].__module__ == ca.__name__


def test_cnn_suite_file_loads_and_names_these_experiments():
    from repro import suite
    s = suite.load(suite.SUITES_DIR / "cnn.yaml")
    ids = [c.id for c in s.claims]
    assert ids[:2] == ["LENET-C1", "LENET-MNIST"]
    for cid in ("CNN-LOCAL", "CNN-CONVSHAPE", "CNN-SHARE", "CNN-CHANNELS", "CNN-POOL", "CNN-DEPTH",
                "ALEXNET-LAYERS", "VGG-LAYERS", "VGG-SMALLCONV", "RESNET-STAGES", "RESNET-ERROR", "CNN-CONV3D"):
        assert cid in ids
    assert not s.claim("RESNET-ERROR").checkable


# ---- local connection / sharing ------------------------------------------------------------

def test_local_params_formula_and_keras():
    r = ca.cnn_local_params(seed=0)
    m = r.metrics
    assert (m["fc_params"], m["local_params"], m["conv_shared_params"]) == (10**12, 10**8, 100)
    assert m["fc_over_local"] == 10**4 and m["conv_shared_params_keras_full_size"] == 100
    assert m["formula_matches_keras"] and m["tied_local_equals_conv"]
    n, k, fc, local, conv = m["keras_checks"][0]
    dense = keras.Sequential([keras.Input((n * n,)), layers.Dense(n * n, use_bias=False)])
    assert fc == dense.count_params() == n**4
    assert local == n * n * k * k and conv == k * k


def test_locally_connected_layer_shapes_and_counts():
    lc = keras.Sequential([keras.Input((7, 7, 2)), LocallyConnected2D(3, 3, strides=2)])
    assert tuple(lc.outputs[0].shape[1:]) == (3, 3, 3)
    assert lc.count_params() == 9 * (3 * 3 * 2 * 3) + 9 * 3
    assert lc.predict(np.ones((1, 7, 7, 2), "float32"), verbose=0).shape == (1, 3, 3, 3)


def test_conv_output_shapes():
    m = ca.conv_output_shapes(seed=0).metrics
    assert m["out_valid_s1"] == [3, 3] and m["out_same_s1"] == [5, 5]
    assert m["out_valid_s2"] == [2, 2] and m["out_same_s2"] == [3, 3]
    assert m["stride2_window_starts"] == [0, 2] and m["stride2_pixels_skipped"] == 1
    assert (m["corner_uses_valid"], m["corner_uses_same"], m["centre_uses_valid"]) == (1, 4, 9)
    assert m["formula_matches_keras"] and m["padding_raises_edge_uses"]


def test_weight_sharing_and_the_documents_worked_example():
    m = ca.conv_weight_sharing(seed=1).metrics
    assert m["conv_params_by_input_size"] == [10, 10, 10, 10] and m["params_independent_of_input"]
    assert m["local_params_by_input_size"] == [9 * 10, 26 * 26 * 10]
    assert m["output_shape"] == [3, 3] and m["max_abs_err_vs_hand"] < 1e-5
    # -1+1+1+1 (products) + 1 (bias) = 3; the document writes 2
    assert m["doc_example_input"] == [1.0, 1.0, 1.0, -1.0]
    assert m["doc_example_value"] == 3.0 and m["doc_example_value_without_bias"] == 2.0


def test_cross_correlation_helper_matches_keras_with_stride():
    x = np.arange(49, dtype="float32").reshape(7, 7)
    w = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], "float32")
    conv = layers.Conv2D(1, 3, strides=2, use_bias=False)
    model = keras.Sequential([keras.Input((7, 7, 1)), conv])
    conv.set_weights([w.reshape(3, 3, 1, 1)])
    np.testing.assert_allclose(model.predict(x[None, :, :, None], verbose=0)[0, :, :, 0],
                               ca._cross_correlate(x, w, stride=2), atol=1e-4)


def test_conv_channels():
    m = ca.conv_channels(seed=0).metrics
    assert m["kernel_shapes"] == [[3, 3, 1, 1], [3, 3, 3, 6], [3, 3, 3, 16], [3, 3, 16, 32]]
    assert [s[2] for s in m["output_shapes"]] == [1, 6, 16, 32]
    assert m["kernel_depth_equals_in_channels"] and m["out_channels_equal_kernel_count"]
    assert m["rgb_sum_of_channels_max_err"] < 1e-4


# ---- pooling and depth ----------------------------------------------------------------------

def test_pooling_shapes_and_shift_similarity_synthetic():
    r = ca.pooling_shape_invariance(seed=0, images="synthetic", n_images=32, train_size=0)
    m = r.metrics
    assert m["pool2_output"] == [14, 14, 6] and m["pool2_outputs"][-1] == [3, 3, 3]
    assert m["pool2_halves_each_side"]
    assert m["features_after_pool"] * 4 == m["features_before_pool"] == 32 * 32 * 16
    assert m["dense10_params_before_pool"] == 32 * 32 * 16 * 10 + 10
    for s in (1, 2):
        assert 0 < m[f"cos_nopool_shift{s}"] < 1
        assert m[f"cos_maxpool_shift{s}"] > m[f"cos_nopool_shift{s}"]
    assert m["cos_nopool_shift2"] < m["cos_nopool_shift1"]
    assert m["decim_output"] == [16, 16, 16] and "trained_cos_maxpool_shift1" not in m
    assert r.artifacts["pool_shift_similarity.png"].startswith(PNG)


def test_decimation_is_a_stride_two_convolution_with_the_same_filters():
    """The control keeps every second row and column: what a stride-2 'valid' convolution gives."""
    inp = keras.Input((12, 12, 1))
    conv = layers.Conv2D(3, 3, activation="relu")
    feat = conv(inp)
    readouts = ca._readouts(inp, feat)
    strided = layers.Conv2D(3, 3, strides=2, activation="relu")
    strided.build((None, 12, 12, 1))
    strided.set_weights(conv.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 12, 12, 1)).astype("float32")
    full, mx, av, dec = readouts.predict(x, verbose=0)
    np.testing.assert_allclose(dec, strided(x).numpy(), atol=1e-6)
    assert mx.shape == av.shape == dec.shape == (2, 5, 5, 3)
    assert np.all(mx >= dec - 1e-7)           # the max of a 2x2 field is at least its top-left entry


def test_pooling_on_real_mnist_when_available():
    from repro import data
    try:
        data.load_mnist(train_size=0, test_size=10)
    except Exception as e:  # noqa: BLE001  the data layer is tested elsewhere
        pytest.skip(f"MNIST not available here: {e}")
    m = ca.pooling_shape_invariance(seed=0, images="mnist", n_images=32, train_size=1000, train_epochs=1).metrics
    assert m["cos_maxpool_shift1"] > m["cos_nopool_shift1"]
    assert 0.5 < m["trained_accuracy"] <= 1.0                 # 1,000 digits, one epoch: it learns something
    for prefix in ("", "trained_"):
        for s in (1, 2):
            assert 0 < m[f"{prefix}cos_decim_shift{s}"] < 1 and 0 < m[f"{prefix}cos_maxpool_shift{s}"] <= 1


def test_receptive_field_measurement_matches_recurrence():
    specs = [("conv", 3, 1), ("pool", 2, 2), ("conv", 5, 1), ("conv", 3, 2), ("pool", 3, 3)]
    assert ca._rf_formula(specs) == [3, 4, 12, 16, 24]
    assert ca._rf_measured(specs) == [3, 4, 12, 16, 24]


def test_receptive_field_depth():
    r = ca.receptive_field_depth(seed=0)
    m = r.metrics
    assert m["lenet5_rf"] == [5, 6, 14, 16, 32] and m["lenet5_c5_rf_fraction"] == 1.0
    assert m["vgg16_rf"][:3] == [3, 5, 6] and m["vgg16_rf"][-1] == 212 and len(m["vgg16_rf"]) == 18
    assert m["formula_matches_keras"] and m["rf_grows_with_depth"]
    assert m["vgg16_convs_per_block"] == [2, 2, 3, 3, 3]
    assert r.artifacts["receptive_field.png"].startswith(PNG)
    assert "lenet5_erf_radius_C5_trained" not in m            # no training unless asked


def _stack(kernels: list[np.ndarray]) -> keras.Model:
    """Single-channel 'valid' convolutions with the given fixed kernels, named L1, L2, ..."""
    inp = keras.Input((32, 32, 1))
    x = inp
    for i, k in enumerate(kernels):
        conv = layers.Conv2D(1, k.shape[0], use_bias=False, name=f"L{i + 1}")
        x = conv(x)
        conv.kernel.assign(k[:, :, None, None].astype("float32"))
    return keras.Model(inp, x)


def test_effective_receptive_field_depends_on_the_weights_not_only_the_windows():
    images = np.random.default_rng(0).random((4, 32, 32, 1)).astype("float32")
    flat = np.ones((5, 5))
    delta = np.zeros((5, 5))
    delta[2, 2] = 1.0
    # two flat 5x5 layers: the second unit sees a 9x9 window, its field spreads beyond the first's
    grow = ca.effective_rf(_stack([flat, flat]), ["L1", "L2"], images)
    assert grow["L1"]["extent"] == [5, 5] and grow["L2"]["extent"] == [9, 9]
    assert grow["L2"]["radius"] > grow["L1"]["radius"] * 1.2
    np.testing.assert_allclose(grow["L1"]["radius"], np.sqrt(2 * np.mean(np.arange(-2, 3) ** 2)), rtol=1e-6)
    # a second layer that only passes its centre on: the same theoretical 9x9 window, no wider field
    same = ca.effective_rf(_stack([flat, delta]), ["L1", "L2"], images)
    assert same["L2"]["radius"] == pytest.approx(same["L1"]["radius"], rel=1e-6)
    assert same["L2"]["area_90"] == pytest.approx(same["L1"]["area_90"])


def test_trained_lenet_effective_fields_on_a_small_mnist_slice():
    r = ca.receptive_field_depth(seed=0, train_size=1000, train_epochs=1, erf_images=20)
    m = r.metrics
    assert m["lenet5_erf_layers"] == ["C1", "S2", "C3", "S4", "C5"]
    for when in ("init", "trained"):
        radii = m[f"lenet5_erf_radius_{when}"]
        assert len(radii) == 5 and all(np.isfinite(radii))
        assert radii[0] <= np.sqrt(2) * 2 + 1e-9            # C1 sees a 5x5 window: radius at most its corner's
    assert 0.1 < m["lenet5_trained_accuracy"] <= 1.0 and r.test_set == {"lenet5_trained_accuracy": "per_seed"}
    assert r.artifacts["effective_receptive_field.png"].startswith(PNG)
    assert set(r.convergence) == {"lenet5"} and not convergence.problems(r.convergence, r.metrics)


# ---- the classic networks --------------------------------------------------------------------

def test_lenet5_census():
    m = ca.lenet5_layer_census(seed=0).metrics
    assert m["input"] == [32, 32, 1] and m["c1_kernel"] == [5, 5, 1, 6]
    assert m["c1_output"] == [28, 28, 6] and m["c1_params"] == (5 * 5 + 1) * 6
    assert m["s2_output"] == [14, 14, 6] and m["s2_params"] == 0
    assert m["total_params"] == sum(row[3] for row in m["layers"])


def test_alexnet_census():
    m = ca.alexnet_layer_census(seed=0).metrics
    assert (m["n_conv"], m["n_dense"], m["n_weight_layers"], m["n_dropout"]) == (5, 3, 8, 2)
    assert m["conv_then_dense"] and m["has_dropout"] and m["dropout_follows"] == ["fc6", "fc7"]
    assert m["conv_outputs"][0] == [55, 55, 96] and m["conv_outputs"][-1] == [13, 13, 256]
    assert m["total_params"] == 62_378_344 == sum(row[3] for row in m["layers"])
    assert m["total_params_two_gpu"] == 60_965_224
    # the paper's Figure 2, both GPUs' halves together, and the products of those shapes
    assert m["layer_output_shapes"] == [[55, 55, 96], [27, 27, 256], [13, 13, 384], [13, 13, 384],
                                        [13, 13, 256], [4096], [4096], [1000]]
    assert m["neurons_per_layer"] == [290_400, 186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000]


def test_alexnet_two_gpu_variant_groups_three_layers():
    m = alexnet(groups=2)
    assert [l.groups for l in m.layers if isinstance(l, layers.Conv2D)] == [1, 2, 1, 2, 2]
    assert tuple(m.outputs[0].shape[1:]) == (1000,)


def test_vgg16_census():
    doc = [[224, 224, 3], [224, 224, 64], [112, 112, 128], [56, 56, 256], [28, 28, 512],
           [14, 14, 512], [7, 7, 512], [1, 1, 4096], [1, 1, 4096], [1, 1, 1000]]
    m = ca.vgg16_layer_census(seed=0, doc_sequence=doc).metrics
    assert (m["n_conv"], m["n_dense"], m["n_pool"]) == (13, 3, 5)
    assert m["feature_map_sequence"] == doc
    assert m["pool_output_sequence"][1] == [112, 112, 64]
    assert m["doc_sequence_in_order_in_model"] and not m["doc_sequence_equals_pool_outputs"]
    assert m["total_params"] == 138_357_544


def test_small_vs_large_kernels():
    m = ca.small_vs_large_kernels(seed=0, channels=8).metrics
    assert (m["params_two_3x3"], m["params_one_5x5"]) == (18, 25)
    assert m["param_reduction"] == pytest.approx(1 - 18 / 25)
    assert (m["params_two_3x3_c8"], m["params_one_5x5_c8"]) == (18 * 64, 25 * 64)
    assert m["param_reduction_c8_bias"] == pytest.approx(1 - (18 * 64 + 16) / (25 * 64 + 8), abs=1e-4)
    assert m["rf_two_3x3"] == m["rf_one_5x5"] == 5 and m["same_receptive_field"]
    assert (m["nonlinearities_two_3x3"], m["nonlinearities_one_5x5"]) == (2, 1) and m["more_nonlinearities"]


def test_resnet_stage_census():
    m = ca.resnet_stage_census(seed=0).metrics
    assert m["resnet50_g"] == [3, 4, 6, 3] and m["resnet101_g"] == [3, 4, 23, 3] and m["resnet152_g"] == [3, 8, 36, 3]
    assert (m["resnet50_depth"], m["resnet101_depth"], m["resnet152_depth"]) == (50, 101, 152)
    assert m["depth_formula_matches_keras"]
    # the document's g for ResNet-101, [3,4,23,8], implies 3*38+2 = 116 layers
    assert m["resnet101_depth_implied_by_doc_g"] == 116
    assert m["resnet50_depth_implied_by_doc_g"] == 50 and m["resnet152_depth_implied_by_doc_g"] == 152
    assert m["resnet50_bottleneck_kernels"] == [1, 3, 1] and m["resnet152_skip_connections"] == 50
    assert m["resnet50_params"] == 25_636_712


def test_resnet_cost_small():
    m = ca.resnet_cost(seed=0, models=["ResNet50"], image_size=64, batch=1, repeats=1).metrics
    assert m["resnet50_params"] == 25_636_712
    # the layer formula and TensorFlow's profiler agree to within BN/ReLU/add overhead (< 2 %)
    assert m["resnet50_gflops"] < m["resnet50_gflops_profiler"] < 1.02 * m["resnet50_gflops"]
    assert m["resnet50_cpu_seconds_per_image"] > 0


def test_conv3d_vs_conv2d():
    m = ca.conv3d_vs_conv2d(seed=0).metrics
    assert m["conv2d_image_output"] == [30, 30, 4] and m["conv2d_frames_output"] == [30, 30, 4]
    assert m["conv3d_output"] == [6, 30, 30, 4]
    assert m["conv3d_keeps_time"] and not m["conv2d_frames_keeps_time"]
    assert m["conv2d_frames_unit_sees_frames"] == list(range(8))
    assert m["conv3d_first_unit_sees_frames"] == [0, 1, 2]
    assert m["conv3d_params"] == 3 * 3 * 3 * 3 * 4 + 4 and m["conv2d_frames_params"] == 3 * 3 * 24 * 4 + 4


# ---- CONV1D-EQUIV -----------------------------------------------------------------------------

def test_conv1d_equals_conv2d_and_conv3d_along_one_axis():
    m = ca.conv1d_as_conv2d_conv3d(seed=0, length=16).metrics
    assert m["agrees_as_written"] and m["max_abs_diff_as_written"] < 1e-5
    assert m["output_lengths_equal"] and m["params_equal"]
    assert [s[0] for s in m["output_shapes"]] == [[12, 4], [8, 4], [8, 4]]   # valid; stride 2 same; dilation 2
    assert m["param_counts"][0] == [5 * 3 * 4 + 4] * 3


def test_conv1d_equivalence_catches_a_flipped_kernel():
    m = ca.conv1d_as_conv2d_conv3d(seed=0, length=16, plant="flip_kernel").metrics
    assert not m["agrees_as_written"] and m["max_abs_diff_as_written"] > 1e-2
