"""The same records whichever executor runs the (run, seed) units."""
import importlib.util

import pytest

from repro import record, runner
from repro import suite as suites
from repro.executors import LocalPoolExecutor, threads_per_worker

ENV = {"machine": "testbox", "commit": "abc1234567", "python": "3", "tensorflow": "t", "keras": "k",
       "device": "CPU:0"}


def _comparable(rec: dict) -> dict:
    claims = {cid: (e["verdict"], {n: (m.get("mean"), m.get("ci95"), m["status"]) for n, m in e["metrics"].items()})
              for cid, e in rec["claims"].items()}
    runs = {rid: {k: o["metrics"] for k, o in r["results"].items()} for rid, r in rec["runs"].items()}
    return {"claims": claims, "runs": runs}


def _run(workspace, results, executor=None):
    s = suites.load(workspace / "suites" / "toy.yaml")
    return record.load(runner.run_suite(s, list(s.claims), profile="full", env=dict(ENV),
                                        results_dir=workspace / results, executor=executor))


def test_threads_are_divided_between_workers():
    assert threads_per_worker(2, cores=16) == 8 and threads_per_worker(4, cores=2) == 1


def test_two_local_workers_give_the_serial_record(workspace, monkeypatch):
    monkeypatch.setenv("REPRO_EXPERIMENT_MODULES", "tests.conftest")   # the fake experiment, in the workers too
    serial = _run(workspace, "serial")
    pooled = _run(workspace, "pooled", LocalPoolExecutor(2))
    assert _comparable(pooled) == _comparable(serial)
    assert list(pooled["runs"]["score"]["results"]) == ["0", "1", "2"]


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed here")
def test_ray_gives_the_serial_record(workspace, monkeypatch):
    from repro.executors import RayExecutor

    monkeypatch.setenv("REPRO_EXPERIMENT_MODULES", "tests.conftest")
    serial = _run(workspace, "serial")
    rayed = _run(workspace, "ray", RayExecutor(cpus_per_job=1))
    assert _comparable(rayed) == _comparable(serial)
