"""Compare two run records claim by claim, asv-style, with one-character marks."""
from __future__ import annotations

import dataclasses
import math

from repro import verdict

MARKS = {
    "!": "newly failing (verdict got worse)",
    "*": "fixed (verdict got better)",
    "-": "worse beyond tolerance",
    "+": "better beyond tolerance",
    "~": "not comparable (claim version or parameters changed)",
    "?": "in one record only",
    " ": "unchanged",
}
_RANK = {verdict.REPRODUCED: 3, verdict.PARTIAL: 2, verdict.NOT_CHECKABLE: 2, verdict.INCONCLUSIVE: 2,
         verdict.CONTRADICTED: 1, verdict.ERROR: 0, None: 0}


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


def _tolerance(spec: dict, ma: dict, mb: dict, deterministic: bool) -> float | None:
    """Beyond this a change in a metric's mean is real: the claim's own tolerance if it states one,
    otherwise twice the standard error of the difference of the two means (from the seeds' spread).
    Analytic claims are exact. An empirical metric measured on one seed has no spread to judge by:
    None (its change is shown, and only a verdict flip counts)."""
    if spec.get("tolerance") is not None:
        return float(spec["tolerance"])
    sa, sb = ma.get("std"), mb.get("std")
    if sa is not None and sb is not None:
        return 2 * math.sqrt(sa ** 2 / ma["n"] + sb ** 2 / mb["n"])
    if deterministic:
        return 1e-9 * max(abs(ma["mean"]), abs(mb["mean"]), 1e-12)
    return None


def _num(m: dict) -> float | None:
    x = m.get("mean")
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None


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
        if ea["version"] != eb["version"] or ea["params_hash"] != eb["params_hash"]:
            why = (f"claim version {ea['version']} → {eb['version']}" if ea["version"] != eb["version"]
                   else "parameters differ")
            rows.append(Row("~", cid, "", ea["verdict"], eb["verdict"], "", why))
            continue
        ra, rb = _RANK.get(ea["verdict"], 0), _RANK.get(eb["verdict"], 0)
        claim_mark = "!" if rb < ra else "*" if rb > ra else " "
        claim_rows = []
        for name, spec in eb["metric_specs"].items():
            ma, mb = ea["metrics"].get(name, {}), eb["metrics"].get(name, {})
            xa, xb = _num(ma), _num(mb)
            if xa is None or xb is None:
                continue
            better = spec.get("better")
            delta = xb - xa
            tol = _tolerance(spec, ma, mb, eb.get("kind") in ("A", "C"))
            mark, note = " ", ""
            if better and tol is not None:
                note = f"tolerance {tol:.3g}"
                if abs(delta) > tol:
                    mark = "+" if (delta > 0) == (better == "higher") else "-"
            elif better:
                note = "one seed: no spread to judge by"
            if spec.get("rule") or better:
                claim_rows.append(Row(mark, cid, name, f"{xa:.4g}", f"{xb:.4g}", f"{delta:+.3g}", note,
                                      gating=bool(spec.get("rule"))))
        if claim_mark != " " or not claim_rows:
            rows.append(Row(claim_mark, cid, "", ea["verdict"], eb["verdict"], "",
                            f"verdict {ea['verdict']} → {eb['verdict']}" if claim_mark != " " else ""))
        rows.extend(claim_rows)
    return rows


def regressions(rows: list[Row]) -> list[Row]:
    """What got worse: a verdict that flipped, or a judged metric beyond its tolerance."""
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
