"""A claim's design: what its verdict depends on, fixed before the run that decides it.

The design of a claim, for a profile, is its entry in the suite (kind, version, the runs it names and
how each metric is judged: run, key, rule, precondition, direction, tolerance, whether it is checkable
or about the budget) with the entries of those runs and of the runs they use (experiment, version,
parameters for the profile, the looks at which seeds are added), plus the code of each run: its run
key (`runner.run_key`: the transitive code hash of its experiment, its parameters, and its producers'
keys). Words (the chapter's sentence, the reason for a line, a citation) are not part of it.

Every record stores, per claim, ``design: {hash, spec_hash, runs: {run id: run key}}``; the hash of
the same design computed from a commit's files tells whether a record ran the design committed there
(:mod:`repro.history`).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from repro.suite import Claim, Run, Suite


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def runs_of(suite: Suite, claim: Claim) -> list[Run]:
    """The runs a claim judges and the runs those use, producers first."""
    out: list[Run] = []
    for rid in claim.runs:
        r = suite.run(rid)
        for q in suite.producers(r) + [r]:
            if q not in out:
                out.append(q)
    return out


def judged(claim: Claim) -> dict:
    """How each metric is judged (what a line change changes)."""
    return {m.name: {"run": m.run, "key": m.key, "rule": m.rule, "precondition": m.precondition,
                     "better": m.better, "tolerance": m.tolerance} for m in claim.metrics}


def spec(suite: Suite, claim: Claim, profile: str) -> dict:
    """The claim's suite entry and its runs' entries for ``profile``: task, budget, metrics and lines."""
    return {
        "claim": {"id": claim.id, "kind": claim.kind, "version": claim.version, "runs": list(claim.runs),
                  "checkable": claim.checkable, "about_budget": claim.about_budget, "metrics": judged(claim)},
        "runs": {r.id: {"experiment": r.experiment, "version": r.version, "params": r.params_for(profile),
                        "uses": dict(r.uses), "deterministic": r.deterministic, "looks": suite.looks(r, profile)}
                 for r in runs_of(suite, claim)},
    }


def of(suite: Suite, claim: Claim, profile: str, keys: dict[str, str]) -> dict:
    """The design with the runs' keys ``keys`` (run id -> run key): {hash, spec_hash, runs}."""
    s = spec(suite, claim, profile)
    runs = {r.id: keys.get(r.id) for r in runs_of(suite, claim)}
    return {"hash": digest({"spec": s, "runs": runs}), "spec_hash": digest(s), "runs": runs}


def stored(suite: Suite, claim: Claim, profile: str, record_runs: dict[str, dict]) -> dict:
    """The design a record's claim was run with: the suite's entry and the run keys the record holds."""
    return of(suite, claim, profile, {rid: (e or {}).get("code_hash") for rid, e in record_runs.items()})


def rules_of(entry: dict) -> dict:
    """A record entry's judged lines (any record schema): metric -> (rule, precondition)."""
    specs = entry.get("metric_specs") or {}
    if isinstance(specs, str):   # some schema-1 records stored them as text
        return {}
    return {n: (s.get("rule"), bool(s.get("precondition"))) for n, s in specs.items() if s.get("rule") is not None}


def params_of(entry: dict) -> dict:
    """A record entry's parameters by run (schema 2) or by experiment (schema 1)."""
    if isinstance(entry.get("params"), dict) and all(isinstance(v, dict) for v in entry["params"].values()) \
            and entry.get("run_ids"):
        return dict(entry["params"])
    if entry.get("experiment"):
        return {entry["experiment"]: entry.get("params") or {}}
    return {}


def _short(x: Any, limit: int = 40) -> str:
    text = json.dumps(x, default=str, ensure_ascii=False) if not isinstance(x, str) else x
    return text if len(text) <= limit else text[: limit - 1] + "…"


def differences(old: dict, new: dict, limit: int = 6) -> list[str]:
    """What changed in the design between two record entries of a claim, in a few words each: its
    runs, their parameters, the judged metrics and their lines."""
    out: list[str] = []
    if old.get("version") != new.get("version"):
        out.append(f"claim version {old.get('version')} → {new.get('version')}")
    pa, pb = params_of(old), params_of(new)
    if set(pa) != set(pb):
        gone, added = sorted(set(pa) - set(pb)), sorted(set(pb) - set(pa))
        out.append("runs " + ", ".join([f"-{r}" for r in gone] + [f"+{r}" for r in added]))
    for rid in sorted(set(pa) & set(pb)):
        a, b = pa[rid] or {}, pb[rid] or {}
        changed = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        for k in changed[:4]:
            out.append(f"{rid}.{k}: {_short(a.get(k, '-'))} → {_short(b.get(k, '-'))}")
        if len(changed) > 4:
            out.append(f"{rid}: {len(changed) - 4} more parameter(s) changed")
    ra, rb = rules_of(old), rules_of(new)
    for n in sorted(set(ra) | set(rb)):
        if ra.get(n) == rb.get(n):
            continue
        if n not in rb:
            out.append(f"{n}: no longer judged")
        elif n not in ra:
            out.append(f"{n}: judged by {_short(rb[n][0])}" + (" (precondition)" if rb[n][1] else ""))
        else:
            out.append(f"{n}: {_short(ra[n][0])} → {_short(rb[n][0])}"
                       + (" (now a precondition)" if rb[n][1] and not ra[n][1] else ""))
    if len(out) > limit:
        out = out[:limit] + [f"{len(out) - limit} more change(s)"]
    return out
