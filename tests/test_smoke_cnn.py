"""End to end: the real `cnn` suite, smoke profile, through the command line (real MNIST, tiny slice),
checked against the committed smoke baseline: a change that breaks a claim's machinery fails here."""
import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from repro import record, verdict
from repro.cli_app import app

RESULTS = Path(__file__).resolve().parent.parent / "results"


def test_cnn_smoke_run_passes_the_regression_gate(tmp_path, monkeypatch):
    monkeypatch.delenv("REPRO_SUITES_DIR", raising=False)
    monkeypatch.setenv("REPRO_MACHINE", "ci")
    baselines = [p for p in record.find(RESULTS) if p.name.startswith("cnn-smoke-")]
    assert baselines, "no committed smoke baseline: run `repro run cnn -p smoke` and commit the record"
    (tmp_path / "baseline").mkdir()
    shutil.copy(baselines[-1], tmp_path / "baseline" / baselines[-1].name)

    res = CliRunner().invoke(app, ["check", "cnn", "--profile", "smoke", "--results", str(tmp_path)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "no regressions" in res.output

    (path,) = (tmp_path / "ci").glob("cnn-smoke-*.json")
    rec = json.loads(path.read_text())
    assert rec["complete"] and rec["env"]["tensorflow"]
    for cid, entry in rec["claims"].items():
        assert entry["verdict"] in verdict.VERDICTS and entry["verdict"] != verdict.ERROR, (cid, entry.get("error"))
        assert entry["metrics"], cid
    lenet = rec["claims"]["LENET-MNIST"]
    assert lenet["runs"]["0"]["metrics"]["train_size"] == 512
    assert 0.0 <= lenet["metrics"]["test_error"]["mean"] < 0.9     # it learned something in one epoch
    assert (tmp_path / "ci" / lenet["runs"]["0"]["artifacts"][0]).stat().st_size > 1000
    assert rec["claims"]["RESNET-ERROR"]["verdict"] == verdict.NOT_CHECKABLE
    assert "LENET-MNIST" in res.output and "verdict" in res.output
