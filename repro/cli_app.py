"""The command line: list, run, compare, data, env, report. Thin: the work is in repro/."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

_TF_LEVEL_FROM_USER = "TF_CPP_MIN_LOG_LEVEL" in os.environ
# outside a run (list, env, bench), TensorFlow's C++ start-up chatter stays out of the tables; a run
# writes its warnings to its log file instead (terminal.RunLog)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from repro import record as records  # noqa: E402
from repro import suite as suites  # noqa: E402
from repro import terminal  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Re-run the claims of chapter 7 (deep networks) and say, with measured numbers, which hold.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets: where each comes from, cache state, checksums.")
app.add_typer(data_app, name="data")

out = Console()
err = Console(stderr=True)
WIDTH_WHEN_NOT_A_TERMINAL = 160   # CI logs and pipes: tables at a readable width, not 80 columns


@app.callback()
def _consoles() -> None:
    for console in (out, err):
        if not console.is_terminal and not os.environ.get("COLUMNS"):
            console.width = WIDTH_WHEN_NOT_A_TERMINAL

VERDICT_STYLE = {"reproduced": "green", "partially reproduced": "yellow", "contradicted": "red",
                 "inconclusive": "magenta", "not checkable here": "blue", "error": "bold red"}


def fail(message: str, code: int = 2) -> None:
    terminal.restore()   # a run's logs go to a file; the error line goes to the terminal
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _load_suites(check: bool = True) -> list[suites.Suite]:
    try:
        return suites.load_all(check=check)
    except suites.SuiteError as e:
        fail(f"{e}; fix the suite file and run again")
    return []


def say(message: str) -> None:
    """Progress of a data fetch: dim, one line each, on stderr."""
    err.print(f"[dim]{message}[/]", highlight=False, soft_wrap=True)


def _check_profile(profile: str) -> str:
    if profile not in suites.PROFILES:
        import difflib
        close = difflib.get_close_matches(profile, suites.PROFILES, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        fail(f"unknown profile '{profile}'; {hint}use one of {', '.join(suites.PROFILES)}")
    return profile


def _styled(v: str | None) -> str:
    v = v or "-"
    return f"[{VERDICT_STYLE.get(v, 'white')}]{v}[/]"


def _last_runs(results_dir: Path) -> dict[str, tuple[str, str]]:
    """Claim ID -> (verdict, profile) of the newest record of a shorter profile (smoke, quick)."""
    last: dict[str, tuple[str, str]] = {}
    for p in records.find(results_dir):
        rec = records.load(p)
        if rec["profile"] in ("smoke", "quick"):
            for cid, e in rec["claims"].items():
                last[cid] = (e["verdict"], rec["profile"])
    return last


def _full_text(sel) -> str:
    """A claim's full-profile verdict as README's table has it: verdict, commit, and its marks."""
    if sel is None:
        return "[dim]no full verdict[/]"
    marks = [m for m in ("stale" if sel.stale else "", "re-judged" if sel.rejudged else "") if m]
    return f"{_styled(sel.verdict)} [dim]({sel.commit}{'; ' + ', '.join(marks) if marks else ''})[/]"


@app.command("list")
def list_(suite: Optional[str] = typer.Argument(None, help="a suite name; all suites when left out"),
          results: Path = typer.Option(records.RESULTS_DIR, help="where records are kept")) -> None:
    """Suites and their claims (ID, section, kind, short text) with the full-profile verdict README's
    table shows (the same record, :mod:`repro.selection`) and the newest shorter run's."""
    from repro import selection

    loaded = _load_suites(check=False)
    chosen = loaded
    if suite:
        try:
            chosen = [s for s, _ in suites.select([suite], loaded)]
        except suites.SelectionError as e:
            fail(str(e))
    full = selection.select(results)
    last = _last_runs(results)
    for s in chosen:
        t = Table(title=f"{s.name}: {s.title} ({s.section})", title_justify="left", expand=False)
        for col in ("claim", "section", "kind", "claim in English", "full-profile verdict", "last short run"):
            t.add_column(col, overflow="fold")
        for c in s.claims:
            v, prof = last.get(c.id, (None, ""))
            mark = " †" if c.changed_after_result else ""
            t.add_row(c.id + mark, c.section, c.kind, c.claim, _full_text(full.get(c.id)),
                      f"{_styled(v)} ({prof})" if v else "")
        out.print(t)
    if any(c.changed_after_result for s in chosen for c in s.claims):
        out.print("†: the claim's design changed after a result of it was seen (`repro history CLAIM`)", style="dim")


