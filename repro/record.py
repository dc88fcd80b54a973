"""Run records: one JSON file per (suite, profile, machine, commit), written atomically,
with CSV and Markdown tables beside it.

Layout (asv-style):  results/<machine>/<suite>-<profile>-<commit>.json  (+ .csv, .md, and a
folder of the same stem holding each claim's artifacts).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from repro import convergence, stats, verdict
from repro.suite import Claim, Metric, Run, Suite

SCHEMA = 2
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"


class RecordError(Exception):
    pass


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")   # two records of one second still order


def stem(suite: str, profile: str, commit: str) -> str:
    return f"{suite}-{profile}-{commit}"


def path_for(results_dir: Path, machine: str, suite: str, profile: str, commit: str) -> Path:
    return results_dir / machine / f"{stem(suite, profile, commit)}.json"


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write a file so that readers see the old or the new content, never a part of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)   # mkstemp makes 0600; a written file gets the usual permissions
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def jsonable(x: Any) -> Any:
    """numpy scalars/arrays and tuples -> plain JSON; NaN/inf -> None."""
    if hasattr(x, "tolist"):
        x = x.tolist()
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def save(path: Path, record: dict) -> None:
    write_atomic(path, json.dumps(jsonable(record), indent=1, ensure_ascii=False, sort_keys=False) + "\n")


def read(path: Path | str) -> dict:
    """A record of any schema, as stored (for re-judging old records)."""
    path = Path(path)
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(f"no record at {path}; `repro run` writes records under results/") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(f"{path} is not a valid record ({e}); delete it and run again") from None
    if not isinstance(rec, dict) or "claims" not in rec or "schema" not in rec:
        raise RecordError(f"{path} is not a repro record")
    return rec


def load(path: Path | str) -> dict:
    rec = read(path)
    if rec.get("schema") != SCHEMA:
        raise RecordError(f"{path} is a record of schema {rec.get('schema')}, not {SCHEMA}; "
                          f"`repro rejudge {path}` re-judges it under the current suites")
    return rec


def new(suite: Suite, profile: str, env: dict) -> dict:
    return {"schema": SCHEMA, "suite": suite.name, "suite_version": suite.version,
            "suite_section": suite.section, "profile": profile,
            "machine": env["machine"], "commit": env["commit"], "started": now(), "finished": None,
            "complete": False, "alpha": verdict.ALPHA, "seeds_fixed": None, "env": env, "runs": {}, "claims": {}}


def run_entry(run: Run, profile: str, code_hash: str) -> dict:
    return {"id": run.id, "experiment": run.experiment, "version": run.version,
            "params": run.params_for(profile), "params_hash": run.params_hash(profile), "code_hash": code_hash,
            "uses": dict(run.uses), "deterministic": run.deterministic, "looks": [], "results": {},
            "seeds_why": "", "seeds_fixed": None, "seconds": 0.0}


def metric_spec(m: Metric) -> dict:
    return {"claimed": m.claimed, "rule": m.rule, "criterion": m.criterion, "better": m.direction,
            "tolerance": m.tolerance, "unit": m.unit, "precondition": m.precondition,
            "literature": m.literature, "run": m.run, "key": m.key, "capability": m.capability,
            "scale": m.scale, "resolution": m.resolution, "variance": m.variance}


def claim_entry(claim: Claim) -> dict:
    return {"id": claim.id, "chapter": claim.chapter, "section": claim.section, "kind": claim.kind,
            "claim": claim.claim, "source": claim.source, "version": claim.version, "run_ids": list(claim.runs),
            "checkable": claim.checkable, "reason": claim.reason, "about_budget": claim.about_budget,
            "budget_reason": claim.budget_reason, "erratum": list(claim.erratum),
            "metric_specs": {m.name: metric_spec(m) for m in claim.metrics},
            "metrics": {}, "verdict": None, "deciding": "", "n_seeds": 0, "seeds_why": "", "seconds": 0.0}


def _common_seeds(runs: list[dict]) -> list[str]:
    sets = [set(r["results"]) for r in runs if not r["deterministic"]]
    common = set.intersection(*sets) if sets else {"0"}
    return sorted(common, key=int)


def _fixed_in(why: str) -> int | None:
    """The seed count of a run whose seeds_why says '--seeds' (records from before seeds_fixed)."""
    import re

    hit = re.search(r"(\d+) seeds \(--seeds\)", why)
    return int(hit.group(1)) if hit else None


def _level(runs: list[dict], alpha: float) -> float:
    """The deciding interval's level: α split evenly over the most looks any of the claim's runs may take."""
    k = max([len(r.get("looks") or [1]) for r in runs if not r["deterministic"]] or [1])
    return 1 - alpha / k


def parts_judged(specs: dict) -> int:
    """k: the claim's judged parts (metrics with a rule that are not preconditions), at least 1."""
    return max(1, sum(1 for s in specs.values() if s.get("rule") and not s.get("precondition")))


