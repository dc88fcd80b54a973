"""Suites: flat YAML files in suites/, loaded into validated, frozen runs and claims.

A suite file has ``runs:`` (an experiment with its parameters, per-profile overrides and seeds,
executed once per seed) and ``claims:`` (each names the run or runs whose metrics it judges). Several
claims judging one run is plain to see, and the run is executed once for all of them.

A bad field is reported as one line naming the file, the claim (or run) and the field (SuiteError).
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from repro import stats, verdict

SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"
PROFILES = ("smoke", "quick", "full", "paper")
KINDS = ("A", "E", "A+E", "C", "F", "F+E")
DEFAULT_SEEDS = {"smoke": 1, "quick": 1, "full": 3, "paper": 3}

_SUITE_KEYS = {"suite", "version", "title", "section", "profiles", "runs", "claims"}
_PROFILE_KEYS = {"seeds", "max_seeds", "cost"}
_RUN_KEYS = {"id", "experiment", "version", "params", "profiles", "seeds", "max_seeds", "deterministic", "uses"}
_CLAIM_KEYS = {"id", "chapter", "section", "kind", "source", "claim", "version", "runs", "metrics",
               "checkable", "reason", "about_budget", "erratum"}
_MOVED_TO_RUNS = {"experiment", "params", "profiles", "seeds"}
_METRIC_KEYS = {"claimed", "rule", "criterion", "better", "tolerance", "unit", "precondition", "literature",
                "scale", "resolution", "variance", "capability"}
_CAPABILITY_RULES = ("at_least", "at_most", "in_seeds")   # one-sided lines a model can reach


class SuiteError(Exception):
    """A suite file that cannot be used; str() is one line naming file, claim and field."""

    def __init__(self, path: Path | str, message: str, claim: str | None = None, field: str | None = None):
        where = str(path)
        if claim:
            where += f": {'run' if claim.startswith('run ') else 'claim'} {claim.removeprefix('run ')}"
        if field:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric a claim reads from one of its runs, and how it is judged.

    ``rule`` is the line the claim is judged against; ``criterion`` holds the reason when that line
    is the suite's choice rather than the chapter's (shown as ours). ``claimed`` is only ever the
    chapter's number or words.

    How its interval is built (repro.verdict's docstring has the details): ``scale`` 'log10' judges
    log10 of the per-seed values (ratios; lines stay in the metric's units); ``resolution`` is the
    smallest step of a discrete metric (its interval never collapses to a point); ``variance``
    'seeds' leaves the test-sampling error out (the criterion's reason says why, e.g. a published
    number measured on the same fixed test set)."""

    name: str               # as the claim calls it ('test_error' or 'run.test_error')
    run: str                # the run that produces it
    key: str                # its name in that run's results
    claimed: Any = None
    rule: dict | None = None
    criterion: str | None = None
    better: str | None = None
    tolerance: float | None = None
    unit: str = ""
    precondition: bool = False
    literature: dict | None = None
    scale: str | None = None
    resolution: float | None = None
    variance: str | None = None
    capability: bool = False   # "reaches >= X", "can do T": shown once passed, converged or not

    @property
    def direction(self) -> str | None:
        return self.better or verdict.direction(self.rule)

    @property
    def judged(self) -> bool:
        return self.rule is not None and not self.precondition


