"""A locally connected 2-D layer (Keras 3 dropped ``LocallyConnected2D``): a convolution without weight sharing.

Every output position has its own k x k x C_in x C_out kernel (and bias), so the weight has shape
(positions, k*k*C_in, C_out). Tying all positions to one kernel gives exactly ``Conv2D``.
"""
from __future__ import annotations

import keras
from keras import ops


class LocallyConnected2D(keras.layers.Layer):
    def __init__(self, filters: int, kernel_size: int, strides: int = 1, padding: str = "valid",
                 use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides
        self.padding, self.use_bias = padding, use_bias

    def _out_size(self, n: int) -> int:
        if self.padding == "same":
            return -(-n // self.strides)
        return (n - self.kernel_size) // self.strides + 1

    def build(self, input_shape):
        _, h, w, c = input_shape
        self.out_h, self.out_w = self._out_size(h), self._out_size(w)
        positions = self.out_h * self.out_w
        self.kernel = self.add_weight(name="kernel", shape=(positions, self.kernel_size ** 2 * c, self.filters),
                                      initializer="glorot_uniform")
        self.bias = (self.add_weight(name="bias", shape=(positions, self.filters), initializer="zeros")
                     if self.use_bias else None)

    def call(self, x):
        patches = ops.image.extract_patches(x, size=self.kernel_size, strides=self.strides,
                                            padding=self.padding)          # (B, oh, ow, k*k*C_in)
        b = ops.shape(patches)[0]
        patches = ops.reshape(patches, (b, self.out_h * self.out_w, -1))
        y = ops.einsum("bpi,pif->bpf", patches, self.kernel)
        if self.bias is not None:
            y = y + self.bias
        return ops.reshape(y, (b, self.out_h, self.out_w, self.filters))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._out_size(input_shape[1]), self._out_size(input_shape[2]), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "use_bias": self.use_bias}
