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
               (e.g. ``stats.binomial_se(acc, n_test)``).
    test_set:  metric name -> "fixed" (every seed scores the same test items: the test-sampling
               variance is added, as a known variance, to the seed spread) or "per_seed" (each seed
               draws its own test items: the seed spread already holds that error and stderr is
               not added). Every metric with a stderr declares one; a metric without a stderr may
               declare one too (a paired rule reads both sides' declarations).
    paired_se: "A|B" -> for metrics A and B scored on the same test items in this seed, the standard
               error of (A − B) from the per-item paired difference (``stats.paired_item_se``:
               McNemar's discordant items for two classifiers' accuracies). A paired rule between A
               and B uses it instead of hypot(stderr[A], stderr[B]) when both test sets are fixed.
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
    test_set: dict[str, str] = dataclasses.field(default_factory=dict)
    paired_se: dict[str, float] = dataclasses.field(default_factory=dict)

    def problems(self) -> list[str]:
        """What is wrong with the declarations (empty when nothing): a stderr without a test_set,
        an unknown test_set value, a paired_se key that is not "A|B" of two returned metrics."""
        out = []
        missing = sorted(k for k in self.stderr if k not in self.test_set)
        if missing:
            out.append(f"returns stderr for {', '.join(missing)} without declaring test_set "
                       "('fixed': the same test items on every seed, or 'per_seed')")
        bad = sorted(k for k, v in self.test_set.items() if v not in TEST_SETS)
        if bad:
            out.append(f"test_set of {', '.join(bad)} must be 'fixed' or 'per_seed'")
        for key in self.paired_se:
            parts = key.split("|")
            if len(parts) != 2 or any(p not in self.metrics for p in parts):
                out.append(f"paired_se key {key!r} is not 'A|B' of two metrics it returns")
        return out


TEST_SETS = ("fixed", "per_seed")


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
