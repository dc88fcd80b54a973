"""7.2 Convolutional networks: the architectural claims, measured on built Keras layers and models.

Every number below comes from a Keras object that was actually built (``count_params``, output
shapes, kernel shapes, a layer census, real convolution outputs, gradients through real layers), or
from a closed formula that the same experiment checks against such layers first. The document's
numbers only ever enter as parameters to compare with (e.g. the ResNet ``g`` lists), never as results.

Claim families: local perception and weight sharing (CNN-LOCAL, CNN-CONVSHAPE, CNN-SHARE,
CNN-CHANNELS), pooling (CNN-POOL), depth and receptive fields (CNN-DEPTH, VGG-SMALLCONV), the
classic networks (LENET-C1, ALEXNET-LAYERS, VGG-LAYERS, RESNET-STAGES, RESNET-ERROR) and 3-D
convolution (CNN-CONV3D).
"""
from __future__ import annotations

import gc
import io
import math
import re
import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from repro.flops import forward_flops
from repro.kerasutil import dims, fresh
from repro.models.alexnet import alexnet
from repro.models.lenet import lenet5
from repro.models.locally_connected import LocallyConnected2D
from repro.registry import Result, experiment


# --------------------------------------------------------------------------------------------
# helpers




def _rf_formula(specs: list[tuple[str, int, int]]) -> list[int]:
    """Receptive field after each layer: r += (k-1)*jump; jump *= stride."""
    rf, jump, out = 1, 1, []
    for _, k, s in specs:
        rf += (k - 1) * jump
        jump *= s
        out.append(rf)
    return out


