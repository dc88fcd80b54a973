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
from repro.suite import Claim, Suite

SCHEMA = 1
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"


class RecordError(Exception):
    pass


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def stem(suite: str, profile: str, commit: str) -> str:
    return f"{suite}-{profile}-{commit}"


def path_for(results_dir: Path, machine: str, suite: str, profile: str, commit: str) -> Path:
    return results_dir / machine / f"{stem(suite, profile, commit)}.json"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(x: Any) -> Any:
    """numpy scalars/arrays and tuples -> plain JSON; NaN/inf -> None."""
    if hasattr(x, "tolist"):
        x = x.tolist()
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def save(path: Path, record: dict) -> None:
    write_atomic(path, json.dumps(_jsonable(record), indent=1, ensure_ascii=False, sort_keys=False) + "\n")


def load(path: Path | str) -> dict:
    path = Path(path)
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(f"no record at {path}; `repro run` writes records under results/") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(f"{path} is not a valid record ({e}); delete it and run again") from None
    if not isinstance(rec, dict) or rec.get("schema") != SCHEMA or "claims" not in rec:
        raise RecordError(f"{path} is not a repro record of schema {SCHEMA}")
    return rec


def new(suite: Suite, profile: str, env: dict) -> dict:
    return {"schema": SCHEMA, "suite": suite.name, "suite_version": suite.version,
            "suite_section": suite.section, "profile": profile,
            "machine": env["machine"], "commit": env["commit"], "started": now(), "finished": None,
            "complete": False, "env": env, "claims": {}}


def claim_entry(claim: Claim, profile: str, code_hash: str) -> dict:
    return {
        "id": claim.id, "chapter": claim.chapter, "section": claim.section, "kind": claim.kind, "claim": claim.claim,
        "source": claim.source, "experiment": claim.experiment, "version": claim.version,
        "params": claim.params_for(profile), "params_hash": claim.params_hash(profile),
        "code_hash": code_hash, "checkable": claim.checkable, "reason": claim.reason,
        "metric_specs": {m.name: {"claimed": m.claimed, "rule": m.rule, "better": m.direction,
                                  "tolerance": m.tolerance, "unit": m.unit, "precondition": m.precondition}
                         for m in claim.metrics},
        "runs": {}, "metrics": {}, "verdict": None, "seconds": 0.0,
    }


def summarize(entry: dict) -> None:
    """Recompute the claim's per-metric statistics and its verdict from its per-seed runs."""
    runs = [entry["runs"][k] for k in sorted(entry["runs"], key=int)]
    entry["seeds"] = sorted(int(k) for k in entry["runs"])
    entry["seconds"] = round(sum(r["seconds"] for r in runs), 3)
    errors = [r["error"] for r in runs if r.get("error")]
    if errors:
        entry["metrics"], entry["verdict"], entry["error"] = {}, verdict.ERROR, errors[0]
        return
    entry.pop("error", None)
    values = {name: [r["metrics"].get(name) for r in runs] for name in entry["metric_specs"]}
    out, statuses, preconditions = {}, [], []
    for name, spec in entry["metric_specs"].items():
        vals = values[name]
        m: dict[str, Any] = {"values": vals, "claimed": spec["claimed"]}
        if any(v is None for v in vals):
            m.update(status="fail" if spec["rule"] else "info",
                     detail="the experiment did not return this metric")
        else:
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                m.update(stats.summary(vals))
            m.update(verdict.judge(spec["rule"], vals, values))
        out[name] = m
        (preconditions if spec.get("precondition") else statuses).append(m["status"])
    entry["metrics"] = out
    entry["verdict"] = verdict.combine(statuses, entry["checkable"], preconditions)


# ---- tables ---------------------------------------------------------------------------------

def _fmt(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, list):
        return "[" + ", ".join(_fmt(v) for v in x) + "]" if len(x) <= 8 else f"[{len(x)} values]"
    return str(x)


def measured_text(m: dict) -> str:
    """'0.0091 ± 0.0004 (95% CI [0.0081, 0.0101], n=3)' or the exact value; for a paired rule, the
    per-seed advantage over the other metric and its interval."""
    adv = m.get("advantage")
    if adv and adv.get("mean") is not None:
        ci = f", CI [{_fmt(adv['ci95'][0])}, {_fmt(adv['ci95'][1])}]" if adv.get("ci95") else ""
        return f"{_fmt(m.get('mean'))}; advantage {adv['mean']:+.4g}{ci}, n={adv['n']}"
    if "mean" in m and m["mean"] is not None:
        if m.get("n", 1) > 1 and m.get("ci95"):
            lo, hi = m["ci95"]
            return f"{_fmt(m['mean'])} ± {_fmt(m['std'])} (CI [{_fmt(lo)}, {_fmt(hi)}], n={m['n']})"
        return _fmt(m["mean"])
    vals = m.get("values") or []
    return _fmt(vals[0]) if vals else ""


def rule_text(spec: dict) -> str:
    """The rule as people read it; a precondition says so."""
    text = verdict.describe(spec["rule"])
    return f"precondition: {text}" if spec.get("precondition") else text


def rows(record: dict) -> list[dict]:
    """One row per (claim, metric): the long table behind CSV and Markdown."""
    out = []
    for cid, e in record["claims"].items():
        if e.get("error"):
            out.append({"claim": cid, "section": e["section"], "metric": "", "claimed": "",
                        "rule": "", "measured": "", "status": "error", "verdict": e["verdict"],
                        "seeds": len(e["runs"]), "seconds": e["seconds"], "detail": e["error"].splitlines()[-1]})
            continue
        for name, m in e["metrics"].items():
            spec = e["metric_specs"][name]
            out.append({"claim": cid, "section": e["section"], "metric": name,
                        "claimed": _fmt(spec["claimed"]), "rule": rule_text(spec),
                        "measured": measured_text(m), "status": m["status"], "verdict": e["verdict"],
                        "seeds": len(e["runs"]), "seconds": e["seconds"], "detail": m.get("detail", "")})
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
        body.append([r["claim"], r["metric"], r["claimed"] or r["rule"], r["measured"], r["status"], r["verdict"]])
    return markdown_table(["claim", "metric", "claimed", "measured", "metric status", "verdict"], body)


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
