"""Run a suite: its runs once per seed (more seeds while a judged part is undecided), then every
selected claim judged from the runs it names.

The unit of work is one (run, seed): :func:`run_unit` is a plain function of its arguments, so units
can be spread over processes (-j N) or a Ray cluster and do exactly the work of a serial run. A run
that produces an artifact for others (a trained scoring classifier, a trained translation model)
writes it into a folder keyed by its experiment, parameters and code (`.repro-cache/artifacts/`); the
runs that use it get that folder's path and load it, and run after it.

A run's record is built in a state folder beside results/ (.repro-cache/runs/) after every unit, so an
interrupted run resumes where it stopped, and moves into results/ only when every selected claim is
judged: nothing half-written lands there.

More seeds where the question is open: a non-deterministic run starts with the profile's seeds and
is judged at a few looks (3, 6, 10 seeds for start 3 and maximum 10). After a look, a run gets the
next look's seeds when a claim judging it still has an undecided part; it stops as soon as every part
is decided or at the maximum. The error rate survives the repeated looks because α = 0.05 is split
evenly over the looks a run may take (Bonferroni): each look decides with a 1 − 0.05/K interval.
A claim is judged on the seeds all its runs share, so its runs grow together: a run gets no seeds for a
claim whose other run cannot reach that look (its maximum is lower), and says so in its seeds_why.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
import traceback
from pathlib import Path
from typing import Callable, Iterator, Protocol

from repro import codehash, convergence, data, design, progress, record, registry, verdict
from repro.suite import Claim, Run, Suite

@dataclasses.dataclass(frozen=True)
class Event:
    """Something that happened in a run, for whoever shows progress (the CLI, a test).

    kind: ``suite`` (a suite starts; ``total`` units), ``resume`` (``path`` of the interrupted run),
    ``unit`` (a (run, seed) starts), ``step`` (``done``/``total``/``text`` inside the current unit),
    ``done`` (a unit finished: ``out`` is its outcome, ``seconds`` its time), ``skip`` (a unit this
    commit already has), ``look`` (``run_id`` grows to ``total`` seeds, ``added`` more, because the
    parts in ``why`` are undecided), ``verdict`` (``claim_id`` judged: ``out`` is its entry)."""

    kind: str
    suite: str = ""
    run_id: str = ""
    seed: int | None = None
    done: int = 0
    total: int = 0
    text: str = ""
    seconds: float | None = None
    out: dict | None = None
    path: Path | None = None
    claim_id: str = ""
    added: int = 0
    why: tuple[str, ...] = ()


OnEvent = Callable[[Event], None]


class ConfigError(Exception):
    """The suite asks a run for something it does not produce; str() names file, claim, run and metric."""


@dataclasses.dataclass(frozen=True)
class Unit:
    """One (run, seed): everything a worker needs to run it."""

    run: str
    experiment: str
    params: dict
    seed: int
    gpus: float = 0.0


class Executor(Protocol):
    def execute(self, units: list[Unit], on_event: OnEvent) -> Iterator[tuple[Unit, dict]]:
        """Run the units, yielding each with its outcome (as :func:`run_unit` returns it) when done."""


class SerialExecutor:
    """In this process, one unit after the other, with per-epoch progress."""

    def execute(self, units: list[Unit], on_event: OnEvent) -> Iterator[tuple[Unit, dict]]:
        for u in units:
            on_event(Event("unit", run_id=u.run, seed=u.seed))
            yield u, run_unit(u.experiment, u.params, u.seed,
                              reporter=lambda d, t, text, u=u: on_event(Event("step", run_id=u.run, seed=u.seed,
                                                                              done=d, total=t, text=text)))


def cache_dir(results_dir: Path) -> Path:
    return results_dir.resolve().parent / ".repro-cache"


def state_dir(results_dir: Path) -> Path:
    return cache_dir(results_dir) / "runs"


def code_hash(experiment: str) -> str:
    """Hash of the experiment's module and every repro module it imports, transitively (read from the
    files, nothing imported: the same hash `repro list` and the report compute to tell a stale verdict)."""
    module = codehash.experiment_module(experiment)
    if module is None:
        return "unknown"
    return codehash.code_hash_now(module)


def code_files(experiment: str) -> dict[str, str]:
    """Module -> short hash of each file behind :func:`code_hash` (so that a change can be named)."""
    module = codehash.experiment_module(experiment)
    return codehash.file_hashes_now(module) if module else {}


def run_key(suite: Suite, run: Run, profile: str, code: Callable[[str], str | None] | None = None) -> str:
    """What a run's results depend on: its code, its entry in the suite (experiment, version,
    parameters for this profile, what it uses) and, recursively, the runs it uses. ``code`` gives an
    experiment's code hash (default: :func:`code_hash`, this checkout's files; another tree's, e.g. a
    commit's, for provenance)."""
    code = code or code_hash
    parts = [str(code(run.experiment)), run.params_hash(profile)]
    parts += [f"{k}={run_key(suite, suite.run(p), profile, code)}" for k, p in sorted(run.uses.items())]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def is_current(entry: dict | None, run: Run, profile: str, key: str) -> bool:
    """Whether a stored run entry was made by this run as the suite and code are now."""
    return bool(entry) and entry.get("code_hash") == key and entry.get("params_hash") == run.params_hash(profile) \
        and entry.get("version") == run.version


