"""Convergence, measured: what state did a training run end in, read from its curve as an expert reads it?

``check(curve, budget=...)`` gives every monitored curve one of six **states** (rule version 2):

- ``solved``: the curve ended at or beyond a stated ``floor`` (a loss at or below it; with
  ``higher=True``, a score at or above it). Nothing is left to learn: counts as converged.
- ``converged``: the smoothed curve is flat over its tail.
- ``stalled``: flat, at or worse than a stated ``bad`` value (the trivial baseline, chance): counts as
  converged, because more of the same training would not move it; for a claim that a model fails
  (degradation, "cannot") it is the finding itself.
- ``unstable``: the curve ends worse than its best beyond its noise, its tail trends the wrong way,
  it swings by more than five flat bands around its trend without a clear trend, or it diverged.
  Not converged.
- ``still improving``: the tail still moves the right way beyond the flat band and the noise. Not
  converged; the entry's ``estimate`` says what budget would settle it, where the curve tells.
- ``too short to tell``: fewer than ``min_points`` points (5) to judge. Not converged; the estimate says
  how many checks the budget needs.

How the curve is read (each step is in the entry's ``rule`` and ``detail``):

1. Scale. Losses (lower is better, all values > 0) are read as log10 (``log=None`` picks it; a fall
   from 0.02 to 0.01 counts as much as one from 2 to 1); other curves on their own scale, with
   ``higher=True`` for accuracies, mode counts and shares.
2. The end level is the median of the last three points (one spike does not move it); the
   smoothed curve is a running median of three.
3. The tail is the last ``tail`` share of the points (20%, at least three). Its trend is the
   Theil–Sen slope (the median of the pairwise slopes: one spike does not move it) times its
   length, on the smoothed curve. The flat band is ``tol``: a 5% change of the value on a log scale, else 5% of the
   larger of the smoothed curve's range and its end level. The noise is the robust spread
   (1.4826 × median absolute deviation) of the curve around its smoothed self over its second
   half; a trend within two of its standard errors counts as flat.
4. A schedule that cuts the learning rate flattens a curve mechanically, so a run with one passes
   ``phase_end``: the number of points of its base-rate phase (before the first cut; for a smooth
   decay, until the rate has halved). Flat, unstable and still improving are judged on that phase;
   solved on the whole curve.

The entry keeps the curve (compact: 4 significant digits, at most ``MAX_STORED`` points, block means
beyond) and the arguments, so ``restate`` judges it again under a later rule and a plot can show it.

Which models gate a claim (``gate``): an entry lists the metrics its model produces (``metrics=``,
names or fnmatch patterns of the run's metric keys; without it, every metric of its run). Only
models that a claim's judged part reads gate it: the part's own metric, and for a paired rule the
metric it is compared with. Direction matters: a part the suite marks ``capability: true`` ("reaches
≥ X", "can do T") that passes is shown even by an unsettled model; "does not reach", "A beats B" and
"no difference" need settled (converged, solved or stalled) models, unless the claim is about its
budget (the suite's ``about_budget: {reason: ...}``), where no model gates it.
"""
from __future__ import annotations

import fnmatch
import math
import statistics
from typing import Any, Iterable, Sequence

VERSION = 2
CONVERGED, SOLVED, STALLED = "converged", "solved", "stalled"
UNSTABLE, IMPROVING, TOO_SHORT = "unstable", "still improving", "too short to tell"
STATES = (SOLVED, CONVERGED, STALLED, UNSTABLE, IMPROVING, TOO_SHORT)
SETTLED = (SOLVED, CONVERGED, STALLED)        # the states that count as converged
MIN_POINTS = 5
MAX_STORED = 250                              # points of a curve kept in the record
OSCILLATION = 5                               # swings beyond this many flat bands: unstable


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}") if math.isfinite(x) else x


def _num(x: float) -> str:
    return f"{x:.4g}"


def _median3(z: list[float]) -> list[float]:
    """Running median of three; the first point is kept, the last is the median of the last three."""
    n = len(z)
    if n < 3:
        return list(z)
    out = [z[0]] + [statistics.median(z[i - 1:i + 2]) for i in range(1, n - 1)]
    return out + [statistics.median(z[-3:])]