_short = terminal.short


def _claimed_text(spec: dict) -> str:
    """What the chapter says, then the line it is judged against (marked when the line is ours)."""
    rule = records.rule_text(spec)
    if spec["claimed"] is None:
        return rule
    claimed = records.fmt(spec["claimed"])
    return f"{claimed} ({rule})" if rule and not rule.startswith("=") else claimed


def _full_cell(e: dict, sel) -> str:
    """The committed full-profile verdict of this claim (README's, :mod:`repro.selection`) and whether
    this run agrees with it."""
    f = sel.entry if sel is not None else None
    says = terminal.agreement(e, f)
    if f is None:
        return f"[dim]{says}[/]"
    notes = [f"of claim v{f.get('version')}" if f.get("version") != e.get("version") else "",
             "stale" if sel.stale else "", "re-judged" if sel.rejudged else ""]
    notes = [n for n in notes if n]
    return (f"{_styled(f['verdict'])} [dim]{sel.commit}{' (' + ', '.join(notes) + ')' if notes else ''}[/]\n"
            f"[{terminal.AGREEMENT_STYLE.get(says, 'yellow')}]{says}[/]")


def _claims_table(rec: dict, claims: dict, full: dict | None = None) -> Table:
    """After a run: one row per claim, each on one line: its verdict and seeds, the key number against
    its line; with ``full`` (claim ID -> the full-profile record that speaks for it, the pages' pick:
    :func:`terminal.committed_full`), that verdict and whether this run agrees. Every part: -v or `repro show CLAIM`. In a narrow
    terminal the free-text columns are cut (…), never the claim, the verdicts or the agreement."""
    from repro import summary

    rows = []
    for cid, e in rec["claims"].items():
        claim = claims.get(cid)
        if e.get("error"):
            key = "error: " + e["error"].splitlines()[0]
        else:
            k = summary.key_part(e, rec, claim)
            key = f"{k['ours'] or '-'} · {k['line'] or k['chapter'] or '-'}"
        row = {"claim": cid, "words": summary.headline(e, claim), "verdict": e["verdict"], "n": e.get("n_seeds") or 0,
               "key": key}
        if full is not None:
            f = full.get(cid)
            row["says"] = terminal.agreement(e, f.entry if f is not None else None)
            row["full"] = f
        rows.append(row)
    t = Table(title=f"{rec['suite']} · {rec['profile']} · {rec['commit']} · {rec['machine']}", title_justify="left")
    width = (lambda texts: max([len(x) for x in texts] + [1]))
    t.add_column("claim", no_wrap=True, min_width=width([r["claim"] for r in rows]))
    # free text: the table may narrow these columns (no_wrap=False); each cell stays one line (one_line)
    t.add_column("in a few words", max_width=26)
    t.add_column("verdict (seeds)", no_wrap=True, min_width=width([f"{r['verdict']} ({r['n']})" for r in rows]))
    t.add_column("key: ours · its line", max_width=60)
    if full is not None:
        t.add_column("committed full verdict", max_width=28)
        t.add_column("this run", no_wrap=True, min_width=width([r["says"] for r in rows]))
    for r in rows:
        cells = [r["claim"], one_line(r["words"]), f"{_styled(r['verdict'])} ({r['n']})", one_line(r["key"])]
        if full is not None:
            f = r["full"]
            if f is None:
                cells.append("[dim]-[/]")
            else:
                notes = [f"v{f.entry.get('version')}" if f.entry.get("version") != rec["claims"][r["claim"]].get("version")
                         else "", "stale" if f.stale else "", "re-judged" if f.rejudged else ""]
                notes = " ".join(n for n in notes if n)
                cells.append(one_line(f"{_styled(f.verdict)} [dim]{f.commit}{' ' + notes if notes else ''}[/]",
                                      markup=True))
            cells.append(f"[{terminal.AGREEMENT_STYLE.get(r['says'], 'yellow')}]{r['says']}[/]")
        t.add_row(*cells)
    return t