def stored_state(results_dir: Path, machine: str, suite: str, profile: str, commit: str) -> tuple[dict | None, Path | None]:
    """What this commit already has of a suite and profile: the state of an interrupted run, else the
    finished record (and where it was read)."""
    final = record.path_for(results_dir, machine, suite, profile, commit)
    work = state_dir(results_dir) / machine / final.name
    for source in (work, final):
        if source.exists():
            try:
                return record.load(source), source
            except record.RecordError:
                continue
    return None, None


def cached_units(suite: Suite, claims: list[Claim], *, profile: str, machine: str, commit: str,
                 results_dir: Path = record.RESULTS_DIR) -> dict[str, list[int]]:
    """Run id -> the seeds whose results this commit already has (an interrupted run's or a finished
    record's) with the run's current code and parameters: what `repro run` will reuse, not run."""
    rec, _ = stored_state(results_dir, machine, suite.name, profile, commit)
    out: dict[str, list[int]] = {}
    if rec is None:
        return out
    for run in needed_runs(suite, claims):
        entry = rec["runs"].get(run.id)
        if is_current(entry, run, profile, run_key(suite, run, profile)):
            out[run.id] = sorted(int(k) for k, o in entry["results"].items() if not o.get("error"))
    return out


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
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        with progress.reporting(reporter):
            result = registry.call(experiment, seed, params)
    except data.DataError:
        raise
    except Exception as e:  # a broken experiment is a finding for this claim, not the end of the run
        return {"metrics": {}, "artifacts": {}, "notes": "", "seconds": round(time.perf_counter() - t0, 3),
                "cpu_seconds": round(time.process_time() - c0, 3),
                "error": f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=6)}"}
    seconds = round(time.perf_counter() - t0, 3)
    cpu = round(time.process_time() - c0, 3)   # the process's CPU time (all its threads): what load does not stretch
    if not isinstance(result, registry.Result):
        return {"metrics": {}, "artifacts": {}, "notes": "", "seconds": seconds, "cpu_seconds": cpu,
                "error": f"experiment {experiment!r} returned {type(result).__name__}, not a Result"}
    wrong = convergence.problems(result.convergence, result.metrics)
    if wrong:   # which models gate which claims would be wrong: a broken experiment, said in one line
        return {"metrics": {}, "artifacts": {}, "notes": "", "seconds": seconds,
                "error": f"experiment {experiment!r}: {wrong[0]}" + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else "")}
    problems = result.problems()
    if problems:
        return {"metrics": {}, "artifacts": {}, "notes": "", "seconds": seconds,
                "error": f"experiment {experiment!r} " + "; ".join(problems)}
    return {"metrics": record.jsonable(result.metrics), "stderr": record.jsonable(result.stderr),
            "test_set": dict(result.test_set), "paired_se": record.jsonable(result.paired_se),
            "convergence": record.jsonable(result.convergence), "artifacts": dict(result.artifacts),
            "notes": result.notes, "seconds": seconds, "cpu_seconds": cpu, "error": None}


