"""Small plotting helpers: figures become PNG bytes for a run's artifacts."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def figure(width: float = 5.0, height: float = 3.5):
    return plt.subplots(figsize=(width, height), dpi=110)


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
