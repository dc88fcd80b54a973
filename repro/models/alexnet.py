"""AlexNet (Krizhevsky, Sutskever & Hinton 2012) as a Keras model: 5 convolutional + 3 fully connected layers."""
from __future__ import annotations

import keras
from keras import layers


def alexnet(*, num_classes: int = 1000, dropout: float = 0.5, groups: int = 1,
            input_shape: tuple[int, int, int] = (227, 227, 3)) -> keras.Model:
    """AlexNet on 227x227x3 inputs (the size that makes the paper's 11x11/4 first layer give 55x55).

    ``groups=1`` is the usual single-GPU variant (62,378,344 parameters). ``groups=2`` reproduces the
    paper's two-GPU split: conv2, conv4 and conv5 only see the kernels of their own GPU (grouped
    convolutions), conv3 and the fully connected layers cross between the GPUs (60,965,224 parameters).
    Local response normalisation is left out, as in most re-implementations; it has no parameters.
    Dropout (rate ``dropout``) follows fc6 and fc7, as in the paper.
    """
    def conv(filters, kernel, name, strides=1, padding="same", g=1):
        return layers.Conv2D(filters, kernel, strides=strides, padding=padding, groups=g,
                             activation="relu", name=name)

    return keras.Sequential(
        [
            keras.Input(input_shape),
            conv(96, 11, "conv1", strides=4, padding="valid"),   # 55x55x96
            layers.MaxPooling2D(3, 2, name="pool1"),              # 27x27x96
            conv(256, 5, "conv2", g=groups),                      # 27x27x256
            layers.MaxPooling2D(3, 2, name="pool2"),              # 13x13x256
            conv(384, 3, "conv3"),                                # 13x13x384
            conv(384, 3, "conv4", g=groups),                      # 13x13x384
            conv(256, 3, "conv5", g=groups),                      # 13x13x256
            layers.MaxPooling2D(3, 2, name="pool5"),              # 6x6x256
            layers.Flatten(name="flatten"),
            layers.Dense(4096, activation="relu", name="fc6"),
            layers.Dropout(dropout, name="drop6"),
            layers.Dense(4096, activation="relu", name="fc7"),
            layers.Dropout(dropout, name="drop7"),
            layers.Dense(num_classes, activation="softmax", name="fc8"),
        ],
        name="alexnet" if groups == 1 else f"alexnet_{groups}gpu",
    )