def one_line(text: str, markup: bool = False):
    """A table cell that is cut with … rather than wrapped."""
    from rich.text import Text

    cell = Text.from_markup(text) if markup else Text(text)
    cell.no_wrap, cell.overflow = True, "ellipsis"
    return cell


def _verdict_table(rec: dict, full: dict | None = None) -> Table:
    """Every judged part of each claim, a row each (-v after a run, and `repro show`); with ``full``
    (claim ID -> the full-profile record that speaks for it, :func:`terminal.committed_full`), a column
    with its verdict and whether this run agrees."""
    t = Table(title=f"{rec['suite']} · {rec['profile']} · {rec['commit']} · {rec['machine']}", title_justify="left")
    t.add_column("claim", no_wrap=True)
    t.add_column("metric", overflow="fold", max_width=26)
    t.add_column("claimed · judged against", overflow="fold", max_width=30)
    t.add_column("measured", overflow="fold")
    t.add_column("")
    t.add_column("verdict (seeds) · deciding part", overflow="fold")
    if full is not None:
        t.add_column("committed full verdict", overflow="fold", max_width=24)
    for cid, e in rec["claims"].items():
        first = True
        extra = [_full_cell(e, full.get(cid))] if full is not None else []
        if e.get("error"):
            t.add_row(cid, "", "", _short(e["error"].splitlines()[0], 80), "", _styled(e["verdict"]), *extra)
            continue
        n = e["n_seeds"]
        verdict_cell = f"{_styled(e['verdict'])} ({n} seed{'' if n == 1 else 's'})\n[dim]{_short(e.get('deciding', ''), 90)}[/]"
        for name, m in e["metrics"].items():
            if m["status"] == "info":
                continue
            mark = {"pass": "[green]✓[/]", "fail": "[red]✗[/]", "undecided": "[yellow]?[/]"}.get(m["status"], "")
            t.add_row(cid if first else "", name, _short(_claimed_text(e["metric_specs"][name]), 60),
                      _short(records.measured_text(m), 70), mark, verdict_cell if first else "",
                      *(extra if first else [""] * len(extra)))
            first = False
        if first:  # nothing judged (e.g. not checkable): show some of what was measured instead
            shown = [f"{k}={records.measured_text(m)}" for k, m in e["metrics"].items() if m["values"][0] is not None]
            t.add_row(cid, "(measured)", "", _short(", ".join(shown[:3]), 80), "", verdict_cell, *extra)
    return t