def theil_sen(z: Sequence[float]) -> float:
    """The median of the slopes between every pair of points (per point); 0 for fewer than two."""
    slopes = [(z[j] - z[i]) / (j - i) for i in range(len(z)) for j in range(i + 1, len(z))]
    return statistics.median(slopes) if slopes else 0.0


def _compact(ys: list[float]) -> tuple[list[float], int]:
    """The curve as stored: 4 significant digits; block means when longer than MAX_STORED."""
    k = max(1, math.ceil(len(ys) / MAX_STORED))
    if k > 1:
        ys = [sum(ys[i:i + k]) / len(ys[i:i + k]) for i in range(0, len(ys), k)]
    return [_sig(y) for y in ys], k


def _budget_units(n: int, unit_per_point: float | None, unit: str) -> str:
    return f" (~{_num(n * unit_per_point)} {unit})".replace(" )", ")") if unit_per_point else ""


def check(curve: Sequence[float | None], *, budget: str, tail: float = 0.2, tol: float = 0.05,
          higher: bool = False, unit_per_point: float | None = None, unit: str = "",
          log: bool | None = None, floor: float | None = None, bad: float | None = None,
          phase_end: int | None = None, min_points: int = MIN_POINTS,
          metrics: Iterable[str] | None = None) -> dict:
    """Judge one training curve (one value per epoch or per check, in order): its ``state``.

    budget: what was spent ('40 epochs', '6000 G steps'); unit_per_point and unit turn estimates into
        that unit (150 steps per point, 'steps').
    tail, tol: the tail's share of the points (at least 3) and the flat band (a 5% change of the
        value on a log scale; else 5% of the larger of the curve's range and its end level).
    higher: the curve improves upwards (accuracy, modes, a share).
    log: judge log10 of the values; None: yes for a lower-is-better curve whose values are all > 0.
    floor: the value that counts as solved (reached: loss <= floor, or score >= floor with higher),
        judged on the end level of the whole curve. State the reason at the call site.
    bad: a flat curve at or worse than this value is stalled rather than converged (the trivial
        baseline, chance).
    phase_end: with a learning-rate schedule, the number of points of the base-rate phase (before the
        first cut); flatness is judged there, because the cuts flatten any curve.
    min_points: fewer points than this (in the judged phase) are 'too short to tell'.
    metrics: the metric keys (or fnmatch patterns) of the run's results that this model produces;
        only claims judging one of them are gated by it (``gate``). None: every metric of the run.

    Returns {state, converged, rule, budget, tail_change, estimate, detail, level, curve, args,
    version[, metrics, curve_block]}; ``converged`` is True for solved, converged and stalled."""
    args = {"tail": tail, "tol": tol, "higher": higher, "log": log, "floor": floor, "bad": bad,
            "phase_end": phase_end, "min_points": min_points, "unit_per_point": unit_per_point, "unit": unit}
    given = [float(y) for y in curve if y is not None]
    diverged = bool(given) and not math.isfinite(given[-1])
    ys = [y for y in given if math.isfinite(y)]
    if log is None:
        log = not higher and bool(ys) and min(ys) > 0
    elif log and ys and min(ys) <= 0:
        log = False                                   # a log scale needs positive values
    sign = -1.0 if higher else 1.0

    def g(v: float) -> float:                         # onto the judging scale: lower is better
        return sign * (math.log10(v) if log else v)

    def back(zv: float) -> float:                     # from the judging scale to the value
        return 10 ** (sign * zv) if log else sign * zv

    stored, block = _compact(ys)
    out: dict[str, Any] = {"state": None, "converged": False, "rule": "", "budget": budget, "tail_change": None,
                           "estimate": "", "detail": "", "level": _sig(statistics.median(ys[-3:])) if ys else None,
                           "curve": stored, "args": args, "version": VERSION}
    if block > 1:
        out["curve_block"] = block
    if metrics is not None:
        out["metrics"] = list(metrics)
    scale = "log10 of the value" if log else "the value"
    band_text = "5% of the value" if log else "5% of the curve's range or end level"
    if tol != 0.05:
        band_text = band_text.replace("5%", f"{tol:.0%}")
    phase_text = f"; judged on the base-rate phase (its first {phase_end} of {len(ys)} points)" if phase_end else ""
    out["rule"] = (f"convergence rule v{VERSION} on {scale}{' (higher is better)' if higher else ''}"
                   + (f": solved at {'>=' if higher else '<='} {_num(floor)}" if floor is not None else ":")
                   + f" flat when the last {tail:.0%} of the points (>= 3) move less than {band_text} or their noise"
                   + (f"; stalled when flat at {'<=' if higher else '>='} {_num(bad)}" if bad is not None else "")
                   + f"; unstable when worse than its best beyond the noise or swinging; at least {min_points} points"
                   + phase_text)

    def done(state: str, detail: str, estimate: str = "") -> dict:
        out.update(state=state, converged=state in SETTLED, detail=detail, estimate=estimate)
        return out

    if diverged:
        return done(UNSTABLE, f"diverged: the curve ends in a non-finite value after {len(ys)} finite points")
    if floor is not None and ys:
        end = statistics.median(ys[-3:]) if len(ys) >= 3 else ys[-1]
        if (end >= floor) if higher else (end <= floor):
            return done(SOLVED, f"ended at {_num(end)}, {'at or above' if higher else 'at or below'} the floor "
                                f"{_num(floor)} (median of the last {min(3, len(ys))} points)")
    judged = ys[:phase_end] if phase_end else ys
    n = len(judged)
    if n < min_points:
        where = "the base-rate phase" if phase_end else "the curve"
        every = ""
        if unit_per_point:
            every = f": check at least every {_num(n * unit_per_point / min_points)} {unit}".rstrip() if n else ""
        return done(TOO_SHORT, f"{where} has {n} point{'s' if n != 1 else ''}; the rule needs {min_points}",
                    f"needs at least {min_points} points on {where} (it has {n}){every}")
    z = [g(y) for y in judged]
    s = _median3(z)
    k = min(n, max(3, round(tail * n)))
    change = theil_sen(s[-k:]) * k                    # the smoothed tail's trend over its window (< 0: improving)
    half = n // 2
    noise = 1.4826 * statistics.median([abs(a - b) for a, b in zip(z[half:], s[half:])])
    end_z = statistics.median(z[-3:])
    band = math.log10(1 + tol) if log else tol * max(max(s) - min(s), abs(end_z))
    se = noise * math.sqrt(12 * k / (k * k - 1))
    flat = max(band, 2 * se)
    worse_by = end_z - min(s)
    out["tail_change"] = round(-change, 4)            # in the judging scale, > 0: improved
    unit_z = "decades" if log else "(the curve's units)"
    verb = "improved" if change < 0 else "worsened"
    said = (f"over its last {k} points the tail {verb} by {abs(change):.3g} {unit_z} (flat within ±{flat:.3g}); "
            f"noise ±{noise:.3g}; end {_num(statistics.median(judged[-3:]))}, best {_num(back(min(s)))}")
    if change > flat or worse_by > max(2 * band, 3 * noise):
        why = (f"ends {worse_by:.3g} {unit_z} worse than its best" if worse_by > max(2 * band, 3 * noise)
               else "its tail trends the wrong way")
        return done(UNSTABLE, f"worsening: {why}; {said}")
    if change >= -flat and noise > OSCILLATION * band:
        return done(UNSTABLE, f"oscillating: swings of ±{noise:.3g} {unit_z} around its trend, over "
                              f"{OSCILLATION}x the ±{band:.3g} band; {said}")
    if change >= -flat:
        level = statistics.median(judged[-3:])
        if bad is not None and (g(level) >= g(bad) - flat if not (log and bad <= 0) else level >= bad):
            return done(STALLED, f"flat at {_num(level)}, no better than {_num(bad)}; {said}")
        return done(CONVERGED, f"flat; {said}")
    # still improving: extrapolate the tail's slowing-down (the window before the tail against the tail)
    what = "the base-rate phase" if phase_end else "the budget"
    estimate = f"not slowing down over the last {2 * k} points: no budget estimate from this curve"
    if n >= 2 * k:
        before = theil_sen(s[-2 * k:-k]) * k
        if before < change < 0:
            q = change / before
            windows = math.ceil(math.log(flat / -change) / math.log(q)) if q > 0 else 1
            factor = 1 + max(1, windows) * k / n
            nice = next(f for f in (1.5, 2, 3, 4, 6, 8, 16, 32, 64, 128, float("inf")) if f >= factor)
            if math.isinf(nice):
                estimate = f"more than 128x {what} at the rate the tail slows down"
            else:
                estimate = f"about {nice:g}x {what}{_budget_units(int(nice * n), unit_per_point, unit)} would settle it"
    return done(IMPROVING, f"improving: {said}", estimate)


