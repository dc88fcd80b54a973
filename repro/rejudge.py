"""Re-judge stored records under the current suite files, from their stored per-seed values.

A record of schema 1 (one experiment per claim) is mapped onto the suite's runs: a run takes the
stored seeds of an old claim that ran the same experiment with the same parameters for that profile
(the one with the most seeds, and of those the one that actually ran rather than one served from a
cache). Every claim of the suite whose runs all found stored values is then judged as a new run would
judge it at its first look; the others are listed under ``not_rejudged`` with the reason, and a claim the
record held keeps its stored entry and runs as they were judged then (marked ``not_rejudged``): re-judging
never deletes a result. Nothing is
re-run, so the runs carry no test-sampling errors or convergence reports unless they were stored.
"""
from __future__ import annotations

from pathlib import Path

from repro import record, verdict
from repro.suite import Suite


def _old_runs(old: dict) -> list[dict]:
    """Schema 1: each claim entry held one experiment's per-seed runs."""
    return [e for e in old["claims"].values() if "experiment" in e and isinstance(e.get("runs"), dict)]


def rejudge(old: dict, suite: Suite, *, source: str, commit: str) -> dict:
    """A schema-2 record judged under ``suite`` from the stored per-seed values of ``old``."""
    profile = old["profile"]
    rec = {k: old[k] for k in ("suite", "profile", "machine", "commit", "started", "finished", "env")}
    rec.update(schema=record.SCHEMA, suite_version=suite.version, suite_section=suite.section, complete=True,
               alpha=verdict.ALPHA, runs={}, claims={}, not_rejudged={})
    kept: dict[str, dict] = {}    # stored runs the suite no longer has in this form: kept as they were
    if old.get("schema") == record.SCHEMA:
        for run in suite.runs:
            entry = old["runs"].get(run.id)
            if entry and entry["params_hash"] == run.params_hash(profile):
                entry = dict(entry, looks=suite.looks(run, profile), deterministic=run.deterministic)
                rec["runs"][run.id] = entry
        kept = {rid: e for rid, e in old["runs"].items() if rid not in rec["runs"]}
        rec["rejudged"] = dict(old.get("rejudged") or {}, at_commit=commit)
    else:
        candidates = _old_runs(old)
        for run in suite.runs:
            params = run.params_for(profile)
            same = [e for e in candidates if e["experiment"] == run.experiment and e["params"] == params
                    and not any(o.get("error") for o in e["runs"].values())]
            if not same:
                continue
            best = max(same, key=lambda e: (len(e["runs"]), e.get("seconds", 0)))
            entry = record.run_entry(run, profile, f"schema1:{best.get('code_hash', '')}")
            results = {k: {"metrics": o["metrics"], "artifacts": o.get("artifacts", []), "notes": o.get("notes", ""),
                           "seconds": o["seconds"], "error": o.get("error")} for k, o in best["runs"].items()}
            if run.deterministic:
                results = {"0": results[min(results, key=int)]}
            entry.update(results=results, looks=suite.looks(run, profile),
                         seconds=round(sum(o["seconds"] for o in results.values()), 3),
                         seeds_why=f"{len(results)} stored seed(s) of {best['id']} (re-judged, not re-run)")
            rec["runs"][run.id] = entry
        rec["rejudged"] = {"from": source, "from_schema": old.get("schema"), "at_commit": commit}
    for claim in suite.claims:
        missing = [r for r in claim.runs if r not in rec["runs"]]
        if missing:
            why = f"no stored values for run(s) {', '.join(missing)} (new, or their parameters changed): run it"
            rec["not_rejudged"][claim.id] = why
            if old.get("schema") == record.SCHEMA and claim.id in old["claims"]:
                # the record's own verdict stays, as it was judged then: re-judging never deletes a result
                rec["claims"][claim.id] = dict(old["claims"][claim.id], not_rejudged=why)
            continue
        entry = record.claim_entry(claim)
        record.judge_claim(entry, rec["runs"])
        rec["claims"][claim.id] = entry
    rec["runs"].update(kept)
    return rec


def rejudge_file(path: Path, suites: dict[str, Suite], commit: str) -> tuple[Path, dict]:
    """Re-judge one record file in place (it keeps its name: the values are that commit's)."""
    old = record.read(path)
    suite = suites.get(old["suite"])
    if suite is None:
        raise record.RecordError(f"{path}: no suite named '{old['suite']}' to re-judge it under")
    rec = rejudge(old, suite, source=str(path.name), commit=commit)
    record.write_tables(path, rec)
    record.save(path, rec)
    return path, rec