def prefetch(suite_claims: list[tuple[Suite, list[Claim]]], say: Callable[[str], None] = print) -> None:
    """Make sure every dataset the selected claims' runs need is cached before anything runs."""
    registry.load_all()
    needed = set()
    for s, claims in suite_claims:
        for r in needed_runs(s, claims):
            needed.update(registry.NEEDS.get(r.experiment, ()))
    for name in sorted(needed):
        data.fetch(name, progress=say)


def needed_runs(suite: Suite, claims: list[Claim]) -> list[Run]:
    """The runs the claims judge and the runs those use, producers before their users."""
    out: list[Run] = []
    for c in claims:
        for rid in c.runs:
            r = suite.run(rid)
            for q in suite.producers(r) + [r]:
                if q not in out:
                    out.append(q)
    return out


def _stage(suite: Suite, run: Run) -> int:
    return 0 if not run.uses else 1 + max(_stage(suite, suite.run(p)) for p in run.uses.values())


def _artifact_dir(results_dir: Path, run: Run, key: str, seed: int) -> Path:
    return cache_dir(results_dir) / "artifacts" / f"{run.id}-{key}" / f"seed{seed}"


def _partners(claim: Claim, by_id: dict[str, Run]) -> list[Run]:
    """The claim's runs whose seeds its judgement intersects (record._common_seeds): not deterministic."""
    return [by_id[r] for r in claim.runs if r in by_id and not by_id[r].deterministic]


def _producer_seed(producer: Run, seed: int) -> int:
    return 0 if producer.deterministic else seed


def _check_metrics(suite: Suite, claims: list[Claim], run: Run, out: dict) -> None:
    """A judged metric the run did not return is a suite error, named on the run's first seed."""
    if out.get("error"):
        return
    for c in claims:
        for m in c.metrics:
            if m.run == run.id and m.rule is not None and m.key not in out["metrics"]:
                got = ", ".join(sorted(out["metrics"])) or "nothing"
                raise ConfigError(f"{suite.path}: claim {c.id}: field 'metrics.{m.name}': run '{run.id}' "
                                  f"(experiment {run.experiment}) returns no metric '{m.key}'; it returns: {got}")