def by_rule(state: str, *, rule: str, budget: str, detail: str = "", estimate: str = "",
            curve: Sequence[float] | None = None, metrics: Iterable[str] | None = None) -> dict:
    """An entry whose state another stated rule decided (early stopping fired, a task solved on its
    validation set, a target reached), in the same form as ``check``'s."""
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    ys = [float(y) for y in (curve or []) if y is not None and math.isfinite(float(y))]
    out = {"state": state, "converged": state in SETTLED, "rule": rule, "budget": budget, "tail_change": None,
           "estimate": estimate, "detail": detail, "level": _sig(statistics.median(ys[-3:])) if ys else None,
           "curve": _compact(ys)[0], "args": None, "version": VERSION}
    if metrics is not None:
        out["metrics"] = list(metrics)
    return out


def from_history(history, *, monitor: str = "loss", budget: str | None = None, **kw) -> dict:
    """The same check on a Keras ``History`` (``fit``'s return value)."""
    curve = history.history.get(monitor, [])
    higher = kw.pop("higher", "acc" in monitor)
    return check(curve, budget=budget or f"{len(curve)} epochs", higher=higher, **kw)


def from_early_stopping(history, stop, *, patience: int, epochs: int, metrics: Iterable[str] | None = None,
                        **kw) -> dict:
    """A model trained with early stopping on ``val_loss``: converged when the stop fired; otherwise
    the same rule on the validation loss it watches (a training loss still falls when it stops)."""
    ran = len(history.history["loss"])
    budget = f"{ran} of at most {epochs} epochs"
    if stop.stopped_epoch > 0:
        return by_rule(CONVERGED, rule=f"early stopping fired: val_loss did not improve for {patience} epochs",
                       budget=budget, detail=f"stopped after {ran} epochs",
                       curve=history.history.get("val_loss"), metrics=metrics)
    conv = from_history(history, monitor="val_loss", budget=budget, metrics=metrics, **kw)
    conv["rule"] = "val_loss (what early stopping watches): " + conv["rule"]
    return conv


