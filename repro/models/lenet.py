"""LeNet-5 (LeCun et al. 1998) as a Keras model: C1 - S2 - C3 - S4 - C5 - F6 - output."""
from __future__ import annotations

import keras
from keras import layers


def lenet5(*, activation: str = "relu", pooling: str = "max", num_classes: int = 10) -> keras.Model:
    """LeNet-5 on 32x32x1 inputs.

    The layer geometry is the paper's (6@5x5, 2x2 subsampling, 16@5x5, 2x2, 120@5x5, 84, 10).
    The paper's trainable subsampling, sparse C3 connection table and RBF output are replaced by
    plain pooling, a full C3 and softmax, as every modern re-implementation does; ``activation`` and
    ``pooling`` choose between the paper's flavour ("tanh", "avg") and the modern one.
    """
    pool = {"max": layers.MaxPooling2D, "avg": layers.AveragePooling2D}[pooling]
    return keras.Sequential(
        [
            keras.Input((32, 32, 1)),
            layers.Conv2D(6, 5, activation=activation, name="C1"),
            pool(2, name="S2"),
            layers.Conv2D(16, 5, activation=activation, name="C3"),
            pool(2, name="S4"),
            layers.Conv2D(120, 5, activation=activation, name="C5"),
            layers.Flatten(name="flatten"),
            layers.Dense(84, activation=activation, name="F6"),
            layers.Dense(num_classes, activation="softmax", name="output"),
        ],
        name="lenet5",
    )
