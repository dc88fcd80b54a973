"""The experiment registry: a dict of name -> function, filled by a decorator that refuses duplicates.

An experiment is a plain function taking keyword-only, JSON-able parameters and a ``seed`` and
returning a :class:`Result`. It knows nothing of suites, profiles or verdicts.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import pkgutil
from typing import Any, Callable

Metric = float | int | bool | str | list | None


@dataclasses.dataclass
class Result:
    """What one experiment run measured.

    metrics:   name -> number (or bool / list / str for exact architectural facts).
    artifacts: file name -> bytes (PNG plots, CSV tables ...), saved next to the run record.
    notes:     a short free text shown in the record (what was built, which data source was used).
    stderr:    metric name -> standard error of this seed's value from sampling the test set
               (e.g. ``stats.binomial_se(acc, n_test)``); the runner widens the interval with it.
    convergence: model label -> ``repro.convergence.check(...)``: the state its training curve ended in
               (converged / solved / stalled / unstable / still improving / too short to tell); pass
               ``metrics=`` (the metric keys or patterns this model produces) so that only claims
               judging them are gated by it.
    """

    metrics: dict[str, Metric]
    artifacts: dict[str, bytes] = dataclasses.field(default_factory=dict)
    notes: str = ""
    stderr: dict[str, float] = dataclasses.field(default_factory=dict)
    convergence: dict[str, dict] = dataclasses.field(default_factory=dict)


Experiment = Callable[..., Result]
EXPERIMENTS: dict[str, Experiment] = {}
NEEDS: dict[str, tuple[str, ...]] = {}  # experiment -> names of the datasets it loads


class RegistryError(Exception):
    pass


def experiment(name: str, *, datasets: tuple[str, ...] = ()) -> Callable[[Experiment], Experiment]:
    """Register ``fn`` under ``name``; a second registration of the same name is an error.

    ``datasets`` names the datasets it loads, so the runner can fetch them before any training
    starts and fail early, with nothing written, when one cannot be had.
    """

    def register(fn: Experiment) -> Experiment:
        if name in EXPERIMENTS:
            raise RegistryError(f"experiment {name!r} is registered twice "
                                f"({EXPERIMENTS[name].__module__} and {fn.__module__})")
        params = inspect.signature(fn).parameters
        if "seed" not in params:
            raise RegistryError(f"experiment {name!r} must take a keyword parameter 'seed'")
        EXPERIMENTS[name] = fn
        NEEDS[name] = tuple(datasets)
        return fn

    return register


def load_all() -> dict[str, Experiment]:
    """Import every module of ``repro.experiments`` so that their decorators run, and the modules
    named in REPRO_EXPERIMENT_MODULES (comma-separated: experiments kept outside this package)."""
    from repro import experiments

    for mod in pkgutil.iter_modules(experiments.__path__):
        importlib.import_module(f"{experiments.__name__}.{mod.name}")
    for name in filter(None, os.environ.get("REPRO_EXPERIMENT_MODULES", "").split(",")):
        importlib.import_module(name.strip())
    return EXPERIMENTS


def parameters(name: str) -> dict[str, inspect.Parameter]:
    """The keyword parameters an experiment accepts (without ``seed``)."""
    return {k: p for k, p in inspect.signature(EXPERIMENTS[name]).parameters.items() if k != "seed"}


def accepts_any(name: str) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD
               for p in inspect.signature(EXPERIMENTS[name]).parameters.values())


def call(name: str, seed: int, params: dict[str, Any]) -> Result:
    return EXPERIMENTS[name](seed=seed, **params)