def _paired_se(spec: dict, other: dict, runs: dict[str, dict], seeds: list[str]) -> list | None:
    """Per-seed standard errors of (this − other) from the same test items, when the run stored them
    (Result.paired_se "A|B"; B|A serves too: the sign does not change the error)."""
    if spec["run"] != other["run"]:
        return None
    r = runs[spec["run"]]
    keys = ["0"] if r["deterministic"] else seeds
    a, b = spec["key"], other["key"]
    out = []
    for k in keys:
        p = r["results"][k].get("paired_se") or {}
        v = p.get(f"{a}|{b}", p.get(f"{b}|{a}"))
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            return None
        out.append(v)
    return out


def _judged_metric(name: str, spec: dict, vals: list, values: dict, specs: dict, errs: dict, why: dict,
                   runs: dict, seeds: list[str], *, exact: bool, level: float, fail_level: float,
                   alpha: float) -> dict:
    """One metric's statistics and outcome: its summary, the test-sampling variance it carries (and
    why), and verdict.judge's outcome with the family level beside the interval's own."""
    m: dict[str, Any] = {}
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)
    if numeric:
        res = spec.get("resolution") or (1 if all(isinstance(v, int) for v in vals) else None)
        m.update(stats.summary(vals, errs[name], resolution=None if spec.get("scale") else res,
                               scale=spec.get("scale")))
    rule = spec["rule"]
    than = verdict.other_metric(rule)
    own, other, pse, m["variance"] = errs[name], {}, None, why[name]
    if than is not None and than in specs:
        if own is None or errs[than] is None:   # seeds only on either side: nothing is added
            own = None
            m["variance"] = why[name] if errs[name] is None else why[than]
        else:
            other = {than: errs[than]}
            pse = _paired_se(spec, specs[than], runs, seeds)
    m.update(verdict.judge(rule, vals, values, exact=exact, level=level, fail_level=fail_level, stderr=own,
                           other_stderr=other, paired_se={than: pse} if pse else None,
                           scale=spec.get("scale"), resolution=spec.get("resolution")))
    if "interval_level" in m:
        m["level"] = 1 - alpha   # the family level: every decision of the claim holds at it jointly
    if not rule or exact:
        m.pop("variance", None)
    return m


def judge_claim(entry: dict, runs: dict[str, dict], alpha: float = verdict.ALPHA) -> None:
    """Recompute a claim's per-metric statistics, outcomes and verdict from its runs' per-seed results."""
    mine = [runs[r] for r in entry["run_ids"]]
    seeds = _common_seeds(mine)
    entry["n_seeds"] = max([len(seeds) if not r["deterministic"] else 1 for r in mine] or [0])
    entry["seconds"] = round(sum(r["seconds"] for r in mine), 3)
    entry["seeds_why"] = "; ".join(f"{r['id']}: {r['seeds_why']}" for r in mine if r.get("seeds_why"))
    # a count set by hand (`--seeds N`), not by the sequential procedure: the page says so
    fixed = [r.get("seeds_fixed") or _fixed_in(r.get("seeds_why") or "") for r in mine if not r["deterministic"]]
    entry["seeds_fixed"] = next((f for f in fixed if f), None)
    entry["notes"] = sorted({o.get("notes", "") for r in mine for o in r["results"].values()} - {""})
    entry["artifacts"] = [a for r in mine for o in r["results"].values() for a in o.get("artifacts", [])]
    entry["params_hash"] = "+".join(r["params_hash"] for r in mine)
    entry["experiment"] = ", ".join(dict.fromkeys(r["experiment"] for r in mine))
    entry["params"] = {r["id"]: r["params"] for r in mine}
    errors = [o["error"] for r in mine for o in r["results"].values() if o.get("error")]
    if errors or not seeds:
        entry["metrics"], entry["verdict"] = {}, verdict.ERROR
        entry["error"] = errors[0] if errors else "no results"
        entry["deciding"] = "the experiment failed: " + entry["error"].splitlines()[0]
        return
    entry.pop("error", None)
    level = _level(mine, alpha)
    specs = entry["metric_specs"]
    fail_level = verdict.fail_level(level, alpha, parts_judged(specs))

    def series(spec: dict, field: str) -> list:
        r = runs[spec["run"]]
        keys = ["0"] if r["deterministic"] else seeds
        return [(r["results"][k].get(field) or {}).get(spec["key"]) for k in keys]

    values = {n: series(s, "metrics") for n, s in specs.items()}
    errs, why = {}, {}
    for n, s in specs.items():
        errs[n], why[n] = stats.known_se(series(s, "stderr"), series(s, "test_set"), s.get("variance"))
    out, parts, pre = {}, {}, {}
    for name, spec in specs.items():
        vals = values[name]
        m: dict[str, Any] = {"values": vals, "claimed": spec["claimed"]}
        exact = runs[spec["run"]]["deterministic"]
        if any(v is None for v in vals):
            m.update(status=verdict.FAIL if spec["rule"] else verdict.INFO,
                     detail=f"run '{spec['run']}' did not return '{spec['key']}'")
        else:
            m.update(_judged_metric(name, spec, vals, values, specs, errs, why, runs, seeds, exact=exact,
                                    level=level, fail_level=fail_level, alpha=alpha))
        out[name] = m
        (pre if spec.get("precondition") else parts)[name] = m["status"]
    gated = convergence.gate(entry, runs, seeds, out)     # the states of the models the judged parts read
    entry["convergence"], unconverged = gated["models"], gated["unconverged"]
    entry["metrics"] = out
    entry["unconverged"] = unconverged
    entry["verdict"], entry["deciding"] = verdict.combine(parts, checkable=entry["checkable"], preconditions=pre,
                                                          unconverged=unconverged)
    # levels: one family level per claim; the per-interval levels that decided passes and fails
    entry.update(level=level, family_level=1 - alpha, pass_level=level, fail_level=fail_level,
                 judged_parts=parts_judged(specs))
    # a gate (precondition, convergence) does not hide a part that failed decisively or exactly
    entry["decisive_fails"] = verdict.decisive_fails(out, specs)
    entry["deciding"] = verdict.name_fails(entry["verdict"], entry["deciding"], entry["decisive_fails"])


