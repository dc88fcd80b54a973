"""End to end: each suite's smoke profile through the command line (real data, small slices that
train to a meaningful level in seconds), checked by `repro check` against its committed smoke
baseline (several seeds): a change that breaks a claim's machinery, or moves a judged or headline
number beyond the baseline's spread (exactly, where code and environment are the baseline's), fails
here."""
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repro import record, verdict
from repro import suite as suites
from repro.cli_app import app

# the committed baselines (REPRO_GATE_BASELINES may point at freshly made ones before they are committed)
RESULTS = Path(os.environ.get("REPRO_GATE_BASELINES", Path(__file__).resolve().parent.parent / "results"))
SUITES = [p.stem for p in suites.suite_paths(suites.SUITES_DIR)]


def _baseline(suite: str) -> Path | None:
    found = [p for p in record.find(RESULTS) if p.name.startswith(f"{suite}-smoke-")]
    return found[-1] if found else None


@pytest.mark.parametrize("suite", SUITES)
def test_smoke_run_passes_the_regression_gate(suite, tmp_path, monkeypatch):
    monkeypatch.delenv("REPRO_SUITES_DIR", raising=False)
    monkeypatch.setenv("REPRO_MACHINE", "ci")
    base = _baseline(suite)
    assert base, f"no committed smoke baseline: run `repro run {suite} -p smoke` and commit the record"
    (tmp_path / "baseline").mkdir()
    shutil.copy(base, tmp_path / "baseline" / base.name)

    copied = tmp_path / "baseline" / base.name
    res = CliRunner().invoke(app, ["check", suite, "--profile", "smoke", "--results", str(tmp_path),
                                   "--baseline", str(copied)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "no regressions" in res.output
    assert base.name in res.output and "tolerance sources:" in res.output   # it says what it compared

    (path,) = (tmp_path / "ci").glob(f"{suite}-smoke-*.json")
    rec = json.loads(path.read_text())
    assert rec["complete"] and rec["env"]["tensorflow"]
    for cid, entry in rec["claims"].items():
        assert entry["verdict"] in verdict.VERDICTS and entry["verdict"] != verdict.ERROR, (cid, entry.get("error"))
        assert entry["metrics"], cid
    assert "verdict" in res.output
    if suite == "cnn":
        _cnn_details(rec, path.parent)


def _cnn_details(rec: dict, folder: Path) -> None:
    """LeNet-5 really trains on the real MNIST slice and leaves its plot; RESNET-ERROR says what it can't
    (read from the cnn smoke record above: a separate run of the two claims cost a minute more)."""
    lenet = rec["claims"]["LENET-MNIST"]
    assert lenet["run_ids"] == ["lenet_paper", "lenet_mnist"]      # the 1998 flavour judged, the modern beside
    for run_id in lenet["run_ids"]:
        assert rec["runs"][run_id]["results"]["0"]["metrics"]["train_size"] == 6000
    assert 0.0 <= lenet["metrics"]["lenet_mnist.test_error"]["mean"] < 0.08    # a few percent: a bug would show
    assert 0.0 <= lenet["metrics"]["lenet_paper.test_error"]["mean"] < 0.15
    assert (folder / lenet["artifacts"][0]).stat().st_size > 1000
    assert rec["claims"]["RESNET-ERROR"]["verdict"] == verdict.NOT_CHECKABLE