def settled(state: str | None) -> bool:
    return state in SETTLED


def restate(c: dict) -> dict:
    """A stored entry under the current rule: re-judged from its curve and arguments where it has
    them; an older entry (a summary without a state) mapped onto the states it can support."""
    if c.get("curve") is not None and c.get("args") and c.get("version") != VERSION:
        new = check(c["curve"], budget=c.get("budget", ""), **c["args"],
                    metrics=c.get("metrics"))
        return new
    if c.get("state") in STATES:
        return c
    rule = c.get("rule") or ""
    if c.get("converged"):
        state = SOLVED if rule.startswith("solved") else CONVERGED
    elif (c.get("estimate") or "").startswith("too few points"):
        state = TOO_SHORT
    else:
        state = IMPROVING
    return dict(c, state=state, detail=(c.get("detail") or "")
                + "judged by the stored summary of the version-1 rule (no curve stored)")


# ---- which models gate a claim ---------------------------------------------------------------

def problems(entries: dict, metric_keys: Iterable[str]) -> list[str]:
    """What is wrong with an experiment's convergence entries, one line each: an entry that is not a
    check (no state), or a ``metrics`` name or pattern that matches none of the metrics it returned."""
    keys = list(metric_keys)
    out = []
    for label, c in entries.items():
        if not isinstance(c, dict) or (c.get("state") not in STATES and not isinstance(c.get("converged"), bool)):
            out.append(f"convergence entry '{label}' has no state: build it with repro.convergence.check "
                       f"(or by_rule)")
            continue
        for pat in c.get("metrics") or []:
            if not any(fnmatch.fnmatchcase(k, pat) for k in keys):
                out.append(f"convergence entry '{label}' names metric '{pat}', which matches none the "
                           f"experiment returned")
    return out


def _than(rule: Any) -> str | None:
    """The metric a paired rule compares with ({paired: {than: M}}, {paired_within: {than: M}}, ...)."""
    if isinstance(rule, dict):
        for v in rule.values():
            if isinstance(v, dict) and isinstance(v.get("than"), str):
                return v["than"]
    return None


