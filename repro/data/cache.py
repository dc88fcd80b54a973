"""Where canonical arrays live on disk (``<cache_dir>/<name>.npz``) and how they are written and read."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from repro.data.checksum import Arrays
from repro.data.errors import DataError
from repro.record import write_atomic


def cache_dir() -> Path:
    """``$REPRO_DATA_DIR`` if set, else ``~/.cache/repro/data``."""
    env = os.environ.get("REPRO_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "repro" / "data"


def cache_path(name: str) -> Path:
    return cache_dir() / f"{name}.npz"


def write_arrays(path: Path, arrays: Arrays) -> None:
    """Write ``arrays`` to ``path`` atomically (:func:`repro.record.write_atomic`): readers see the old
    file or the whole new one."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(path, buf.getvalue())


def read_arrays(path: Path) -> Arrays:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cache file {path} is unreadable ({type(exc).__name__}: {exc}); "
                        f"delete it and fetch again") from exc
