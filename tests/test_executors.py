"""The same records whichever executor runs the (run, seed) units."""
import dataclasses
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


def _run(workspace, results, executor=None, on_event=lambda event: None):
    s = suites.load(workspace / "suites" / "toy.yaml")
    return record.load(runner.run_suite(s, list(s.claims), profile="full", env=dict(ENV),
                                        results_dir=workspace / results, executor=executor, on_event=on_event))


def _check_events(events: list) -> None:
    """One typed event per thing that happened, the same fields whichever executor sent it."""
    assert events and all(isinstance(e, runner.Event) for e in events)
    with pytest.raises(dataclasses.FrozenInstanceError):
        events[0].kind = "changed"
    kinds = [e.kind for e in events]
    assert kinds[0] == "suite" and events[0].suite == "toy" and events[0].total == 7   # 1 + 3 + 3 units
    assert events[0].path.name.startswith("toy-full-")
    started = {(e.run_id, e.seed) for e in events if e.kind == "unit"}
    done = {(e.run_id, e.seed): e for e in events if e.kind == "done"}
    assert started == set(done) == {("shape", 0)} | {(r, s) for r in ("score", "paired") for s in range(3)}
    assert all(e.suite == "toy" and e.out["metrics"]["score"] is not None and e.seconds >= 0 for e in done.values())
    assert {e.claim_id for e in events if e.kind == "verdict"} == {"TOY-SHAPE", "TOY-SCORE", "TOY-PAIRED"}


def test_threads_are_divided_between_workers():
    assert threads_per_worker(2, cores=16) == 8 and threads_per_worker(4, cores=2) == 1


def test_two_local_workers_give_the_serial_record(workspace, monkeypatch):
    monkeypatch.setenv("REPRO_EXPERIMENT_MODULES", "tests.conftest")   # the fake experiment, in the workers too
    serial_events, pooled_events = [], []
    serial = _run(workspace, "serial", on_event=serial_events.append)
    pooled = _run(workspace, "pooled", LocalPoolExecutor(2), on_event=pooled_events.append)
    assert _comparable(pooled) == _comparable(serial)
    _check_events(serial_events)
    _check_events(pooled_events)
    assert list(pooled["runs"]["score"]["results"]) == ["0", "1", "2"]


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed here")
def test_ray_gives_the_serial_record(workspace, monkeypatch):
    from repro.executors import RayExecutor

    monkeypatch.setenv("REPRO_EXPERIMENT_MODULES", "tests.conftest")
    serial = _run(workspace, "serial")
    events = []
    rayed = _run(workspace, "ray", RayExecutor(cpus_per_job=1), on_event=events.append)
    assert _comparable(rayed) == _comparable(serial)
    _check_events(events)
