"""Builders for the generative experiments (7.5, 7.6): dense autoencoders, the VAE encoder, MLP and
DCGAN generators/discriminators, and the small 2-D GAN networks. Images are flat 784-vectors in
[0, 1] for the autoencoders and [-1, 1] (tanh) for the GANs.
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import layers


def dense_encoder(code: int, *, inputs: int = 784, hidden: Sequence[int] = (256, 128),
                  outputs: int = 1) -> keras.Model:
    """Dense ReLU stack ending in `outputs` linear heads of size `code` (2 heads for a VAE: m, log σ²)."""
    x_in = keras.Input((inputs,))
    x = x_in
    for h in hidden:
        x = layers.Dense(h, activation="relu")(x)
    heads = [layers.Dense(code, name=f"code_{i}")(x) for i in range(outputs)]
    return keras.Model(x_in, heads if outputs > 1 else heads[0])


def dense_decoder(code: int, *, outputs: int = 784, hidden: Sequence[int] = (128, 256),
                  activation: str = "sigmoid") -> keras.Model:
    z = keras.Input((code,))
    x = z
    for h in hidden:
        x = layers.Dense(h, activation="relu")(x)
    return keras.Model(z, layers.Dense(outputs, activation=activation)(x))


def autoencoder(code: int, *, inputs: int = 784, hidden: Sequence[int] = (256, 128)) -> tuple[keras.Model, keras.Model, keras.Model]:
    """(autoencoder, encoder, decoder): the chapter's deep autoencoder, decoder mirroring the encoder."""
    enc = dense_encoder(code, inputs=inputs, hidden=hidden)
    dec = dense_decoder(code, outputs=inputs, hidden=tuple(reversed(hidden)))
    x_in = keras.Input((inputs,))
    return keras.Model(x_in, dec(enc(x_in))), enc, dec


def mlp_generator(latent: int, *, outputs: int = 784, hidden: Sequence[int] = (256, 512),
                  conditions: int = 0, activation: str = "tanh") -> keras.Model:
    """z (and a one-hot label when `conditions` > 0) -> sample."""
    z = keras.Input((latent + conditions,))
    x = z
    for h in hidden:
        x = layers.LeakyReLU(0.2)(layers.Dense(h)(x))
    return keras.Model(z, layers.Dense(outputs, activation=activation)(x))


def mlp_discriminator(*, inputs: int = 784, hidden: Sequence[int] = (512, 256),
                      conditions: int = 0) -> keras.Model:
    """sample (and one-hot label) -> one logit (no sigmoid: the losses take logits)."""
    x_in = keras.Input((inputs + conditions,))
    x = x_in
    for h in hidden:
        x = layers.LeakyReLU(0.2)(layers.Dense(h)(x))
    return keras.Model(x_in, layers.Dense(1)(x))


def dcgan_generator(latent: int, *, width: int = 64, conditions: int = 0) -> keras.Model:
    """Radford et al.'s recipe scaled to 28x28: Dense -> 7x7xW, two stride-2 transposed convs, BN+ReLU, tanh.
    With `conditions` > 0 the input is z followed by a one-hot label (CGAN)."""
    z = keras.Input((latent + conditions,))
    x = layers.Dense(7 * 7 * width, use_bias=False)(z)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.Reshape((7, 7, width))(x)
    x = layers.Conv2DTranspose(width // 2, 4, strides=2, padding="same", use_bias=False)(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh")(x)
    return keras.Model(z, layers.Reshape((784,))(x))


def dcgan_discriminator(*, width: int = 64, conditions: int = 0) -> keras.Model:
    """Two stride-2 convs with LeakyReLU (no pooling, as in DCGAN), then one logit. With `conditions` > 0
    the input is the image followed by a one-hot label, which enters as constant extra channels."""
    x_in = keras.Input((784 + conditions,))
    x = layers.Reshape((28, 28, 1))(x_in[:, :784])
    if conditions:
        label_maps = layers.Reshape((28, 28, conditions))(layers.RepeatVector(28 * 28)(x_in[:, 784:]))
        x = layers.Concatenate()([x, label_maps])
    x = layers.LeakyReLU(0.2)(layers.Conv2D(width // 2, 4, strides=2, padding="same")(x))
    x = layers.LeakyReLU(0.2)(layers.Conv2D(width, 4, strides=2, padding="same")(x))
    return keras.Model(x_in, layers.Dense(1)(layers.Flatten()(x)))


def toy_mlp(inputs: int, outputs: int, *, hidden: Sequence[int], activation: str = "relu",
            initializer: str | keras.initializers.Initializer = "he_uniform", input_scale: float = 1.0,
            output_activation: str | None = None) -> keras.Model:
    """The 2-D toy GANs' networks: a plain MLP (`hidden` widths, `activation`), a linear head of size
    `outputs`, every kernel drawn by `initializer` (a fresh copy per layer), inputs multiplied by
    `input_scale` first (Metz et al.'s discriminator divides the ring by 4)."""
    def init():
        return keras.initializers.get(initializer) if isinstance(initializer, str) else \
            initializer.__class__.from_config(initializer.get_config())
    x_in = keras.Input((inputs,))
    x = layers.Rescaling(input_scale)(x_in) if input_scale != 1.0 else x_in
    for h in hidden:
        x = layers.Dense(h, activation=activation, kernel_initializer=init())(x)
    return keras.Model(x_in, layers.Dense(outputs, activation=output_activation, kernel_initializer=init())(x))


class Maxout(layers.Layer):
    """The maximum over `pieces` linear pieces per unit (Goodfellow et al. 2013)."""

    def __init__(self, units: int, pieces: int, **kw):
        super().__init__(**kw)
        self.units, self.pieces = units, pieces
        self.dense = layers.Dense(units * pieces)

    def call(self, x):
        h = self.dense(x)
        return keras.ops.max(keras.ops.reshape(h, (-1, self.units, self.pieces)), axis=-1)

    def get_config(self) -> dict:
        return super().get_config() | {"units": self.units, "pieces": self.pieces}


def mirza_generator(latent: int, *, conditions: int = 10, outputs: int = 784) -> keras.Model:
    """Mirza & Osindero 2014's conditional MLP generator: z → 200 ReLU and the label → 1,000 ReLU, joined
    into 1,200 ReLU, then the image (tanh here: the GANs' images are in [-1, 1]; theirs sigmoid in [0, 1])."""
    zc = keras.Input((latent + conditions,))
    hz = layers.Dense(200, activation="relu")(zc[:, :latent])
    hy = layers.Dense(1000, activation="relu")(zc[:, latent:])
    h = layers.Dense(1200, activation="relu")(layers.Concatenate()([hz, hy]))
    return keras.Model(zc, layers.Dense(outputs, activation="tanh")(h))


def mirza_discriminator(*, inputs: int = 784, conditions: int = 10, dropout: float = 0.5) -> keras.Model:
    """Mirza & Osindero 2014's conditional MLP discriminator: the image → maxout 240 units × 5 pieces, the
    label → maxout 50 × 5, joined into maxout 240 × 4, then one logit; dropout 0.5 on the hidden layers."""
    xc = keras.Input((inputs + conditions,))
    hx = layers.Dropout(dropout)(Maxout(240, 5)(xc[:, :inputs]))
    hy = layers.Dropout(dropout)(Maxout(50, 5)(xc[:, inputs:]))
    h = layers.Dropout(dropout)(Maxout(240, 4)(layers.Concatenate()([hx, hy])))
    return keras.Model(xc, layers.Dense(1)(h))
