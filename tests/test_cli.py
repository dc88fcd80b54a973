"""The command line, in process: what a user types and what they get back."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repro.cli_app import app
from tests.conftest import SUITE, write_suite

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent


def invoke(workspace, *args):
    return runner.invoke(app, [*args], catch_exceptions=False)


def _one_line_error(result, code=2):
    assert result.exit_code == code, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_run_then_list_then_compare(workspace):
    res = invoke(workspace, "run", "toy", "--profile", "quick", "--results", str(workspace / "results"))
    assert res.exit_code == 0, res.output
    assert "TOY-SCORE" in res.output and "reproduced" in res.output
    record = next((workspace / "results" / "testbox").glob("toy-quick-*.json"))
    assert json.loads(record.read_text())["claims"]["TOY-SCORE"]["seeds"] == [0, 1]

    listed = invoke(workspace, "list", "--results", str(workspace / "results"))
    assert listed.exit_code == 0 and "TOY-PAIRED" in listed.output and "reproduced" in listed.output

    same = invoke(workspace, "compare", str(record), str(record), "--fail-on-regression")
    assert same.exit_code == 0 and "no regressions" in same.output

    # plant a regression: the score drops below the claim on every seed
    rec = json.loads(record.read_text())
    e = rec["claims"]["TOY-SCORE"]
    for r in e["runs"].values():
        r["metrics"]["score"] -= 0.2
    from repro import record as records
    records.summarize(e)
    planted = workspace / "planted.json"
    planted.write_text(json.dumps(rec))
    res = invoke(workspace, "compare", str(record), str(planted), "--fail-on-regression")
    assert res.exit_code == 1, res.output
    assert "TOY-SCORE" in res.output and "regression" in res.output
    assert invoke(workspace, "compare", str(record), str(planted)).exit_code == 0   # reports, does not gate


def test_unknown_claim_suggests_the_closest(workspace):
    line = _one_line_error(invoke(workspace, "run", "TOY-SCOR", "--results", str(workspace / "results")))
    assert "TOY-SCORE" in line
    line = _one_line_error(invoke(workspace, "list", "tyo"))
    assert "'toy'" in line


def test_invalid_profile(workspace):
    line = _one_line_error(invoke(workspace, "run", "toy", "--profile", "quik"))
    assert "did you mean 'quick'" in line


def test_malformed_yaml_and_bad_field(workspace):
    write_suite(workspace, "suite: toy\nclaims: [\n")
    line = _one_line_error(invoke(workspace, "run", "toy", "--results", str(workspace / "results")))
    assert "toy.yaml" in line and "YAML" in line
    write_suite(workspace, SUITE.replace("experiment: fake_measure", "experiment: no_such_thing", 1))
    line = _one_line_error(invoke(workspace, "run", "--results", str(workspace / "results")))
    assert "TOY-SHAPE" in line and "field 'experiment'" in line
    assert not any((workspace / "results").rglob("*"))   # nothing written


def test_missing_record_for_compare(workspace):
    line = _one_line_error(invoke(workspace, "compare", str(workspace / "a.json"), str(workspace / "b.json")))
    assert "no record at" in line


def test_unknown_dataset(workspace):
    line = _one_line_error(invoke(workspace, "data", "fetch", "mnsit"))
    assert "mnsit" in line


def test_env_shows_versions_and_devices():
    res = runner.invoke(app, ["env"])
    assert res.exit_code == 0 and "tensorflow" in res.output and "device" in res.output


def test_python_cli_py_works_like_the_script():
    res = subprocess.run([sys.executable, "cli.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "compare" in res.stdout
