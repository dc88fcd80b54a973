"""Small Keras helpers shared by experiments."""
from __future__ import annotations

import gc

import keras


def fresh(seed: int) -> None:
    """Drop the models of earlier runs in this process and re-seed, so that each model built next
    starts from the same state whatever ran before it."""
    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(seed)


def dims(shape) -> list[int]:
    """A Keras shape without its batch axis, as plain ints."""
    return [int(d) for d in tuple(shape)[1:]]
