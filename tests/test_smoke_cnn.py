"""End to end: the real `cnn` suite, smoke profile, through the command line (real MNIST, tiny slice)."""
import json

from typer.testing import CliRunner

from repro.cli_app import app
from repro import verdict


def test_cnn_smoke_run_gives_every_claim_a_verdict(tmp_path, monkeypatch):
    monkeypatch.delenv("REPRO_SUITES_DIR", raising=False)
    monkeypatch.setenv("REPRO_MACHINE", "ci")
    res = CliRunner().invoke(app, ["run", "cnn", "--profile", "smoke", "--results", str(tmp_path)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (path,) = (tmp_path / "ci").glob("cnn-smoke-*.json")
    rec = json.loads(path.read_text())
    assert rec["complete"] and rec["env"]["tensorflow"]
    for cid, entry in rec["claims"].items():
        assert entry["verdict"] in verdict.VERDICTS and entry["verdict"] != verdict.ERROR, (cid, entry.get("error"))
        assert entry["metrics"], cid
    lenet = rec["claims"]["LENET-MNIST"]
    assert lenet["runs"]["0"]["metrics"]["train_size"] == 512
    assert 0.0 <= lenet["metrics"]["test_error"]["mean"] < 0.9     # it learned something in one epoch
    assert lenet["runs"]["0"]["artifacts"]
    assert (tmp_path / "ci" / lenet["runs"]["0"]["artifacts"][0]).stat().st_size > 1000
    assert rec["claims"]["RESNET-ERROR"]["verdict"] == verdict.NOT_CHECKABLE
    # the verdict table was printed
    assert "LENET-MNIST" in res.output and "verdict" in res.output
