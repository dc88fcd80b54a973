"""Where (run, seed) units run: here one after another (runner.SerialExecutor), in local worker
processes (-j N), or on a Ray cluster (--executor ray). Each returns what runner.run_unit returns,
so the record is the same whichever ran it."""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from typing import Iterator

from repro.runner import Event, OnEvent, Unit, run_unit


def threads_per_worker(jobs: int, cores: int | None = None) -> int:
    return max(1, (cores or os.cpu_count() or 1) // jobs)


def _init_worker(threads: int) -> None:
    # before TensorFlow is imported in this fresh (spawned) process: share the cores, don't oversubscribe
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _work(unit: Unit) -> dict:
    return run_unit(unit.experiment, unit.params, unit.seed)


class LocalPoolExecutor:
    """N spawned worker processes on this machine, TensorFlow's threads divided between them."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self.threads = threads_per_worker(jobs)

    def execute(self, units: list[Unit], on_event: OnEvent) -> Iterator[tuple[Unit, dict]]:
        if not units:
            return
        ctx = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
        with cf.ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_init_worker,
                                    initargs=(self.threads,)) as pool:
            futures = {}
            for u in units:
                futures[pool.submit(_work, u)] = u
                on_event(Event("unit", run_id=u.run, seed=u.seed))
            try:
                for fut in cf.as_completed(futures):
                    yield futures[fut], fut.result()
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise


class RayExecutor:
    """Units as Ray tasks: on a cluster at ``address``, or a local Ray started for the run."""

    def __init__(self, address: str | None = None, cpus_per_job: float = 1, gpus_per_job: float = 0):
        try:
            import ray
        except ImportError:
            raise RuntimeError("--executor ray needs Ray: pip install 'ray[default]'") from None
        self.ray = ray
        self.address, self.cpus, self.gpus = address, cpus_per_job, gpus_per_job

    def execute(self, units: list[Unit], on_event: OnEvent) -> Iterator[tuple[Unit, dict]]:
        if not units:
            return
        ray = self.ray
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
                                               "TF_NUM_INTRAOP_THREADS": str(max(1, int(self.cpus)))}})
        try:
            remote = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus)(_work)
            refs = {}
            for u in units:
                refs[remote.remote(u)] = u
                on_event(Event("unit", run_id=u.run, seed=u.seed))
            waiting = list(refs)
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                yield refs[done[0]], ray.get(done[0])
        finally:
            if started:
                ray.shutdown()
