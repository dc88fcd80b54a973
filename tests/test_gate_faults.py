"""Planted faults: the regression gate (`repro check`) must catch what it exists for.

Each test copies the code (repro/, suites/, pyproject.toml, cli.py) and the committed cnn smoke
baseline into a temporary directory, plants one fault with a text replacement (asserting the text is
there, so a test can never pass by changing nothing), and runs `python cli.py check CLAIM -p smoke`
(the `repro` command line) there in a subprocess: exit 1, and the claim named in the report's
regression lines. The unmodified copy passes (exit 0): with the baseline's code, parameters and
environment every seed is bit-identical (elsewhere its seed 0 lies within the baseline's spread).

Only the affected claims run (LeNet-5 on 6,000 MNIST images for 4 epochs: ~6 s), so the file takes
about a minute on 2 idle cores.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from repro import compare, record

REPO = Path(__file__).resolve().parent.parent
# where the baseline comes from: the committed records (REPRO_GATE_BASELINES may point elsewhere,
# e.g. at freshly made baselines before they are committed)
BASELINES = Path(os.environ.get("REPRO_GATE_BASELINES", REPO / "results"))
TIMEOUT = 300


def _baseline() -> tuple[dict, Path]:
    known = []
    for p in record.find(BASELINES):
        try:
            known.append((record.load(p), p))
        except record.RecordError:
            continue
    found = compare.find_baseline(known, "cnn", "smoke", machine="", commit="")
    assert found, (f"no schema-2 cnn smoke baseline under {BASELINES}: "
                   "`repro run cnn -p smoke --seeds 5` on a known-good commit and commit its record")
    return found


@pytest.fixture(scope="module")
def baseline() -> tuple[dict, Path]:
    return _baseline()


@pytest.fixture
def copy(tmp_path, baseline) -> Path:
    """A copy of the code with the committed cnn smoke baseline as its only record."""
    rec, path = baseline
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("repro", "suites"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "cli.py"):
        shutil.copy(REPO / name, root / name)
    target = root / "results" / rec["machine"] / path.name
    target.parent.mkdir(parents=True)
    shutil.copy(path, target)
    return root


def plant(root: Path, file: str, old: str, new: str) -> None:
    p = root / file
    text = p.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"the fault's target text is not (exactly once) in {file}: {old!r}"
    p.write_text(text.replace(old, new), encoding="utf-8")


def gate(root: Path, machine: str, *claims: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root), REPRO_MACHINE=machine, COLUMNS="200",
               GIT_CEILING_DIRECTORIES=str(root.parent))   # the copy is no git checkout: commit "nocommit"
    env.pop("REPRO_SUITES_DIR", None)
    return subprocess.run([sys.executable, "cli.py", "check", *claims, "-p", "smoke",
                           "--results", str(root / "results")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def regression_lines(out: str) -> list[str]:
    """The report's one line per regression (between 'REGRESSIONS (n):' and the table)."""
    lines = out.splitlines()
    if not any(line.startswith("REGRESSIONS (") for line in lines):
        return []
    i = next(i for i, line in enumerate(lines) if line.startswith("REGRESSIONS ("))
    found = []
    for line in lines[i + 1:]:
        if not line.strip():
            break
        found.append(line.strip())
    return found


def assert_caught(res: subprocess.CompletedProcess, claim: str, metric: str = "") -> None:
    shown = f"exit {res.returncode}\n--- stdout\n{res.stdout[-6000:]}\n--- stderr\n{res.stderr[-3000:]}"
    assert res.returncode == 1, shown
    bad = regression_lines(res.stdout)
    assert any(line.split()[1].rstrip(":").split(".")[0] == claim and (not metric or f"{claim}.{metric}:" in line)
               for line in bad), shown
    assert "regression check failed" in res.stderr, shown


def test_the_unmodified_copy_passes(copy, baseline):
    res = gate(copy, baseline[0]["machine"], "LENET-MNIST", "LENET-C1", "CNN-CONVSHAPE")
    assert res.returncode == 0, f"{res.stdout[-6000:]}\n{res.stderr[-3000:]}"
    assert "no regressions" in res.stdout
    # it says what it compared with: the baseline record, its commit, and where each tolerance came from
    assert baseline[1].name in res.stdout and baseline[0]["commit"] in res.stdout
    assert "exact" in res.stdout
    (current,) = (copy / "results" / baseline[0]["machine"]).glob("cnn-smoke-nocommit.json")
    rec = json.loads(current.read_text())
    ours = rec["runs"]["lenet_mnist"]["results"]["0"]["metrics"]["test_error"]
    assert ours == baseline[0]["runs"]["lenet_mnist"]["results"]["0"]["metrics"]["test_error"]


