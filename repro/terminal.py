"""What a person sees while a run goes on: progress and results, not the libraries' logs.

:class:`RunLog` sends what TensorFlow, absl, numpy and Keras write during a run into a log file beside the
record; :class:`ProgressView` shows the runner's events (live bars in a terminal, one plain line per
finished unit elsewhere); :func:`agreement` says whether a short run agrees with the committed full run.
Importing this module imports neither TensorFlow nor Keras.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console

from repro import record as records
from repro.runner import Event, state_dir

_active: RunLog | None = None


def _fileno(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _flush(*streams) -> None:
    for s in streams:
        try:
            s.flush()
        except (AttributeError, OSError, ValueError):
            pass


def quiet_libraries(user_tf_level: bool = False) -> None:
    """Log levels for a run, set before TensorFlow is imported: warnings and errors, no INFO chatter
    (they go to the run's log file, or to the terminal with -v). A TF_CPP_MIN_LOG_LEVEL the user set wins."""
    if not user_tf_level:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1"
    try:
        from absl import logging as absl_logging
        absl_logging.set_verbosity(absl_logging.WARNING)
    except ImportError:
        pass


class RunLog:
    """While a run goes on, what libraries write goes to a log file beside the record, not the screen.

    TensorFlow's and absl's C++ logs (CUDA probing, "NodeDef mentions attribute ...") are written to file
    descriptor 2 and Keras' or an experiment's prints to 1, below Python: both descriptors are pointed at
    the log (os.dup2), and so are Python's warnings (numpy's RuntimeWarning, tf.function retracing) and
    logging, which write through them. Worker processes (-j N, a local Ray) inherit them. The display
    gets its own copy of the real stderr.

    Each suite has its log, ``.repro-cache/runs/<machine>/<suite>-<profile>-<commit>.log`` while it runs
    (:meth:`switch`, on the runner's ``suite`` event); :meth:`keep` appends it to
    ``results/<machine>/<same stem>.log`` beside the finished record. What is written before the first
    suite starts (TensorFlow's start-up) opens the first suite's log; a run that stops before any suite
    starts leaves it in ``.repro-cache/runs/start-<pid>.log`` (one per process: two runs started together
    must not read or remove each other's). With ``verbose`` nothing is redirected.
    """

    def __init__(self, results: Path, console: Console, verbose: bool = False, header: str = "",
                 user_tf_level: bool = False):
        self.state, self.console, self.verbose, self.header = state_dir(results), console, verbose, header
        self.user_tf_level = user_tf_level
        self.start = self.state / f"start-{os.getpid()}.log"
        self.current: Path | None = None
        self.file = None
        self.saved: dict[int, int] = {}
        self.display_file = None
        self.python_stderr = None

    def __enter__(self) -> Console:
        """Route the logs; return the console the display writes to (the real terminal)."""
        global _active
        quiet_libraries(self.user_tf_level)
        if self.verbose:
            return self.console
        width = self.console.width   # measured now: soon the standard descriptors are the log, not the terminal
        _flush(sys.stdout, sys.stderr)
        for fd in (1, 2):
            try:
                self.saved[fd] = os.dup(fd)
            except OSError:   # no such descriptor (a daemon): nothing to route
                pass
        if _fileno(sys.stderr) == 2 and 2 in self.saved:   # the display keeps the real stderr
            self.display_file = os.fdopen(os.dup(self.saved[2]), "w", buffering=1,
                                          encoding=sys.stderr.encoding or "utf-8", errors="replace")
            display = Console(file=self.display_file, width=width)
        else:   # Python's stderr is not descriptor 2 (a test runner's capture): it stays the display
            display = Console(file=sys.stderr, width=width)
            self.python_stderr = sys.stderr
            sys.stderr = open(2, "w", buffering=1, closefd=False, encoding="utf-8", errors="replace")
        _active = self
        self.switch(self.start, fresh=True)
        return display

    def switch(self, path: Path, fresh: bool = False) -> None:
        """Point the logs at ``path`` (appending); what the start-up log holds moves into it."""
        if self.verbose or not self.saved or path == self.current:
            return
        _flush(sys.stdout, sys.stderr)
        path.parent.mkdir(parents=True, exist_ok=True)
        new = open(path, "w" if fresh else "a", encoding="utf-8", errors="replace", buffering=1)
        if self.header and not fresh:
            new.write(f"--- {records.now()} {self.header} ---\n")
        if self.current == self.start:
            new.write(self.start.read_text(encoding="utf-8", errors="replace"))
        new.flush()
        for fd in self.saved:
            os.dup2(new.fileno(), fd)
        if self.file is not None:
            self.file.close()
        if self.current == self.start:
            self.start.unlink(missing_ok=True)
        self.file, self.current = new, path

    def suite_log(self, record_path: Path) -> Path:
        """The log of the suite whose record will be ``record_path``, while it runs."""
        return self.state / record_path.parent.name / f"{record_path.stem}.log"

    def close(self) -> None:
        """Give the terminal back (idempotent)."""
        global _active
        if _active is self:
            _active = None
        if self.verbose or not self.saved:
            return
        _flush(sys.stdout, sys.stderr)
        for fd, saved in self.saved.items():
            os.dup2(saved, fd)
            os.close(saved)
        self.saved = {}
        if self.python_stderr is not None:
            sys.stderr, self.python_stderr = self.python_stderr, None
        for f in (self.file, self.display_file):
            if f is not None:
                f.close()
        self.file = self.display_file = None

    def __exit__(self, *exc) -> None:
        self.close()

    def keep(self, record_paths: list[Path]) -> None:
        """Append each finished suite's log to the one beside its record."""
        if self.verbose:
            return
        for p in record_paths:
            work = self.suite_log(p)
            if work.exists():
                with open(p.with_suffix(".log"), "ab") as target:
                    target.write(work.read_bytes())
                work.unlink()


def restore() -> None:
    """Give the terminal back if a run's logs are routed (before an error line is printed)."""
    if _active is not None:
        _active.close()


def short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def headline(out: dict) -> str:
    """A finished unit in a few words: its error's first line, or the first metric it returned."""
    if out.get("error"):
        return "[red]error[/] " + short(out["error"].splitlines()[0], 100)
    if not out.get("metrics"):
        return "no metrics"
    name, value = next(iter(out["metrics"].items()))
    return f"{name}={records.fmt(value)}"


class ProgressView:
    """Shows the runner's events. In a terminal: a live bar for the suite and one per running unit, and a
    line above them per finished unit. Elsewhere (CI, a pipe, a file): only the lines, one per unit."""

    def __init__(self, console: Console, profile: str, log: RunLog | None = None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console, self.profile, self.log = console, profile, log
        self.live = console.is_terminal
        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=True,
                            redirect_stdout=False, redirect_stderr=False) if self.live else None
        self.suite = ""
        self.overall = None
        self.tasks: dict[tuple[str, int], object] = {}
        self.counted: set[tuple[str, str, int]] = set()

    def __enter__(self) -> ProgressView:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def line(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=not self.live)

    def _count(self, run_id: str, seed: int) -> None:
        key = (self.suite, run_id, seed)
        if key not in self.counted:   # the runner says "skip" again for every finished unit after a look
            self.counted.add(key)
            if self.bar is not None and self.overall is not None:
                self.bar.advance(self.overall)

    def __call__(self, e: Event) -> None:
        bar = self.bar
        if e.kind == "suite":
            self.suite = e.suite
            if self.log is not None and e.path is not None:
                self.log.switch(self.log.suite_log(e.path))
            self.line(f"[bold]{e.suite}[/] ({self.profile}): {e.total} (run, seed) unit(s)")
            if bar is not None:
                if self.overall is not None:
                    bar.remove_task(self.overall)
                self.overall = bar.add_task(f"[bold]{e.suite}[/] ({self.profile})", total=e.total)
        elif e.kind == "resume":
            self.line(f"[dim]resuming the interrupted run from {e.path}[/]")
        elif e.kind == "look":
            self.line(f"[dim]{e.suite} {e.run_id}: more seeds, up to {e.total}: {', '.join(e.why)} undecided[/]")
            if bar is not None and self.overall is not None:
                bar.update(self.overall, total=(bar.tasks[self.overall].total or 0) + e.added)
        elif e.kind == "unit" and bar is not None:
            self.tasks[(e.run_id, e.seed)] = bar.add_task(f"  {e.run_id} seed {e.seed}", total=None)
        elif e.kind == "step" and bar is not None and (e.run_id, e.seed) in self.tasks:
            bar.update(self.tasks[(e.run_id, e.seed)], completed=e.done, total=e.total,
                       description=f"  {e.run_id} seed {e.seed} {short(e.text, 60)}")
        elif e.kind == "done":
            if bar is not None and (e.run_id, e.seed) in self.tasks:
                bar.remove_task(self.tasks.pop((e.run_id, e.seed)))
            self.line(f"  {e.suite} {e.run_id} seed {e.seed}  {e.seconds or 0:.1f} s  {headline(e.out or {})}")
            self._count(e.run_id, e.seed)
        elif e.kind == "skip":
            if (e.suite, e.run_id, e.seed) not in self.counted:
                self.line(f"[dim]  {e.suite} {e.run_id} seed {e.seed}  reused (this commit has it)[/]")
            self._count(e.run_id, e.seed)


def committed_full(results: Path) -> dict[str, "selection.Selected"]:
    """Claim ID -> the full-profile record that speaks for it (:func:`repro.selection.select`, the same
    pick as README's table and the report) under ``results``; a claim no record there holds is taken
    from the repository's results/ (the committed ones, when ``--results`` points elsewhere)."""
    from repro import selection

    found = selection.select(results)
    if Path(results).resolve() != records.RESULTS_DIR.resolve():
        for cid, sel in selection.select(records.RESULTS_DIR).items():
            found.setdefault(cid, sel)
    return found


def newest_entry(results: Path, claim_id: str, profile: str) -> tuple[dict, dict] | None:
    """The newest (claim entry, record) of a claim for a profile: for full, the pages' selection
    (:func:`committed_full`); otherwise the newest record of that profile that holds it."""
    if profile == "full":
        sel = committed_full(results).get(claim_id)
        return (sel.entry, sel.record) if sel is not None else None
    found = None
    for folder in dict.fromkeys([records.RESULTS_DIR.resolve(), results.resolve()]):
        if not folder.is_dir():
            continue
        for p in records.find(folder):   # oldest first
            try:
                rec = records.load(p)
            except records.RecordError:
                continue
            if rec["profile"] == profile and claim_id in rec["claims"]:
                found = (rec["claims"][claim_id], rec)
    return found


def report_path(results: Path) -> Path:
    """Where the report is: under ``results`` if one was written there, else the committed one."""
    for folder in (results, records.RESULTS_DIR):
        if (folder / "report.html").exists():
            return folder / "report.html"
    return results / "report.html"


def agreement(entry: dict, full: dict | None) -> str:
    """Does a short run's verdict agree with the full run's, within what the short run can resolve?
    One seed of an empirical claim gives no interval, so a short run that is inconclusive cannot tell."""
    if full is None:
        return "no full verdict"
    if entry.get("error"):
        return "-"
    if entry["verdict"] == full["verdict"]:
        return "agrees"
    if entry["verdict"] == "inconclusive":
        n = entry.get("n_seeds") or 1
        return f"cannot tell ({'one seed' if n == 1 else f'{n} seeds'})"
    return "differs"


AGREEMENT_STYLE = {"agrees": "green", "differs": "red", "no full verdict": "dim", "-": "dim"}