def run_suite(suite: Suite, claims: list[Claim], *, profile: str, env: dict, seeds: int | None = None,
              force: bool = False, results_dir: Path = record.RESULTS_DIR,
              on_event: OnEvent = lambda event: None, executor: Executor | None = None) -> Path:
    """Run the selected claims of one suite and return the path of the finished record."""
    final = record.path_for(results_dir, env["machine"], suite.name, profile, env["commit"])
    stem = final.stem
    work = state_dir(results_dir) / env["machine"] / final.name
    art_work = work.with_suffix("")
    rec, source = stored_state(results_dir, env["machine"], suite.name, profile, env["commit"])
    if source == work:
        on_event(Event("resume", suite=suite.name, path=work))
    elif source == final and final.with_suffix("").exists():
        shutil.rmtree(art_work, ignore_errors=True)
        shutil.copytree(final.with_suffix(""), art_work)
    if rec is None:
        rec = record.new(suite, profile, env)
    rec.update(env=env, suite_version=suite.version, suite_section=suite.section, complete=False, finished=None,
               seeds_fixed=seeds or None)

    runs = needed_runs(suite, claims)
    keys: dict[str, str] = {}
    looks: dict[str, list[int]] = {}
    for run in runs:
        keys[run.id] = run_key(suite, run, profile)
        entry = rec["runs"].get(run.id)
        if force or not is_current(entry, run, profile, keys[run.id]):
            entry = record.run_entry(run, profile, keys[run.id])
            shutil.rmtree(art_work / run.id, ignore_errors=True)
        entry["code_files"] = code_files(run.experiment)
        rec["runs"][run.id] = entry
        looks[run.id] = suite.looks(run, profile, seeds)
        entry["looks"] = looks[run.id]
        entry["seeds_fixed"] = seeds if seeds and not run.deterministic else None
    target = {r.id: looks[r.id][0] for r in runs}
    why = {r.id: ("one seed (deterministic)" if r.deterministic else
                  f"{target[r.id]} seeds (--seeds)" if seeds else f"{target[r.id]} seeds (the profile's start)")
           for r in runs}
    by_id = {r.id: r for r in runs}
    checked: set[str] = set()
    scratch: list[Path] = []
    on_event(Event("suite", suite=suite.name, path=final,
                   total=sum(1 if r.deterministic else target[r.id] for r in runs)))

    def seed_list(run: Run) -> list[int]:
        return [0] if run.deterministic else list(range(target[run.id]))

    def pending_units() -> list[list[Unit]]:
        """What is still to run, by stage (producers first). A consumer whose producer's artifact is
        gone (a fresh checkout of a committed record) makes the producer run again for that seed."""
        todo: dict[str, set[int]] = {r.id: set() for r in runs}
        for run in runs:
            for s in seed_list(run):
                done = rec["runs"][run.id]["results"].get(str(s))
                if not (done and not done.get("error")):
                    todo[run.id].add(s)
        for run in reversed(runs):   # consumers before producers: a consumer's need reaches its producer
            for s in sorted(todo[run.id]):
                for pid in run.uses.values():
                    p = by_id[pid]
                    ps = _producer_seed(p, s)
                    if not (_artifact_dir(results_dir, p, keys[pid], ps) / ".complete").exists():
                        todo[pid].add(ps)
        stages: dict[int, list[Unit]] = {}
        for run in runs:
            for s in sorted(todo[run.id]):
                params = dict(run.params_for(profile))
                for name, pid in run.uses.items():
                    p = by_id[pid]
                    params[name] = str(_artifact_dir(results_dir, p, keys[pid], _producer_seed(p, s)))
                if any(run.id in q.uses.values() for q in runs):
                    tmp = _artifact_dir(results_dir, run, keys[run.id], s)
                    params["artifact_dir"] = str(tmp.with_name(tmp.name + f".tmp{os.getpid()}"))
                    scratch.append(Path(params["artifact_dir"]))
                    shutil.rmtree(params["artifact_dir"], ignore_errors=True)
                    Path(params["artifact_dir"]).mkdir(parents=True, exist_ok=True)
                stages.setdefault(_stage(suite, run), []).append(Unit(run.id, run.experiment, params, s))
        for run in runs:
            for s in seed_list(run):
                if s not in todo[run.id]:
                    on_event(Event("skip", suite=suite.name, run_id=run.id, seed=s))
        return [stages[k] for k in sorted(stages)]

    def store(unit: Unit, out: dict) -> None:
        run, entry = by_id[unit.run], rec["runs"][unit.run]
        names = []
        for name, blob in out.pop("artifacts").items():
            target_file = art_work / run.id / f"seed{unit.seed}-{name}"
            target_file.parent.mkdir(parents=True, exist_ok=True)
            target_file.write_bytes(blob)
            names.append(f"{stem}/{run.id}/{target_file.name}")
        out["artifacts"] = names
        if "artifact_dir" in unit.params:
            tmp = Path(unit.params["artifact_dir"])
            dest = _artifact_dir(results_dir, run, keys[run.id], unit.seed)
            if not out.get("error"):
                (tmp / ".complete").write_text(json.dumps({"run": run.id, "key": keys[run.id],
                                                           "seconds": out["seconds"]}))
                shutil.rmtree(dest, ignore_errors=True)
                os.replace(tmp, dest)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        entry["results"][str(unit.seed)] = out
        entry["results"] = {k: entry["results"][k] for k in sorted(entry["results"], key=int)}
        if run.id not in checked:
            _check_metrics(suite, claims, run, out)
            checked.add(run.id)
        record.save(work, rec)

    selected = {c.id for c in claims}
    while True:
        try:
            for stage in pending_units():
                for unit, out in (executor or SerialExecutor()).execute(stage, on_event):
                    store(unit, out)
                    on_event(Event("done", suite=suite.name, run_id=unit.run, seed=unit.seed, out=out,
                                   seconds=out.get("seconds")))
        finally:   # an artifact folder half-written by a stopped run never stays behind
            for tmp in scratch:
                shutil.rmtree(tmp, ignore_errors=True)
            scratch.clear()
        judged = _judge(suite, rec, claims, runs, target, why, profile)
        grow = {}
        for run in runs:
            if run.deterministic or seeds:
                continue
            later = [n for n in looks[run.id] if n > target[run.id]]
            open_parts, capped = [], []
            for c in suite.claims_of(run.id):
                parts = [f"{c.id}.{n}" for n in record.undecided(judged[c.id])] if c.id in selected else []
                # a claim is judged on the seeds all its runs share: a seed its partner cannot reach is waste
                short = [q for q in _partners(c, by_id) if later and target[q.id] < later[0]
                         and later[0] not in looks[q.id]]
                if parts and later and short:
                    capped.append(f"{', '.join(parts)} (run {', '.join(q.id for q in short)} stops at "
                                  f"{', '.join(str(target[q.id]) for q in short)})")
                elif parts:
                    open_parts += parts
            if open_parts and later:
                grow[run.id] = (later[0], open_parts)
            elif open_parts or capped:
                why[run.id] = f"{target[run.id]} seeds (the maximum): {', '.join(open_parts + capped)} still undecided"
        if not grow:
            if any(why[r.id] != rec["runs"][r.id]["seeds_why"] for r in runs):   # say why no seed was added
                _judge(suite, rec, claims, runs, target, why, profile)
            break
        for rid, (n, parts) in grow.items():
            on_event(Event("look", suite=suite.name, run_id=rid, total=n, why=tuple(parts), added=n - target[rid]))
            why[rid] = f"{n} seeds: added after {target[rid]} because {', '.join(parts)} was undecided"
            target[rid] = n
            opened = {part.split(".", 1)[0] for part in parts}
            for q in {q.id: q for c in suite.claims_of(rid) if c.id in opened for q in _partners(c, by_id)}.values():
                if target[q.id] < n and q.id not in grow:   # the claim's other runs take the same seeds
                    why[q.id] = f"{n} seeds: added after {target[q.id]} with run {rid}, for {', '.join(parts)}"
                    target[q.id] = n
            for p in suite.producers(by_id[rid]):   # a consumer's new seeds need the producer's
                if not p.deterministic and target[p.id] < n:
                    target[p.id] = n
    for run in runs:   # seeds beyond this run's target (a smaller --seeds) are not part of its statistics
        entry = rec["runs"][run.id]
        entry["results"] = {k: v for k, v in entry["results"].items() if int(k) in seed_list(run)}
        entry["seconds"] = round(sum(o["seconds"] for o in entry["results"].values()), 3)
        entry["cpu_seconds"] = round(sum(o.get("cpu_seconds") or 0.0 for o in entry["results"].values()), 3)
    for c in claims:
        on_event(Event("verdict", suite=suite.name, claim_id=c.id, out=rec["claims"][c.id]))

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


