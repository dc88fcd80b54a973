"""What one row says about a claim, for every page that shows one (README, the report, the terminal).

Plain functions over a record's claim entry and the claim as the suite has it now (its presentation
fields: ``short``, ``key``, ``erratum``, ``settle``); no markup and no TensorFlow. The key number
(the chapter's number or words against ours, with the interval that decided), the kind of evidence,
the parts that failed decisively (also under a gate that made the verdict inconclusive), the
chapter's corrections with the record's numbers filled in, and what would settle an open claim and
what it would cost.
"""
from __future__ import annotations

import math
import re
from typing import Any

from repro import record, stats, verdict
from repro.suite import PLACEHOLDER, Claim, headline_of

_SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def _num(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def num(x: Any, digits: int = 3) -> str:
    """A number as a row shows it: 3 significant digits, a power of ten as 10¹², lists shortened."""
    if isinstance(x, bool) or x is None:
        return record.fmt(x)
    if isinstance(x, list):
        return "[" + ", ".join(num(v, digits) for v in x) + "]" if len(x) <= 4 and \
            all(not isinstance(v, list) for v in x) else f"[{len(x)} values]"
    if not _num(x):
        return str(x)
    if float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    if float(x).is_integer() and x > 0 and 10 ** round(math.log10(x)) == x:
        return "10" + str(round(math.log10(x))).translate(_SUP)
    text = f"{x:.{digits}g}"
    if "e" not in text:
        return text
    mant, exp = text.split("e")
    if 0 < int(exp) < 6:                  # 4.54e+03 -> 4540
        return f"{float(text):.0f}"
    return f"{mant}×10{str(int(exp)).translate(_SUP)}"   # 2.56e+07 -> 2.56×10⁷, 3.06e-06 -> 3.06×10⁻⁶


def _pct(x: float) -> str:
    return f"{x * 100:.3g}%"


def interval(m: dict) -> list | None:
    """The interval that decided a part (its level is the claim's), else its 95% CI."""
    return m.get("decision_interval") or m.get("ci95")


def _iv(iv: list | None, f=num) -> str:
    return f"[{f(iv[0])}, {f(iv[1])}]" if iv else ""


def is_exact(entry: dict, rec: dict | None, name: str) -> bool:
    """Does this metric come from a deterministic run (compared exactly, no interval)?"""
    spec = (entry.get("metric_specs") or {}).get(name) or {}
    run = ((rec or {}).get("runs") or {}).get(spec.get("run") or "")
    if run and "deterministic" in run:
        return bool(run["deterministic"])
    m = (entry.get("metrics") or {}).get(name) or {}
    adv = m.get("advantage") or {}
    return not m.get("decision_interval") and not adv.get("decision_interval") and (m.get("n") or 1) <= 1


# ---- the key number ----------------------------------------------------------------------------

def key_metric(entry: dict, claim: Claim | None) -> str:
    """The claim's designated key metric (suite 'key'), else its first judged part, else its first metric."""
    metrics = entry.get("metrics") or {}
    specs = entry.get("metric_specs") or {}
    if claim is not None and claim.key and claim.key in metrics:
        return claim.key
    judged = [n for n, m in metrics.items()
              if m.get("status") not in (None, verdict.INFO) and not (specs.get(n) or {}).get("precondition")]
    return judged[0] if judged else next(iter(metrics), "")


def measured(entry: dict, rec: dict | None, name: str, percent: bool = False) -> str:
    """Our number for one metric: the exact value, 'mean [interval that decided]', or for a paired
    part 'mean vs other (Δ +adv [interval])'."""
    m = (entry.get("metrics") or {}).get(name)
    if not m:
        return ""
    f = _pct if percent else num
    vals = [v for v in m.get("values") or [] if v is not None]
    adv = m.get("advantage") or {}
    spec = (entry.get("metric_specs") or {}).get(name) or {}
    rule = spec.get("rule") or {}
    if adv and _num(adv.get("mean")) and "paired" in rule:
        other = (entry.get("metrics") or {}).get(rule["paired"]["than"]) or {}
        own = f(m["mean"]) if _num(m.get("mean")) else ""
        theirs = f(other["mean"]) if _num(other.get("mean")) else "?"
        sign = "+" if adv["mean"] >= 0 else "-"
        iv = interval(adv)
        return f"{own} vs {theirs} (Δ {sign}{f(abs(adv['mean']))}" + (f" {_iv(iv, f)})" if iv else ")")
    if not vals:
        return ""
    if is_exact(entry, rec, name) or len(vals) == 1 or all(verdict.same(v, vals[0]) for v in vals):
        return f(vals[0]) if _num(vals[0]) else num(vals[0])
    if not _num(m.get("mean")):
        return num(vals[0])
    iv = interval(m)
    return f"{f(m['mean'])} {_iv(iv, f)}".strip()


def chapter_says(entry: dict, claim: Claim | None, name: str, limit: int = 40) -> str:
    """The chapter's number or words for the key metric: the suite's key.chapter, else its 'claimed'."""
    if claim is not None and claim.key_chapter and name == key_metric(entry, claim):
        return claim.key_chapter
    spec = (entry.get("metric_specs") or {}).get(name) or {}
    c = spec.get("claimed")
    if c is None:
        return ""
    text = (_pct(c) if claim is not None and claim.key_percent and _num(c) else num(c)) if not isinstance(c, str) else c
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def line_text(entry: dict, name: str) -> str:
    """The line the key metric is held to, in words ('≥ 0.65', '> rnn_accuracy (paired)')."""
    spec = (entry.get("metric_specs") or {}).get(name) or {}
    return record.rule_text(spec) if spec.get("rule") else ""


def key_part(entry: dict, rec: dict | None, claim: Claim | None) -> dict:
    """{metric, chapter, ours, line, status} of the claim's key metric."""
    name = key_metric(entry, claim)
    percent = bool(claim is not None and claim.key_percent)
    m = (entry.get("metrics") or {}).get(name) or {}
    ours = measured(entry, rec, name, percent)
    if entry.get("verdict") == verdict.NOT_CHECKABLE and m.get("status") in (None, verdict.INFO):
        ours = ""    # what it measured instead is not the claim's number
    return {"metric": name, "chapter": chapter_says(entry, claim, name), "line": line_text(entry, name),
            "ours": ours, "status": m.get("status", "")}


# ---- the kind of evidence ------------------------------------------------------------------------

def _runs(entry: dict, rec: dict | None) -> list[dict]:
    runs = (rec or {}).get("runs") or {}
    return [runs[r] for r in entry.get("run_ids") or [] if r in runs]


def _reports_convergence(runs: list[dict]) -> bool:
    return any(o.get("convergence") for r in runs for o in (r.get("results") or {}).values())


def evidence(entry: dict, rec: dict | None) -> str:
    """What kind of evidence the verdict rests on: exact (architecture) / exact (formula) for
    deterministic runs, open for an inconclusive or uncheckable claim, at equal budget for a claim
    about a budget, empirical (converged, where the runs' curves say so) otherwise."""
    v = entry.get("verdict")
    runs = _runs(entry, rec)
    if v == verdict.NOT_CHECKABLE:
        return "open (not checkable here)"
    if v == verdict.ERROR:
        return "open (the run failed)"
    if runs and all(r.get("deterministic") for r in runs):
        return "exact (formula)" if "F" in (entry.get("kind") or "") else "exact (architecture)"
    if v == verdict.INCONCLUSIVE:
        return "open"
    if entry.get("about_budget"):
        return "at equal budget"
    if _reports_convergence(runs) and not entry.get("unconverged"):
        return "empirical, converged"
    return "empirical"


# ---- decisive misses and errata ------------------------------------------------------------------

def decisive_misses(entry: dict) -> list[str]:
    """The judged parts (preconditions aside) that failed decisively, also where a gate (an unmet
    precondition, an unconverged arm) made the verdict inconclusive: the record's ``decisive_fails``
    ([{part, kind, text}], verdict.decisive_fails) where it has them, else the parts whose outcome is fail."""
    named = entry.get("decisive_fails")
    if isinstance(named, list) and all(isinstance(f, dict) and "part" in f for f in named):
        return [f["part"] for f in named]
    specs = entry.get("metric_specs") or {}
    return [n for n, m in (entry.get("metrics") or {}).items()
            if m.get("status") == verdict.FAIL and not (specs.get(n) or {}).get("precondition")]


def needs_erratum(entry: dict) -> bool:
    """Contradicted in whole or part, or inconclusive with a part that failed decisively."""
    v = entry.get("verdict")
    return v in (verdict.CONTRADICTED, verdict.PARTIAL) or (v == verdict.INCONCLUSIVE and bool(decisive_misses(entry)))


def verdict_text(entry: dict) -> str:
    """The verdict as a row says it: 'inconclusive; a part fails' when a gate hides a decisive miss."""
    v = entry.get("verdict") or ""
    return f"{v}; a part fails" if v == verdict.INCONCLUSIVE and decisive_misses(entry) else v


def reason(entry: dict) -> str:
    """The one-line reason: the deciding part, and the decisive misses a gate would otherwise hide."""
    text = entry.get("deciding") or ""
    misses = decisive_misses(entry)
    named = isinstance(entry.get("decisive_fails"), list)    # the record's deciding line names them already
    if entry.get("verdict") == verdict.INCONCLUSIVE and misses and not named:
        text += f"; but {', '.join(misses)} fail{'s' if len(misses) == 1 else ''} decisively"
    return text


def placeholder_value(entry: dict, name: str, form: str = "value") -> str:
    """One {=metric|form} of an erratum, from the record."""
    m = (entry.get("metrics") or {}).get(name) or {}
    vals = [v for v in m.get("values") or [] if v is not None]
    if not vals:
        return "(not measured in this record)"
    mean = m["mean"] if _num(m.get("mean")) else vals[0]
    adv = m.get("advantage") or {}
    if form == "n":
        return str(m.get("n") or len(vals))
    if form in ("adv", "adv_iv"):
        if not _num(adv.get("mean")):
            return "(no paired advantage in this record)"
        return f"{adv['mean']:+.3g}" if form == "adv" else _iv(interval(adv)) or f"{adv['mean']:+.3g}"
    if form in ("pct", "pct_iv"):
        if not _num(mean):
            return num(mean)
        if form == "pct":
            return _pct(mean)
        return _iv(interval(m), _pct) or _pct(mean)
    if form == "iv":
        return _iv(interval(m)) or num(mean)
    if all(verdict.same(v, vals[0]) for v in vals):
        return num(vals[0])
    return num(mean)


def fill(text: str, entry: dict) -> str:
    """An erratum's text with its {=metric} and {=metric|format} placeholders replaced by the record's numbers."""
    return PLACEHOLDER.sub(lambda mt: placeholder_value(entry, mt.group(1), mt.group(2) or "value"), text or "")


def corrections(entry: dict, claim: Claim | None) -> list[dict]:
    """The suite's corrections of the chapter for this claim, numbers filled in from the record:
    [{line, quote, zh, en, measured}] (empty when the suite has none)."""
    if claim is None or not claim.erratum:
        return []
    return [{"line": it["line"], "quote": it["quote"], "zh": fill(it["zh"], entry), "en": fill(it["en"], entry),
             "measured": fill(it.get("measured") or "", entry)} for it in claim.erratum]


# ---- what would settle an open claim ------------------------------------------------------------

def duration(seconds: float) -> str:
    s = max(0.0, float(seconds or 0))
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


_FACTOR = re.compile(r"about\s+([0-9.]+)\s*[x×]")


def _seeds_needed_share(m: dict, q: float) -> int | None:
    """Seeds at which an existence part's exact interval would clear its share q if the share of seeds
    it saw held (the interval is asymmetric: searched, not scaled); None beyond 100 x the seeds run."""
    share, n, level = m.get("share", m.get("mean")), m.get("n"), m.get("interval_level") or 0.95
    if not _num(share) or not n:
        return None
    if abs(share - q) <= 1e-12:
        return 0
    for seeds in range(int(n), 100 * int(n) + 1):
        lo, hi = stats.clopper_pearson(round(share * seeds), seeds, level)
        if (lo >= q) if share > q else (hi < q):
            return seeds
    return None


def _seeds_needed(m: dict, spec: dict) -> int | None:
    """Seeds at which an undecided part's interval would clear its line if its mean and spread held
    (the interval's half-width shrinks as 1/√n); 0 when the mean sits on the line, None when the
    record cannot say."""
    rule = spec.get("rule") or {}
    if not rule:
        return None
    kind = verdict.rule_kind(rule)
    if kind == "in_seeds":
        return _seeds_needed_share(m, rule["in_seeds"]["min_share"])
    if kind not in ("paired", "at_least", "at_most", "equal", "approx", "between"):
        return None
    src = m.get("advantage") if kind == "paired" else m
    iv, centre, n = interval(src or {}), (src or {}).get("mean"), (src or {}).get("n") or m.get("n")
    if not iv or not _num(centre) or not n:
        return None
    t = rule[kind]
    if kind == "paired":
        lines = [0.0]
    elif kind in ("at_least", "at_most", "equal"):
        lines = [t] if _num(t) else []
    elif kind == "approx":
        lines = [t - rule["tol"], t + rule["tol"]]
    else:
        lines = list(t)
    if not lines:
        return None
    dist = min(abs(centre - x) for x in lines)
    half = (iv[1] - iv[0]) / 2
    if half <= 0:
        return None
    if dist <= 1e-12 * max(1.0, abs(centre)):
        return 0
    return math.ceil(n * (half / dist) ** 2)


_UNCONVERGED = re.compile(r"^(?P<head>.*?) on (?P<k>\d+) of (?P<n>\d+) seeds")
_STATE_WORDS = ("unstable", "still improving", "too short to tell")


def _complaints(entry: dict, specs: dict) -> list[dict]:
    """The unsettled models that hold back a part which is not a capability part (a capability part is
    decided by seeds, settled or not): {what, k, n, states, factor, points} each, read from the entry's
    convergence models. Entries from before the models carried `gated`, `factor` and `min_points`
    (version-2 records) give them in words, parsed here; entries with no models at all, from their
    `unconverged` lines."""
    def not_only_capability(parts: list[str]) -> bool:
        return not parts or not all((specs.get(n) or {}).get("capability") for n in parts)

    def factor_in(text: str) -> float | None:
        found = [float(x) for x in _FACTOR.findall(text or "")]
        return max(found) if found else None

    def points_in(text: str) -> str:
        need = re.search(r"needs at least (\d+) points", text or "")
        return need.group(1) if need else ""

    models = entry.get("convergence") or {}
    out = []
    if models:
        for what, m in models.items():
            if not m.get("gates"):
                continue
            gated = m.get("gated", m.get("why", "")[len("gates "):].split(", "))
            if not not_only_capability(gated):
                continue
            unsettled = [st for st in (m.get("states") or {}).values() if st in _STATE_WORDS]
            points = m.get("min_points")
            out.append({"what": what, "k": len(unsettled), "n": len(m.get("states") or {}),
                        "states": [w for w in _STATE_WORDS if w in unsettled],
                        "factor": m["factor"] if "factor" in m else factor_in(m.get("estimate")),
                        "points": str(points) if points else points_in(m.get("estimate"))})
        return out
    for u in entry.get("unconverged") or []:
        gated = re.search(r"; gates (.+)$", u)
        if not not_only_capability([n.strip() for n in gated.group(1).split(",")] if gated else []):
            continue
        mt = _UNCONVERGED.match(u)
        head = mt.group("head") if mt else ""
        states = [w for w in _STATE_WORDS if f" {w}" in f" {head}"]
        out.append({"what": head.split(f" {states[0]}")[0] if states else head,
                    "k": mt.group("k") if mt else "?", "n": mt.group("n") if mt else "?", "states": states,
                    "factor": factor_in(u), "points": points_in(u)})
    return out


def _settle_unconverged(complaints: list[dict], secs: float, where: str) -> list[str]:
    """What the convergence check's complaints ask for, by the state it read: a budget it can size
    (still improving), more checks on the curve (too short to tell), or a training that does not swing
    or worsen (unstable), which more of the same budget does not give. One phrase per kind, naming
    every model it concerns."""
    factors, unsized, unstable, short = [], False, [], {}
    for c in complaints:
        if "unstable" in c["states"]:
            unstable.append(f"{c['what']} on {c['k']} of {c['n']} seeds")
        if c["states"] == ["too short to tell"]:
            short.setdefault(c["points"], []).append(c["what"])
        elif c["factor"] is not None:
            factors.append(c["factor"])
        elif "unstable" not in c["states"]:
            unsized = True
    out = []
    if factors:
        f = max(factors)
        out.append(f"about {f:g}× the training budget (~{duration(f * secs)} on {where})")
    elif unsized:
        out.append("a longer training budget (the curves give no estimate)")
    if unstable:
        out.append(f"a training that is stable on every seed (read unstable: {'; '.join(unstable)}; a curve that "
                   "swings or worsens is not settled by a longer budget alone)")
    for need, whats in short.items():
        curves = f"{whats[0]}'s curve" if len(whats) == 1 else f"the curves of {', '.join(whats)}"
        out.append(f"at least {need} checks on {curves} (fewer now)" if need else
                   f"more checks on {curves} (too few to read)")
    return out


def settle(entry: dict, rec: dict | None, claim: Claim | None) -> str:
    """What would settle an open claim and its cost on the machine that made the record: the suite's
    word where the record cannot say (a device, a new design), the budget the convergence check
    asks for, the seeds an undecided part needs."""
    out = []
    if claim is not None and claim.settle:
        out.append(claim.settle)
    if entry.get("verdict") == verdict.NOT_CHECKABLE:
        if entry.get("reason") and not out:
            out.append(entry["reason"])
        return "; ".join(out)
    secs = float(entry.get("seconds") or 0.0)
    where = ((rec or {}).get("env") or {}).get("device") or "the recording machine"
    specs = entry.get("metric_specs") or {}
    out += _settle_unconverged(_complaints(entry, specs), secs, where)
    undecided = [(n, m) for n, m in (entry.get("metrics") or {}).items()
                 if m.get("status") == verdict.UNDECIDED and not (specs.get(n) or {}).get("precondition")]
    per_seed = secs / max(1, entry.get("n_seeds") or 1)
    for n, m in undecided:
        need = _seeds_needed(m, specs.get(n) or {})
        have = entry.get("n_seeds") or 0
        if need is None:
            out.append(f"{n}: more seeds (the record gives no interval to size them by)")
        elif need > 100 * max(1, have):
            out.append(f"{n}: its mean is too close to the line for seeds to decide (about {need} needed); "
                       "an equivalence margin or a sharper design would")
        elif need:
            out.append(f"{n}: about {need} seeds, now {have} (~{duration((need - have) * per_seed)} more on {where})")
        else:
            out.append(f"{n}: its mean sits on the line; seeds cannot decide it without an equivalence margin")
    bad_pre = [n for n, m in (entry.get("metrics") or {}).items()
               if (specs.get(n) or {}).get("precondition") and m.get("status") != verdict.PASS]
    if bad_pre and not (claim is not None and claim.settle):
        out.append(f"a design in which {', '.join(bad_pre)} holds (the experiment did not reach the state the "
                   "claim is about)")
    return "; ".join(out)


def headline(entry: dict, claim: Claim | None) -> str:
    """The claim in a few words: the suite's 'short', else the claim's first clause."""
    return claim.headline if claim is not None else headline_of(entry.get("claim") or "")
