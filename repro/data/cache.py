"""Where canonical arrays live on disk (``<cache_dir>/<name>.npz``) and how they are written and read."""
from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from repro.data.checksum import Arrays
from repro.data.errors import DataError


def cache_dir() -> Path:
    """``$REPRO_DATA_DIR`` if set, else ``~/.cache/repro/data``."""
    env = os.environ.get("REPRO_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "repro" / "data"


def cache_path(name: str) -> Path:
    return cache_dir() / f"{name}.npz"


def write_arrays(path: Path, arrays: Arrays) -> None:
    """Write ``arrays`` to ``path`` atomically: readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is ordinary shared data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_arrays(path: Path) -> Arrays:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cache file {path} is unreadable ({type(exc).__name__}: {exc}); "
                        f"delete it and fetch again") from exc
