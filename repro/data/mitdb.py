"""An ECG recording with a labelled anomaly, from the ``sktime`` wheel (never installed).

``sktime==1.2.0`` ships ``sktime/datasets/data/mitdb/mitdb.csv``: 7,500 samples of one MIT-BIH
Arrhythmia Database ECG lead (360 Hz, about 21 s) with a 0/1 label per sample; the 352 samples
labelled 1 (one contiguous stretch, 6936..7287) are the anomaly. Canonical arrays, in file order:
``ecg`` (float64, millivolts) and ``label`` (uint8, 1 = anomalous).

    from repro import data
    ecg, label = data.load_mitdb()
"""
from __future__ import annotations

import csv
import io

import numpy as np

from repro.data.checksum import Arrays
from repro.data.datasets import Dataset, load, register
from repro.data.errors import SourceError
from repro.data.sources import WheelSource

WHEEL = "sktime==1.2.0"
WHEEL_MEMBER = "sktime/datasets/data/mitdb/mitdb.csv"
CHECKSUM = "71d2ded34ba8a054978e555ec8e8b345e3a00429103c24e742f9d1afdd10e535"
SAMPLES, ANOMALOUS = 7500, 352


def parse_csv(data: bytes) -> Arrays:
    """Two columns, ``data`` and ``label``."""
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
        return {"ecg": np.array([float(r["data"]) for r in rows], dtype=np.float64),
                "label": np.array([int(float(r["label"])) for r in rows], dtype=np.uint8)}
    except (UnicodeDecodeError, csv.Error, KeyError, ValueError, TypeError) as exc:
        raise SourceError(f"not the expected ECG CSV ({type(exc).__name__}: {exc})") from exc


def check(arrays: Arrays) -> None:
    ecg, label = arrays["ecg"], arrays["label"]
    if not (len(ecg) == len(label) == SAMPLES):
        raise SourceError(f"expected {SAMPLES} samples, got {len(ecg)}")
    if int(label.sum()) != ANOMALOUS or not set(np.unique(label)) <= {0, 1}:
        raise SourceError(f"expected {ANOMALOUS} samples labelled 1, got {int(label.sum())}")
    if not np.all(np.isfinite(ecg)):
        raise SourceError("non-finite ECG samples")


register(Dataset(
    name="mitdb",
    description="7,500 samples of an MIT-BIH ECG lead, 352 labelled anomalous (sktime's example data)",
    sources=[WheelSource(WHEEL, WHEEL_MEMBER, parse_csv)],
    checksum=CHECKSUM,
    keys=("ecg", "label"),
    check=check,
))


def load_mitdb() -> tuple[np.ndarray, np.ndarray]:
    """(ecg: float64 millivolts, label: uint8 with 1 = anomalous), 7,500 samples in time order."""
    arrays = load("mitdb")
    return arrays["ecg"], arrays["label"]
