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

from repro import stats, verdict
from repro.suite import Claim, Metric, Run, Suite

SCHEMA = 2
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"


class RecordError(Exception):
    pass


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


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
            "complete": False, "alpha": verdict.ALPHA, "env": env, "runs": {}, "claims": {}}


def run_entry(run: Run, profile: str, code_hash: str) -> dict:
    return {"id": run.id, "experiment": run.experiment, "version": run.version,
            "params": run.params_for(profile), "params_hash": run.params_hash(profile), "code_hash": code_hash,
            "uses": dict(run.uses), "deterministic": run.deterministic, "looks": [], "results": {},
            "seeds_why": "", "seconds": 0.0}


def metric_spec(m: Metric) -> dict:
    return {"claimed": m.claimed, "rule": m.rule, "criterion": m.criterion, "better": m.direction,
            "tolerance": m.tolerance, "unit": m.unit, "precondition": m.precondition,
            "literature": m.literature, "run": m.run, "key": m.key}


def claim_entry(claim: Claim) -> dict:
    return {"id": claim.id, "chapter": claim.chapter, "section": claim.section, "kind": claim.kind,
            "claim": claim.claim, "source": claim.source, "version": claim.version, "run_ids": list(claim.runs),
            "checkable": claim.checkable, "reason": claim.reason, "about_budget": claim.about_budget,
            "erratum": list(claim.erratum),
            "metric_specs": {m.name: metric_spec(m) for m in claim.metrics},
            "metrics": {}, "verdict": None, "deciding": "", "n_seeds": 0, "seeds_why": "", "seconds": 0.0}


def _common_seeds(runs: list[dict]) -> list[str]:
    sets = [set(r["results"]) for r in runs if not r["deterministic"]]
    common = set.intersection(*sets) if sets else {"0"}
    return sorted(common, key=int)


def _level(runs: list[dict], alpha: float) -> float:
    """The deciding interval's level: α split evenly over the most looks any of the claim's runs may take."""
    k = max([len(r.get("looks") or [1]) for r in runs if not r["deterministic"]] or [1])
    return 1 - alpha / k


def judge_claim(entry: dict, runs: dict[str, dict], alpha: float = verdict.ALPHA) -> None:
    """Recompute a claim's per-metric statistics, outcomes and verdict from its runs' per-seed results."""
    mine = [runs[r] for r in entry["run_ids"]]
    seeds = _common_seeds(mine)
    entry["n_seeds"] = max([len(seeds) if not r["deterministic"] else 1 for r in mine] or [0])
    entry["seconds"] = round(sum(r["seconds"] for r in mine), 3)
    entry["seeds_why"] = "; ".join(f"{r['id']}: {r['seeds_why']}" for r in mine if r.get("seeds_why"))
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

    def series(spec: dict, field: str) -> list:
        r = runs[spec["run"]]
        keys = ["0"] if r["deterministic"] else seeds
        return [r["results"][k].get(field, {}).get(spec["key"]) for k in keys]

    specs = entry["metric_specs"]
    values = {n: series(s, "metrics") for n, s in specs.items()}
    errs = {}
    for n, s in specs.items():
        se = series(s, "stderr")
        errs[n] = se if se and all(isinstance(e, (int, float)) for e in se) else None
    out, parts, pre = {}, {}, {}
    for name, spec in specs.items():
        vals = values[name]
        m: dict[str, Any] = {"values": vals, "claimed": spec["claimed"]}
        exact = runs[spec["run"]]["deterministic"]
        if any(v is None for v in vals):
            m.update(status=verdict.FAIL if spec["rule"] else verdict.INFO,
                     detail=f"run '{spec['run']}' did not return '{spec['key']}'")
        else:
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                m.update(stats.summary(vals, errs[name]))
            m.update(verdict.judge(spec["rule"], vals, values, exact=exact, level=level, stderr=errs[name],
                                   other_stderr=errs))
        out[name] = m
        (pre if spec.get("precondition") else parts)[name] = m["status"]
    unconverged = []
    if "E" in entry["kind"] and not entry.get("about_budget"):
        for r in mine:
            bad: dict[str, list] = {}
            for k in (["0"] if r["deterministic"] else seeds):
                for model, c in (r["results"][k].get("convergence") or {}).items():
                    if not c.get("converged"):
                        bad.setdefault(model, []).append((k, c))
            for model, hits in bad.items():
                c = hits[0][1]
                unconverged.append(f"{r['id']}/{model} on {len(hits)} of {len(seeds)} seeds "
                                   f"({c.get('budget', '')}; {c.get('estimate') or 'more budget'} would settle it)")
    entry["metrics"] = out
    entry["unconverged"] = unconverged
    entry["verdict"], entry["deciding"] = verdict.combine(parts, checkable=entry["checkable"], preconditions=pre,
                                                          unconverged=unconverged)
    entry["level"] = level


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


def measured_text(m: dict) -> str:
    """'0.0091 ± 0.0004 (95% CI [0.0081, 0.0101], n=3)' or the exact value; for a paired rule, the
    per-seed advantage over the other metric and its interval."""
    adv = m.get("advantage")
    if adv and adv.get("mean") is not None:
        ci = f", CI [{fmt(adv['ci95'][0])}, {fmt(adv['ci95'][1])}]" if adv.get("ci95") else ""
        return f"{fmt(m.get('mean'))}; advantage {adv['mean']:+.4g}{ci}, n={adv['n']}"
    if "mean" in m and m["mean"] is not None:
        if m.get("n", 1) > 1 and m.get("ci95"):
            lo, hi = m["ci95"]
            return f"{fmt(m['mean'])} ± {fmt(m['std'])} (CI [{fmt(lo)}, {fmt(hi)}], n={m['n']})"
        return fmt(m["mean"])
    vals = m.get("values") or []
    return fmt(vals[0]) if vals else ""


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
                        "seeds": e["n_seeds"], "seconds": e["seconds"], "detail": e["error"].splitlines()[-1]})
            continue
        for name, m in e["metrics"].items():
            spec = e["metric_specs"][name]
            out.append({"claim": cid, "section": e["section"], "metric": name,
                        "claimed": fmt(spec["claimed"]), "rule": rule_text(spec),
                        "criterion": spec.get("criterion") or "",
                        "measured": measured_text(m), "status": m["status"], "verdict": e["verdict"],
                        "seeds": e["n_seeds"], "seconds": e["seconds"], "detail": m.get("detail", "")})
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
        body.append([r["claim"], r["metric"], r["claimed"], r["rule"], r["measured"], r["status"], r["verdict"]])
    return markdown_table(["claim", "metric", "claimed (chapter)", "judged against", "measured", "outcome",
                           "verdict"], body)


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