def _executor(executor: str, jobs: int, ray_address: Optional[str], gpus_per_job: float):
    if executor == "ray":
        from repro.executors import RayExecutor
        try:
            return RayExecutor(ray_address, cpus_per_job=max(1, (os.cpu_count() or 1) // jobs), gpus_per_job=gpus_per_job)
        except RuntimeError as e:
            fail(str(e))
    elif executor != "local":
        fail(f"unknown executor '{executor}'; use local or ray")
    elif jobs > 1:
        from repro.executors import LocalPoolExecutor
        return LocalPoolExecutor(jobs)
    return None


def _run_with_progress(selection, *, profile: str, seeds: Optional[int], force: bool, results: Path,
                       pool, log: terminal.RunLog, display: Console) -> list[Path]:
    """runner.run_selection with a progress display (the libraries' logs already routed by ``log``);
    bad input and missing data end in one error line."""
    from repro import data, env, runner

    try:
        runner.prefetch(selection, say=lambda m: display.print(f"[dim]{m}[/]", highlight=False, soft_wrap=True))
        environment = env.capture()
        with terminal.ProgressView(display, profile, log) as view:
            return runner.run_selection(selection, profile=profile, env=environment, seeds=seeds, force=force,
                                        results_dir=results, on_event=view, executor=pool)
    except data.DataError as e:
        fail(str(e))
    except runner.ConfigError as e:
        fail(f"{e}; fix the suite file and run again")
    except KeyboardInterrupt:
        terminal.restore()
        err.print("[yellow]interrupted[/]: finished seeds are kept; run the same command again to resume")
        raise typer.Exit(130)
    return []


def _say_cost(selection, profile: str, seeds: Optional[int], force: bool, results: Path, display: Console) -> None:
    """Before a long run: its estimated time from the records' per-unit seconds, less what is cached."""
    from repro import cost, env

    est = cost.estimate(selection, profile=profile, machine=env.machine(), commit=env.commit(),
                        results_dir=results, seeds=seeds)
    if force:
        for r in est.runs:
            r.cached = 0
    display.print(f"[bold]estimate[/]: {est.text()}", highlight=False, soft_wrap=True)


def _run_log(results: Path, verbose: bool) -> terminal.RunLog:
    return terminal.RunLog(results, err, verbose=verbose, header="repro " + " ".join(sys.argv[1:]),
                           user_tf_level=_TF_LEVEL_FROM_USER)


@app.command()
def run(items: Optional[list[str]] = typer.Argument(None, help="suite names and/or claim IDs; all suites when left out"),
        profile: str = typer.Option("quick", "--profile", "-p", help="smoke | quick | full | paper"),
        seeds: Optional[int] = typer.Option(None, "--seeds", "-s", min=1, help="seeds for every non-deterministic run (default: the profile's, with more seeds while a part is undecided)"),
        force: bool = typer.Option(False, "--force", help="run again even if this commit already has the result"),
        results: Path = typer.Option(records.RESULTS_DIR, help="where records are kept"),
        jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="local worker processes (TensorFlow's threads divided between them)"),
        executor: str = typer.Option("local", "--executor", help="local | ray"),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", help="a Ray cluster; default: a local Ray started for the run"),
        gpus_per_job: float = typer.Option(0.0, "--gpus-per-job", min=0.0, help="GPUs each (run, seed) job asks Ray for"),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="show TensorFlow's and the libraries' logs live instead of in the run's log file")) -> None:
    """Run claims with progress, then print the verdict table (beside each claim, the committed full
    run's verdict when this is a shorter profile) and write records to results/."""
    _check_profile(profile)
    log = _run_log(results, verbose)
    with log as display:   # from here on: checking the suites imports TensorFlow
        try:
            selection = suites.select(items or [], _load_suites())
        except suites.SelectionError as e:
            fail(str(e))
        pool = _executor(executor, jobs, ray_address, gpus_per_job)
        if profile in ("full", "paper"):
            _say_cost(selection, profile, seeds, force, results, display)
        paths = _run_with_progress(selection, profile=profile, seeds=seeds, force=force, results=results, pool=pool,
                                   log=log, display=display)
    log.keep(paths)
    short_run = profile in ("smoke", "quick")
    full = terminal.committed_full(results) if short_run else None
    claims = {c.id: c for _, cs in selection for c in cs}
    errors = 0
    for path in paths:
        rec = records.load(path)
        if verbose:   # every judged part, a row each
            out.print(_verdict_table(rec, full))
        out.print(_claims_table(rec, claims, full))
        errors += sum(1 for e in rec["claims"].values() if e.get("error"))
        out.print(f"record: {path}", highlight=False, soft_wrap=True)
        if not verbose:
            out.print(f"log:    {path.with_suffix('.log')} (TensorFlow's and the libraries' messages; -v shows them live)",
                      highlight=False, soft_wrap=True)
    if paths and not verbose:
        out.print("every judged part: `repro show CLAIM` (or `repro run ... -v`)", highlight=False, soft_wrap=True)
    chosen = " ".join(items or [])
    report_at = terminal.report_path(results)
    if profile == "full":
        out.print(f"report: {report_at} (`repro report` regenerates it from the newest full records, this run's "
                  f"included)", highlight=False, soft_wrap=True)
    else:
        out.print(f"report of the committed full run: {report_at} (`repro report` regenerates it); "
                  f"the full run here: `repro run {chosen + ' ' if chosen else ''}-p full`", highlight=False,
                  soft_wrap=True)
    if errors:
        fail(f"{errors} claim(s) failed to run; the record shows each error", code=1)


