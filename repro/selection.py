"""Which record speaks for each claim: one selection behind README's table, the report, `repro list`
and the quick run's "committed full verdict" column.

:func:`select` takes, for every claim, the newest full-profile record (by the time it finished) that
holds it, complete or not: a claim redone on its own replaces its older result, and a claim a complete
record lacks comes from any record that has it. Beside each pick it says whether the verdict still
speaks for today's suite (:func:`stale_reasons`: the claim's version, the parameters or the code of its
runs (the transitive code hash of `repro/codehash.py`), or its judged lines changed since the record)
and whether the record was re-judged from stored values rather than run.

Nothing here imports TensorFlow: code hashes are read from the files.
"""
from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from repro import codehash, design, record
from repro import suite as suites


@dataclasses.dataclass
class Selected:
    """The record that speaks for one claim, and how well it speaks for today's suite."""

    id: str
    suite: str
    record: dict            # the whole record as loaded, with '_path' (relative to the results folder)
    path: Path
    entry: dict             # record['claims'][id]
    stale: list[str]        # why the verdict no longer speaks for today's suite; empty when it does
    rejudged: str           # 're-judged, not re-run (...)' for a record judged from stored values

    @property
    def verdict(self) -> str | None:
        return self.entry.get("verdict")

    @property
    def commit(self) -> str:
        return self.record.get("commit", "")


def today() -> dict[str, tuple[suites.Suite, suites.Claim]]:
    """Claim ID -> (suite, claim) in the suite files as they are now (files that do not load are left out)."""
    out: dict[str, tuple[suites.Suite, suites.Claim]] = {}
    for path in suites.suite_paths():
        try:
            s = suites.load(path, check=False)
        except suites.SuiteError:
            continue
        out.update({c.id: (s, c) for c in s.claims})
    return out


def records(results_dir: Path, profile: str = "full") -> list[tuple[dict, Path]]:
    """Every finished record of ``profile`` under ``results_dir``, oldest first (by finish time), each
    with '_path' relative to the folder."""
    out = []
    for p in record.find(results_dir):
        try:
            rec = record.load(p)
        except record.RecordError:
            continue
        if rec["profile"] == profile:
            rec["_path"] = p.relative_to(results_dir).as_posix()
            out.append((rec, p))
    return out


def select(results_dir: Path = record.RESULTS_DIR, profile: str = "full",
           now: dict[str, tuple[suites.Suite, suites.Claim]] | None = None) -> dict[str, Selected]:
    """Claim ID -> the record that speaks for it: the newest ``profile`` record holding the claim.
    In the suites' order (claims no suite has any more last)."""
    now = today() if now is None else now
    picked: dict[str, tuple[dict, Path]] = {}
    for rec, p in records(results_dir, profile):    # oldest first: a newer record replaces an older one
        for cid in rec["claims"]:
            picked[cid] = (rec, p)
    order = [cid for cid in now if cid in picked] + [cid for cid in picked if cid not in now]
    out = {}
    for cid in order:
        rec, p = picked[cid]
        s, c = now.get(cid, (None, None))
        out[cid] = Selected(cid, rec["suite"], rec, p, rec["claims"][cid], stale_reasons(rec, cid, s, c),
                            rejudged_text(rec))
    return out


def _plural(names: list[str]) -> str:
    return f"run{'s' if len(names) > 1 else ''} {', '.join(names)}"


def stale_reasons(rec: dict, cid: str, suite: suites.Suite | None, claim: suites.Claim | None) -> list[str]:
    """Why a record's verdict of a claim no longer speaks for the claim as the suite has it now: its
    version, the parameters or code of a run it names (or a run those use), or its judged lines changed."""
    from repro import runner

    if claim is None or suite is None:
        return ["the claim is in no suite any more"]
    entry = rec["claims"][cid]
    out = []
    if entry.get("version") != claim.version:
        out.append(f"recorded at claim version {entry.get('version')}, the suite now has version {claim.version}")
    profile = rec["profile"]
    params, code, missing = [], [], []
    for run in design.runs_of(suite, claim):
        r = (rec.get("runs") or {}).get(run.id)
        if r is None:
            missing.append(run.id)
        elif r.get("params_hash") != run.params_hash(profile):
            params.append(run.id)
        elif r.get("code_hash") != runner.run_key(suite, run, profile):
            files = changed_files(r, run.experiment)
            code.append(run.id + (f" ({', '.join(files)})" if files else ""))
    if missing:
        out.append(f"{_plural(missing)} not in the record")
    if params:
        out.append(f"parameters of {_plural(params)} changed since the record")
    if code:
        out.append(f"code of {_plural(code)} changed since the record")
    now_rules = {m.name: (m.rule, m.precondition) for m in claim.metrics if m.rule is not None}
    if design.rules_of(entry) != now_rules and not out:
        out.append("its judged lines changed since the record")
    return out


def changed_files(run_entry: dict, experiment: str) -> list[str]:
    """The modules whose source changed since a run was recorded (records that keep ``code_files``)."""
    then = run_entry.get("code_files")
    if not then:
        return []
    module = codehash.experiment_module(experiment)
    now = codehash.file_hashes_now(module) if module else {}
    return sorted(m for m in set(then) | set(now) if then.get(m) != now.get(m))


def rejudged_text(rec: dict) -> str:
    """'re-judged, not re-run (...)' for a record whose verdicts were judged from stored values."""
    rj = rec.get("rejudged")
    if not rj:
        return ""
    at = rj.get("at_commit") or rj.get("commit")
    return (f"re-judged, not re-run: values measured at commit {rec.get('commit')}"
            + (f", judged at commit {at}" if at else "") + " under a later suite")


def stale_text(sel: Selected) -> str:
    """The row's stale mark: '' when the verdict speaks for today's suite."""
    if not sel.stale:
        return ""
    return "stale: " + "; ".join(sel.stale) + " (not yet re-run in the full profile)"


def grouped(selection: dict[str, Selected]) -> list[dict]:
    """The selection as records (each cut down to the claims it speaks for), by suite, then oldest
    first: what the report's tables iterate over. Each keeps '_path'; ``not_rejudged`` keeps only
    claims no record speaks for."""
    by_path: dict[Path, list[Selected]] = {}
    for sel in selection.values():
        by_path.setdefault(sel.path, []).append(sel)
    out = []
    for p, sels in by_path.items():
        rec = sels[0].record
        claims = {s.id: s.entry for s in sels}
        out.append(dict(rec, claims={cid: e for cid, e in rec["claims"].items() if cid in claims},
                        not_rejudged={k: v for k, v in (rec.get("not_rejudged") or {}).items()
                                      if k not in selection}))
    return sorted(out, key=lambda r: (r["suite"], r.get("finished") or ""))


# ---- what git tracks -------------------------------------------------------------------------------

def tracked(results_dir: Path) -> set[Path] | None:
    """The files under ``results_dir`` that git tracks (committed or staged), resolved; None when the
    folder is in no git checkout (then nothing tells a committed record from a local one)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return None
    try:
        inside = subprocess.run(["git", "-C", str(results_dir), "rev-parse", "--is-inside-work-tree"],
                                capture_output=True, text=True, timeout=30)
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return None
        out = subprocess.run(["git", "-C", str(results_dir), "ls-files", "-z", "--", "."],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return {(results_dir / f).resolve() for f in out.stdout.split("\0") if f}
