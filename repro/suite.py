"""Suites: flat YAML files in suites/, loaded into validated, frozen claim objects.

A bad field is reported as one line naming the file, the claim and the field (SuiteError).
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from repro import verdict

SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"
PROFILES = ("smoke", "quick", "full")
KINDS = ("A", "E", "A+E", "C")
DEFAULT_SEEDS = {"smoke": 1, "quick": 1, "full": 3}

_SUITE_KEYS = {"suite", "version", "title", "section", "profiles", "claims"}
_CLAIM_KEYS = {"id", "chapter", "section", "kind", "source", "claim", "experiment", "version", "params",
               "profiles", "seeds", "metrics", "checkable", "reason"}
_METRIC_KEYS = {"claimed", "rule", "better", "tolerance", "unit", "precondition"}


class SuiteError(Exception):
    """A suite file that cannot be used; str() is one line naming file, claim and field."""

    def __init__(self, path: Path | str, message: str, claim: str | None = None, field: str | None = None):
        where = str(path)
        if claim:
            where += f": claim {claim}"
        if field:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    claimed: Any = None
    rule: dict | None = None
    better: str | None = None       # 'higher' | 'lower' | None, for compare
    tolerance: float | None = None  # absolute, for compare; else derived from the seeds' spread
    unit: str = ""
    precondition: bool = False   # must pass for the claim's verdict to mean anything (else inconclusive)

    @property
    def direction(self) -> str | None:
        return self.better or verdict.direction(self.rule)


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str
    suite: str
    section: str
    kind: str
    source: str
    claim: str
    experiment: str
    version: int
    params: dict
    profiles: dict
    metrics: tuple[Metric, ...]
    checkable: bool = True
    reason: str = ""
    chapter: str = ""   # the chapter section ('7.2') when it differs from the suite's
    seeds: dict = dataclasses.field(default_factory=dict)   # profile -> seed count, over the suite's

    @property
    def deterministic(self) -> bool:
        """Analytic and cited claims measure architecture facts: one run says it all."""
        return self.kind in ("A", "C")

    def params_for(self, profile: str) -> dict:
        return {**self.params, **self.profiles.get(profile, {})}

    def params_hash(self, profile: str) -> str:
        blob = json.dumps({"experiment": self.experiment, "version": self.version,
                           "params": self.params_for(profile)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    version: int
    title: str
    section: str
    seeds: dict
    claims: tuple[Claim, ...]
    path: Path

    def claim(self, claim_id: str) -> Claim:
        return next(c for c in self.claims if c.id == claim_id)

    def seeds_for(self, claim: Claim, profile: str, override: int | None = None) -> list[int]:
        if claim.deterministic:
            return [0]
        return list(range(override if override else claim.seeds.get(profile, self.seeds[profile])))


def _require(cond: bool, path: Path, msg: str, claim: str | None = None, field: str | None = None) -> None:
    if not cond:
        raise SuiteError(path, msg, claim, field)


def _unknown(keys: set, allowed: set, path: Path, claim: str | None, prefix: str = "") -> None:
    for k in sorted(keys - allowed, key=str):
        close = difflib.get_close_matches(str(k), sorted(allowed), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(sorted(allowed))}"
        raise SuiteError(path, f"unknown field{hint}", claim, prefix + str(k))


def _metric(path: Path, cid: str, name: str, spec: Any) -> Metric:
    field = f"metrics.{name}"
    spec = {} if spec is None else spec
    _require(isinstance(spec, dict), path, "a metric is a mapping (use {} for a reported-only metric)", cid, field)
    _unknown(set(spec), _METRIC_KEYS, path, cid, field + ".")
    rule = spec.get("rule")
    if rule is not None:
        try:
            verdict.check_rule(rule)
        except verdict.RuleError as e:
            raise SuiteError(path, str(e), cid, field + ".rule") from None
    better = spec.get("better")
    _require(better in (None, "higher", "lower"), path, "must be 'higher' or 'lower'", cid, field + ".better")
    tol = spec.get("tolerance")
    _require(tol is None or (isinstance(tol, (int, float)) and tol >= 0), path,
             "must be a non-negative number", cid, field + ".tolerance")
    pre = spec.get("precondition", False)
    _require(isinstance(pre, bool), path, "must be true or false", cid, field + ".precondition")
    _require(not pre or rule is not None, path, "a precondition needs a rule to check", cid, field + ".precondition")
    return Metric(name=name, claimed=spec.get("claimed"), rule=rule, better=better, tolerance=tol,
                  unit=str(spec.get("unit", "")), precondition=pre)


def _claim(path: Path, suite: str, i: int, raw: Any) -> Claim:
    _require(isinstance(raw, dict), path, "each claim is a mapping", None, f"claims[{i}]")
    cid = raw.get("id")
    _require(isinstance(cid, str) and cid.strip() != "", path, "every claim needs an 'id'", None, f"claims[{i}].id")
    _unknown(set(raw), _CLAIM_KEYS, path, cid)
    for key in ("section", "source", "claim", "experiment"):
        _require(isinstance(raw.get(key), str) and raw[key].strip() != "", path, "required text is missing", cid, key)
    _require(raw.get("kind") in KINDS, path, f"must be one of {', '.join(KINDS)}", cid, "kind")
    _require(isinstance(raw.get("version"), int) and raw["version"] >= 1, path,
             "required, a positive integer (bump it when results stop being comparable)", cid, "version")
    params = raw.get("params") or {}
    _require(isinstance(params, dict), path, "must be a mapping of keyword parameters", cid, "params")
    profiles = raw.get("profiles") or {}
    _require(isinstance(profiles, dict), path, "must map a profile name to parameter overrides", cid, "profiles")
    for prof, over in profiles.items():
        _require(prof in PROFILES, path, f"unknown profile; use one of {', '.join(PROFILES)}", cid, f"profiles.{prof}")
        _require(isinstance(over, dict), path, "must be a mapping of parameter overrides", cid, f"profiles.{prof}")
    seeds = raw.get("seeds") or {}
    _require(isinstance(seeds, dict), path, "must map a profile name to a seed count, e.g. {full: 5}", cid, "seeds")
    for prof, n in seeds.items():
        _require(prof in PROFILES, path, f"unknown profile; use one of {', '.join(PROFILES)}", cid, f"seeds.{prof}")
        _require(isinstance(n, int) and not isinstance(n, bool) and n >= 1, path, "must be a positive integer",
                 cid, f"seeds.{prof}")
    metrics = raw.get("metrics")
    _require(isinstance(metrics, dict) and metrics, path, "a claim needs at least one metric", cid, "metrics")
    parsed = tuple(_metric(path, cid, str(n), s) for n, s in metrics.items())
    names = {m.name for m in parsed}
    _require(any(m.rule and not m.precondition for m in parsed) or not any(m.precondition for m in parsed), path,
             "a claim with a precondition needs at least one judged metric besides it", cid, "metrics")
    for m in parsed:
        if m.rule and verdict.rule_kind(m.rule) == "paired":
            _require(m.rule["paired"]["than"] in names, path, "names a metric this claim does not have",
                     cid, f"metrics.{m.name}.rule.paired.than")
    checkable = raw.get("checkable", True)
    _require(isinstance(checkable, bool), path, "must be true or false", cid, "checkable")
    reason = raw.get("reason", "")
    _require(checkable or (isinstance(reason, str) and reason.strip()), path,
             "a claim that is not checkable must say why", cid, "reason")
    return Claim(id=cid, suite=suite, section=raw["section"], kind=raw["kind"], source=raw["source"],
                 claim=raw["claim"], experiment=raw["experiment"], version=raw["version"],
                 params=dict(params), profiles={k: dict(v) for k, v in profiles.items()},
                 metrics=parsed, checkable=checkable, reason=reason or "",
                 chapter=str(raw.get("chapter", "")), seeds=dict(seeds))


def check_experiments(suite: Suite) -> None:
    """Every claim names a registered experiment, and passes only parameters it accepts."""
    from repro import registry

    registry.load_all()
    for c in suite.claims:
        if c.experiment not in registry.EXPERIMENTS:
            close = difflib.get_close_matches(c.experiment, sorted(registry.EXPERIMENTS), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise SuiteError(suite.path, f"unknown experiment '{c.experiment}'{hint}", c.id, "experiment")
        if registry.accepts_any(c.experiment):
            continue
        accepted = registry.parameters(c.experiment)
        for where, given in [("params", c.params)] + [(f"profiles.{p}", o) for p, o in c.profiles.items()]:
            for k in given:
                if k not in accepted:
                    raise SuiteError(suite.path, f"experiment '{c.experiment}' takes no parameter '{k}' "
                                     f"(it takes: {', '.join(accepted) or 'none'})", c.id, f"{where}.{k}")
        missing = [k for k, p in accepted.items() if p.default is p.empty and k not in c.params]
        _require(not missing, suite.path, f"experiment '{c.experiment}' needs {', '.join(missing)}", c.id, "params")


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
    _require(isinstance(raw, dict), path, "a suite file is a mapping with 'suite', 'version' and 'claims'")
    _unknown(set(raw), _SUITE_KEYS, path, None)
    name = raw.get("suite")
    _require(name == path.stem, path, f"must equal the file name '{path.stem}'", None, "suite")
    _require(isinstance(raw.get("version"), int), path, "required, an integer", None, "version")
    seeds = dict(DEFAULT_SEEDS)
    profiles = raw.get("profiles") or {}
    _require(isinstance(profiles, dict), path, "must map profile names to settings", None, "profiles")
    for prof, spec in profiles.items():
        _require(prof in PROFILES, path, f"unknown profile; use one of {', '.join(PROFILES)}", None, f"profiles.{prof}")
        _require(isinstance(spec, dict) and set(spec) <= {"seeds"}, path, "only 'seeds' can be set here "
                 "(parameter overrides go in each claim's 'profiles')", None, f"profiles.{prof}")
        n = spec.get("seeds", seeds[prof])
        _require(isinstance(n, int) and n >= 1, path, "must be a positive integer", None, f"profiles.{prof}.seeds")
        seeds[prof] = n
    claims_raw = raw.get("claims")
    _require(isinstance(claims_raw, list) and claims_raw, path, "a suite needs a list of claims", None, "claims")
    claims = tuple(_claim(path, name, i, c) for i, c in enumerate(claims_raw))
    seen: set[str] = set()
    for c in claims:
        _require(c.id not in seen, path, "this claim ID appears twice", c.id, "id")
        seen.add(c.id)
    suite = Suite(name=name, version=raw["version"], title=str(raw.get("title", name)),
                  section=str(raw.get("section", "")), seeds=seeds, claims=claims, path=path)
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
