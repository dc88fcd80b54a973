"""Compare two run records claim by claim, asv-style, with one-character marks.

A claim is compared only when its version and the parameters of every run it judges are the same in
both records (``params_hash``: its runs' hashes joined with '+'); otherwise it is marked '~'."""
from __future__ import annotations

import dataclasses
import math

from repro import record, verdict

MARKS = {
    "!": "newly failing (verdict got worse, or a judged part went from pass to fail)",
    "*": "fixed (verdict got better, or a judged part went from fail to pass)",
    "-": "worse beyond tolerance",
    "+": "better beyond tolerance",
    "~": "not comparable (claim version or parameters changed)",
    "?": "in one record only",
    " ": "unchanged",
}
RANK = {verdict.REPRODUCED: 3, verdict.PARTIAL: 2, verdict.NOT_CHECKABLE: 2, verdict.INCONCLUSIVE: 2,
        verdict.CONTRADICTED: 1, verdict.ERROR: 0, None: 0}
_RANK = RANK
_TIMING_UNITS = {"s", "ms", "s/s"}   # s/s: a ratio of two timings (one op's time over another's)
# wall-clock or CPU-clock measurements, and values read off a clock budget (loss after equal time,
# speed-ups, time-scaling exponents): never bit-identical, never exact
_TIMING_NAMES = ("seconds", "cpu_s", "ms_per", "per_s", "tokens_per", "at_time", "equal_time", "time_exponent",
                 "speedup")


@dataclasses.dataclass
class Row:
    mark: str
    claim: str
    metric: str
    a: str
    b: str
    change: str
    note: str
    gating: bool = True   # False for reported-only metrics: shown, never a regression
    tolerance: str = ""   # the tolerance applied, as shown (the gate)
    source: str = ""      # where it came from: exact / baseline spread / stated tolerance / not gating


def is_timing(name: str, spec: dict) -> bool:
    """A wall-clock measurement (seconds, ms per step, throughput, a value read at a wall-clock budget):
    noisy on a shared machine, so never compared as if it were exact."""
    if str(spec.get("unit") or "").strip().lower() in _TIMING_UNITS:
        return True
    names = f"{name} {spec.get('key') or ''}".lower()
    return any(t in names for t in _TIMING_NAMES)


def _spread(m: dict) -> float | None:
    """Variance of a metric's mean: seed-to-seed spread plus test-set sampling, over n seeds."""
    sd, se, n = m.get("std"), m.get("test_se"), m.get("n") or 1
    if sd is None and se is None:
        return None
    return ((sd or 0.0) ** 2 + (se or 0.0) ** 2) / n


def _tolerance(name: str, spec: dict, ma: dict, mb: dict, deterministic: bool) -> float | None:
    """Beyond this a change in a metric's mean is real: the claim's own tolerance if it states one,
    otherwise twice the standard error of the difference of the two means (from the seeds' spread and
    the test-set sampling error). A deterministic claim's value (kind A, C, F) is exact. A metric
    without spread to judge by -- an empirical metric on one seed, or a timing, which is never exact on
    a shared machine -- has None: its change is shown, and only a verdict or outcome flip counts."""
    if spec.get("tolerance") is not None:
        return float(spec["tolerance"])
    va, vb = _spread(ma), _spread(mb)
    if is_timing(name, spec):   # a timing's tolerance comes from a real spread only, never an exact 0
        return 2 * math.sqrt(va + vb) if va and vb else None
    if va is not None and vb is not None:
        return 2 * math.sqrt(va + vb)
    if deterministic:
        return 1e-9 * max(abs(ma["mean"]), abs(mb["mean"]), 1e-12)
    return None


def _num(m: dict) -> float | None:
    x = m.get("mean")
    if x is None and len(m.get("values") or []) == 1:
        x = m["values"][0]
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _shown(m: dict) -> str:
    vals = m.get("values") or []
    return record.fmt(vals[0]) if len(vals) == 1 else record.fmt(vals)


