"""Real daily prices, read from CSV files that two PyPI wheels ship (never installed).

``stocks``: AAPL, IBM, MSFT (2000-03-01 .. 2013-03-01) and GOOG (2004-08-19 .. 2013-03-01) from
``bokeh-sampledata==2026.1``. Its few FB rows (2012-05 .. 2013-03, 196 days) are dropped: too short
a history to train on. ``sp500`` and ``nasdaq``: the two index levels 1999-01-04 .. 2018-12-31
from ``arch==8.0.0``.

Each series is two arrays: ``<ticker>_date`` (int32 YYYYMMDD) and ``<ticker>_adj_close`` (float64,
the adjusted close: the raw close of AAPL halves at its 2000 and 2005 splits, which would read as
-50% days; for the indices the two columns are equal).

    from repro import data
    series = data.load_prices(["AAPL", "SP500"])   # {"AAPL": (dates, prices), ...}
"""
from __future__ import annotations

import csv
import gzip
import io
from typing import Callable, Sequence

import numpy as np

from repro.data.checksum import Arrays
from repro.data.datasets import Dataset, load, register
from repro.data.errors import SourceError
from repro.data.sources import WheelSource

BOKEH_WHEEL = "bokeh-sampledata==2026.1"
BOKEH_MEMBER = "bokeh_sampledata/_data/stocks.csv.gz"
ARCH_WHEEL = "arch==8.0.0"
ARCH_MEMBERS = {"sp500": "arch/data/sp500/sp500.csv.gz", "nasdaq": "arch/data/nasdaq/nasdaq.csv.gz"}

# Trading days per series and first/last dates: a readable check beside the checksum.
EXPECTED = {
    "stocks": {"aapl": (3270, 20000301, 20130301), "ibm": (3270, 20000301, 20130301),
               "msft": (3270, 20000301, 20130301), "goog": (2148, 20040819, 20130301)},
    "sp500": {"sp500": (5031, 19990104, 20181231)},
    "nasdaq": {"nasdaq": (5031, 19990104, 20181231)},
}
CHECKSUMS = {
    "stocks": "a19bac9d42dc81cb05af265f683d5251c3b08030dfe4c0389bd3ba2cc2434d2f",
    "sp500": "751a118ef5aa117fb7999d2898ec1b50a2286ec2148b6a2fc59b5578c21a358b",
    "nasdaq": "94de6ff666352a908113c64a6298192c0b5e21f37811c5a909f94fa82d403158",
}
# Which dataset holds which ticker.
TICKERS = {"AAPL": "stocks", "IBM": "stocks", "MSFT": "stocks", "GOOG": "stocks",
           "SP500": "sp500", "NASDAQ": "nasdaq"}


# -------------------------------------------------------------------------------------- parsers

def _rows(data: bytes) -> list[dict[str, str]]:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"not a readable CSV file ({exc})") from exc


def _iso_date(text: str) -> int:
    y, m, d = text.split("-")
    return int(y) * 10000 + int(m) * 100 + int(d)


def _us_date(text: str) -> int:
    m, d, y = text.split("/")
    return int(y) * 10000 + int(m) * 100 + int(d)


def _series(rows: list[dict[str, str]], key: str, to_date: Callable[[str], int]) -> Arrays:
    try:
        dates = np.array([to_date(r["Date"]) for r in rows], dtype=np.int32)
        prices = np.array([float(r["Adj Close"]) for r in rows], dtype=np.float64)
    except (KeyError, ValueError) as exc:
        raise SourceError(f"unexpected CSV layout ({type(exc).__name__}: {exc})") from exc
    order = np.argsort(dates, kind="stable")
    return {f"{key}_date": dates[order], f"{key}_adj_close": prices[order]}


def parse_bokeh(data: bytes) -> Arrays:
    """bokeh's stocks.csv: Ticker, Date (ISO), Open, High, Low, Close, Volume, Adj Close."""
    rows = _rows(data)
    out: Arrays = {}
    for ticker in EXPECTED["stocks"]:
        out.update(_series([r for r in rows if r.get("Ticker", "").lower() == ticker], ticker, _iso_date))
    return out


def index_parser(key: str) -> Callable[[bytes], Arrays]:
    """arch's index files: Date (M/D/YYYY), Open, High, Low, Close, Adj Close, Volume."""
    return lambda data: _series(_rows(data), key, _us_date)


def checker(name: str) -> Callable[[Arrays], None]:
    def check(arrays: Arrays) -> None:
        for key, (n, first, last) in EXPECTED[name].items():
            dates, prices = arrays.get(f"{key}_date"), arrays.get(f"{key}_adj_close")
            if dates is None or prices is None:
                raise SourceError(f"no {key.upper()} series")
            if len(dates) != n or len(prices) != n:
                raise SourceError(f"{key.upper()} has {len(dates)} days, expected {n}")
            if (int(dates[0]), int(dates[-1])) != (first, last):
                raise SourceError(f"{key.upper()} runs {dates[0]}..{dates[-1]}, expected {first}..{last}")
            if np.any(np.diff(dates) <= 0) or not np.all(np.isfinite(prices)) or prices.min() <= 0:
                raise SourceError(f"{key.upper()} has repeated dates or non-positive prices")
    return check


register(Dataset(
    name="stocks",
    description="daily adjusted closes of AAPL, IBM, MSFT 2000-2013 and GOOG 2004-2013 (bokeh sample data)",
    sources=[WheelSource(BOKEH_WHEEL, BOKEH_MEMBER, parse_bokeh)],
    checksum=CHECKSUMS["stocks"],
    check=checker("stocks"),
))
for _name, _member in ARCH_MEMBERS.items():
    register(Dataset(
        name=_name,
        description=f"daily {_name.upper()} index closes 1999-2018 (arch's example data)",
        sources=[WheelSource(ARCH_WHEEL, _member, index_parser(_name))],
        checksum=CHECKSUMS[_name],
        check=checker(_name),
    ))


# ------------------------------------------------------------------------------------------ api

def load_prices(tickers: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{ticker: (dates YYYYMMDD int32, adjusted closes float64)} for tickers of :data:`TICKERS`."""
    out = {}
    for ticker in tickers:
        name = TICKERS.get(ticker.upper())
        if name is None:
            raise ValueError(f"unknown ticker {ticker!r}; known: {', '.join(TICKERS)}")
        arrays = load(name)
        key = ticker.lower()
        out[ticker.upper()] = (arrays[f"{key}_date"], arrays[f"{key}_adj_close"])
    return out
