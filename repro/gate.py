"""The regression gate behind `repro check`: which baseline, which tolerance, what regressed, what to print.

Plain functions of records (no TensorFlow, no terminal): :func:`plan` finds the baseline record of
each selected suite before anything runs; :func:`compare` sets this run's record beside it; the
returned :class:`Outcome` says what regressed and gives the lines to print.

Each judged metric of a claim, and each reported one that names a ``better:`` direction (a headline
number), is compared with the baseline in one of these ways (its *source*):

``exact``
    the run that measures it has the baseline's code hash and parameter hash, and the environment is
    the baseline's (TensorFlow, Keras, NumPy, Python, CPU model, device): CPU runs here are
    bit-identical, so each seed's value must equal the baseline's value for that seed, and any change
    is a finding (whatever its direction).
``stated tolerance``
    the suite gives the metric a ``tolerance:``: a value worse than the baseline's mean by more than it.
``baseline spread``
    the baseline holds several seeds of the run (the committed smoke baselines are made with
    ``--seeds 5`` even though CI runs one): a value is a regression when it lies beyond the baseline's
    mean by more than ``max(K_SD · sd, floor)`` in the bad direction, sd being the baseline's per-seed
    standard deviation and floor ``max(FLOOR_REL · |mean|, FLOOR_ABS)``. The bad direction is the
    metric's ``better`` (or its rule's); for an ``approx`` line it is away from the line; a metric with
    no order gates on a change either way.
``snapshot``
    a deterministic value (like a snapshot test): every value of a deterministic run, and a value of
    another run that every baseline seed gave alike and that is structural (an integer, a text, or a
    list of them: a parameter count, a shape; where the environment differs from the baseline's, only
    those named like one: params, shape, size, layers ...). Any change is a finding that fails the gate
    (numbers to 1e-6) until the baseline is regenerated on purpose: a kernel size edited moves the
    parameter count while accuracy stays within noise.
``outcome only``
    a deterministic run's value the baseline lacks: its outcome gates (pass → fail), its number not.
``not gating``
    a timing (seconds, ms, throughput, a value read at a wall-clock budget: never exact, and a shared
    machine's noise is not a seed spread); a non-deterministic run with one baseline seed and changed
    code (no spread to judge by).

Besides the numbers, a claim whose verdict got worse, or a judged part that went from pass to fail,
is a regression; the baseline's verdict is first re-judged on this run's seeds (a 5-seed baseline
decides parts that one seed leaves undecided, which is not a regression). A change that only timings
made does not gate.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any, Iterable

from repro import compare as cmp
from repro import record, stats, verdict

K_SD = 4.0            # how many baseline standard deviations a value may move before it is a regression
FLOOR_REL = 0.01      # ... but never less than 1% of the baseline mean
FLOOR_ABS = 1e-12     # ... or this (a mean of zero)
ENV_KEYS = ("tensorflow", "keras", "numpy", "python", "cpu", "device")

EXACT, STATED, SPREAD = "exact", "stated tolerance", "baseline spread"
OUTCOME = "outcome only (deterministic run, code changed)"
SNAPSHOT = "snapshot (a deterministic value)"
STRUCTURAL_WORDS = ("param", "shape", "size", "layer", "unit", "dim", "kernel", "output", "filter", "channel",
                    "neuron", "depth")
NOT_GATING = "not gating"

MARKS = {
    "!": "newly failing (verdict got worse, or a judged part went from pass to fail)",
    "#": "changed although code, parameters and environment are the baseline's (runs here are bit-identical)",
    "=": "a deterministic value changed (a snapshot): a regression until the baseline is regenerated on purpose",
    "-": "worse beyond tolerance",
    "+": "better beyond tolerance",
    "*": "fixed (verdict got better, or a judged part went from fail to pass)",
    "~": "not comparable (claim version or parameters changed: regenerate the baseline)",
    "?": "not in the baseline",
    " ": "within tolerance",
}


class GateError(Exception):
    """Bad input for the gate (no baseline, a baseline of another suite); str() says what to do."""


@dataclasses.dataclass
class Baseline:
    suite: str
    record: dict
    path: Path
    notes: list[str] = dataclasses.field(default_factory=list)   # what was left out when it was chosen, and why


@dataclasses.dataclass
class Comparison:
    suite: str
    baseline: Baseline
    current: dict
    current_path: Path | None
    rows: list[cmp.Row]
    same_env: bool
    env_diff: list[str]
    exact_runs: list[str]
    changed_runs: list[str]
    snapshots: int = 0       # deterministic values compared as snapshots

    def regressions(self) -> list[cmp.Row]:
        return [r for r in self.rows if r.gating and r.mark in ("!", "#", "-", "=")]


@dataclasses.dataclass
class Outcome:
    comparisons: list[Comparison]

    @property
    def regressions(self) -> list[cmp.Row]:
        return [r for c in self.comparisons for r in c.regressions()]

    def lines(self) -> list[str]:
        """What `repro check` prints: what was compared, then the regressions (one line each), then the
        full table of every comparison."""
        out: list[str] = []
        for c in self.comparisons:
            out += header_lines(c)
        bad = self.regressions
        if bad:
            out.append("")
            out.append(f"REGRESSIONS ({len(bad)}):")
            out += ["  " + regression_line(r) for r in bad]
        for c in self.comparisons:
            out.append("")
            out += table_lines(c)
        out.append("")
        out.append("marks: " + "  ".join(f"{k!r} {v}" for k, v in MARKS.items() if k != " "))
        out.append(f"{len(bad)} regression(s), listed above" if bad else "no regressions")
        return out


# ---- finding baselines ------------------------------------------------------------------------

def plan(suite_names: Iterable[str], profile: str, results_dir: Path, given: Iterable[Path | str] = (),
         machine: str = "", commit: str = "") -> dict[str, Baseline]:
    """The baseline record of each suite: a ``--baseline`` given for it, else the newest complete
    committed record of the suite and profile from another commit (this machine's first)."""
    names = list(suite_names)
    chosen: dict[str, Baseline] = {}
    for p in given:
        p = Path(p)
        try:
            rec = record.load(p)
        except record.RecordError as e:
            raise GateError(str(e)) from None
        if rec["suite"] not in names:
            raise GateError(f"baseline {p} is of suite '{rec['suite']}', which is not being checked "
                            f"({', '.join(names)})")
        if rec["profile"] != profile:
            raise GateError(f"baseline {p} is of profile '{rec['profile']}', not '{profile}'")
        if machine and commit and p.resolve() == record.path_for(results_dir, machine, rec["suite"], profile,
                                                                 commit).resolve():
            raise GateError(f"baseline {p} is the record this check would write (same machine and commit); "
                            f"copy it elsewhere or give another --results")
        chosen[rec["suite"]] = Baseline(rec["suite"], rec, p)
    missing = [n for n in names if n not in chosen]
    if missing:
        known = []
        for p in record.find(results_dir):
            try:
                known.append((record.load(p), p))
            except record.RecordError:
                continue
        from repro import selection

        tracked = selection.tracked(results_dir)
        committed = known if tracked is None else [(r, p) for r, p in known if Path(p).resolve() in tracked]
        for name in missing:
            found = cmp.find_baseline(committed, name, profile, machine, commit)
            local = [(r, p) for r, p in known if (r, p) not in committed and r["suite"] == name
                     and r["profile"] == profile and r.get("complete") and r["commit"] != commit]
            if found is None:
                hint = (f"; not committed, so not a baseline unless named: "
                        + ", ".join(f"--baseline {p}" for _, p in local) if local else "")
                raise GateError(f"no {'committed ' if tracked is not None else ''}baseline for suite '{name}' at "
                                f"profile '{profile}' in {results_dir}; run `repro run {name} -p {profile} --seeds 5` "
                                f"on a known-good commit and commit its record{hint}")
            notes = []
            if tracked is None:
                notes.append(f"{results_dir} is in no git checkout: the newest record is the baseline, committed or not")
            for r, p in local:
                notes.append(f"left out {_rel(Path(p))} (commit {r['commit']}): not committed; the baseline is the "
                             f"newest committed record (`--baseline` names another)")
            chosen[name] = Baseline(name, found[0], Path(found[1]), notes)
    return chosen


# ---- tolerances --------------------------------------------------------------------------------

def same_environment(a: dict, b: dict) -> tuple[bool, list[str]]:
    """Whether two records' environments can give bit-identical numbers, and what differs."""
    diff = [f"{k} {a.get(k)} → {b.get(k)}" for k in ENV_KEYS if a.get(k) != b.get(k)]
    return not diff, diff


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def badness(x: float, ref: float, spec: dict) -> float:
    """How much worse ``x`` is than ``ref`` (positive: worse; for a metric without an order, any change)."""
    better = spec.get("better")
    if better == "lower":
        return x - ref
    if better == "higher":
        return ref - x
    rule = spec.get("rule") or {}
    if "approx" in rule:
        return abs(x - rule["approx"]) - abs(ref - rule["approx"])
    return abs(x - ref)


def spread_tolerance(values: list[float]) -> tuple[float, float, float]:
    """(mean, sd, tolerance) of a baseline's per-seed values: max(K_SD·sd, FLOOR_REL·|mean|, FLOOR_ABS)."""
    m, sd = stats.mean(values), stats.std(values) or 0.0
    return m, sd, max(K_SD * sd, FLOOR_REL * abs(m), FLOOR_ABS)


def _seed_values(run: dict | None, key: str) -> dict[str, Any]:
    if not run:
        return {}
    return {s: o.get("metrics", {}).get(key) for s, o in run["results"].items() if not o.get("error")}


def _shown(x: Any) -> str:
    return f"{x:.4g}" if _number(x) else record.fmt(x)


# ---- comparing ---------------------------------------------------------------------------------

def _rejudged(base: dict, cid: str, current: dict) -> dict:
    """The baseline's claim judged on this run's seeds only, so that verdicts compare like with like."""
    entry = copy.deepcopy(base["claims"][cid])
    view = {}
    for rid in entry.get("run_ids") or []:
        b, c = base["runs"].get(rid), current["runs"].get(rid)
        if b is None:
            return entry
        keep = set(c["results"]) if c else set(b["results"])
        if not keep <= set(b["results"]):
            return entry   # this run has seeds the baseline lacks: keep the baseline's own judgement
        view[rid] = dict(b, results={k: v for k, v in b["results"].items() if k in keep},
                         looks=(c or b).get("looks") or b.get("looks"))
    record.judge_claim(entry, view, base.get("alpha", verdict.ALPHA))
    return entry


_NO = object()


def _structural(x: Any) -> bool:
    """An integer, a text, or a list of them (nested): a count or a shape, not a measurement."""
    if isinstance(x, bool) or isinstance(x, float):
        return False
    if isinstance(x, (int, str)):
        return True
    return isinstance(x, list) and all(_structural(v) for v in x)


def same_value(a: Any, b: Any) -> bool:
    """Equal as a snapshot: numbers to 1e-6 (relative and absolute), lists element by element."""
    if _number(a) and _number(b) and not (isinstance(a, bool) or isinstance(b, bool)):
        return a == b if isinstance(a, int) and isinstance(b, int) else abs(a - b) <= 1e-6 * max(abs(a), abs(b), 1.0)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return a == b


def snapshot_of(run: dict | None, key: str, same_env: bool) -> Any:
    """The value a baseline run gives for ``key`` on every seed, if it is a deterministic value (see the
    module's ``snapshot``); ``_NO`` otherwise."""
    if not run or cmp.is_timing(key, {}):
        return _NO
    vals = [o.get("metrics", {}).get(key) for o in run["results"].values() if not o.get("error")]
    if not vals or any(v is None for v in vals):
        return _NO
    if run.get("deterministic"):
        return vals[0]
    if len(vals) < 2 or not all(same_value(v, vals[0]) for v in vals) or not _structural(vals[0]):
        return _NO
    if not same_env and not any(w in key.lower() for w in STRUCTURAL_WORDS):
        return _NO
    return vals[0]


def _snapshot_note(was: Any, now: list, seeds: list[str]) -> str:
    return (f"deterministic value changed ({_shown(was)} → {', '.join(_shown(v) for v in now)}"
            f"{' on seed ' + ', '.join(seeds) if len(seeds) > 1 else ''}): a regression until the baseline is "
            "regenerated on purpose")


def _metric_row(cid: str, name: str, spec: dict, base: dict, cur: dict, status_a: str | None,
                status_b: str | None, same_env: bool) -> cmp.Row | None:
    judged = spec.get("rule") is not None
    rid, key = spec.get("run"), spec.get("key") or name
    brun, crun = base["runs"].get(rid), cur["runs"].get(rid)
    bvals, cvals = _seed_values(brun, key), _seed_values(crun, key)
    if not cvals and not bvals:
        return None
    flip = "!" if (status_a, status_b) == (verdict.PASS, verdict.FAIL) else \
        "*" if (status_a, status_b) == (verdict.FAIL, verdict.PASS) else ""
    moved = f"{status_a} → {status_b}" if judged and status_a != status_b and status_a and status_b else ""
    timing = cmp.is_timing(name, spec)
    same_code = bool(brun and crun and brun.get("code_hash") == crun.get("code_hash")
                     and brun.get("params_hash") == crun.get("params_hash"))
    deterministic = bool(crun and crun.get("deterministic"))
    numeric_base = [v for s, v in sorted(bvals.items(), key=lambda kv: int(kv[0])) if _number(v)]

    headline = judged or bool(spec.get("better"))   # judged, or reported with the suite's `better:`
    if not headline:
        return None
    same_params = bool(brun and crun and brun.get("params_hash") == crun.get("params_hash"))
    snap = snapshot_of(brun, key, same_env) if same_params else _NO
    if timing:
        source = STATED if spec.get("tolerance") is not None else f"{NOT_GATING}: a timing"
    elif same_code and same_env:
        source = EXACT
    elif spec.get("tolerance") is not None:
        source = STATED
    elif snap is not _NO:
        source = SNAPSHOT
    elif deterministic:
        source = OUTCOME
    elif len(numeric_base) >= 2:
        source = SPREAD
    else:
        source = f"{NOT_GATING}: one baseline seed, code changed (no spread)"

    # what the row shows: the baseline's seed values (or mean ± sd) and this run's
    cur_seeds = sorted(cvals, key=int)
    now_vals = [cvals[s] for s in cur_seeds]
    now = _shown(now_vals[0]) if len(now_vals) == 1 else record.fmt(now_vals)
    if len(numeric_base) >= 2:
        m, sd, _ = spread_tolerance(numeric_base)
        was = f"{m:.4g} ± {sd:.2g} (n={len(numeric_base)})"
    elif bvals:
        first = bvals[sorted(bvals, key=int)[0]]
        was = _shown(first)
    else:
        was = ""
    if source == EXACT and len(cur_seeds) == 1 and cur_seeds[0] in bvals:
        was = f"{_shown(bvals[cur_seeds[0]])} (seed {cur_seeds[0]})"

    mark, tol_text, notes, worst = " ", "", [moved] if moved else [], None
    if source == EXACT:
        tol_text = "0 (exact)"
        changed = [s for s in cur_seeds if s in bvals and cvals[s] != bvals[s]]
        if changed:
            mark = "#"
            notes.append(f"seed {', '.join(changed)} changed with unchanged code and parameters")
        missing = [s for s in cur_seeds if s not in bvals]
        if missing:
            notes.append(f"seed {', '.join(missing)} not in the baseline")
    elif source == SNAPSHOT:
        tol_text = "0 (snapshot)"
        was = _shown(snap)
        changed = [s for s in cur_seeds if not same_value(cvals[s], snap)]
        if changed:
            mark = "="
            notes.append(_snapshot_note(snap, [cvals[s] for s in changed], changed))
    elif source in (STATED, SPREAD) and all(_number(v) for v in now_vals) and now_vals:
        if source == STATED:
            ref = stats.mean(numeric_base) if numeric_base else None
            tol = float(spec["tolerance"])
            tol_text = f"{tol:.3g} (stated)"
        else:
            ref, sd, tol = spread_tolerance(numeric_base)
            tol_text = f"{tol:.3g} (max({K_SD:g}·sd, {FLOOR_REL:g}·|mean|))"
        if ref is not None:
            worst = max(badness(x, ref, spec) for x in now_vals)
            best = min(badness(x, ref, spec) for x in now_vals)
            if worst > tol:
                mark = "-"
                notes.append(f"worse than the baseline by {worst:.3g} > {tol:.3g}")
            elif best < -tol and (spec.get("better") or "approx" in (spec.get("rule") or {})):
                mark = "+"
    if flip == "!" or (flip == "*" and mark in (" ", "+")):
        mark = flip
    change = ""
    if numeric_base and now_vals and all(_number(v) for v in now_vals):
        ref = bvals.get(cur_seeds[0]) if source == EXACT and cur_seeds[0] in bvals else stats.mean(numeric_base)
        if _number(ref):
            change = f"{stats.mean(now_vals) - ref:+.3g}"
    # a judged part going from pass to fail always gates (a timing's excepted); a number gates by its source
    gating = (judged and not timing) if mark == "!" else source in (EXACT, STATED, SPREAD, SNAPSHOT)
    if mark == "!" and timing:
        notes.append("a timing's outcome: shown, not gating")
    return cmp.Row(mark, cid, name, was, now, change, "; ".join(n for n in notes if n), gating=gating,
                   tolerance=tol_text, source=source)


def compare(base: Baseline, current: dict, current_path: Path | None = None,
            claims: Iterable[str] | None = None) -> Comparison:
    """This run's record beside the baseline, claim by claim (only ``claims`` when given)."""
    b = base.record
    same_env, env_diff = same_environment(b.get("env") or {}, current.get("env") or {})
    wanted = list(claims) if claims is not None else list(current["claims"])
    rows: list[cmp.Row] = []
    snapped: set[tuple[str, str]] = set()
    for cid in wanted:
        eb = current["claims"].get(cid)
        if eb is None:
            continue
        ea = b["claims"].get(cid)
        if ea is None:
            rows.append(cmp.Row("?", cid, "", "", eb["verdict"], "", "not in the baseline", gating=False))
            continue
        if ea["version"] != eb["version"] or ea.get("params_hash") != eb.get("params_hash"):
            why = (f"claim version {ea['version']} → {eb['version']}" if ea["version"] != eb["version"]
                   else "parameters differ from the baseline's")
            rows.append(cmp.Row("~", cid, "", ea["verdict"], eb["verdict"], "", why + ": regenerate the baseline",
                                gating=False))
            continue
        at = _rejudged(b, cid, current)
        ra, rb = cmp.RANK.get(at["verdict"], 0), cmp.RANK.get(eb["verdict"], 0)
        metric_rows = []
        for name, spec in eb["metric_specs"].items():
            sa = (at.get("metrics") or {}).get(name, {}).get("status")
            sb = (eb.get("metrics") or {}).get(name, {}).get("status")
            row = _metric_row(cid, name, spec, b, current, sa, sb, same_env)
            if row is not None:
                metric_rows.append(row)
        covered = {(spec.get("run"), spec.get("key") or n) for n, spec in eb["metric_specs"].items()
                    if any(r.metric == n for r in metric_rows)}
        metric_rows += _snapshot_rows(cid, eb.get("run_ids") or [], b, current, same_env, covered, snapped)
        claim_mark = "!" if rb < ra else "*" if rb > ra else " "
        gating = True
        note = ""
        if claim_mark == "!":
            changed = [n for n in eb["metric_specs"]
                       if (at.get("metrics") or {}).get(n, {}).get("status")
                       != (eb.get("metrics") or {}).get(n, {}).get("status")]
            if changed and all(cmp.is_timing(n, eb["metric_specs"][n]) for n in changed):
                gating = False
                note = "only timings changed: not gating"
            if eb.get("error"):
                note = str(eb["error"]).splitlines()[0]
        n_base = max([len(b["runs"].get(r, {}).get("results", {})) for r in ea.get("run_ids") or []] or [0])
        was = ea["verdict"] if at["verdict"] == ea["verdict"] else \
            f"{at['verdict']} ({ea['verdict']} on {n_base} seeds)"
        rows.append(cmp.Row(claim_mark, cid, "", was, eb["verdict"], "", note, gating=gating,
                            source="verdict"))
        rows.extend(metric_rows)
    exact_runs, changed_runs = [], []
    for rid, c in current["runs"].items():
        r = b["runs"].get(rid)
        if r and r.get("code_hash") == c.get("code_hash") and r.get("params_hash") == c.get("params_hash"):
            exact_runs.append(rid)
        else:
            changed_runs.append(rid)
    return Comparison(base.suite, base, current, current_path, rows, same_env, env_diff, exact_runs, changed_runs,
                      snapshots=len(snapped))


def _snapshot_rows(cid: str, run_ids: list[str], base: dict, cur: dict, same_env: bool,
                   covered: set, snapped: set) -> list[cmp.Row]:
    """The deterministic values of a claim's runs that no metric row compared (a run's parameter count,
    a layer table): a row for each that changed. ``snapped`` collects every (run, key) compared."""
    rows = []
    for rid in run_ids:
        brun, crun = base["runs"].get(rid), cur["runs"].get(rid)
        if not brun or not crun or brun.get("params_hash") != crun.get("params_hash"):
            continue
        keys = dict.fromkeys(k for o in crun["results"].values() if not o.get("error") for k in o.get("metrics", {}))
        for key in keys:
            if (rid, key) in covered or (rid, key) in snapped:
                continue
            snap = snapshot_of(brun, key, same_env)
            if snap is _NO:
                continue
            snapped.add((rid, key))
            cvals = _seed_values(crun, key)
            changed = [s for s in sorted(cvals, key=int) if not same_value(cvals[s], snap)]
            if changed:
                now = [cvals[s] for s in changed]
                rows.append(cmp.Row("=", cid, f"{rid}.{key}", _shown(snap),
                                    _shown(now[0]) if len(now) == 1 else record.fmt(now), "",
                                    _snapshot_note(snap, now, changed), gating=True, tolerance="0 (snapshot)",
                                    source=SNAPSHOT))
    return rows


def check(baselines: dict[str, Baseline], current: list[tuple[dict, Path | None]],
          claims: dict[str, list[str]] | None = None) -> Outcome:
    """Every suite's record of this run beside its baseline."""
    comps = []
    for rec, path in current:
        base = baselines[rec["suite"]]
        comps.append(compare(base, rec, path, (claims or {}).get(rec["suite"])))
    return Outcome(comps)


# ---- what to print ----------------------------------------------------------------------------

def _rel(p: Path | None) -> str:
    if p is None:
        return "-"
    p = Path(p).resolve()
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def header_lines(c: Comparison) -> list[str]:
    b, cur = c.baseline.record, c.current
    seeds_b = max([len(r["results"]) for r in b["runs"].values() if not r.get("deterministic")] or [1])
    seeds_c = max([len(r["results"]) for r in cur["runs"].values() if not r.get("deterministic")] or [1])
    lines = [f"{c.suite}: baseline {_rel(c.baseline.path)} (commit {b['commit']}, machine {b['machine']}, "
             f"{b['profile']} profile, {seeds_b} seed(s)); this run: commit {cur['commit']}, machine "
             f"{cur['machine']}, {seeds_c} seed(s)" + (f", record {_rel(c.current_path)}" if c.current_path else "")]
    if c.same_env:
        env = b.get("env") or {}
        lines.append(f"  environment: the baseline's (tensorflow {env.get('tensorflow')}, {env.get('device')}, "
                     f"{env.get('cpu')}): runs with its code and parameters are compared exactly")
    else:
        lines.append("  environment differs (" + "; ".join(c.env_diff) + "): no exact comparisons, "
                     "numbers are held to the baseline's spread")
    for note in c.baseline.notes:
        lines.append(f"  {note}")
    one_seed = [rid for rid, r in b["runs"].items() if rid in cur["runs"] and not r.get("deterministic")
                and len(r["results"]) < 2 and rid not in c.exact_runs]
    if one_seed:
        lines.append(f"  the baseline has one seed of {', '.join(one_seed)}: with their code changed, their numbers "
                     f"cannot gate (no spread to judge by); a baseline made with `repro run {c.suite} -p "
                     f"{b['profile']} --seeds 5` can")
    if c.exact_runs:
        lines.append(f"  same code and parameters as the baseline: {', '.join(c.exact_runs)}")
    if c.changed_runs:
        lines.append(f"  code or parameters changed: {', '.join(c.changed_runs)}")
    sources: dict[str, int] = {}
    for r in c.rows:
        if r.metric:
            sources[r.source] = sources.get(r.source, 0) + 1
    if sources:
        lines.append("  tolerance sources: " + "; ".join(f"{k} ×{v}" for k, v in sources.items()))
    if c.snapshots:
        changed = sum(1 for r in c.rows if r.mark == "=")
        lines.append(f"  other deterministic values compared as snapshots: {c.snapshots}"
                     + (f", {changed} changed" if changed else ", none changed"))
    off = [r for r in c.rows if r.mark in ("~", "?")]
    for r in off:
        lines.append(f"  not compared: {r.claim} ({r.note})")
    return lines


def regression_line(r: cmp.Row) -> str:
    what = f"{r.claim}.{r.metric}" if r.metric else f"{r.claim} verdict"
    tol = f"; tolerance {r.tolerance}" if r.tolerance else ""
    src = f" [{r.source}]" if r.source and r.metric else ""
    note = f" ({r.note})" if r.note else ""
    return f"{r.mark} {what}: baseline {r.a} → now {r.b}{tol}{src}{note}"


def table_lines(c: Comparison) -> list[str]:
    """The full comparison as a plain aligned table (readable in a terminal and in a CI log)."""
    head = ["", "claim", "metric", "baseline", "now", "change", "tolerance", "source", "note"]
    body = [[r.mark, r.claim, r.metric, r.a, r.b, r.change, r.tolerance, r.source, r.note] for r in c.rows]
    cap = [1, 18, 34, 40, 40, 10, 40, 70, 200]
    cells = [[str(x)[:w] for x, w in zip(row, cap)] for row in [head] + body]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    fmt_row = lambda row: "  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip()  # noqa: E731
    title = f"{c.suite} {c.baseline.record['profile']}: baseline {c.baseline.record['commit']} → this run " \
            f"{c.current['commit']}"
    return [title, fmt_row(cells[0]), fmt_row(["-" * w for w in widths])] + [fmt_row(r) for r in cells[1:]]