@dataclasses.dataclass(frozen=True)
class Run:
    id: str
    suite: str
    experiment: str
    version: int
    params: dict
    profiles: dict
    seeds: dict               # profile -> start seed count (over the suite's)
    max_seeds: dict           # profile -> maximum seed count (over the suite's)
    deterministic: bool
    uses: dict                # parameter name -> producer run id

    def params_for(self, profile: str) -> dict:
        return {**self.params, **self.profiles.get(profile, {})}

    def params_hash(self, profile: str) -> str:
        blob = json.dumps({"experiment": self.experiment, "version": self.version,
                           "params": self.params_for(profile), "uses": self.uses}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str
    suite: str
    section: str
    kind: str
    source: str
    claim: str
    version: int
    runs: tuple[str, ...]
    metrics: tuple[Metric, ...]
    checkable: bool = True
    reason: str = ""
    chapter: str = ""
    about_budget: bool = False
    budget_reason: str = ""  # why the claim's wording is about its budget (speed, cost, equal time)
    erratum: str = ""        # a corrected sentence (or formula) for lecturers, where the generic one won't do

    def metric(self, name: str) -> Metric:
        return next(m for m in self.metrics if m.name == name)


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    version: int
    title: str
    section: str
    seeds: dict               # profile -> start seed count
    max_seeds: dict           # profile -> maximum seed count
    costs: dict               # profile -> the stated expected cost (free text)
    runs: tuple[Run, ...]
    claims: tuple[Claim, ...]
    path: Path

    def run(self, run_id: str) -> Run:
        return next(r for r in self.runs if r.id == run_id)

    def claim(self, claim_id: str) -> Claim:
        return next(c for c in self.claims if c.id == claim_id)

    def claims_of(self, run_id: str) -> list[Claim]:
        return [c for c in self.claims if run_id in c.runs]

    def looks(self, run: Run, profile: str, override: int | None = None) -> list[int]:
        """The seed counts at which the runner judges this run (one look when deterministic or when
        ``--seeds`` fixes the count)."""
        if run.deterministic:
            return [1]
        if override:
            return [override]
        start = run.seeds.get(profile, self.seeds[profile])
        top = max(start, run.max_seeds.get(profile, self.max_seeds[profile]))
        return stats.looks(start, top)

    def producers(self, run: Run) -> list[Run]:
        """The runs this one depends on, transitively, producers first."""
        out: list[Run] = []
        for rid in run.uses.values():
            p = self.run(rid)
            for q in self.producers(p) + [p]:
                if q not in out:
                    out.append(q)
        return out


def _require(cond: bool, path: Path, msg: str, claim: str | None = None, field: str | None = None) -> None:
    if not cond:
        raise SuiteError(path, msg, claim, field)


def _unknown(keys: set, allowed: set, path: Path, claim: str | None, prefix: str = "") -> None:
    for k in sorted(keys - allowed, key=str):
        if not prefix and str(k) in _MOVED_TO_RUNS and claim and not claim.startswith("run "):
            raise SuiteError(path, "moved to the run the claim names (suite format 2: 'runs:' hold "
                             "experiments, parameters and seeds; a claim lists its 'runs')", claim, str(k))
        close = difflib.get_close_matches(str(k), sorted(allowed), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(sorted(allowed))}"
        raise SuiteError(path, f"unknown field{hint}", claim, prefix + str(k))


def _counts(raw: Any, path: Path, who: str, field: str) -> dict:
    raw = raw or {}
    _require(isinstance(raw, dict), path, "must map a profile name to a seed count, e.g. {full: 5}", who, field)
    for prof, n in raw.items():
        _require(prof in PROFILES, path, f"unknown profile; use one of {', '.join(PROFILES)}", who, f"{field}.{prof}")
        _require(isinstance(n, int) and not isinstance(n, bool) and n >= 1, path, "must be a positive integer",
                 who, f"{field}.{prof}")
    return dict(raw)


def _run(path: Path, suite: str, i: int, raw: Any) -> Run:
    _require(isinstance(raw, dict), path, "each run is a mapping", None, f"runs[{i}]")
    rid = raw.get("id")
    _require(isinstance(rid, str) and re.fullmatch(r"[a-z][a-z0-9_]*", rid or "") is not None, path,
             "every run needs an 'id' of lower-case letters, digits and _", None, f"runs[{i}].id")
    who = f"run {rid}"
    _unknown(set(raw), _RUN_KEYS, path, who)
    _require(isinstance(raw.get("experiment"), str) and raw["experiment"].strip() != "", path,
             "required text is missing", who, "experiment")
    _require(isinstance(raw.get("version"), int) and raw["version"] >= 1, path,
             "required, a positive integer (bump it when results stop being comparable)", who, "version")
    params = raw.get("params") or {}
    _require(isinstance(params, dict), path, "must be a mapping of keyword parameters", who, "params")
    profiles = raw.get("profiles") or {}
    _require(isinstance(profiles, dict), path, "must map a profile name to parameter overrides", who, "profiles")
    for prof, over in profiles.items():
        _require(prof in PROFILES, path, f"unknown profile; use one of {', '.join(PROFILES)}", who, f"profiles.{prof}")
        _require(isinstance(over, dict), path, "must be a mapping of parameter overrides", who, f"profiles.{prof}")
    seeds = _counts(raw.get("seeds"), path, who, "seeds")
    max_seeds = _counts(raw.get("max_seeds"), path, who, "max_seeds")
    for prof, top in max_seeds.items():
        if prof in seeds:
            _require(top >= seeds[prof], path, f"the seed maximum {top} is below the run's start {seeds[prof]}",
                     who, f"max_seeds.{prof}")
    det = raw.get("deterministic")
    _require(det is None or isinstance(det, bool), path, "must be true or false", who, "deterministic")
    uses = raw.get("uses") or {}
    _require(isinstance(uses, dict) and all(isinstance(v, str) for v in uses.values()), path,
             "must map a parameter name to a run id, e.g. {scorer_dir: scorer}", who, "uses")
    for k in uses:
        _require(k not in params, path, "is both a parameter and a 'uses' entry", who, f"uses.{k}")
    return Run(id=rid, suite=suite, experiment=raw["experiment"], version=raw["version"], params=dict(params),
               profiles={k: dict(v) for k, v in profiles.items()}, seeds=seeds, max_seeds=max_seeds,
               deterministic=det, uses=dict(uses))


def _metric(path: Path, cid: str, name: str, spec: Any, runs: tuple[str, ...]) -> Metric:
    field = f"metrics.{name}"
    spec = {} if spec is None else spec
    _require(isinstance(spec, dict), path, "a metric is a mapping (use {} for a reported-only metric)", cid, field)
    _unknown(set(spec), _METRIC_KEYS, path, cid, field + ".")
    if "." in name:
        run, key = name.split(".", 1)
        _require(run in runs, path, f"names run '{run}', which this claim does not list in 'runs'", cid, field)
    else:
        _require(len(runs) == 1, path, "a claim with several runs names each metric as RUN.metric", cid, field)
        run, key = runs[0], name
    rule = spec.get("rule")
    crit = spec.get("criterion")
    reason = None
    _require(rule is None or crit is None, path, "give either 'rule' (the chapter's own line) or 'criterion' "
             "(a line the suite chose, with its reason), not both", cid, field)
    if crit is not None:
        _require(isinstance(crit, dict) and set(crit) <= {"rule", "reason"} and "rule" in crit, path,
                 "a criterion is {rule: ..., reason: '...'}", cid, field + ".criterion")
        reason = crit.get("reason")
        _require(isinstance(reason, str) and reason.strip() != "", path,
                 "a criterion needs a one-line reason or source", cid, field + ".criterion.reason")
        rule = crit["rule"]
    if rule is not None:
        where = field + (".criterion.rule" if crit is not None else ".rule")
        try:
            verdict.check_rule(rule)
        except verdict.RuleError as e:
            raise SuiteError(path, str(e), cid, where) from None
        kind = verdict.rule_kind(rule)
        if crit is None and kind in ("approx", "between", "paired_within", "in_seeds"):
            raise SuiteError(path, f"a '{kind}' line is the suite's choice: put it in 'criterion' with its reason",
                             cid, where)
        if crit is None and kind in ("at_most", "at_least", "equal") and not verdict.same(rule[kind], spec.get("claimed")):
            raise SuiteError(path, f"the line {rule[kind]!r} is not the claimed value {spec.get('claimed')!r}: "
                             "a line the suite chose goes in 'criterion' with its reason", cid, where)
    scale, resolution, variance = spec.get("scale"), spec.get("resolution"), spec.get("variance")
    _require(scale is None or scale in verdict.SCALES, path, f"must be one of {', '.join(verdict.SCALES)}",
             cid, field + ".scale")
    _require(resolution is None or (isinstance(resolution, (int, float)) and not isinstance(resolution, bool)
                                    and resolution > 0), path,
             "the metric's smallest step, a positive number (1 for a count)", cid, field + ".resolution")
    try:
        verdict.check_options(rule, scale=scale, resolution=resolution)
    except verdict.RuleError as e:
        raise SuiteError(path, str(e), cid, field + (".scale" if scale is not None else ".resolution")) from None
    _require(variance in (None, "seeds"), path, "must be 'seeds' (the comparison carries the seed spread only)",
             cid, field + ".variance")
    _require(variance is None or crit is not None, path, "variance: seeds goes with a criterion whose reason says "
             "why the test-sampling error is left out (e.g. a published number on the same test set)",
             cid, field + ".variance")
    better = spec.get("better")
    _require(better in (None, "higher", "lower"), path, "must be 'higher' or 'lower'", cid, field + ".better")
    tol = spec.get("tolerance")
    _require(tol is None or (isinstance(tol, (int, float)) and tol >= 0), path,
             "must be a non-negative number", cid, field + ".tolerance")
    pre = spec.get("precondition", False)
    _require(isinstance(pre, bool), path, "must be true or false", cid, field + ".precondition")
    _require(not pre or rule is not None, path, "a precondition needs a rule to check", cid, field + ".precondition")
    capability = spec.get("capability", False)
    _require(isinstance(capability, bool), path, "must be true or false", cid, field + ".capability")
    if capability:
        _require(rule is not None and not pre and verdict.rule_kind(rule) in _CAPABILITY_RULES, path,
                 "only a judged one-sided line the model reaches (" + ", ".join(_CAPABILITY_RULES)
                 + ") can be a capability: 'A beats B' and 'no difference' need converged models", cid,
                 field + ".capability")
    lit = spec.get("literature")
    _require(lit is None or (isinstance(lit, dict) and "source" in lit and set(lit) <= {"value", "source", "setup"}),
             path, "literature is {value: ..., source: '...', setup: '...'}", cid, field + ".literature")
    return Metric(name=name, run=run, key=key, claimed=spec.get("claimed"), rule=rule, criterion=reason,
                  better=better, tolerance=tol, unit=str(spec.get("unit", "")), precondition=pre, literature=lit,
                  scale=scale, resolution=resolution, variance=variance, capability=capability)


def _claim(path: Path, suite: str, i: int, raw: Any, run_ids: set[str]) -> Claim:
    _require(isinstance(raw, dict), path, "each claim is a mapping", None, f"claims[{i}]")
    cid = raw.get("id")
    _require(isinstance(cid, str) and cid.strip() != "", path, "every claim needs an 'id'", None, f"claims[{i}].id")
    _unknown(set(raw), _CLAIM_KEYS, path, cid)
    for key in ("section", "source", "claim"):
        _require(isinstance(raw.get(key), str) and raw[key].strip() != "", path, "required text is missing", cid, key)
    _require(raw.get("kind") in KINDS, path, f"must be one of {', '.join(KINDS)}", cid, "kind")
    _require(isinstance(raw.get("version"), int) and raw["version"] >= 1, path,
             "required, a positive integer (bump it when results stop being comparable)", cid, "version")
    runs = raw.get("runs")
    runs = [runs] if isinstance(runs, str) else runs
    _require(isinstance(runs, list) and runs and all(isinstance(r, str) for r in runs), path,
             "a claim names the run(s) whose metrics it judges, e.g. runs: [lenet]", cid, "runs")
    for r in runs:
        close = difflib.get_close_matches(r, sorted(run_ids), n=1)
        _require(r in run_ids, path, f"no run '{r}' in this suite" + (f"; did you mean '{close[0]}'?" if close else ""),
                 cid, "runs")
    metrics = raw.get("metrics")
    _require(isinstance(metrics, dict) and metrics, path, "a claim needs at least one metric", cid, "metrics")
    parsed = tuple(_metric(path, cid, str(n), s, tuple(runs)) for n, s in metrics.items())
    names = {m.name for m in parsed}
    _require(any(m.judged for m in parsed) or not any(m.precondition for m in parsed), path,
             "a claim with a precondition needs at least one judged metric besides it", cid, "metrics")
    for m in parsed:
        than = verdict.other_metric(m.rule)
        if than is not None:
            kind = verdict.rule_kind(m.rule)
            where = f"metrics.{m.name}.{'criterion.rule' if m.criterion else 'rule'}.{kind}.than"
            _require(than in names, path, "names a metric this claim does not have", cid, where)
            _require(than != m.name, path, "compares the metric with itself", cid, where)
    checkable = raw.get("checkable", True)
    _require(isinstance(checkable, bool), path, "must be true or false", cid, "checkable")
    reason = raw.get("reason", "")
    _require(checkable or (isinstance(reason, str) and reason.strip()), path,
             "a claim that is not checkable must say why", cid, "reason")
    about_budget = raw.get("about_budget", False)
    budget_reason = ""
    if isinstance(about_budget, dict):
        _require(set(about_budget) == {"reason"} and isinstance(about_budget["reason"], str)
                 and about_budget["reason"].strip() != "" and "\n" not in about_budget["reason"].strip(), path,
                 "is {reason: 'one line: why the claim's wording is about its budget'}", cid, "about_budget")
        budget_reason, about_budget = about_budget["reason"].strip(), True
    else:
        _require(about_budget is False, path, "a claim about its budget says why: about_budget: {reason: "
                 "'one line: the wording is about speed, cost or equal time'}", cid, "about_budget")
    erratum = raw.get("erratum", "")
    _require(isinstance(erratum, str), path, "must be a sentence", cid, "erratum")
    return Claim(id=cid, suite=suite, section=raw["section"], kind=raw["kind"], source=raw["source"],
                 claim=raw["claim"], version=raw["version"], runs=tuple(runs), metrics=parsed,
                 checkable=checkable, reason=reason or "", chapter=str(raw.get("chapter", "")),
                 about_budget=about_budget, budget_reason=budget_reason, erratum=erratum.strip())


def check_experiments(suite: Suite) -> None:
    """Every run names a registered experiment and passes only parameters it accepts."""
    from repro import registry

    registry.load_all()
    for r in suite.runs:
        who = f"run {r.id}"
        if r.experiment not in registry.EXPERIMENTS:
            close = difflib.get_close_matches(r.experiment, sorted(registry.EXPERIMENTS), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise SuiteError(suite.path, f"unknown experiment '{r.experiment}'{hint}", who, "experiment")
        if registry.accepts_any(r.experiment):
            continue
        accepted = registry.parameters(r.experiment)
        given = [("params", r.params)] + [(f"profiles.{p}", o) for p, o in r.profiles.items()] + [("uses", r.uses)]
        for where, names in given:
            for k in names:
                if k not in accepted:
                    raise SuiteError(suite.path, f"experiment '{r.experiment}' takes no parameter '{k}' "
                                     f"(it takes: {', '.join(accepted) or 'none'})", who, f"{where}.{k}")
        missing = [k for k, p in accepted.items() if p.default is p.empty and k not in r.params and k not in r.uses]
        _require(not missing, suite.path, f"experiment '{r.experiment}' needs {', '.join(missing)}", who, "params")
    for r in suite.runs:
        for k, pid in r.uses.items():
            p = suite.run(pid)
            _require(registry.accepts_any(p.experiment) or "artifact_dir" in registry.parameters(p.experiment),
                     suite.path, f"run '{pid}' produces no artifact (its experiment takes no 'artifact_dir')",
                     f"run {r.id}", f"uses.{k}")


def load(path: Path | str, *, check: bool = True) -> Suite:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SuiteError(path, f"is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    except OSError as e:
        raise SuiteError(path, f"cannot be read: {e.strerror}") from None
    _require(isinstance(raw, dict), path, "a suite file is a mapping with 'suite', 'version', 'runs' and 'claims'")
    _unknown(set(raw), _SUITE_KEYS, path, None)
    name = raw.get("suite")
    _require(name == path.stem, path, f"must equal the file name '{path.stem}'", None, "suite")
    _require(isinstance(raw.get("version"), int), path, "required, an integer", None, "version")
    seeds, top, costs = dict(DEFAULT_SEEDS), {}, {}
    profiles = raw.get("profiles") or {}
    _require(isinstance(profiles, dict), path, "must map profile names to settings", None, "profiles")
    for prof, spec in profiles.items():
        _require(prof in PROFILES, path, f"unknown profile; use one of {', '.join(PROFILES)}", None, f"profiles.{prof}")
        _require(isinstance(spec, dict), path, "must be a mapping such as {seeds: 3, max_seeds: 10}", None,
                 f"profiles.{prof}")
        _unknown(set(spec), _PROFILE_KEYS, path, None, f"profiles.{prof}.")
        for key in ("seeds", "max_seeds"):
            n = spec.get(key)
            _require(n is None or (isinstance(n, int) and not isinstance(n, bool) and n >= 1), path,
                     "must be a positive integer", None, f"profiles.{prof}.{key}")
        seeds[prof] = spec.get("seeds", seeds[prof])
        if "max_seeds" in spec:
            _require(spec["max_seeds"] >= seeds[prof], path, f"the seed maximum {spec['max_seeds']} is below "
                     f"the minimum {seeds[prof]}", None, f"profiles.{prof}.max_seeds")
            top[prof] = spec["max_seeds"]
        if "cost" in spec:
            costs[prof] = str(spec["cost"])
    max_seeds = {p: top.get(p, seeds[p]) for p in PROFILES}
    runs_raw = raw.get("runs")
    _require(isinstance(runs_raw, list) and runs_raw, path,
             "a suite needs a list of runs (suite format 2: experiments live in 'runs', claims name them)",
             None, "runs")
    runs = tuple(_run(path, name, i, r) for i, r in enumerate(runs_raw))
    run_ids = [r.id for r in runs]
    for rid in run_ids:
        _require(run_ids.count(rid) == 1, path, "this run ID appears twice", f"run {rid}", "id")
    for r in runs:
        for k, pid in r.uses.items():
            _require(pid in run_ids and pid != r.id, path, f"no other run '{pid}' in this suite", f"run {r.id}",
                     f"uses.{k}")
    claims_raw = raw.get("claims")
    _require(isinstance(claims_raw, list) and claims_raw, path, "a suite needs a list of claims", None, "claims")
    claims = tuple(_claim(path, name, i, c, set(run_ids)) for i, c in enumerate(claims_raw))
    seen: set[str] = set()
    for c in claims:
        _require(c.id not in seen, path, "this claim ID appears twice", c.id, "id")
        seen.add(c.id)
    for r in runs:
        _require(any(r.id in c.runs for c in claims) or any(r.id in q.uses.values() for q in runs), path,
                 "no claim judges this run and no run uses it", f"run {r.id}", "id")
    # a run is deterministic when it says so, or when every claim judging it is analytic or cited
    resolved = []
    for r in runs:
        judges = [c for c in claims if r.id in c.runs]
        det = r.deterministic if r.deterministic is not None else bool(judges) and all(c.kind in ("A", "C") for c in judges)
        resolved.append(dataclasses.replace(r, deterministic=det))
    suite = Suite(name=name, version=raw["version"], title=str(raw.get("title", name)),
                  section=str(raw.get("section", "")), seeds=seeds, max_seeds=max_seeds, costs=costs,
                  runs=tuple(resolved), claims=claims, path=path)
    for r in suite.runs:   # a cycle in 'uses' would never run
        try:
            suite.producers(r)
        except RecursionError:
            raise SuiteError(path, "'uses' forms a cycle", f"run {r.id}", "uses") from None
    if check:
        check_experiments(suite)
    return suite


def suites_dir() -> Path:
    """suites/ of this checkout, or REPRO_SUITES_DIR (tests and users with suites of their own)."""
    return Path(os.environ.get("REPRO_SUITES_DIR") or SUITES_DIR)


def suite_paths(directory: Path | None = None) -> list[Path]:
    return sorted((directory or suites_dir()).glob("*.yaml"))


def load_all(directory: Path | None = None, *, check: bool = True) -> list[Suite]:
    return [load(p, check=check) for p in suite_paths(directory)]


class SelectionError(Exception):
    pass


def select(names: list[str], suites: list[Suite]) -> list[tuple[Suite, list[Claim]]]:
    """Resolve suite names and claim IDs (case-insensitive) into (suite, claims) pairs, in suite order."""
    if not names:
        return [(s, list(s.claims)) for s in suites]
    by_suite = {s.name.lower(): s for s in suites}
    by_claim = {c.id.lower(): (s, c) for s in suites for c in s.claims}
    chosen: dict[str, set[str]] = {}
    for name in names:
        key = name.lower()
        if key in by_suite:
            chosen.setdefault(by_suite[key].name, set()).update(c.id for c in by_suite[key].claims)
        elif key in by_claim:
            s, c = by_claim[key]
            chosen.setdefault(s.name, set()).add(c.id)
        else:
            options = [s.name for s in suites] + [c.id for s in suites for c in s.claims]
            close = difflib.get_close_matches(name, options, n=1, cutoff=0.5) or \
                difflib.get_close_matches(name.upper(), options, n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise SelectionError(f"no suite or claim named '{name}'; {hint}`repro list` shows them all")
    return [(s, [c for c in s.claims if c.id in chosen[s.name]]) for s in suites if s.name in chosen]