def _rf_measured(specs: list[tuple[str, int, int]]) -> list[int]:
    """Receptive field after each layer, measured: the extent of the input pixels whose gradient on the
    centre unit of that layer is non-zero, in a one-channel replica of the stack built from real Keras
    ``Conv2D`` / ``AveragePooling2D`` layers with positive weights (so nothing cancels).

    Pooling is measured with average pooling: its window and stride define which pixels *can* reach a
    unit (the receptive field); max pooling routes the gradient through one arg-max only.
    """
    final_rf = _rf_formula(specs)[-1]
    total_jump = math.prod(s for _, _, s in specs)
    n = final_rf + 2 * total_jump
    inp = keras.Input((n, n, 1))
    x, outs = inp, []
    for kind, k, s in specs:
        if kind == "conv":
            x = layers.Conv2D(1, k, strides=s, padding="valid", use_bias=False,
                              kernel_initializer=keras.initializers.Constant(1.0 / (k * k)))(x)
        else:
            x = layers.AveragePooling2D(k, s, padding="valid")(x)
        outs.append(x)
    model = keras.Model(inp, outs)
    img = tf.ones((1, n, n, 1))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(img)
        ys = model(img)
        if not isinstance(ys, (list, tuple)):
            ys = [ys]
        centres = [y[0, y.shape[1] // 2, y.shape[2] // 2, 0] for y in ys]
    extents = []
    for c in centres:
        g = tape.gradient(c, img).numpy()[0, :, :, 0]
        rows, cols = np.flatnonzero(g.any(axis=1)), np.flatnonzero(g.any(axis=0))
        h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        if h != w or len(rows) != h:
            raise RuntimeError(f"receptive field is not a solid square: {h}x{w}")
        extents.append(int(h))
    del tape
    return extents


def _layer_specs(model: keras.Model) -> list[tuple[str, str, int, int]]:
    """(name, 'conv'|'pool', kernel, stride) for every Conv2D / pooling layer of a built model."""
    specs = []
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            k, s = layer.kernel_size, layer.strides
            kind = "conv"
        elif isinstance(layer, (layers.MaxPooling2D, layers.AveragePooling2D)):
            k, s = layer.pool_size, layer.strides
            kind = "pool"
        else:
            continue
        if k[0] != k[1] or s[0] != s[1]:
            raise ValueError(f"{layer.name}: non-square window")
        specs.append((layer.name, kind, int(k[0]), int(s[0])))
    return specs


def _cross_correlate(x: np.ndarray, w: np.ndarray, stride: int = 1) -> np.ndarray:
    """What the document calls convolution (and every CNN library computes): valid cross-correlation."""
    k = w.shape[0]
    n = (x.shape[0] - k) // stride + 1
    return np.array([[np.sum(x[i * stride:i * stride + k, j * stride:j * stride + k] * w)
                      for j in range(n)] for i in range(n)])


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return buf.getvalue()


def _figure(**kw):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(**kw)


# --------------------------------------------------------------------------------------------
# CNN-LOCAL: full connection vs local connection vs shared convolution


def _param_formulas(n: int, k: int, hidden: int) -> dict[str, int]:
    """Weights (no bias) for an n x n input and ``hidden`` units, each unit of the local layers seeing k x k."""
    return {"fc": n * n * hidden, "local": hidden * k * k, "conv": k * k}


@experiment("cnn_local_params")
def cnn_local_params(*, seed: int, input_size: int = 1000, window: int = 10,
                     hidden_units: int = 1_000_000,
                     check_sizes: list = [[20, 4], [12, 3]]) -> Result:
    """Parameter counts of a fully connected, a locally connected (no sharing) and a convolutional
    (shared) layer: the closed formulas, checked against real Keras layers at small sizes."""
    fresh(seed)
    checks = []
    for n, k in check_sizes:
        hidden = n * n                            # one hidden unit per pixel ('same' padding, stride 1)
        inp = keras.Input((n, n, 1))
        fc = keras.Model(inp, layers.Dense(hidden, use_bias=False)(layers.Flatten()(inp)))
        local_layer = LocallyConnected2D(1, k, padding="same", use_bias=False)
        local = keras.Model(inp, local_layer(inp))
        conv_layer = layers.Conv2D(1, k, padding="same", use_bias=False)
        conv = keras.Model(inp, conv_layer(inp))
        keras_counts = {"fc": fc.count_params(), "local": local.count_params(), "conv": conv.count_params()}
        # the local layer is a real convolution-without-sharing: tied to the conv kernel it gives Conv2D's output
        kern = conv_layer.get_weights()[0]                              # (k, k, 1, 1)
        local_layer.set_weights([np.tile(kern.reshape(1, k * k, 1), (hidden, 1, 1))])
        x = np.random.default_rng(seed).normal(size=(2, n, n, 1)).astype("float32")
        tied_err = float(np.max(np.abs(local.predict(x, verbose=0) - conv.predict(x, verbose=0))))
        checks.append({"n": n, "k": k, "hidden": hidden, "keras": keras_counts,
                       "formula": _param_formulas(n, k, hidden), "tied_local_vs_conv_max_err": tied_err})
    formula_ok = all(c["keras"] == c["formula"] for c in checks)
    tied_ok = all(c["tied_local_vs_conv_max_err"] < 1e-4 for c in checks)

    big = _param_formulas(input_size, window, hidden_units)
    conv_full = keras.Sequential([keras.Input((input_size, input_size, 1)),
                                  layers.Conv2D(1, window, padding="same", use_bias=False)]).count_params()
    return Result(
        metrics={
            "fc_params": big["fc"],
            "local_params": big["local"],
            "conv_shared_params": big["conv"],
            "conv_shared_params_keras_full_size": int(conv_full),
            "fc_over_local": big["fc"] // big["local"],
            "local_over_conv": big["local"] // big["conv"],
            "formula_matches_keras": bool(formula_ok),
            "tied_local_equals_conv": bool(tied_ok),
            "keras_checks": [[c["n"], c["k"], c["keras"]["fc"], c["keras"]["local"], c["keras"]["conv"]]
                             for c in checks],
        },
        notes=(f"{input_size}x{input_size} input, {hidden_units} hidden units, {window}x{window} windows, "
               "weights only (no biases). Fully connected = input pixels x hidden units; locally connected "
               "(each unit its own window, no sharing) = hidden units x window; convolution (one shared "
               "window) = window. The formulas were checked against Keras Dense / a LocallyConnected2D "
               f"built here / Conv2D at sizes {check_sizes} (keras_checks rows: n, k, fc, local, conv); the "
               "LocallyConnected2D tied to one kernel reproduces Conv2D's output. The document's pair "
               "(10^8 fully connected, 10^4 local) is off by 10^4 in both terms: 10^8 is the LOCAL "
               "count without sharing, the fully connected count is 10^12, and with sharing the local "
               "layer needs 100; the pair would be right for 100 hidden units. Their ratio, 10^4, is right."),
    )


# --------------------------------------------------------------------------------------------
# CNN-CONVSHAPE: output size under stride and padding


@experiment("conv_output_shapes")
def conv_output_shapes(*, seed: int, input_size: int = 5, kernel: int = 3) -> Result:
    """Keras Conv2D output sizes for stride 1/2 and valid/same padding on the document's 5x5 / 3x3 example,
    which window positions stride 2 visits, and how often an edge pixel takes part with and without padding."""
    fresh(seed)
    n, k = input_size, kernel
    shapes, formula_ok = {}, True
    for stride in (1, 2):
        for padding in ("valid", "same"):
            conv = layers.Conv2D(1, k, strides=stride, padding=padding)
            model = keras.Sequential([keras.Input((n, n, 1)), conv])
            shape = dims(model.outputs[0].shape)[:2]
            shapes[f"{padding}_s{stride}"] = shape
            expect = (n - k) // stride + 1 if padding == "valid" else -(-n // stride)   # floor((n-k)/s)+1, ceil(n/s)
            formula_ok &= shape == [expect, expect]

    # which columns do the stride-2 windows start on?  A kernel that picks its top-left pixel, on an
    # input whose values are the column indices, outputs the window start column.
    picker = np.zeros((k, k, 1, 1), "float32")
    picker[0, 0] = 1.0
    conv = layers.Conv2D(1, k, strides=2, padding="valid", use_bias=False)
    model = keras.Sequential([keras.Input((n, n, 1)), conv])
    conv.set_weights([picker])
    cols = np.tile(np.arange(n, dtype="float32"), (n, 1))[None, :, :, None]
    starts = [int(v) for v in model.predict(cols, verbose=0)[0, 0, :, 0]]

    # how many output units does each input pixel feed?  d(sum of outputs)/d(pixel) with an all-ones kernel.
    def uses(padding):
        c = layers.Conv2D(1, k, padding=padding, use_bias=False, kernel_initializer="ones")
        m = keras.Sequential([keras.Input((n, n, 1)), c])
        x = tf.zeros((1, n, n, 1))
        with tf.GradientTape() as tape:
            tape.watch(x)
            s = tf.reduce_sum(m(x))
        return np.rint(tape.gradient(s, x).numpy()[0, :, :, 0]).astype(int)

    u_valid, u_same = uses("valid"), uses("same")
    c = n // 2
    return Result(
        metrics={
            "out_valid_s1": shapes["valid_s1"],
            "out_same_s1": shapes["same_s1"],
            "out_valid_s2": shapes["valid_s2"],
            "out_same_s2": shapes["same_s2"],
            "formula_matches_keras": bool(formula_ok),
            "stride2_window_starts": starts,
            "stride2_pixels_skipped": int(starts[1] - starts[0] - 1),
            "corner_uses_valid": int(u_valid[0, 0]),
            "corner_uses_same": int(u_same[0, 0]),
            "centre_uses_valid": int(u_valid[c, c]),
            "centre_uses_same": int(u_same[c, c]),
            "padding_raises_edge_uses": bool(u_same[0, 0] > u_valid[0, 0] and u_same[0, c] > u_valid[0, c]),
        },
        notes=(f"{n}x{n} input, {k}x{k} kernel, Keras Conv2D. Window starts of stride 2 were read off a "
               "kernel that copies its top-left pixel from an input holding column indices. Uses of a pixel "
               "= number of output units it feeds = gradient of the sum of the outputs (all-ones kernel)."),
    )


# --------------------------------------------------------------------------------------------
# CNN-SHARE: one kernel for all windows


@experiment("conv_weight_sharing")
def conv_weight_sharing(*, seed: int, input_size: int = 5, kernel: int = 3,
                        other_sizes: list = [28, 224, 1000],
                        doc_example_kernel: list = [-1, 1, 1, -1], doc_example_bias: float = 1.0,
                        doc_example_products: list = [-1, 1, 1, 1]) -> Result:
    """Conv2D's parameter count does not depend on the input size; its output on the 5x5 / 3x3 example
    equals a hand-computed cross-correlation with one 3x3 W; and the document's w*x+b worked example."""
    fresh(seed)
    n, k = input_size, kernel
    counts = {}
    for size in [n] + list(other_sizes):
        m = keras.Sequential([keras.Input((size, size, 1)), layers.Conv2D(1, k)])
        counts[size] = m.count_params()
    local_counts = {size: keras.Sequential([keras.Input((size, size, 1)),
                                            LocallyConnected2D(1, k)]).count_params()
                    for size in [n, 28]}

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=(n, n)).astype("float32")            # a small grey image
    w = rng.integers(-1, 2, size=(k, k)).astype("float32")            # a small integer kernel
    conv = layers.Conv2D(1, k, use_bias=True)
    model = keras.Sequential([keras.Input((n, n, 1)), conv])
    conv.set_weights([w.reshape(k, k, 1, 1), np.zeros(1, "float32")])
    y_keras = model.predict(x[None, :, :, None], verbose=0)[0, :, :, 0]
    y_hand = _cross_correlate(x, w)
    err = float(np.max(np.abs(y_keras - y_hand)))

    # The document: "卷积核参数为[-1,1,1,-1]，偏置项=1，计算得-1+1+1+1+1=2". The input patch is not given; the
    # written products -1,1,1,1 imply x = products / w. Evaluate w.x + b with a real 2x2 Conv2D.
    wk = np.array(doc_example_kernel, "float32")
    kk = int(round(math.sqrt(len(wk))))
    xp = np.array(doc_example_products, "float32") / wk
    c2 = layers.Conv2D(1, kk, use_bias=True)
    m2 = keras.Sequential([keras.Input((kk, kk, 1)), c2])
    c2.set_weights([wk.reshape(kk, kk, 1, 1), np.array([doc_example_bias], "float32")])
    value = float(m2.predict(xp.reshape(1, kk, kk, 1), verbose=0).ravel()[0])
    c2.set_weights([wk.reshape(kk, kk, 1, 1), np.zeros(1, "float32")])
    value_nobias = float(m2.predict(xp.reshape(1, kk, kk, 1), verbose=0).ravel()[0])
    return Result(
        metrics={
            "conv_params_by_input_size": [counts[s] for s in [n] + list(other_sizes)],
            "params_independent_of_input": len(set(counts.values())) == 1,
            "local_params_by_input_size": [local_counts[s] for s in (n, 28)],
            "output_shape": [int(d) for d in y_keras.shape],
            "max_abs_err_vs_hand": err,
            "doc_example_value": round(value, 6),
            "doc_example_value_without_bias": round(value_nobias, 6),
            "doc_example_input": [float(v) for v in xp],
        },
        notes=(f"Conv2D(1, {k}) built on inputs {[n] + list(other_sizes)}: parameter counts (weights + bias) "
               "listed; the same layer without sharing (LocallyConnected2D) grows with the input "
               f"({local_counts}). On a random integer {n}x{n} image and {k}x{k} kernel, Conv2D's output equals "
               "the hand-computed cross-correlation with that one kernel. Worked example w*x+b: the document "
               "writes -1+1+1+1+1=2, but those five terms add to 3 (= 2 from the products plus bias 1); the "
               "input patch is inferred from the written products."),
    )


# --------------------------------------------------------------------------------------------
# CNN-CHANNELS: kernel depth = input channels, output channels = number of kernels


@experiment("conv_channels")
def conv_channels(*, seed: int, configs: list = [[1, 1], [3, 6], [3, 16], [16, 32]],
                  size: int = 8, kernel: int = 3) -> Result:
    """Kernel tensor and output shapes of Conv2D for several (C_in, C_out); an RGB convolution equals the
    sum of one 2-D cross-correlation per channel (plus the bias)."""
    fresh(seed)
    kernel_shapes, out_shapes = [], []
    depth_ok = count_ok = True
    for cin, cout in configs:
        conv = layers.Conv2D(cout, kernel)
        m = keras.Sequential([keras.Input((size, size, cin)), conv])
        ks = [int(d) for d in conv.kernel.shape]
        os = dims(m.outputs[0].shape)
        kernel_shapes.append(ks)
        out_shapes.append(os)
        depth_ok &= ks[2] == cin
        count_ok &= ks[3] == cout and os[2] == cout

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, size, 3)).astype("float32")
    conv = layers.Conv2D(2, kernel)
    m = keras.Sequential([keras.Input((size, size, 3)), conv])
    w, b = conv.get_weights()
    y = m.predict(x[None], verbose=0)[0]
    err = 0.0
    for f in range(2):
        by_hand = sum(_cross_correlate(x[:, :, c], w[:, :, c, f]) for c in range(3)) + b[f]
        err = max(err, float(np.max(np.abs(y[:, :, f] - by_hand))))
    return Result(
        metrics={
            "kernel_shapes": kernel_shapes,
            "output_shapes": out_shapes,
            "kernel_depth_equals_in_channels": bool(depth_ok),
            "out_channels_equal_kernel_count": bool(count_ok),
            "rgb_sum_of_channels_max_err": err,
        },
        notes=(f"Conv2D(C_out, {kernel}) on {size}x{size}xC_in for (C_in, C_out) in {configs}; kernel shape is "
               "(k, k, C_in, C_out). RGB check: a 2-kernel Conv2D on a random 3-channel image against the sum of "
               "per-channel cross-correlations + bias (the channels are fused by summation)."),
    )