@app.command()
def show(claim_id: str = typer.Argument(..., help="a claim ID, e.g. LENET-MNIST"),
         profile: str = typer.Option("full", "--profile", "-p", help="whose newest record: smoke | quick | full | paper"),
         results: Path = typer.Option(records.RESULTS_DIR, help="where records are kept")) -> None:
    """One claim in full: verdict and reason, the key number, the kind of evidence, its history, the
    chapter's correction, what would settle it, and every part (the newest record of the profile)."""
    import difflib

    from repro import report, summary

    _check_profile(profile)
    loaded = _load_suites(check=False)
    by_id = {c.id.lower(): c for s in loaded for c in s.claims}
    claim = by_id.get(claim_id.lower())
    if claim is None:
        close = difflib.get_close_matches(claim_id.upper(), [c.id for c in by_id.values()], n=1, cutoff=0.5)
        fail(f"no claim named '{claim_id}'; " + (f"did you mean '{close[0]}'? " if close else "")
             + "`repro list` shows them all")
    found = terminal.newest_entry(results, claim.id, profile)
    out.print(f"[bold]{claim.id}[/] {claim.headline} [dim]({claim.suite}, claim version {claim.version})[/]",
              highlight=False, soft_wrap=True)
    if found is None:
        out.print(f"no {profile}-profile record holds {claim.id} yet: `repro run {claim.id} -p {profile}`",
                  highlight=False, soft_wrap=True)
        return
    e, rec = found
    k = summary.key_part(e, rec, claim)
    lines = [f"verdict: {_styled(e['verdict'])} ({e.get('n_seeds') or 0} seeds; {rec['profile']} record at "
             f"commit {rec['commit']}, claim version {e.get('version')})",
             f"why: {summary.reason(e)}",
             f"key: {k['metric']}: the chapter {k['chapter'] or '-'}; ours {k['ours'] or '-'}"
             + (f" (judged {k['line']})" if k["line"] else ""),
             f"evidence: {summary.evidence(e, rec)}"]
    if e.get("verdict") in ("inconclusive", "not checkable here"):
        lines.append(f"what would settle it: {summary.settle(e, rec, claim) or '-'}")
    for c in summary.corrections(e, claim) if summary.needs_erratum(e) else []:
        lines.append(f"chapter line {c['line']}: {c['quote']}")
        lines.append(f"  measured: {c['measured']}" if c["measured"] else "")
        lines.append(f"  更正: {c['zh']}")
        lines.append(f"  correction: {c['en']}")
    if summary.needs_erratum(e) and not claim.erratum:
        lines.append(f"no correction written yet (`erratum:` in suites/{claim.suite}.yaml)")
    if profile == "full":
        history = report.claim_history(results, claim.id)
        lines.append("history (`repro history " + claim.id + "` in full): " + ("; ".join(
            f"v{h['version']} {h['commit']} {h['verdict']}" + (" (re-judged)" if h["rejudged"] else "")
            for h in history) if history else "-"))
    for ln in lines:
        if ln:
            out.print(ln, highlight=False, soft_wrap=True)
    out.print(_verdict_table(dict(rec, claims={claim.id: e})))


@app.command()
def history(claim: str = typer.Argument(..., help="a claim ID, e.g. LENET-MNIST"),
            results: Path = typer.Option(records.RESULTS_DIR, help="where records are kept")) -> None:
    """A claim's history: every full-profile record of it, oldest first (version, commit, verdict, the
    deciding numbers, re-judgements, whether its design was registered before the run), what changed in
    the design between them and why (the suite's version notes)."""
    import difflib

    from repro import history as hist

    loaded = _load_suites(check=False)
    ids = {c.id.lower(): c.id for s in loaded for c in s.claims}
    cid = ids.get(claim.lower(), claim)
    try:
        h = hist.claim_history(cid, results)
    except KeyError:
        close = difflib.get_close_matches(claim.upper(), list(ids.values()), n=1, cutoff=0.6)
        fail(f"no claim named '{claim}'; " + (f"did you mean '{close[0]}'? " if close else "")
             + "`repro list` shows them all")
    _print_history(h)


