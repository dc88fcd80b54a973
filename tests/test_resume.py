"""An interrupted run (Ctrl-C, or killed outright) resumes with the same command and loses no finished
unit: `python cli.py run toy -p quick` is stopped while its third unit runs, then run again."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repro import record, runner
from repro import suite as suites

REPO = Path(__file__).resolve().parent.parent


def _env(workspace: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("REPRO_TEST_HANG", "REPRO_TEST_CALLS")}
    env.update(REPRO_SUITES_DIR=str(workspace / "suites"), REPRO_MACHINE="testbox",
               REPRO_EXPERIMENT_MODULES="tests.conftest", PYTHONPATH=str(REPO), COLUMNS="200", **extra)
    return env


def _values(rec: dict) -> dict:
    return {rid: {k: o["metrics"] for k, o in r["results"].items()} for rid, r in rec["runs"].items()}


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["killed", "ctrl-c"])
def test_a_stopped_run_resumes_with_the_same_command_and_reuses_its_finished_units(workspace, how):
    results = workspace / "results"
    marker, calls = workspace / "hanging", workspace / "calls.txt"
    cmd = [sys.executable, "cli.py", "run", "toy", "-p", "quick", "--results", str(results)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(workspace, REPRO_TEST_HANG=f"score:1:{marker}",
                                                    REPRO_TEST_CALLS=str(calls)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            # a test runner started in the background ignores SIGINT, and so would its
                            # children: Ctrl-C is restored, as in a terminal
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 170
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker.exists(), proc.communicate(timeout=30)[0]
    proc.send_signal(how)
    first = proc.communicate(timeout=170)[0]   # what it does on the way out may import TensorFlow: slow on a busy machine
    assert proc.returncode != 0
    if how == signal.SIGINT:
        assert "interrupted" in first and "run the same command again to resume" in first, first
    assert not list(results.rglob("*.json")), "nothing half-written in results/"
    assert calls.read_text().split("\n")[:-1] == ["shape 0", "score 0", "score 1"]

    calls.write_text("")
    again = subprocess.run(cmd, cwd=REPO, env=_env(workspace, REPRO_TEST_CALLS=str(calls)), capture_output=True,
                           text=True, timeout=170)
    shown = again.stdout + again.stderr
    assert again.returncode == 0, shown
    assert "resuming the interrupted run" in shown
    for unit in ("toy shape seed 0", "toy score seed 0"):
        assert f"{unit}  reused" in shown, shown
    # only what had not finished ran: the stopped unit and the run after it
    assert calls.read_text().split("\n")[:-1] == ["score 1", "paired 0", "paired 1"]
    (path,) = (results / "testbox").glob("toy-quick-*.json")
    resumed = record.load(path)
    assert resumed["complete"]

    # the same numbers as a run never stopped
    s = suites.load(workspace / "suites" / "toy.yaml")
    whole = runner.run_suite(s, list(s.claims), profile="quick", env=dict(resumed["env"]),
                             results_dir=workspace / "uninterrupted")
    assert _values(record.load(whole)) == _values(resumed)
    assert {c: e["verdict"] for c, e in record.load(whole)["claims"].items()} == \
        {c: e["verdict"] for c, e in resumed["claims"].items()}
    assert json.loads(path.read_text())["claims"]["TOY-SCORE"]["metrics"]["score"]["values"] == \
        pytest.approx([0.55, 0.56])