def undecided(entry: dict) -> list[str]:
    """The judged parts (and preconditions) of a claim that more seeds could still decide."""
    if entry.get("verdict") in (verdict.ERROR, verdict.NOT_CHECKABLE) or entry.get("unconverged"):
        return []
    if any(m["status"] == verdict.FAIL for n, m in entry["metrics"].items()
           if entry["metric_specs"][n].get("precondition")):
        return []
    return [n for n, m in entry["metrics"].items() if m["status"] == verdict.UNDECIDED]


# ---- tables ---------------------------------------------------------------------------------

def fmt(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, list):
        return "[" + ", ".join(fmt(v) for v in x) + "]" if len(x) <= 8 else f"[{len(x)} values]"
    return str(x)


def shown_interval(m: dict) -> tuple[list, float] | None:
    """(interval, level) that a table shows for one part: the interval that decided, at its own
    level (``decision_interval`` / ``interval_level``; inside ``advantage`` for a paired rule); a
    record judged before those fields existed falls back to its 95% ``ci95``."""
    adv = m.get("advantage") if isinstance(m.get("advantage"), dict) else None
    src = adv if adv else m
    if src.get("decision_interval"):
        lvl = src.get("level") if adv else m.get("interval_level", m.get("level"))
        return list(src["decision_interval"]), float(lvl) if isinstance(lvl, (int, float)) else 0.95
    if src.get("ci95"):
        return list(src["ci95"]), 0.95
    return None


def level_label(level: float) -> str:
    """0.98333 -> '98.3%'; 0.95 -> '95%'."""
    text = f"{100 * level:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def measured_text(m: dict) -> str:
    """'0.0091 ± 0.0004 (98.3% CI [0.0081, 0.0101], n=3)' or the exact value: the interval shown is
    the one that decided, labelled with its own level (each decision of a claim holds at the family
    level 95%, split over the run's looks and, for a fail, the claim's parts). A paired rule shows the
    per-seed advantage over the other metric; a log10 scale the geometric mean; an in_seeds rule
    how many seeds met its condition, with the exact interval on their share."""
    shown = shown_interval(m)
    ci = f"{level_label(shown[1])} CI [{fmt(shown[0][0])}, {fmt(shown[0][1])}]" if shown else ""
    if m.get("count") is not None and m.get("n"):
        return f"{m['count']} of {m['n']} seeds" + (f" ({ci} on the share)" if ci else "")
    adv = m.get("advantage")
    if adv and adv.get("mean") is not None:
        word = "log10 ratio" if m.get("scale") else "advantage"
        return f"{fmt(m.get('mean'))}; {word} {adv['mean']:+.4g}" + (f", {ci}" if ci else "") + f", n={adv['n']}"
    if "mean" in m and m["mean"] is not None:
        if m.get("n", 1) > 1 and shown:
            if m.get("scale") and m.get("gmean") is not None:
                return f"{fmt(m['gmean'])} geometric mean ({ci}, log10 scale, n={m['n']})"
            return f"{fmt(m['mean'])} ± {fmt(m['std'])} ({ci}, n={m['n']})"
        return fmt(m["mean"])
    vals = m.get("values") or []
    return fmt(vals[0]) if vals else ""