def _print_history(h) -> None:
    from rich.markup import escape as esc

    out.print(f"[bold]{esc(h.claim)}[/] ({esc(h.suite)}): {esc(h.text)}"
              + (f" - version {h.version} in the suite now" if h.version is not None else " - in no suite now"),
              highlight=False, soft_wrap=True)
    if h.post_result:
        out.print("† its design changed after a result was seen: "
                  + esc("; ".join(f"v{c.version}: {c.why}" for c in h.post_result)), highlight=False, soft_wrap=True)
    t = Table(title_justify="left", show_lines=True)
    for col, kw in (("#", {}), ("run at", {"no_wrap": True}), ("v", {}), ("verdict", {}),
                    ("deciding numbers", {"overflow": "fold"}), ("design", {"overflow": "fold", "max_width": 34}),
                    ("what changed and why", {"overflow": "fold"})):
        t.add_column(col, **kw)
    for i, x in enumerate(h.entries, 1):
        verdict = _styled(x.verdict) + ("\n[bold]README's[/]" if x.speaks else "")
        if x.stale:
            verdict += "\n[yellow]stale[/]: " + esc("; ".join(x.stale))
        for j in x.rejudgements:
            at = f" at {j['at_commit']}" if j.get("at_commit") else ""
            verdict += f"\n[dim]re-judged{at} ({j['commit'][:7] or 'not committed'}):[/] v{j['version']} {_styled(j['verdict'])}"
        reg = {True: "[green]registered[/]", False: "[red]not registered[/]", None: "[dim]unknown[/]"}[x.registered]
        design_cell = f"{reg}: {esc(x.registered_why)}" + (f"\n{esc(x.rejudged)}" if x.rejudged else "")
        why = [f"v{c.version}{' [yellow](after a result)[/]' if c.after_result else ''}: {esc(c.why)}" for c in x.changes]
        if x.differences:
            why.append("[dim]" + esc("; ".join(x.differences)) + "[/]")
        where = f"{x.run_commit}\n{x.finished[:16].replace('T', ' ')}"
        if not x.committed_in:
            where += "\n[yellow]not committed[/]"
        elif x.removed_in:
            where += f"\n[dim]removed in {x.removed_in[:7]}[/]"
        t.add_row(str(i), where, str(x.version), verdict, esc(x.numbers), design_cell, "\n".join(why))
    if h.entries:
        out.print(t)
    else:
        out.print("no full-profile record of it yet", style="dim")
    for c in h.pending:
        out.print(f"since the newest record: v{c.version}{' (after a result)' if c.after_result else ''}: "
                  f"{esc(c.why)}", highlight=False, soft_wrap=True)


def _print_comparison(ra: dict, rb: dict) -> list:
    from repro import compare as cmp

    rows = cmp.compare(ra, rb)
    t = Table(title=f"A = {ra['suite']} {ra['profile']} {ra['commit']} ({ra['machine']})   "
                    f"B = {rb['suite']} {rb['profile']} {rb['commit']} ({rb['machine']})", title_justify="left")
    for col in ("", "claim", "metric", "A", "B", "change", "note"):
        t.add_column(col, overflow="fold")
    for r in rows:
        style = {"!": "bold red", "-": "red", "*": "green", "+": "green", "~": "yellow"}.get(r.mark, "")
        t.add_row(f"[{style}]{r.mark}[/]" if style else r.mark, r.claim, r.metric, r.a, r.b, r.change, r.note)
    out.print(t)
    out.print("  ".join(f"{k!r}: {v}" for k, v in cmp.MARKS.items() if k != " "), style="dim")
    bad = cmp.regressions(rows)
    if bad:
        out.print(f"[red]{len(bad)} regression(s):[/] " + "; ".join(
            f"{r.claim}{'.' + r.metric if r.metric else ''} {r.a} → {r.b}" + (f" ({r.note})" if r.note else "")
            for r in bad), soft_wrap=True)
    else:
        out.print("[green]no regressions[/]")
    return bad


@app.command()
def compare(a: Path = typer.Argument(..., help="the earlier record (a .json under results/)"),
            b: Path = typer.Argument(..., help="the later record"),
            fail_on_regression: bool = typer.Option(False, "--fail-on-regression",
                                                    help="exit 1 when a claim got worse (the regression check)")) -> None:
    """Two records side by side, each claim marked: ! newly failing, * fixed, - worse, + better, ~ not comparable."""
    try:
        ra, rb = records.load(a), records.load(b)
    except records.RecordError as e:
        fail(str(e))
    if ra["suite"] != rb["suite"]:
        fail(f"{a} is suite '{ra['suite']}' but {b} is suite '{rb['suite']}'; compare records of one suite")
    if _print_comparison(ra, rb) and fail_on_regression:
        raise typer.Exit(1)


