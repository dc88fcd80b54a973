"""What a person sees while a run goes on: progress and results only, the libraries' logs in a file.

The noisy experiment below writes what TensorFlow, absl, numpy and Keras write during a real run (C++
log lines on file descriptor 2, a Python warning, a logger warning, a print), so the tests can check
that none of it reaches the screen, in a pipe (CI) and in a real terminal (a pseudo-terminal of 140
columns), and that all of it is in the log beside the record."""
from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repro import registry
from tests.conftest import SUITE, write_suite

REPO = Path(__file__).resolve().parent.parent
NOISE = ("FAKE-CPP-LOG", "FAKE-PY-WARNING", "FAKE-TF-LOGGER", "FAKE-ABSL", "FAKE-PRINT")


def _noisy(*, seed: int, base: float = 0.6) -> registry.Result:
    import logging

    from absl import logging as absl_logging

    os.write(2, f"W0000 00:00:00.000000 1 FAKE-CPP-LOG NodeDef mentions attribute use_unbounded_threadpool {seed}\n".encode())
    warnings.warn(f"FAKE-PY-WARNING invalid value encountered in divide {seed}", RuntimeWarning, stacklevel=1)
    logging.getLogger("tensorflow").warning("FAKE-TF-LOGGER 5 out of the last 5 calls triggered tf.function retracing")
    absl_logging.warning("FAKE-ABSL %d", seed)
    print(f"FAKE-PRINT {seed}")
    return registry.Result(metrics={"score": base + 0.01 * seed, "baseline": 0.4, "shape": [28, 28, 6]})


if "noisy_measure" not in registry.EXPERIMENTS:
    registry.experiment("noisy_measure")(_noisy)

NOISY_SUITE = SUITE.replace("experiment: fake_measure\n    version: 1\n    params: {base: 0.55, tag: score}",
                            "experiment: noisy_measure\n    version: 1\n    params: {base: 0.6}", 1)


def _env(workspace: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TF_CPP_MIN_LOG_LEVEL")}
    env.update(REPRO_SUITES_DIR=str(workspace / "suites"), REPRO_MACHINE="testbox",
               REPRO_EXPERIMENT_MODULES="tests.conftest,tests.test_terminal", PYTHONPATH=str(REPO), **extra)
    return env


def _strip(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r", "", text)


def _log_of(results: Path) -> str:
    logs = list((results / "testbox").glob("toy-quick-*.log"))
    assert len(logs) == 1, logs
    return logs[0].read_text()


def test_in_a_pipe_one_line_per_unit_wide_tables_and_the_logs_in_a_file(workspace):
    write_suite(workspace, NOISY_SUITE)
    results = workspace / "results"
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "cli.py", "run", "toy", "-p", "quick", "--results", str(results)],
                         cwd=REPO, env=_env(workspace), capture_output=True, text=True, timeout=170)
    shown = res.stdout + res.stderr
    assert res.returncode == 0, shown
    assert not [n for n in NOISE if n in shown], shown
    assert "Traceback" not in shown and "WARNING" not in shown, shown
    # one plain line per finished unit: suite, run, seed, seconds, first metric
    for seed in (0, 1):
        assert len(re.findall(rf"^  toy score seed {seed}  [0-9.]+ s  score=0\.6{seed}?$", res.stderr, re.M)) == 1, res.stderr
    assert len(re.findall(r"^  toy shape seed 0 ", res.stderr, re.M)) == 1
    # tables at a readable width, not wrapped at 80 columns
    assert max(len(ln) for ln in res.stdout.splitlines()) > 100, res.stdout
    last = res.stdout.strip().splitlines()[-1]
    assert "report.html" in last and "repro report" in last and "repro run toy -p full" in last
    # every library line is in the log beside the record; nothing is left in the state folder
    log = _log_of(results)
    for n in NOISE:
        assert n in log, (n, log)
    assert not list((workspace / ".repro-cache").rglob("*.log"))
    assert time.monotonic() - t0 < 170


def test_verbose_shows_the_logs_live(workspace):
    write_suite(workspace, NOISY_SUITE)
    res = subprocess.run([sys.executable, "cli.py", "run", "toy", "-p", "quick", "-v", "--results",
                          str(workspace / "results")], cwd=REPO, env=_env(workspace), capture_output=True,
                         text=True, timeout=170)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "FAKE-CPP-LOG" in res.stderr and "FAKE-PY-WARNING" in res.stderr
    assert not list((workspace / "results" / "testbox").glob("*.log"))


