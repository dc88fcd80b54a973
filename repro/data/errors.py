"""The data layer's two exception types."""
from __future__ import annotations


class DataError(Exception):
    """A dataset cannot be provided. ``str()`` is one line: what went wrong and how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class SourceError(Exception):
    """An expected failure of one source (offline, not prepared, no such member ...).

    Its message is already a readable reason, so it is reported without the exception type.
    """


def one_line(exc: BaseException, limit: int = 300) -> str:
    """A short single-line reason for ``exc``."""
    text = " ".join(str(exc).split())
    if not isinstance(exc, SourceError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