# --------------------------------------------------------------------------------------------
# CNN-POOL: 2x2 pooling halves each side; some translation invariance


def _synthetic_images(n: int, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """Smooth random blobs (a stand-in for real images in tests only)."""
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.zeros((n, size, size), "float32")
    for i in range(n):
        for _ in range(rng.integers(2, 5)):
            cy, cx = rng.uniform(6, size - 6, 2)
            s = rng.uniform(1.5, 3.5)
            out[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return (255 * out / out.max(axis=(1, 2), keepdims=True)).astype("uint8")


def _load_images(images: str, n: int, rng: np.random.Generator, seed: int) -> np.ndarray:
    """``n`` images: MNIST test digits drawn at random per ``seed`` from all 10,000, or synthetic."""
    if images == "mnist":
        from repro import data
        from repro.data.mnist import SIZES
        (_, _), (xte, _) = data.load_mnist(train_size=0, test_size=min(n, SIZES["test"]), seed=seed)
        return np.asarray(xte)
    if images == "synthetic":
        return _synthetic_images(n, rng)
    raise ValueError(f"images must be 'mnist' or 'synthetic', got {images!r}")


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


_POOL_KINDS = ("nopool", "maxpool", "avgpool", "decim")


def _shift_similarities(feature_model: keras.Model, x: np.ndarray, shifts: list, prefix: str
                        ) -> tuple[dict, dict]:
    """Cosine similarity between the features of each image and of its copy shifted by s pixels
    (up, down, left, right; np.roll over the zero border), for the four read-outs of
    ``feature_model``: conv map, 2x2 max pool, 2x2 average pool, 2x2 decimation. Mean over images and
    directions; stderr from the spread over images (each image's mean over the four directions)."""
    base = feature_model.predict(x, verbose=0, batch_size=256)
    metrics, stderr = {}, {}
    for s in shifts:
        sims = {k: [] for k in _POOL_KINDS}
        for axis in (1, 2):
            for sign in (1, -1):
                shifted = feature_model.predict(np.roll(x, sign * s, axis=axis), verbose=0, batch_size=256)
                for key, a, b in zip(_POOL_KINDS, base, shifted):
                    sims[key].append(_cosine(a, b))
        for key, v in sims.items():
            name = f"{prefix}cos_{key}_shift{s}"
            metrics[name] = round(float(np.mean(np.concatenate(v))), 6)
            per_image = np.mean(v, axis=0)
            stderr[name] = (float(per_image.std(ddof=1) / np.sqrt(len(per_image)))
                            if len(per_image) > 1 else float("nan"))
    return metrics, stderr


def _readouts(inp, feat) -> keras.Model:
    """conv map, then the three ways to halve it: 2x2 max pool, 2x2 average pool, and decimation
    (every second row and column: a stride-2 convolution with the same filters, no pooling)."""
    decim = layers.Lambda(lambda t: t[:, ::2, ::2, :], name="decimate")(feat)
    return keras.Model(inp, [feat, layers.MaxPooling2D(2)(feat), layers.AveragePooling2D(2)(feat), decim])


def _train_small_cnn(seed: int, filters: int, kernel: int, train_size: int, epochs: int
                     ) -> tuple[keras.Model, float]:
    """A small CNN (conv-ReLU-maxpool twice, softmax) trained briefly on a random MNIST training
    subset of this seed; returns it and its accuracy on 2,000 other training images."""
    from repro import data
    (xtr, ytr), _ = data.load_mnist(train_size=train_size + 2000, test_size=0, seed=seed)
    xtr = np.pad(xtr.astype("float32") / 255.0, ((0, 0), (2, 2), (2, 2)))[..., None]
    ytr = ytr.astype("int32")
    fresh(seed)
    inp = keras.Input((32, 32, 1))
    h = layers.Conv2D(filters, kernel, padding="same", activation="relu", name="conv1")(inp)
    h = layers.MaxPooling2D(2)(h)
    h = layers.Conv2D(32, 5, padding="same", activation="relu")(h)
    h = layers.MaxPooling2D(2)(h)
    out = layers.Dense(10, activation="softmax")(layers.Flatten()(h))
    net = keras.Model(inp, out)
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    net.fit(xtr[:train_size], ytr[:train_size], batch_size=64, epochs=epochs, verbose=0)
    acc = float(net.evaluate(xtr[train_size:], ytr[train_size:], verbose=0)[1])
    return net, acc


@experiment("pooling_shape_invariance", datasets=("mnist",))
def pooling_shape_invariance(*, seed: int, images: str = "mnist", n_images: int = 256,
                             filters: int = 16, kernel: int = 5, shifts: list = [1, 2],
                             train_size: int = 10000, train_epochs: int = 2) -> Result:
    """2x2 pooling output shapes, and how much translation invariance pooling adds beyond the mere
    halving of the resolution.

    Regime and why. Suite 2 compared pooled features with the un-pooled conv map, which keeps twice
    the resolution: any 2x downsampling would look "more invariant" there, so pooling was confounded
    with downsampling (REVIEW). The control is now decimation (every second row and column, i.e. a
    stride-2 convolution with the same filters and no pooling), at the same 14x14-style resolution
    as the pooled map; the judged comparison is max pooling against it. Two sets of filters: the
    random He-normal ones of suite 2, and the first layer of a small CNN (conv-ReLU-maxpool x2,
    softmax) trained briefly (``train_epochs`` epochs of Adam on ``train_size`` MNIST training
    images, drawn per seed) - the filters a pooling network actually learns. Shifts of 1 and 2
    pixels, up/down/left/right, on test digits drawn per seed; cosine similarity of the features of
    an image and of its shifted copy. Only translation is measured, not the scale or rotation the
    chapter also names."""
    fresh(seed)
    sizes = [[28, 28, 6], [32, 32, 16], [224, 224, 64], [7, 7, 3]]
    pooled = [dims(keras.Sequential([keras.Input(tuple(s)), layers.MaxPooling2D(2)]).outputs[0].shape)
              for s in sizes]
    avg_pooled = dims(keras.Sequential([keras.Input((28, 28, 6)), layers.AveragePooling2D(2)]).outputs[0].shape)
    halves = all(p == [s[0] // 2, s[1] // 2, s[2]] for s, p in zip(sizes, pooled) if s[0] % 2 == 0)

    rng = np.random.default_rng(seed)
    raw = _load_images(images, n_images, rng, seed)
    x = np.pad(raw.astype("float32") / 255.0, ((0, 0), (2, 2), (2, 2)))[..., None]   # 32x32, zero border

    # Random filters (suite 2's instrument).
    inp = keras.Input((32, 32, 1))
    feat = layers.Conv2D(filters, kernel, padding="same", activation="relu",
                         kernel_initializer=keras.initializers.HeNormal(seed=seed),
                         bias_initializer="zeros")(inp)
    random_model = _readouts(inp, feat)
    metrics, stderr = _shift_similarities(random_model, x, shifts, "")
    base = random_model.predict(x[:1], verbose=0)

    # Trained filters: the first conv layer of a small CNN trained on MNIST (train_size 0: skipped,
    # for tests on synthetic images).
    acc = float("nan")
    if train_size:
        net, acc = _train_small_cnn(seed, filters, kernel, train_size, train_epochs)
        trained_model = _readouts(net.input, net.get_layer("conv1").output)
        m2, s2 = _shift_similarities(trained_model, x, shifts, "trained_")
        metrics.update(m2)
        stderr.update(s2)
        metrics["trained_accuracy"] = acc
        stderr["trained_accuracy"] = float(np.sqrt(acc * (1 - acc) / 2000))

    feats_before = int(np.prod(base[0].shape[1:]))
    feats_after = int(np.prod(base[1].shape[1:]))
    dense_before = keras.Sequential([keras.Input(base[0].shape[1:]), layers.Flatten(), layers.Dense(10)]).count_params()
    dense_after = keras.Sequential([keras.Input(base[1].shape[1:]), layers.Flatten(), layers.Dense(10)]).count_params()
    metrics.update({
        "pool2_output": pooled[0],
        "pool2_outputs": pooled,
        "avgpool2_output": avg_pooled,
        "decim_output": dims(random_model.outputs[3].shape),
        "pool2_halves_each_side": bool(halves),
        "features_before_pool": feats_before,
        "features_after_pool": feats_after,
        "dense10_params_before_pool": int(dense_before),
        "dense10_params_after_pool": int(dense_after),
    })
    fig, axes = _figure(ncols=2, figsize=(8, 3.2), sharey=True)
    for ax, prefix, title in ((axes[0], "", "random filters"), (axes[1], "trained_", "trained filters")):
        if f"{prefix}cos_nopool_shift{shifts[0]}" not in metrics:
            continue
        for key, label in (("nopool", "conv+ReLU"), ("maxpool", "+ 2x2 max pool"), ("avgpool", "+ 2x2 avg pool"),
                           ("decim", "+ 2x2 decimation")):
            ax.plot([0] + list(shifts), [1.0] + [metrics[f"{prefix}cos_{key}_shift{s}"] for s in shifts], "o-",
                    label=label)
        ax.set_xticks([0] + list(shifts))
        ax.set_xlabel("shift (pixels)")
        ax.set_title(f"{title}, seed {seed}")
    axes[0].set_ylabel("cosine similarity of features")
    axes[0].legend(fontsize=7)
    return Result(
        metrics=metrics,
        artifacts={"pool_shift_similarity.png": _png(fig)},
        stderr=stderr,
        # the images (and the 2,000 accuracy images) are drawn per seed: the seed spread holds their sampling
        test_set={k: "fixed" if images == "mnist" and n_images >= 10000 and k != "trained_accuracy" else "per_seed"
                  for k in stderr},
        notes=(f"Shapes: MaxPooling2D(2) on {sizes} (odd sides are floored). Invariance: {len(raw)} {images} "
               f"images (drawn at random for this seed; 28x28, padded to 32x32); Conv2D({filters}, {kernel}, same) "
               "+ ReLU with random He-normal filters, and the first layer of a small CNN trained for "
               f"{train_epochs} epochs on {train_size} MNIST training images (accuracy {acc:.3f} on 2,000 others); "
               "features of each image and of its copy shifted by s pixels (up/down/left/right, np.roll "
               "over the zero border) compared by cosine similarity, mean over images and directions, for "
               "the conv map, 2x2 max / average pooling, and 2x2 decimation (stride 2, no pooling) - the "
               "control at the pooled map's resolution. Only translation was measured."),
    )


# --------------------------------------------------------------------------------------------
# CNN-DEPTH: deeper stacks see more of the input


@experiment("receptive_field_depth")
def receptive_field_depth(*, seed: int, image_size: int = 224) -> Result:
    """Receptive field after every conv/pool layer of VGG16 (keras.applications, weights=None) and LeNet-5,
    by the recurrence r += (k-1)*jump and measured by gradients through a 1-channel Keras replica."""
    fresh(seed)
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(image_size, image_size, 3))
    vgg_specs = _layer_specs(vgg)
    blocks: dict[str, int] = {}
    for name, kind, _, _ in vgg_specs:
        if kind == "conv":
            blocks[name.split("_")[0]] = blocks.get(name.split("_")[0], 0) + 1
    del vgg
    lenet_specs = _layer_specs(lenet5())
    keras.backend.clear_session()

    vgg_formula = _rf_formula([s[1:] for s in vgg_specs])
    vgg_measured = _rf_measured([s[1:] for s in vgg_specs])
    lenet_formula = _rf_formula([s[1:] for s in lenet_specs])
    lenet_measured = _rf_measured([s[1:] for s in lenet_specs])
    grows = all(b > a for a, b in zip(vgg_measured, vgg_measured[1:])) and \
        all(b > a for a, b in zip(lenet_measured, lenet_measured[1:]))

    fig, ax = _figure(figsize=(6.5, 3.5))
    ax.plot(range(1, len(vgg_measured) + 1), vgg_measured, "o-", label="VGG16 (measured)")
    ax.plot(range(1, len(lenet_measured) + 1), lenet_measured, "s-", label="LeNet-5 (measured)")
    ax.axhline(image_size, color="grey", ls="--", lw=1, label=f"VGG16 input side {image_size}")
    ax.axhline(32, color="grey", ls=":", lw=1, label="LeNet-5 input side 32")
    ax.set_xticks(range(1, len(vgg_measured) + 1))
    ax.set_xlabel("conv / pooling layer number (from the input)")
    ax.set_ylabel("receptive field (pixels per side)")
    ax.set_title("Receptive field grows with depth")
    ax.legend(fontsize=7)
    return Result(
        metrics={
            "vgg16_layers": [s[0] for s in vgg_specs],
            "vgg16_rf": vgg_measured,
            "vgg16_rf_formula": vgg_formula,
            "lenet5_layers": [s[0] for s in lenet_specs],
            "lenet5_rf": lenet_measured,
            "formula_matches_keras": vgg_formula == vgg_measured and lenet_formula == lenet_measured,
            "rf_grows_with_depth": bool(grows),
            "vgg16_first_conv_rf_fraction": round(vgg_measured[0] / image_size, 4),
            "vgg16_last_layer_rf_fraction": round(vgg_measured[-1] / image_size, 4),
            "lenet5_c5_rf_fraction": round(lenet_measured[-1] / 32, 4),
            "vgg16_convs_per_block": list(blocks.values()),
        },
        artifacts={"receptive_field.png": _png(fig)},
        notes=("Layer windows and strides read from the built keras.applications.VGG16 (no top) and "
               "repro.models.lenet.lenet5; receptive fields measured as the extent of non-zero input "
               "gradients of each layer's centre unit in a one-channel replica with positive kernels "
               "(pooling measured as average pooling, which has the same window), and by the recurrence. "
               "A first 3x3 layer sees 3 of 224 pixels per side; after block5 a unit sees 212; LeNet-5's "
               "C5 sees the whole 32x32 input."),
    )


# --------------------------------------------------------------------------------------------
# LENET-C1


@experiment("lenet5_layer_census")
def lenet5_layer_census(*, seed: int, activation: str = "relu", pooling: str = "max") -> Result:
    """Layer shapes and trainable parameter counts of the built LeNet-5."""
    fresh(seed)
    m = lenet5(activation=activation, pooling=pooling)
    c1, s2 = m.get_layer("C1"), m.get_layer("S2")
    kh, kw, cin, cout = (int(d) for d in c1.kernel.shape)
    table = [[l.name, type(l).__name__, dims(l.output.shape), int(l.count_params())] for l in m.layers]
    return Result(
        metrics={
            "input": dims(m.inputs[0].shape),
            "c1_kernel": [kh, kw, cin, cout],
            "c1_output": dims(c1.output.shape),
            "c1_params": int(c1.count_params()),
            "c1_params_formula_matches": (kh * kw * cin + 1) * cout == c1.count_params(),
            "s2_output": dims(s2.output.shape),
            "s2_params": int(s2.count_params()),
            "total_params": int(m.count_params()),
            "layers": table,
        },
        notes=(f"repro.models.lenet.lenet5(activation={activation!r}, pooling={pooling!r}). layers rows: name, "
               "class, output shape, parameters. The 1998 paper's S2 had 12 trainable coefficients and a "
               "sparse C3 table; this modern variant uses plain pooling and a full C3 (the document only states "
               "C1's count and S2's shape)."),
    )


# --------------------------------------------------------------------------------------------
# ALEXNET-LAYERS


@experiment("alexnet_layer_census")
def alexnet_layer_census(*, seed: int, dropout: float = 0.5) -> Result:
    """Layer census of an AlexNet built in Keras (single-GPU variant), and the two-GPU grouped variant's
    size and layer output shapes.

    Why this is judged against the paper and not against the census: repro.models.alexnet was
    written with 5 Conv2D and 3 Dense layers, so counting them cannot fail. What can fail is whether
    the network built is the paper's: its parameter count (Krizhevsky et al. 2012, abstract: 60
    million) and the output shape of each of its eight weight layers (their Figure 2). A missing or
    extra layer, a wrong width, stride or padding moves one of them."""
    fresh(seed)
    m = alexnet(dropout=dropout)
    convs = [l for l in m.layers if isinstance(l, layers.Conv2D)]
    dense = [l for l in m.layers if isinstance(l, layers.Dense)]
    drops = [l for l in m.layers if isinstance(l, layers.Dropout)]
    weighted = [l.name for l in m.layers if l.count_params() > 0]
    order_ok = weighted == [l.name for l in convs] + [l.name for l in dense]
    follows = [m.layers[m.layers.index(d) - 1].name for d in drops]
    total = int(m.count_params())
    table = [[l.name, type(l).__name__, dims(l.output.shape), int(l.count_params())] for l in m.layers]
    del m
    keras.backend.clear_session()
    # The paper's network (two-GPU grouping): its size and the output shape of each weight layer,
    # to compare with the paper's own numbers (abstract: 60 million parameters; Figure 2: 55x55x96,
    # 27x27x256, 13x13x384, 13x13x384, 13x13x256, 4096, 4096, 1000 - both GPUs' halves together).
    m2 = alexnet(dropout=dropout, groups=2)
    total_2gpu = int(m2.count_params())
    shapes = [dims(l.output.shape) for l in m2.layers if isinstance(l, (layers.Conv2D, layers.Dense))]
    neurons = [int(np.prod(sh)) for sh in shapes]
    del m2
    keras.backend.clear_session()
    return Result(
        metrics={
            "n_conv": len(convs),
            "n_dense": len(dense),
            "n_weight_layers": len(weighted),
            "conv_then_dense": bool(order_ok),
            "has_dropout": bool(drops),
            "n_dropout": len(drops),
            "dropout_follows": follows,
            "conv_outputs": [dims(l.output.shape) for l in convs],
            "total_params": total,
            "total_params_two_gpu": total_2gpu,
            "layer_output_shapes": shapes,
            "neurons_per_layer": neurons,
            "layers": table,
        },
        notes=("repro.models.alexnet.alexnet on 227x227x3 (LRN omitted, no parameters). Weighted layers in "
               "order: 5 Conv2D then 3 Dense; Dropout after fc6 and fc7. total_params_two_gpu: the paper's "
               "two-GPU split as grouped convolutions (groups=2 in conv2, conv4, conv5)."),
    )


# --------------------------------------------------------------------------------------------
# VGG-LAYERS


@experiment("vgg16_layer_census")
def vgg16_layer_census(*, seed: int, doc_sequence: list | None = None) -> Result:
    """Conv/Dense census of keras.applications.VGG16(weights=None) and its feature-map sequence."""
    fresh(seed)
    m = keras.applications.VGG16(weights=None)
    convs = [l for l in m.layers if isinstance(l, layers.Conv2D)]
    dense = [l for l in m.layers if isinstance(l, layers.Dense)]
    pools = [l for l in m.layers if isinstance(l, layers.MaxPooling2D)]
    block_names = sorted({l.name.split("_")[0] for l in convs}, key=lambda b: int(b[5:]))
    last_conv = [[l for l in convs if l.name.startswith(b + "_")][-1] for b in block_names]
    as_map = lambda shape: shape if len(shape) == 3 else [1, 1] + shape   # noqa: E731  dense n -> 1x1xn
    inp = dims(m.inputs[0].shape)
    conv_stage = [inp] + [dims(l.output.shape) for l in last_conv] + [dims(pools[-1].output.shape)] + \
        [as_map(dims(l.output.shape)) for l in dense]
    pool_seq = [inp] + [dims(l.output.shape) for l in pools] + [as_map(dims(l.output.shape)) for l in dense]
    every = [inp]
    for l in m.layers[1:]:
        if isinstance(l, layers.Flatten):
            continue
        s = as_map(dims(l.output.shape))
        if s != every[-1] or isinstance(l, layers.Dense):     # each Dense is a layer of its own
            every.append(s)
    metrics = {
        "n_conv": len(convs),
        "n_dense": len(dense),
        "n_pool": len(pools),
        "convs_per_block": [sum(l.name.startswith(b + "_") for l in convs) for b in block_names],
        "feature_map_sequence": conv_stage,
        "pool_output_sequence": pool_seq,
        "every_shape_change": every,
        "total_params": int(m.count_params()),
    }
    if doc_sequence is not None:
        it = iter(every)
        metrics["doc_sequence_in_order_in_model"] = all(any(s == d for s in it) for d in doc_sequence)
        metrics["doc_sequence_equals_pool_outputs"] = doc_sequence == pool_seq
    return Result(
        metrics=metrics,
        notes=("keras.applications.VGG16(weights=None). feature_map_sequence = input, the output of each "
               "block's convolutions, the last pooling output, then the Dense outputs as 1x1xn: this is the "
               "reading under which the document's sequence is stated. pool_output_sequence = input then the "
               "five pooling outputs (channels change at the convolutions, so e.g. block1's pool gives "
               "112x112x64, not 112x112x128). every_shape_change lists each change of shape along the layers (and every Dense output)."),
    )


# --------------------------------------------------------------------------------------------
# VGG-SMALLCONV


@experiment("small_vs_large_kernels")
def small_vs_large_kernels(*, seed: int, channels: int = 64) -> Result:
    """Two stacked 3x3 Conv2D vs one 5x5: parameters (per channel, with C channels, with/without bias),
    receptive fields (measured) and the number of non-linearities."""
    fresh(seed)

    def count(cin, cout, bias, stack):
        m = keras.Sequential([keras.Input((16, 16, cin))] +
                             [layers.Conv2D(cout, k, use_bias=bias, activation="relu") for k in stack])
        return int(m.count_params()), sum(1 for l in m.layers if l.activation is not None and
                                          l.activation.__name__ == "relu")

    p33, relu33 = count(1, 1, False, [3, 3])
    p55, relu55 = count(1, 1, False, [5])
    c = channels
    p33c, _ = count(c, c, False, [3, 3])
    p55c, _ = count(c, c, False, [5])
    p33cb, _ = count(c, c, True, [3, 3])
    p55cb, _ = count(c, c, True, [5])
    rf33 = _rf_measured([("conv", 3, 1), ("conv", 3, 1)])[-1]
    rf55 = _rf_measured([("conv", 5, 1)])[-1]
    return Result(
        metrics={
            "params_two_3x3": p33,
            "params_one_5x5": p55,
            "param_reduction": round(1 - p33 / p55, 4),
            f"params_two_3x3_c{c}": p33c,
            f"params_one_5x5_c{c}": p55c,
            f"param_reduction_c{c}": round(1 - p33c / p55c, 4),
            f"param_reduction_c{c}_bias": round(1 - p33cb / p55cb, 4),
            "rf_two_3x3": rf33,
            "rf_one_5x5": rf55,
            "same_receptive_field": rf33 == rf55,
            "nonlinearities_two_3x3": relu33,
            "nonlinearities_one_5x5": relu55,
            "more_nonlinearities": relu33 > relu55,
        },
        notes=(f"Keras Conv2D stacks: two 3x3 vs one 5x5, single channel without bias (the document's 18 vs 25), "
               f"and C_in = C_out = {c} with and without bias. Receptive fields measured by input gradients. "
               "The reduction is 1 - 18/25 = 28% (with C channels and bias still ~28%); the document rounds it "
               "to 'about 30%'. The accuracy comparison CLAIMS.md lists as optional was not run."),
    )


# --------------------------------------------------------------------------------------------
# RESNET-STAGES


_DOC_G = {"ResNet50": [3, 4, 6, 3], "ResNet101": [3, 4, 23, 8], "ResNet152": [3, 8, 36, 3]}


def _resnet_census(m: keras.Model) -> dict:
    adds = [l.name for l in m.layers if isinstance(l, layers.Add)]
    per_stage: dict[int, int] = {}
    for name in adds:
        stage = int(re.match(r"conv(\d)_block\d+_add$", name).group(1))
        per_stage[stage] = per_stage.get(stage, 0) + 1
    convs = [l for l in m.layers if isinstance(l, layers.Conv2D)]
    main_path = [l for l in convs if not l.name.endswith("_0_conv")]       # _0_conv = projection shortcut
    dense = [l for l in m.layers if isinstance(l, layers.Dense)]
    bottleneck = [int(m.get_layer(f"conv2_block1_{i}_conv").kernel_size[0]) for i in (1, 2, 3)]
    return {"g": [per_stage[s] for s in sorted(per_stage)], "depth": len(main_path) + len(dense),
            "n_conv": len(convs), "n_shortcut_conv": len(convs) - len(main_path), "n_add": len(adds),
            "bottleneck_kernels": bottleneck, "params": int(m.count_params())}


@experiment("resnet_stage_census")
def resnet_stage_census(*, seed: int, models: list = ["ResNet50", "ResNet101", "ResNet152"],
                        doc_g: dict = _DOC_G) -> Result:
    """Residual blocks per stage and depth of keras.applications ResNets, and the depth the document's
    g lists imply (3 convolutions per bottleneck block x sum(g) + stem conv + classifier)."""
    fresh(seed)
    metrics: dict = {}
    formula_ok = True
    for name in models:
        m = getattr(keras.applications, name)(weights=None)
        c = _resnet_census(m)
        del m
        keras.backend.clear_session()
        gc.collect()
        key = name.lower()
        metrics[f"{key}_g"] = c["g"]
        metrics[f"{key}_depth"] = c["depth"]
        metrics[f"{key}_params"] = c["params"]
        metrics[f"{key}_bottleneck_kernels"] = c["bottleneck_kernels"]
        metrics[f"{key}_skip_connections"] = c["n_add"]
        formula_ok &= 3 * sum(c["g"]) + 2 == c["depth"]
        if name in doc_g:
            metrics[f"{key}_depth_implied_by_doc_g"] = 3 * sum(doc_g[name]) + 2
    metrics["depth_formula_matches_keras"] = bool(formula_ok)
    return Result(
        metrics=metrics,
        notes=("Blocks per stage = Add layers (one per residual block) per stage conv2..conv5 of "
               "keras.applications ResNet50/101/152(weights=None); depth = main-path Conv2D layers (projection "
               "shortcuts excluded) + the Dense classifier, which equals 3*sum(g)+2 for every model built. "
               "The document's g lists are a parameter; the depth each implies uses that checked formula: its "
               "ResNet-101 list [3,4,23,8] gives 116 layers, Keras' (and the paper's) [3,4,23,3] gives 101."),
    )


# --------------------------------------------------------------------------------------------
# RESNET-ERROR (not checkable): what the three ResNets cost


def _analytic_flops(m: keras.Model) -> int:
    """2 x multiply-accumulates of every Conv2D and Dense layer (batch 1)."""
    total = 0
    for l in m.layers:
        if isinstance(l, layers.Conv2D):
            kh, kw, cin_g, cout = (int(d) for d in l.kernel.shape)
            oh, ow = dims(l.output.shape)[:2]
            total += 2 * kh * kw * cin_g * cout * oh * ow
        elif isinstance(l, layers.Dense):
            nin, nout = (int(d) for d in l.kernel.shape)
            total += 2 * nin * nout
    return total


@experiment("resnet_cost")
def resnet_cost(*, seed: int, models: list = ["ResNet50", "ResNet101", "ResNet152"],
                image_size: int = 224, batch: int = 4, repeats: int = 3, profile: bool = True) -> Result:
    """Parameters, FLOPs per image (analytic, and TensorFlow's profiler) and CPU forward time of the ResNets."""
    fresh(seed)
    metrics: dict = {}
    x = np.random.default_rng(seed).normal(size=(batch, image_size, image_size, 3)).astype("float32")
    for name in models:
        m = getattr(keras.applications, name)(weights=None, input_shape=(image_size, image_size, 3))
        key = name.lower()
        metrics[f"{key}_params"] = int(m.count_params())
        metrics[f"{key}_gflops"] = round(_analytic_flops(m) / 1e9, 3)
        if profile:
            metrics[f"{key}_gflops_profiler"] = round(forward_flops(m, (image_size, image_size, 3)) / 1e9, 3)
        fwd = tf.function(lambda t: m(t, training=False))
        fwd(x)                                                     # trace + warm up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fwd(x).numpy()
            times.append(time.perf_counter() - t0)
        metrics[f"{key}_cpu_seconds_per_image"] = round(float(np.median(times)) / batch, 4)
        del m, fwd
        keras.backend.clear_session()
        gc.collect()
    return Result(
        metrics=metrics,
        notes=(f"keras.applications {models} (weights=None), {image_size}x{image_size}x3. gflops = 2 x "
               "multiply-accumulates of the Conv2D and Dense layers per image; gflops_profiler = TensorFlow's "
               "graph profiler on the frozen forward graph (adds batch-norm, ReLU, additions, pooling). "
               f"cpu_seconds_per_image = median of {repeats} timed forward passes of a batch of {batch} on this "
               "machine's CPU. The 3.57% ILSVRC-2015 top-5 error (an ensemble of ResNets) needs ImageNet "
               "training and was not measured."),
    )


# --------------------------------------------------------------------------------------------
# CNN-CONV3D: 3-D convolution keeps a time axis


@experiment("conv3d_vs_conv2d")
def conv3d_vs_conv2d(*, seed: int, frames: int = 8, size: int = 32, channels: int = 3,
                     filters: int = 4, kernel: int = 3) -> Result:
    """Output shapes of (a) Conv2D on one image, (b) Conv2D on frames stacked as channels, (c) Conv3D on
    the clip, and which frames one output unit depends on (measured by gradients)."""
    fresh(seed)
    t, n, c, f, k = frames, size, channels, filters, kernel
    a = keras.Sequential([keras.Input((n, n, c)), layers.Conv2D(f, k)])
    b = keras.Sequential([keras.Input((n, n, t * c)), layers.Conv2D(f, k)])
    c3 = keras.Sequential([keras.Input((t, n, n, c)), layers.Conv3D(f, k)])
    clip = tf.random.normal((1, t, n, n, c), seed=seed)

    def frames_reached(model, inp, pick, to_frames):
        with tf.GradientTape() as tape:
            tape.watch(inp)
            y = pick(model(inp))
        g = np.abs(to_frames(tape.gradient(y, inp).numpy()))
        return [int(i) for i in np.flatnonzero(g.reshape(t, -1).sum(axis=1) > 0)]

    centre = (n - k + 1) // 2
    stacked = tf.reshape(tf.transpose(clip, (0, 2, 3, 1, 4)), (1, n, n, t * c))   # frames as channels
    reach_b = frames_reached(b, stacked, lambda y: y[0, centre, centre, 0],
                             lambda g: np.transpose(g[0].reshape(n, n, t, c), (2, 0, 1, 3)))
    reach_c = frames_reached(c3, clip, lambda y: y[0, 0, centre, centre, 0], lambda g: g[0])
    out_a, out_b, out_c = dims(a.outputs[0].shape), dims(b.outputs[0].shape), dims(c3.outputs[0].shape)
    return Result(
        metrics={
            "conv2d_image_output": out_a,
            "conv2d_frames_output": out_b,
            "conv3d_output": out_c,
            "conv2d_frames_keeps_time": len(out_b) == 4,
            "conv3d_keeps_time": len(out_c) == 4 and out_c[0] == t - k + 1,
            "conv2d_frames_unit_sees_frames": reach_b,
            "conv3d_first_unit_sees_frames": reach_c,
            "conv3d_params": int(c3.count_params()),
            "conv2d_frames_params": int(b.count_params()),
        },
        notes=(f"A {t}-frame {n}x{n}x{c} clip, {f} filters, kernel {k}. (a) Conv2D on one frame; (b) Conv2D on "
               f"the {t} frames stacked as {t * c} channels: one output map, every unit mixes all frames; "
               f"(c) Conv3D with a {k}x{k}x{k} kernel: output keeps a time axis of {t - k + 1}, the first time "
               f"step depends on frames 0..{k - 1} only. Frames reached = frames with non-zero input gradient."),
    )


# --------------------------------------------------------------------------------------------
# CONV1D-EQUIV: 1-D convolution is 2-D and 3-D convolution with the kernel sliding along one axis


@experiment("conv1d_as_conv2d_conv3d")
def conv1d_as_conv2d_conv3d(*, seed: int, batch: int = 4, length: int = 32, channels: int = 3, filters: int = 4,
                            kernel: int = 5, configs: list = [[1, "valid", 1], [2, "same", 1], [1, "valid", 2]],
                            tolerance: float = 1e-5, plant: str = "") -> Result:
    """CONV1D-EQUIV: the chapter says 1-D convolution is in essence the same as 2-D and 3-D convolution,
    only the way the kernel slides differs. Checked on built layers at Keras' defaults (with a bias):
    `Conv1D(filters, k)` on a (length, channels) sequence, `Conv2D(filters, (k, 1))` on the same
    sequence laid out as a (length, 1, channels) image, and `Conv3D(filters, (k, 1, 1))` on it as a
    (length, 1, 1, channels) volume, all three holding the same kernel (k, channels, filters reshaped)
    and bias, for each [stride, padding, dilation] in `configs` (applied along the sliding axis).
    Fixed random N(0, 1) inputs, kernel and bias from the seed. The outputs must be equal up to float32
    round-off (`max_abs_diff_as_written`, over configs and both comparisons), the output lengths equal
    and the parameter counts equal.
    `plant` is for tests: "flip_kernel" gives the 2-D and 3-D layers the kernel reversed along the
    sliding axis (true convolution against Keras' cross-correlation), which the comparison must catch.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (batch, length, channels)).astype("float32")
    w = rng.normal(0.0, 1.0 / np.sqrt(kernel * channels), (kernel, channels, filters)).astype("float32")
    b = rng.normal(0.0, 0.5, filters).astype("float32")
    w_other = w[::-1] if plant == "flip_kernel" else w
    fresh(seed)
    m: dict = {}
    diffs2, diffs3, shapes, params = [], [], [], []
    for stride, padding, dilation in configs:
        c1 = layers.Conv1D(filters, kernel, strides=stride, padding=padding, dilation_rate=dilation)
        c2 = layers.Conv2D(filters, (kernel, 1), strides=(stride, 1), padding=padding, dilation_rate=(dilation, 1))
        c3 = layers.Conv3D(filters, (kernel, 1, 1), strides=(stride, 1, 1), padding=padding,
                           dilation_rate=(dilation, 1, 1))
        c1.build((None, length, channels))
        c2.build((None, length, 1, channels))
        c3.build((None, length, 1, 1, channels))
        c1.set_weights([w, b])
        c2.set_weights([w_other.reshape(kernel, 1, channels, filters), b])
        c3.set_weights([w_other.reshape(kernel, 1, 1, channels, filters), b])
        y1 = np.asarray(c1(x), dtype="float64")
        y2 = np.asarray(c2(x[:, :, None, :]), dtype="float64")
        y3 = np.asarray(c3(x[:, :, None, None, :]), dtype="float64")
        shapes.append([list(y1.shape[1:]), list(y2.shape[1:]), list(y3.shape[1:])])
        params.append([int(c1.count_params()), int(c2.count_params()), int(c3.count_params())])
        same_len = y1.shape[1] == y2.shape[1] == y3.shape[1]
        diffs2.append(float(np.max(np.abs(y1 - y2[:, :, 0]))) if same_len else float("inf"))
        diffs3.append(float(np.max(np.abs(y1 - y3[:, :, 0, 0]))) if same_len else float("inf"))
        key = f"s{stride}_{padding}_d{dilation}"
        m[f"max_abs_diff_{key}"] = max(diffs2[-1], diffs3[-1])
    m["max_abs_diff_conv2d"] = max(diffs2)
    m["max_abs_diff_conv3d"] = max(diffs3)
    m["max_abs_diff_as_written"] = max(diffs2 + diffs3)
    m["agrees_as_written"] = m["max_abs_diff_as_written"] <= tolerance
    m["output_lengths_equal"] = all(s[0][0] == s[1][0] == s[2][0] for s in shapes)
    m["params_equal"] = all(p[0] == p[1] == p[2] for p in params)
    m["output_shapes"] = shapes
    m["param_counts"] = params
    m["tolerance"] = tolerance
    return Result(metrics=m, notes=f"batch {batch}, length {length}, {channels} channels, {filters} filters, "
                                   f"kernel {kernel}; configs [stride, padding, dilation] = {configs}"
                                   + (f"; planted: {plant}" if plant else ""))
