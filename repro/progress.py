"""Progress reporting that experiments can use without knowing about rich or the runner.

The runner installs a reporter for the duration of one (claim, seed); an experiment asks for
``epochs(n)`` and passes the returned Keras callback to ``fit``. Without a reporter it is a no-op.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Callable, Iterator

# The reporter is a function (done, total, text) -> None.
Reporter = Callable[[int, int, str], None]
_current: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar("repro_reporter", default=None)


@contextlib.contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    token = _current.set(reporter)
    try:
        yield
    finally:
        _current.reset(token)


def step(done: int, total: int, text: str = "") -> None:
    """Report progress of a loop that is not a Keras fit (e.g. a sweep over depths)."""
    reporter = _current.get()
    if reporter is not None:
        reporter(done, total, text)


@functools.cache
def _epoch_callback() -> type:
    """The Keras callback class, made on first use: importing this module (the runner, the CLI) must not
    import Keras and TensorFlow."""
    import keras

    class EpochCallback(keras.callbacks.Callback):
        def __init__(self, total: int, label: str):
            super().__init__()
            self.total, self.label = total, label

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            shown = " ".join(f"{k}={v:.4f}" for k, v in logs.items() if k in ("loss", "accuracy", "val_loss"))
            step(epoch + 1, self.total, f"{self.label}epoch {epoch + 1}/{self.total} {shown}".strip())

    return EpochCallback


def epochs(total: int, label: str = ""):
    """A Keras callback reporting each finished epoch to the active reporter."""
    return _epoch_callback()(total, f"{label} " if label else "")