def produces(c: dict, key: str) -> bool:
    """Does the model of entry ``c`` produce metric ``key`` of its run (its ``metrics`` patterns)?"""
    pats = c.get("metrics")
    return pats is None or any(fnmatch.fnmatchcase(key, p) for p in pats)


def summary(states: dict[str, str]) -> str:
    """'solved 3/3' or 'converged 2/3, still improving 1/3'."""
    n = len(states)
    counts = {s: sum(1 for v in states.values() if v == s) for s in STATES}
    return ", ".join(f"{s} {c}/{n}" for s, c in counts.items() if c)


def gate(entry: dict, runs: dict[str, dict], seeds: list[str], outcomes: dict[str, dict]) -> dict:
    """The models a claim's judged parts read, their states over the seeds, and which of them gate it.

    entry: the claim entry (metric_specs, kind, about_budget, run_ids); runs: the record's run entries;
    seeds: the seeds judged; outcomes: metric name -> its judged result (``status``).
    Returns {"models": {run/label: {states, summary, feeds, gates, why, budget, estimate}},
    "unconverged": [one line per gating model]}: the lines make the verdict inconclusive."""
    specs = entry.get("metric_specs") or {}
    judged = {n: s for n, s in specs.items() if s.get("rule") and not s.get("precondition")}
    reads: dict[str, list[str]] = {}                 # part -> the metric names it reads
    for n, s in judged.items():
        reads[n] = [n] + ([_than(s["rule"])] if _than(s["rule"]) in specs else [])
    models: dict[str, dict] = {}
    lines: list[str] = []
    trained = "E" in (entry.get("kind") or "")
    for rid in dict.fromkeys(entry.get("run_ids") or []):
        r = runs.get(rid)
        if not r:
            continue
        keys = ["0"] if r.get("deterministic") else seeds
        labels: dict[str, dict[str, dict]] = {}
        for k in keys:
            for label, c in ((r["results"].get(k) or {}).get("convergence") or {}).items():
                labels.setdefault(label, {})[k] = restate(c)
        for label, per in labels.items():
            first = next(iter(per.values()))
            feeds = sorted({part for part, names in reads.items()
                            for nm in names if specs[nm]["run"] == rid and produces(first, specs[nm]["key"])})
            produced = [nm for nm, sp in specs.items() if sp["run"] == rid and produces(first, sp["key"])]
            states = {k: c.get("state") for k, c in per.items()}
            unsettled = [k for k, st in states.items() if not settled(st)]
            need = [p for p in feeds if not (specs[p].get("capability") and outcomes.get(p, {}).get("status") == "pass")]
            if not feeds:
                why = "reported: no judged part reads it"
            elif not unsettled:
                why = "settled"
            elif not trained:
                why = "not a trained-model claim"
            elif entry.get("about_budget"):
                why = "the claim is about its budget"
            elif not need:
                why = "its capability parts pass before it settled"
            else:
                why = "gates " + ", ".join(need)
            bad = per[unsettled[0]] if unsettled else first
            model = {"states": states, "summary": summary(states), "feeds": feeds, "metrics": produced,
                     "gates": why.startswith("gates"), "why": why,
                     "budget": first.get("budget", ""), "estimate": bad.get("estimate", "")}
            models[f"{rid}/{label}"] = model
            if model["gates"]:
                st = sorted({states[k] for k in unsettled}, key=STATES.index)
                est = bad.get("estimate") or ""
                lines.append(f"{rid}/{label} {' / '.join(st)} on {len(unsettled)} of {len(states)} seeds "
                             f"({model['budget']}{'; ' + est if est else ''}); {why}")
    return {"models": models, "unconverged": lines}


def states_text(models: dict[str, dict], metric: str | None = None) -> str:
    """Short text for a table cell: the states of the models feeding ``metric`` (all when None)."""
    items = [(name, m) for name, m in models.items()
             if metric is None or metric in m["feeds"] or metric in m.get("metrics", ())]
    return "; ".join(f"{name.split('/', 1)[1]}: {m['summary']}" for name, m in items)


def budget_text(models: dict[str, dict]) -> str:
    """The budgets of a claim's models that feed judged parts, for 'at equal budget (...)'."""
    return "; ".join(dict.fromkeys(m["budget"] for m in models.values() if m["feeds"] and m["budget"]))
