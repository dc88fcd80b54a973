"""LeNet-5 in the flavour of LeCun, Bottou, Bengio & Haffner (1998), "Gradient-based learning
applied to document recognition", Proc. IEEE 86(11), section II.B and appendix A.

What is the paper's:
  * the squashing function f(a) = A·tanh(S·a) with A = 1.7159, S = 2/3 (appendix A), after every
    convolution, subsampling and F6 unit;
  * the subsampling layers S2 and S4: each unit adds the four inputs of its 2x2 field, multiplies the
    sum by one trainable coefficient per feature map, adds a trainable bias per map and passes the
    result through the squashing function (12 and 32 trainable parameters);
  * C3's sparse connection table (Table I): 60 of the 6x16 map pairs are connected (1,516 parameters);
  * weights drawn uniformly from ±2.4/F_i, F_i the fan-in of the unit (appendix A);
  * inputs scaled so that the white background is -0.1 and black ink 1.175 (mean ~0, variance ~1).
What is not: the output layer is a 10-way softmax trained with cross-entropy instead of the
Euclidean RBF units with fixed ±1 bitmap codes and the paper's MAP-like loss (the paper itself
notes that RBF codes matter for larger alphabets, not for ten digits); the subsampling coefficient
starts at 1 on the 2x2 average (i.e. 1/4 on the sum) instead of a random draw.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

A, S = 1.7159, 2.0 / 3.0

# Table I of the paper: which S2 maps (rows 0-5) feed each C3 map (columns 0-15).
C3_TABLE = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


def scaled_tanh(x):
    """LeCun's squashing function 1.7159·tanh(2/3·x): f(±1) = ±1, maximal second derivative at ±1."""
    return A * ops.tanh(S * x)


def c3_mask() -> np.ndarray:
    """(1, 1, 6, 16) 0/1 mask of C3's connections."""
    m = np.zeros((1, 1, 6, 16), "float32")
    for j, rows in enumerate(C3_TABLE):
        m[0, 0, list(rows), j] = 1.0
    return m


INIT = "efficient_backprop"


def _uniform(fan_in: int, seed: int | None):
    """U(±2.4/F_i) as in the paper ("paper"), or U(±√(3/F_i)), i.e. σ = F_i^-1/2, as prescribed for this
    squashing function by LeCun, Bottou, Orr & Müller 1998, "Efficient BackProp" §4.6
    ("efficient_backprop", the default; see lenet5_1998)."""
    lim = 2.4 / fan_in if INIT == "paper" else (3.0 / fan_in) ** 0.5
    return keras.initializers.RandomUniform(-lim, lim, seed=seed)


@keras.saving.register_keras_serializable(package="repro")
class Subsampling(layers.Layer):
    """S2/S4: 2x2 average x trainable coefficient + trainable bias, per feature map, then squashing."""

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.coef = self.add_weight(shape=(c,), initializer="ones", name="coefficient")
        self.bias = self.add_weight(shape=(c,), initializer="zeros", name="bias")

    def call(self, x):
        pooled = ops.average_pool(x, pool_size=2, strides=2, padding="valid")
        return scaled_tanh(pooled * self.coef + self.bias)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] // 2, input_shape[2] // 2, input_shape[3])


@keras.saving.register_keras_serializable(package="repro")
class MaskedConv2D(layers.Conv2D):
    """A Conv2D whose kernel is multiplied by a fixed 0/1 connection mask (C3's Table I)."""

    def __init__(self, *args, mask=None, **kw):
        super().__init__(*args, **kw)
        self.mask = np.asarray(mask if mask is not None else c3_mask(), "float32")

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel * ops.convert_to_tensor(self.mask))

    def get_config(self):
        return {**super().get_config(), "mask": self.mask.tolist()}

    def effective_params(self) -> int:
        kh, kw = self.kernel_size
        return int(self.mask.sum()) * kh * kw + (self.filters if self.use_bias else 0)


def lenet5_1998(*, seed: int | None = None, num_classes: int = 10, sparse_c3: bool = True) -> keras.Model:
    """LeNet-5 on 32x32x1 inputs in the 1998 flavour (see the module docstring)."""
    def seeded(i):
        return None if seed is None else seed * 100 + i

    c3 = (MaskedConv2D(16, 5, activation=scaled_tanh, name="C3",
                       kernel_initializer=_uniform(25 * 3, seeded(2)),  # fan-in 75-150; 3 maps is the mode
                       bias_initializer=_uniform(25 * 3, seeded(12)))
          if sparse_c3 else
          layers.Conv2D(16, 5, activation=scaled_tanh, name="C3",
                        kernel_initializer=_uniform(25 * 6, seeded(2)), bias_initializer=_uniform(25 * 6, seeded(12))))
    return keras.Sequential(
        [
            keras.Input((32, 32, 1)),
            layers.Conv2D(6, 5, activation=scaled_tanh, name="C1",
                          kernel_initializer=_uniform(25, seeded(1)), bias_initializer=_uniform(25, seeded(11))),
            Subsampling(name="S2"),
            c3,
            Subsampling(name="S4"),
            layers.Conv2D(120, 5, activation=scaled_tanh, name="C5",
                          kernel_initializer=_uniform(25 * 16, seeded(3)),
                          bias_initializer=_uniform(25 * 16, seeded(13))),
            layers.Flatten(name="flatten"),
            layers.Dense(84, activation=scaled_tanh, name="F6",
                         kernel_initializer=_uniform(120, seeded(4)), bias_initializer=_uniform(120, seeded(14))),
            layers.Dense(num_classes, activation="softmax", name="output",
                         kernel_initializer=_uniform(84, seeded(5)), bias_initializer=_uniform(84, seeded(15))),
        ],
        name="lenet5_1998",
    )


def effective_params(model: keras.Model) -> int:
    """Trainable parameters counting only C3's connected kernels (the paper's count: 60,000 and some)."""
    total = 0
    for layer in model.layers:
        total += layer.effective_params() if isinstance(layer, MaskedConv2D) else layer.count_params()
    return int(total)


def scale_pixels(x_uint8: np.ndarray) -> np.ndarray:
    """The paper's input scaling: background (0) -> -0.1, full ink (255) -> 1.175."""
    return x_uint8.astype("float32") * (1.275 / 255.0) - 0.1