@app.command()
def check(items: Optional[list[str]] = typer.Argument(None, help="suite names and/or claim IDs; all suites when left out"),
          profile: str = typer.Option("smoke", "--profile", "-p", help="smoke | quick | full | paper"),
          baseline: Optional[list[Path]] = typer.Option(None, "--baseline", "-b",
                                                        help="baseline record(s); default: the newest committed record of each suite and profile"),
          results: Path = typer.Option(records.RESULTS_DIR, help="where records are kept"),
          verbose: bool = typer.Option(False, "--verbose", "-v", help="show TensorFlow's and the libraries' logs live")) -> None:
    """The regression gate: run (or reuse) this commit's results and compare them with the baseline; exit 1 on regression."""
    from repro import env, gate

    _check_profile(profile)
    log = _run_log(results, verbose)
    with log as display:   # from here on: checking the suites imports TensorFlow
        try:
            selection = suites.select(items or [], _load_suites())
            plan = gate.plan([s.name for s, _ in selection], profile, results, baseline or [],
                             machine=env.machine(), commit=env.commit())
        except (suites.SelectionError, gate.GateError) as e:
            fail(str(e))
        paths = _run_with_progress(selection, profile=profile, seeds=None, force=False, results=results, pool=None,
                                   log=log, display=display)
    log.keep(paths)
    outcome = gate.check(plan, [(records.load(p), p) for p in paths],
                         {s.name: [c.id for c in claims] for s, claims in selection})
    for line in outcome.lines():
        out.print(line, highlight=False, soft_wrap=True, markup=False)
    if outcome.regressions:
        err.print(f"[bold red]regression check failed[/]: {len(outcome.regressions)} regression(s)", soft_wrap=True)
        raise typer.Exit(1)


@app.command()
def rejudge(paths: Optional[list[Path]] = typer.Argument(None, help="records to re-judge; default: every record under --results"),
            results: Path = typer.Option(records.RESULTS_DIR, help="where records are kept")) -> None:
    """Re-judge stored records under the current suite files from their stored per-seed values (no re-run);
    records of suite format 1 become schema 2. Each file keeps its name: the values are that commit's."""
    from repro import env
    from repro import rejudge as rj

    loaded = {s.name: s for s in _load_suites()}
    targets = paths or sorted(p for p in results.glob("*/*.json"))
    commit = env.commit()
    for p in targets:
        try:
            path, rec = rj.rejudge_file(Path(p), loaded, commit)
        except records.RecordError as e:
            fail(str(e))
        missing = rec.get("not_rejudged") or {}
        out.print(f"re-judged {path}: {len(rec['claims'])} claim(s)" +
                  (f"; not re-judged: {', '.join(missing)}" if missing else ""))


@app.command("env")
def env_() -> None:
    """Versions, CPU/GPU devices, thread settings, machine name and commit."""
    from repro import env

    info = env.capture()
    t = Table(show_header=False, title="environment", title_justify="left")
    for k, v in info.items():
        t.add_row(k, ", ".join(v) if isinstance(v, list) else str(v))
    out.print(t)


@data_app.command("list")
def data_list() -> None:
    """Datasets, their sources in the order tried, cache state and expected checksum."""
    from repro import data

    t = Table()
    for col in ("dataset", "description", "sources (tried in order)", "cached", "checksum"):
        t.add_column(col, overflow="fold")
    for row in data.describe():
        t.add_row(row["name"], row["description"], "\n".join(f"{i + 1}. {s}" for i, s in enumerate(row["sources"])),
                  f"[green]yes[/] {row['path']}" if row["cached"] else "[dim]no[/]", row["checksum"][:16] + "…")
    out.print(t)
    out.print(f"cache: {data.cache_dir()} (set REPRO_DATA_DIR to move it)", style="dim")


@data_app.command("fetch")
def data_fetch(name: str = typer.Argument(..., help="a dataset name from `repro data list`"),
               force: bool = typer.Option(False, "--force", help="fetch again even if cached")) -> None:
    """Fetch a dataset into the cache (trying its sources in order) and check its checksum."""
    from repro import data

    try:
        path = data.fetch(name, force=force, progress=say)
    except data.DataError as e:
        fail(str(e))
    out.print(f"[green]ok[/] {name}: {path}")