def seeds_text(e: dict) -> str:
    """The seeds column: the count, with why when seeds were added or the maximum was reached, and
    'fixed with --seeds' when the count was set by hand rather than by the sequential procedure."""
    why = e.get("seeds_why") or ""
    n = str(e.get("n_seeds") or 0)
    if e.get("seeds_fixed"):
        return f"{n} (fixed with --seeds)"
    return f"{n} ({why})" if ("added" in why or "maximum" in why) else n


def level_text(e: dict) -> str:
    """How a claim's parts were decided, in one line (the record's family/pass/fail levels)."""
    fam, p, f = e.get("family_level"), e.get("pass_level", e.get("level")), e.get("fail_level")
    if not isinstance(p, float):
        return ""
    if not isinstance(fam, float) or not isinstance(f, float):
        return f"each part decided with a {level_label(p)} interval"
    k = e.get("judged_parts") or 1
    fails = (f"a fail by a {level_label(f)} one (split over {k} judged parts)" if k > 1 and f != p
             else f"a fail by the same")
    return (f"decided at family confidence {level_label(fam)}: a pass by a {level_label(p)} interval "
            f"(α split over the run's looks), {fails}")


def rule_text(spec: dict) -> str:
    """The rule as people read it; a line the suite chose says so (criterion, ours); a precondition too."""
    text = verdict.describe(spec["rule"])
    if text and spec.get("criterion"):
        text = f"criterion (ours): {text}"
    return f"precondition: {text}" if spec.get("precondition") else text


def rows(record: dict) -> list[dict]:
    """One row per (claim, metric): the long table behind CSV and Markdown."""
    out = []
    for cid, e in record["claims"].items():
        if e.get("error"):
            out.append({"claim": cid, "section": e["section"], "metric": "", "claimed": "",
                        "rule": "", "measured": "", "status": "error", "verdict": e["verdict"],
                        "seeds": seeds_text(e), "seconds": e["seconds"], "detail": e["error"].splitlines()[-1]})
            continue
        for name, m in e["metrics"].items():
            spec = e["metric_specs"][name]
            out.append({"claim": cid, "section": e["section"], "metric": name,
                        "claimed": fmt(spec["claimed"]), "rule": rule_text(spec),
                        "criterion": spec.get("criterion") or "",
                        "measured": measured_text(m), "status": m["status"], "verdict": e["verdict"],
                        "convergence": convergence.states_text(e.get("convergence") or {}, name),
                        "seeds": seeds_text(e), "seconds": e["seconds"], "detail": m.get("detail", "")})
    return out


def markdown_table(headers: list[str], body: list[list[Any]]) -> str:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def verdict_table_md(record: dict) -> str:
    """Claim | claimed | measured | verdict, one row per judged metric (the table people read)."""
    body = []
    for r in rows(record):
        if r["status"] == "info":
            continue
        body.append([r["claim"], r["metric"], r["claimed"], r["rule"], r["measured"], r["status"],
                     r.get("convergence", ""), r["verdict"]])
    return markdown_table(["claim", "metric", "claimed (chapter)", "judged against", "measured", "outcome",
                           "models' states", "verdict"], body)


def write_tables(json_path: Path, record: dict) -> list[Path]:
    import pandas as pd

    df = pd.DataFrame(rows(record))
    csv_path, md_path = json_path.with_suffix(".csv"), json_path.with_suffix(".md")
    write_atomic(csv_path, df.to_csv(index=False))
    env = record["env"]
    head = (f"# {record['suite']} ({record['profile']} profile)\n\n"
            f"commit `{record['commit']}` on `{record['machine']}`; python {env['python']}, "
            f"tensorflow {env['tensorflow']}, keras {env['keras']}; device {env['device']}; "
            f"finished {record['finished']}\n\n")
    write_atomic(md_path, head + verdict_table_md(record))
    return [csv_path, md_path]


def find(results_dir: Path = RESULTS_DIR) -> list[Path]:
    """Every finished record under results_dir, oldest first (by finish time)."""
    found = []
    for p in results_dir.glob("*/*.json"):
        try:
            rec = load(p)
        except RecordError:
            continue
        found.append((rec.get("finished") or "", p))
    return [p for _, p in sorted(found)]