def _run_in_terminal(args: list[str], env: dict, columns: int = 140, timeout: float = 170) -> str:
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:   # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
        proc.wait(timeout=30)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_in_a_terminal_progress_and_results_only(workspace):
    write_suite(workspace, NOISY_SUITE)
    results = workspace / "results"
    raw = _run_in_terminal([sys.executable, "cli.py", "run", "toy", "-p", "quick", "--results", str(results)],
                           _env(workspace, TERM="xterm-256color"))
    text = _strip(raw)
    assert not [n for n in NOISE if n in text], text
    # each finished unit is said once, above the live bars (which are drawn over, not repeated as lines)
    for seed in (0, 1):
        assert len(re.findall(rf"toy score seed {seed}  [0-9.]+ s  score=", text)) == 1, text
    assert "TOY-SCORE" in text and "repro run toy -p full" in text
    for n in NOISE:
        assert n in _log_of(results)


def _claim_rows(output: str) -> dict[str, str]:
    """Each claim's table row; a row continued on a second line fails (one line per claim)."""
    rows: dict[str, str] = {}
    for ln in output.splitlines():
        if ln.count("│") < 6:
            continue
        first = ln.split("│")[1].strip()
        assert first, f"a claim's row wraps onto a second line: {ln}"
        assert first not in rows, f"two rows for {first}"
        rows[first] = ln
    return rows


def test_a_short_run_says_beside_each_claim_whether_it_agrees_with_the_full_run(workspace):
    cli = CliRunner()
    results = workspace / "results"
    from repro.cli_app import app

    res = cli.invoke(app, ["run", "toy", "-p", "full", "--results", str(results)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    full = next((results / "testbox").glob("toy-full-*.json"))
    assert json.loads(full.read_text())["claims"]["TOY-SCORE"]["verdict"] == "reproduced"
    res = cli.invoke(app, ["run", "toy", "-p", "smoke", "--results", str(results)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = _claim_rows(res.output)
    assert list(rows) == ["TOY-SHAPE", "TOY-SCORE", "TOY-PAIRED"], res.output   # one row per claim, not per part
    assert "agrees" in rows["TOY-SHAPE"], res.output                       # deterministic: one seed decides
    assert "cannot tell (one seed)" in rows["TOY-SCORE"], res.output       # one seed of an empirical claim
    # the key number against its line, and the committed full verdict with its commit
    assert "│ 0.6 · ≥ 0.5 " in rows["TOY-SCORE"] and "reproduced" in rows["TOY-SCORE"], rows["TOY-SCORE"]
    full_commit = json.loads(full.read_text())["commit"]
    assert full_commit[:10] in rows["TOY-SCORE"]
    assert "repro show CLAIM" in res.output
    assert "report.html" in res.output and "repro run toy -p full" in res.output.strip().splitlines()[-1]

    # the committed full run says otherwise: the short run differs from it
    rec = json.loads(full.read_text())
    rec["claims"]["TOY-SHAPE"]["verdict"] = "contradicted"
    full.write_text(json.dumps(rec))
    res = cli.invoke(app, ["run", "toy", "-p", "smoke", "--results", str(results)], catch_exceptions=False)
    rows = _claim_rows(res.output)
    assert "differs" in rows["TOY-SHAPE"], res.output

    # -v: every judged part as well, a row each
    res = cli.invoke(app, ["run", "toy", "-p", "smoke", "-v", "--results", str(results)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert re.search(r"│ TOY-PAIRED\s+│ score\s+│", res.output), res.output


@pytest.mark.parametrize("verdicts, expected", [
    (("reproduced", "reproduced"), "agrees"),
    (("inconclusive", "reproduced"), "cannot tell (one seed)"),
    (("contradicted", "reproduced"), "differs"),
    (("reproduced", None), "no full verdict"),
])
def test_agreement(verdicts, expected):
    from repro.terminal import agreement

    short, full = verdicts
    assert agreement({"verdict": short, "n_seeds": 1}, {"verdict": full} if full else None) == expected


def test_two_runs_started_together_keep_their_own_start_up_logs(workspace):
    """Each process routes its start-up output to its own file: two runs sharing one .repro-cache once
    crashed when the first removed the start-up log the second was about to read."""
    write_suite(workspace, NOISY_SUITE)
    write_suite(workspace, NOISY_SUITE.replace("suite: toy", "suite: toy2", 1), name="toy2")
    results = workspace / "results"
    procs = [subprocess.Popen([sys.executable, "cli.py", "run", name, "-p", "quick", "--results", str(results)],
                              cwd=REPO, env=_env(workspace), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name in ("toy", "toy2")]
    outs = [p.communicate(timeout=170)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert not [o for o in outs if "Traceback" in o], outs
    for name in ("toy", "toy2"):
        logs = list((results / "testbox").glob(f"{name}-quick-*.log"))
        assert len(logs) == 1 and "FAKE-CPP-LOG" in logs[0].read_text(), logs
    assert not list((workspace / ".repro-cache").rglob("start*.log"))