@data_app.command("verify")
def data_verify(name: Optional[str] = typer.Argument(None, help="one dataset; all cached ones when left out")) -> None:
    """Re-hash cached datasets against their expected checksums."""
    from repro import data

    names = [name] if name else [r["name"] for r in data.describe() if r["cached"]]
    if not names:
        out.print("nothing cached yet; `repro data fetch NAME` fetches a dataset")
        return
    bad = 0
    for n in names:
        try:
            digest = data.verify(n)
            out.print(f"[green]ok[/] {n} sha256 {digest}")
        except data.DataError as e:
            err.print(f"[red]bad[/] {e}")
            bad += 1
    if bad:
        raise typer.Exit(2)


@app.command()
def report(results: Path = typer.Option(records.RESULTS_DIR, help="where records are kept"),
           readme: Path = typer.Option(Path(__file__).resolve().parent.parent / "README.md",
                                       help="the README whose verdict table is regenerated"),
           compare_: Optional[list[Path]] = typer.Option(None, "--compare", help="two records A B to show side by side")) -> None:
    """Write results/README.md and results/report.html (and README.md's table) from the newest full records;
    with --compare A --compare B, a side-by-side page of two runs."""
    from repro import compare as cmp
    from repro import report as rep

    if compare_:
        if len(compare_) != 2:
            fail("--compare takes two records: --compare A.json --compare B.json")
        try:
            ra, rb = records.load(compare_[0]), records.load(compare_[1])
        except records.RecordError as e:
            fail(str(e))
        _print_comparison(ra, rb)
        page = rep.compare_page(ra, rb, cmp.compare(ra, rb))
        rep.validate_html(page)
        target = results / f"compare-{compare_[0].stem}-vs-{compare_[1].stem}.html"
        records.write_atomic(target, page)
        out.print(f"wrote {target}")
        return
    for p in rep.write(results, readme):
        out.print(f"wrote {p}")


@app.command()
def bench(models: Optional[list[str]] = typer.Argument(None, help="workloads (default: all): lenet5, lstm64"),
          steps: int = typer.Option(60, "--steps", min=1, help="timed training steps per variant"),
          results: Path = typer.Option(records.RESULTS_DIR, help="where records are kept")) -> None:
    """Training throughput of the workhorse models, XLA off and on (mixed precision on GPU), against a
    matrix-product peak measured in the same run; writes results/bench/<machine>-<commit>.csv and .md."""
    import pandas as pd

    from repro import bench as b
    from repro import env

    chosen = models or list(b.WORKLOADS)
    unknown = [m for m in chosen if m not in b.WORKLOADS]
    if unknown:
        fail(f"unknown workload '{unknown[0]}'; choose from {', '.join(b.WORKLOADS)}")
    info = env.capture()
    with err.status("measuring ..."):
        peak, rows = b.run(chosen, steps=steps, gpu=bool(info["gpus"]))
    df = pd.DataFrame(rows)
    t = Table(title=f"bench on {info['machine']} ({info['device']}), commit {info['commit']}; "
                    f"matmul peak: numpy {peak['numpy_gflops']:.0f}, TF {peak['tf_gflops']:.0f} GFLOP/s",
              title_justify="left")
    for col in df.columns:
        t.add_column(col)
    for row in df.itertuples(index=False):
        t.add_row(*["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in row])
    out.print(t)
    stem = results / "bench" / f"{info['machine']}-{info['commit']}"
    head = (f"# bench: {info['machine']}, commit {info['commit']}\n\n{info['cpu']} x{info['cpu_count']}, "
            f"GPUs: {', '.join(info['gpus']) or 'none'}; TF {info['tensorflow']}, Keras {info['keras']}; "
            f"matmul peak numpy {peak['numpy_gflops']:.1f} GFLOP/s, TF {peak['tf_gflops']:.1f} GFLOP/s; "
            f"{steps} timed steps of batch 128 after 10 warm-up steps.\n\n")
    records.write_atomic(stem.with_suffix(".csv"), df.to_csv(index=False))
    records.write_atomic(stem.with_suffix(".md"), head + records.markdown_table(
        list(df.columns), [["" if v is None or (isinstance(v, float) and v != v) else v for v in r]
                           for r in df.itertuples(index=False)]))
    out.print(f"wrote {stem.with_suffix('.csv')} and .md")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
