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


class LossCurve(keras.callbacks.Callback):
    """The training loss as ``per_epoch`` points an epoch (means over consecutive batches), recovered
    from the running mean Keras logs after each batch: a curve fine enough to judge a schedule's
    base-rate phase when that phase is shorter than a few epochs."""

    def __init__(self, per_epoch: int = 10):
        super().__init__()
        self.per_epoch, self.curve, self._running = per_epoch, [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._running = []

    def on_train_batch_end(self, batch, logs=None):
        self._running.append(float((logs or {}).get("loss", float("nan"))))

    def on_epoch_end(self, epoch, logs=None):
        n = len(self._running)
        total = [m * (b + 1) for b, m in enumerate(self._running)]   # sum of the first b+1 batch losses
        edges = sorted({round(i * n / self.per_epoch) for i in range(self.per_epoch + 1)})
        for a, b in zip(edges[:-1], edges[1:]):
            self.curve.append((total[b - 1] - (total[a - 1] if a else 0.0)) / (b - a))