def test_a_data_bug_training_labels_shifted_by_one_class(copy, baseline):
    plant(copy, "repro/data/mnist.py",
          'out.append((arrays[f"x_{split}"][pick], arrays[f"y_{split}"][pick]))',
          'out.append((arrays[f"x_{split}"][pick], (arrays[f"y_{split}"][pick] + (split == "train")) % 10))')
    assert_caught(gate(copy, baseline[0]["machine"], "LENET-MNIST"), "LENET-MNIST", "lenet_mnist.test_error")


def test_a_model_bug_the_output_layer_loses_its_softmax(copy, baseline):
    plant(copy, "repro/models/lenet.py",
          'layers.Dense(num_classes, activation="softmax", name="output")',
          'layers.Dense(num_classes, activation=None, name="output")')
    assert_caught(gate(copy, baseline[0]["machine"], "LENET-MNIST"), "LENET-MNIST", "lenet_mnist.test_error")


def test_an_optimizer_bug_learning_rate_times_100(copy, baseline):
    plant(copy, "repro/experiments/lenet_mnist.py",
          "CosineDecay(learning_rate, decay_steps=steps",
          "CosineDecay(learning_rate * 100, decay_steps=steps")
    assert_caught(gate(copy, baseline[0]["machine"], "LENET-MNIST"), "LENET-MNIST", "lenet_mnist.test_error")


def test_a_structural_bug_same_padding_lost_in_a_shape_census(copy, baseline):
    plant(copy, "repro/experiments/cnn_architecture.py",
          "conv = layers.Conv2D(1, k, strides=stride, padding=padding)",
          'conv = layers.Conv2D(1, k, strides=stride, padding="valid")')
    assert_caught(gate(copy, baseline[0]["machine"], "CNN-CONVSHAPE"), "CNN-CONVSHAPE")


# ---- the baseline is the committed one; deterministic values are snapshots ------------------------------

def _git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture
def git_copy(tmp_path) -> tuple[Path, dict, Path]:
    """A git checkout of a copy of the code with the committed training smoke baseline (5 seeds) as its
    only committed record."""
    known = []
    for p in record.find(BASELINES):
        try:
            known.append((record.load(p), p))
        except record.RecordError:
            continue
    found = compare.find_baseline(known, "training", "smoke", machine="", commit="")
    assert found, f"no training smoke baseline under {BASELINES}"
    rec, path = found
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("repro", "suites"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "cli.py"):
        shutil.copy(REPO / name, root / name)
    target = root / "results" / rec["machine"] / path.name
    target.parent.mkdir(parents=True)
    shutil.copy(path, target)
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "code and the committed baseline")
    return root, rec, target


def test_an_uncommitted_one_seed_record_does_not_become_the_baseline(git_copy):
    """After a local one-seed smoke run at HEAD (left uncommitted), a planted optimizer fault (Adam
    without its bias correction) is still caught: the gate compares with the committed 5-seed baseline
    (whose spread judges the chapter's Adam against Keras') and says it left the local record out. With
    the one-seed record as the baseline the same number could not gate (no spread)."""
    root, rec, committed = git_copy
    head = _git(root, "rev-parse", "--short=10", "HEAD")
    local = json.loads(committed.read_text())
    for r in local["runs"].values():   # what `repro run training -p smoke` at HEAD leaves: seed 0 only
        r["results"] = {"0": r["results"]["0"]}
        r["looks"] = [1]
    for e in local["claims"].values():
        record.judge_claim(e, local["runs"])
    local.update(commit=head, finished=record.now(), env=dict(local["env"], commit=head))
    local_path = committed.with_name(f"training-smoke-{head}.json")
    local_path.write_text(json.dumps(local))
    plant(root, "repro/optim/chapter_optimizers.py",
          "m_hat = m / (1 - ops.power(ops.cast(self.alpha, variable.dtype), tau))\n"
          "        n_hat = n / (1 - ops.power(ops.cast(self.beta, variable.dtype), tau))",
          "m_hat = m\n        n_hat = n")
    res = gate(root, rec["machine"], "OPT-FORMULAS")
    assert_caught(res, "OPT-FORMULAS", "keras_adam_literal_vs_matched")
    assert committed.name in res.stdout and f"left out results/{rec['machine']}/{local_path.name}" in \
        res.stdout.replace(str(root) + "/", ""), res.stdout[-4000:]


def test_a_changed_kernel_size_is_a_changed_snapshot(copy, baseline):
    """LeNet-5's C3 kernel 5x5 -> 3x3: C1's judged shape and parameters still pass, the model's
    parameter count and layer table move; the gate fails on them like a snapshot test."""
    plant(copy, "repro/models/lenet.py",
          'layers.Conv2D(16, 5, activation=activation, name="C3")',
          'layers.Conv2D(16, 3, activation=activation, name="C3")')
    res = gate(copy, baseline[0]["machine"], "LENET-C1")
    assert_caught(res, "LENET-C1", "lenet_c1.total_params")
    assert "=" in [line.split()[0] for line in regression_lines(res.stdout)]