def deterministic_kind(kind: str | None) -> bool:
    return (kind or "") in ("A", "C", "F")


def compare(a: dict, b: dict) -> list[Row]:
    rows: list[Row] = []
    ids = list(a["claims"]) + [c for c in b["claims"] if c not in a["claims"]]
    for cid in ids:
        ea, eb = a["claims"].get(cid), b["claims"].get(cid)
        if ea is None or eb is None:
            have = "B" if ea is None else "A"
            rows.append(Row("?", cid, "", "" if ea is None else str(ea["verdict"]),
                            "" if eb is None else str(eb["verdict"]), "", f"only in {have}"))
            continue
        if ea["version"] != eb["version"] or ea.get("params_hash") != eb.get("params_hash"):
            why = (f"claim version {ea['version']} → {eb['version']}" if ea["version"] != eb["version"]
                   else "parameters differ")
            rows.append(Row("~", cid, "", ea["verdict"], eb["verdict"], "", why))
            continue
        ra, rb = _RANK.get(ea["verdict"], 0), _RANK.get(eb["verdict"], 0)
        claim_mark = "!" if rb < ra else "*" if rb > ra else " "
        claim_rows = []
        for name, spec in eb["metric_specs"].items():
            ma, mb = ea["metrics"].get(name), eb["metrics"].get(name)
            if not ma or not mb:
                continue
            sa, sb = ma.get("status"), mb.get("status")
            flip = "!" if (sa, sb) == (verdict.PASS, verdict.FAIL) else \
                "*" if (sa, sb) == (verdict.FAIL, verdict.PASS) else ""
            judged = spec.get("rule") is not None
            moved = f"{sa} → {sb}" if judged and sa != sb else ""
            xa, xb = _num(ma), _num(mb)
            if xa is None or xb is None:
                if moved:
                    claim_rows.append(Row(flip or " ", cid, name, _shown(ma), _shown(mb), "", moved))
                continue
            better = spec.get("better")
            delta = xb - xa
            tol = _tolerance(name, spec, ma, mb, deterministic_kind(eb.get("kind")))
            mark, notes = " ", [moved] if moved else []
            if better and tol is not None:
                notes.append(f"tolerance {tol:.3g}")
                if abs(delta) > tol:
                    mark = "+" if (delta > 0) == (better == "higher") else "-"
            elif better:
                notes.append("a timing without spread: shown, not judged" if is_timing(name, spec)
                             else "one seed: no spread to judge by")
            if flip:
                mark = flip
            if judged or better:
                claim_rows.append(Row(mark, cid, name, f"{xa:.4g}", f"{xb:.4g}", f"{delta:+.3g}", "; ".join(notes),
                                      gating=judged))
        if claim_mark != " " or not claim_rows:
            rows.append(Row(claim_mark, cid, "", ea["verdict"], eb["verdict"], "",
                            f"verdict {ea['verdict']} → {eb['verdict']}" if claim_mark != " " else ""))
        rows.extend(claim_rows)
    return rows


def regressions(rows: list[Row]) -> list[Row]:
    """What got worse: a verdict that flipped, a judged part that went from pass to fail, or a judged
    metric beyond its tolerance."""
    return [r for r in rows if r.mark == "!" or (r.mark == "-" and r.gating)]


def find_baseline(records: list[tuple[dict, "object"]], suite: str, profile: str, machine: str,
                  commit: str) -> tuple[dict, object] | None:
    """The newest complete record of ``suite``/``profile`` from another commit, preferring this machine.

    ``records`` are (record, path) pairs, oldest first (as :func:`repro.record.find` returns them)."""
    candidates = [(r, p) for r, p in records
                  if r["suite"] == suite and r["profile"] == profile and r.get("complete") and r["commit"] != commit]
    same_machine = [(r, p) for r, p in candidates if r["machine"] == machine]
    chosen = same_machine or candidates
    return chosen[-1] if chosen else None
