"""Fully connected networks for the training-strategy experiments (section 7.3).

A "layer" is one Dense layer with a bias, so depth counts the Dense layers including the output.
"""
from __future__ import annotations

import keras
from keras import layers


def deep_mlp(depth: int, width: int, activation: str, *, init: str = "glorot_uniform",
             inputs: int = 784, classes: int = 10, dropout: float = 0.0,
             batch_norm: bool = False) -> keras.Model:
    """`depth` Dense layers: depth-1 hidden layers of `width` units, then a softmax output layer."""
    x_in = keras.Input((inputs,))
    x = x_in
    for i in range(depth - 1):
        x = layers.Dense(width, kernel_initializer=init, name=f"dense_{i + 1}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"bn_{i + 1}")(x)
        x = layers.Activation(activation, name=f"act_{i + 1}")(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    out = layers.Dense(classes, activation="softmax", kernel_initializer=init, name=f"dense_{depth}")(x)
    return keras.Model(x_in, out)


def plain_or_residual(depth: int, width: int, *, residual: bool, inputs: int = 784,
                      classes: int = 10) -> keras.Model:
    """He et al.'s plain/residual pair as MLPs: Dense-BN-ReLU layers, `depth` Dense layers in all.

    One input layer, (depth-2)/2 two-layer blocks, one output layer. A residual block adds its input
    before the second ReLU, y = relu(x + F(x)) (the chapter's H(x) = x + F(x)); the plain block is
    the same without the shortcut. Both use batch normalisation, as both did in He et al. (2016).
    """
    if (depth - 2) % 2:
        raise ValueError("depth - 2 must be even (two Dense layers per block)")

    def dense_bn(x, name: str):
        x = layers.Dense(width, kernel_initializer="he_normal", name=name)(x)
        return layers.BatchNormalization(name=f"{name}_bn")(x)

    x_in = keras.Input((inputs,))
    x = layers.Activation("relu")(dense_bn(x_in, "dense_1"))
    for b in range((depth - 2) // 2):
        h = layers.Activation("relu")(dense_bn(x, f"block{b + 1}_a"))
        h = dense_bn(h, f"block{b + 1}_b")
        x = layers.Activation("relu")(layers.Add()([x, h]) if residual else h)
    out = layers.Dense(classes, activation="softmax", name="dense_out")(x)
    return keras.Model(x_in, out)
