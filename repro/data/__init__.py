"""The dataset layer: named datasets with ordered sources, a verified on-disk cache, and MNIST.

    from repro import data
    (x_train, y_train), (x_test, y_test) = data.load_mnist(train_size=10_000)           # the first 10,000
    (x_train, y_train), (x_test, y_test) = data.load_mnist(train_size=10_000, seed=3)   # a random 10,000
"""
from repro.data.cache import cache_dir
from repro.data.checksum import checksum
from repro.data.datasets import (DATASETS, Dataset, describe, fetch, load, register, registered,
                                 verify)
from repro.data.errors import DataError, SourceError
from repro.data.mitdb import load_mitdb
from repro.data.mnist import load_mnist
from repro.data.rotten_tomatoes import load_rotten_tomatoes
from repro.data.sources import Source, TfdsSource, UrlSource, WheelSource
from repro.data.stocks import load_prices
from repro.data.tatoeba import load_tatoeba

__all__ = [
    "DATASETS", "DataError", "Dataset", "Source", "SourceError", "TfdsSource", "UrlSource",
    "WheelSource", "cache_dir", "checksum", "describe", "fetch", "load", "load_mnist", "register",
    "registered", "verify",
]
