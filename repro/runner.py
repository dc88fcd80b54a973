"""Run claims: seeds, determinism, timing, resume, progress; then statistics and verdicts.

The unit of work is one (claim, seed): :func:`run_unit` is a plain function of its arguments, so
that units can later be spread over processes. A run's record is built in a state folder beside
results/ (.repro-cache/runs/) after every unit, so an interrupted run resumes where it stopped, and
moves into results/ only when every selected claim is done: nothing half-written lands there.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import shutil
import time
import traceback
from pathlib import Path
from typing import Callable, Iterator, Protocol

from repro import data, progress, record, registry
from repro.suite import Claim, Suite

Event = Callable[[str, dict], None]


@dataclasses.dataclass(frozen=True)
class Unit:
    """One (claim, seed): everything a worker needs to run it."""

    claim: str
    experiment: str
    params: dict
    seed: int
    gpus: float = 0.0


class Executor(Protocol):
    def execute(self, units: list[Unit], on_event: Event) -> Iterator[tuple[Unit, dict]]:
        """Run the units, yielding each with its outcome (as :func:`run_unit` returns it) when done."""


class SerialExecutor:
    """In this process, one unit after the other, with per-epoch progress."""

    def execute(self, units: list[Unit], on_event: Event) -> Iterator[tuple[Unit, dict]]:
        for u in units:
            on_event("unit", {"claim_id": u.claim, "seed": u.seed})
            yield u, run_unit(u.experiment, u.params, u.seed,
                              reporter=lambda d, t, text: on_event("step", {"done": d, "total": t, "text": text}))


def state_dir(results_dir: Path) -> Path:
    return results_dir.resolve().parent / ".repro-cache" / "runs"


def code_hash(experiment: str) -> str:
    """Hash of the experiment's module source: a changed experiment is not served from the record."""
    src = Path(inspect.getsourcefile(registry.EXPERIMENTS[experiment])).read_bytes()
    return hashlib.sha256(src).hexdigest()[:12]


_determinism_on = False


def seed_everything(seed: int) -> None:
    global _determinism_on
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if not _determinism_on:
        tf.config.experimental.enable_op_determinism()
        _determinism_on = True


def run_unit(experiment: str, params: dict, seed: int, reporter: progress.Reporter | None = None) -> dict:
    """Run one experiment for one seed. Never raises for the experiment's own failures (they are
    recorded); a DataError is re-raised because the run cannot go on without its data."""
    registry.load_all()
    seed_everything(seed)
    t0 = time.perf_counter()
    try:
        with progress.reporting(reporter):
            result = registry.call(experiment, seed, params)
    except data.DataError:
        raise
    except Exception as e:  # a broken experiment is a finding for this claim, not the end of the run
        return {"metrics": {}, "artifacts": {}, "notes": "", "seconds": round(time.perf_counter() - t0, 3),
                "error": f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=6)}"}
    if not isinstance(result, registry.Result):
        return {"metrics": {}, "artifacts": {}, "notes": "", "seconds": 0.0,
                "error": f"experiment {experiment!r} returned {type(result).__name__}, not a Result"}
    return {"metrics": record._jsonable(result.metrics), "artifacts": dict(result.artifacts),
            "notes": result.notes, "seconds": round(time.perf_counter() - t0, 3), "error": None}


def prefetch(claims: list[Claim], say: Callable[[str], None] = print) -> None:
    """Make sure every dataset the selected claims need is cached before anything runs."""
    registry.load_all()
    needed = sorted({d for c in claims for d in registry.NEEDS.get(c.experiment, ())})
    for name in needed:
        data.fetch(name, progress=say)


def _reusable(entry: dict | None, claim: Claim, profile: str, chash: str) -> bool:
    return bool(entry) and entry["params_hash"] == claim.params_hash(profile) \
        and entry["version"] == claim.version and entry.get("code_hash") == chash


def run_suite(suite: Suite, claims: list[Claim], *, profile: str, env: dict, seeds: int | None = None,
              force: bool = False, results_dir: Path = record.RESULTS_DIR,
              on_event: Event = lambda kind, info: None, executor: Executor | None = None) -> Path:
    """Run the selected claims of one suite and return the path of the finished record."""
    final = record.path_for(results_dir, env["machine"], suite.name, profile, env["commit"])
    stem = final.stem
    work = state_dir(results_dir) / env["machine"] / final.name
    art_work = work.with_suffix("")
    if work.exists():
        rec = record.load(work)
        on_event("resume", {"path": work})
    elif final.exists():
        rec = record.load(final)
        shutil.rmtree(art_work, ignore_errors=True)
        if (final.with_suffix("")).exists():
            shutil.copytree(final.with_suffix(""), art_work)
    else:
        rec = record.new(suite, profile, env)
    rec.update(env=env, suite_version=suite.version, suite_section=suite.section, complete=False, finished=None)

    pending: list[Unit] = []
    seed_lists: dict[str, list[int]] = {}
    for claim in claims:
        chash = code_hash(claim.experiment)
        entry = rec["claims"].get(claim.id)
        if force or not _reusable(entry, claim, profile, chash):
            entry = record.claim_entry(claim, profile, chash)
            shutil.rmtree(art_work / claim.id, ignore_errors=True)
        rec["claims"][claim.id] = entry
        seed_lists[claim.id] = suite.seeds_for(claim, profile, seeds)
        for seed in seed_lists[claim.id]:
            done = entry["runs"].get(str(seed))
            if done and not done.get("error"):
                on_event("skip", {"claim": claim, "seed": seed})
            else:
                pending.append(Unit(claim.id, claim.experiment, claim.params_for(profile), seed))

    by_id = {c.id: c for c in claims}
    for unit, out in (executor or SerialExecutor()).execute(pending, on_event):
        claim, entry = by_id[unit.claim], rec["claims"][unit.claim]
        names = []
        for name, blob in out.pop("artifacts").items():
            target = art_work / claim.id / f"seed{unit.seed}-{name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
            names.append(f"{stem}/{claim.id}/{target.name}")
        out["artifacts"] = names
        entry["runs"][str(unit.seed)] = out
        entry["runs"] = {k: entry["runs"][k] for k in sorted(entry["runs"], key=int)}
        record.summarize(entry)
        record.save(work, rec)
        on_event("done", {"claim": claim, "seed": unit.seed, "run": out})

    for claim in claims:
        entry = rec["claims"][claim.id]
        # seeds dropped by a smaller --seeds are not part of this run's statistics
        entry["runs"] = {k: v for k, v in entry["runs"].items() if int(k) in seed_lists[claim.id]}
        record.summarize(entry)
        on_event("verdict", {"claim": claim, "entry": entry})

    rec["complete"] = all(c.id in rec["claims"] for c in suite.claims)
    rec["finished"] = record.now()
    record.save(work, rec)
    # move into results/: artifacts first, then the tables, then the record itself
    if art_work.exists():
        shutil.rmtree(final.with_suffix(""), ignore_errors=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(art_work, final.with_suffix(""))
    record.write_tables(final, rec)
    record.save(final, rec)
    work.unlink()
    shutil.rmtree(art_work, ignore_errors=True)
    return final