def run_selection(selection: list[tuple[Suite, list[Claim]]], *, profile: str, env: dict,
                  seeds: int | None = None, force: bool = False, results_dir: Path = record.RESULTS_DIR,
                  on_event: OnEvent = lambda event: None, executor: Executor | None = None) -> list[Path]:
    """Run each selected suite's claims (what `repro run` and `repro check` both do); the records' paths."""
    return [run_suite(s, claims, profile=profile, env=env, seeds=seeds, force=force, results_dir=results_dir,
                      on_event=on_event, executor=executor) for s, claims in selection]


def _judge(suite: Suite, rec: dict, claims: list[Claim], runs: list[Run], target: dict, why: dict,
           profile: str = "") -> dict:
    """Judge every selected claim on the seeds its runs have now."""
    for run in runs:
        entry = rec["runs"][run.id]
        keep = [0] if run.deterministic else list(range(target[run.id]))
        entry["seeds_why"] = why[run.id]
        entry["seconds"] = round(sum(o["seconds"] for k, o in entry["results"].items() if int(k) in keep), 3)
    view = {rid: dict(e, results={k: v for k, v in e["results"].items()
                                   if int(k) < (1 if e["deterministic"] else target.get(rid, 10 ** 9))})
            for rid, e in rec["runs"].items()}
    available = {rid for rid, e in rec["runs"].items() if e["results"]}
    for c in suite.claims:   # the selected claims, and any other whose runs this record holds
        if c in claims or (set(c.runs) <= available and c.id in rec["claims"]):
            entry = record.claim_entry(c)
            record.judge_claim(entry, view, rec.get("alpha", verdict.ALPHA))
            entry["design"] = design.stored(suite, c, profile or rec["profile"], rec["runs"])
            rec["claims"][c.id] = entry
    return rec["claims"]
