"""The one checksum of a set of canonical arrays, used both when fetching and when verifying."""
from __future__ import annotations

import hashlib
from typing import Mapping

import numpy as np

from repro.data.errors import DataError

Arrays = dict[str, np.ndarray]


def checksum(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over the arrays in key order: for each its name, dtype, shape, then its C-order bytes."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = arrays[key]
        if not isinstance(a, np.ndarray):
            raise DataError(f"array {key!r} is a {type(a).__name__}, not a numpy array")
        if a.dtype.hasobject:
            raise DataError(f"array {key!r} has dtype object, which has no stable bytes to hash")
        a = np.ascontiguousarray(a)
        # The NUL-separated header makes the stream unambiguous: the byte count follows from it.
        h.update(f"{key}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()
