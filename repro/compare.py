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
_RANK = {verdict.REPRODUCED: 3, verdict.PARTIAL: 2, verdict.NOT_CHECKABLE: 2,
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


def _tolerance(spec: dict, ma: dict, mb: dict) -> float:
    """Beyond this a change in a metric's mean is real: the claim's own tolerance if it states one,
    otherwise twice the standard error of the difference of the two means (from the seeds' spread)."""
    if spec.get("tolerance") is not None:
        return float(spec["tolerance"])
    sa, sb = ma.get("std"), mb.get("std")
    if sa is not None and sb is not None:
        return 2 * math.sqrt(sa ** 2 / ma["n"] + sb ** 2 / mb["n"])
    scale = max(abs(ma["mean"]), abs(mb["mean"]), 1e-12)
    return 1e-9 * scale  # one seed each: exact, deterministic metrics; any real change counts


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
            tol = _tolerance(spec, ma, mb)
            mark = " "
            if better and abs(delta) > tol:
                improved = (delta > 0) == (better == "higher")
                mark = "+" if improved else "-"
            if spec.get("rule") or better:
                claim_rows.append(Row(mark, cid, name, f"{xa:.4g}", f"{xb:.4g}",
                                      f"{delta:+.3g}", f"tolerance {tol:.3g}" if better else ""))
        if claim_mark != " " or not claim_rows:
            rows.append(Row(claim_mark, cid, "", ea["verdict"], eb["verdict"], "",
                            f"verdict {ea['verdict']} → {eb['verdict']}" if claim_mark != " " else ""))
        rows.extend(claim_rows)
    return rows


def regressions(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.mark in ("!", "-")]
