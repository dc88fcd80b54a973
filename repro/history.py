"""Claim histories and registered designs, read from git and the records.

A claim's **history** is every full-profile record that ever held it, oldest first (by the time its run
finished): the records in results/ now, and those git once had (a record replaced or removed later
still happened). Each entry gives the claim version and commit it ran at, its verdict and deciding
numbers as first committed, every later re-judgement of the same record (commit, verdict), what
changed in the design since the entry before (from the records: runs, parameters, judged lines) and
why (the suite's ``changes:`` notes for those versions), and whether its design was **registered**
before the run: the run's commit is clean, the record was run rather than re-judged, and the design
computed from that commit's files (suite entry and code, :mod:`repro.design`) is the one the record
ran. :func:`registration` also finds the commit since which the design had stood unchanged.

:func:`claim_history` returns it for one claim (`repro history CLAIM`, the report's card); a claim
whose task or line changed after a result was seen has ``History.post_result`` (the README row's mark).
"""
from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from repro import codehash, design, record, registry, selection
from repro import suite as suites


class Git:
    """Read-only access to the git repository around ``path`` (none: ``bool(git)`` is False)."""

    def __init__(self, path: Path):
        self.root: Path | None = None
        self._blobs: dict[tuple[str, str], bytes | None] = {}
        self._trees: dict[str, list[str]] = {}
        self._resolved: dict[str, str | None] = {}
        self._batch: subprocess.Popen | None = None
        self.memo: dict[tuple, Any] = {}     # what was computed from a commit's files (suites, code hashes)
        top = self._run("rev-parse", "--show-toplevel", cwd=Path(path))
        if top:
            self.root = Path(top.strip()).resolve()

    def __bool__(self) -> bool:
        return self.root is not None

    def _run(self, *args: str, cwd: Path | None = None) -> str | None:
        where = cwd if cwd is not None else self.root
        try:
            out = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout if out.returncode == 0 else None

    def rel(self, path: Path) -> str | None:
        """``path`` relative to the repository root (None: outside it)."""
        if self.root is None:
            return None
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None

    def resolve(self, rev: str) -> str | None:
        """The full hash of a commit named by a (short) hash, or None when this repository lacks it."""
        if rev not in self._resolved:
            out = self._run("rev-parse", "--verify", "-q", f"{rev}^{{commit}}") if re.fullmatch(r"[0-9a-f]{4,40}", rev) else None
            self._resolved[rev] = out.strip() if out else None
        return self._resolved[rev]

    def show(self, commit: str, path: str) -> bytes | None:
        """A file's bytes at a commit (None: not there)."""
        key = (commit, path)
        if key not in self._blobs:
            self._blobs[key] = self._cat(f"{commit}:{path}")
        return self._blobs[key]

    def _cat(self, spec: str) -> bytes | None:
        if self._batch is None:
            self._batch = subprocess.Popen(["git", "-C", str(self.root), "cat-file", "--batch"],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._batch.stdin and self._batch.stdout
        self._batch.stdin.write(spec.encode() + b"\n")
        self._batch.stdin.flush()
        head = self._batch.stdout.readline().split()
        if len(head) != 3 or head[1] != b"blob":
            return None
        data = self._batch.stdout.read(int(head[2]))
        self._batch.stdout.read(1)
        return data

    def close(self) -> None:
        if self._batch is not None:
            self._batch.stdin.close()   # type: ignore[union-attr]
            self._batch.wait(timeout=30)
            self._batch = None

    def files(self, commit: str, prefix: str) -> list[str]:
        key = f"{commit}:{prefix}"
        if key not in self._trees:
            out = self._run("ls-tree", "-r", "--name-only", commit, "--", prefix)
            self._trees[key] = out.split("\n")[:-1] if out else []
        return self._trees[key]

    def reader(self, commit: str) -> codehash.Reader:
        return lambda path: self.show(commit, path)

    def log(self, *paths: str, rev: str = "HEAD", fmt: str = "%H%x09%cI%x09%s") -> list[list[str]]:
        """Commits that touched ``paths`` (newest first): the format's fields, tab-separated."""
        out = self._run("log", f"--format={fmt}", rev, "--", *paths)
        return [line.split("\t") for line in out.splitlines() if line] if out else []

    def is_ancestor(self, a: str, b: str) -> bool:
        try:
            return subprocess.run(["git", "-C", str(self.root), "merge-base", "--is-ancestor", a, b],
                                  capture_output=True, timeout=60).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def tracked(self, prefix: str) -> set[str]:
        out = self._run("ls-files", "-z", "--", prefix)
        return set(out.split("\0")) - {""} if out else set()


# ---- designs at a commit ------------------------------------------------------------------------------

def _experiments_at(git: Git, commit: str) -> dict[str, str]:
    """Experiment name -> module, read from a commit's repro/experiments/."""
    key = ("experiments", commit)
    if key not in git.memo:
        git.memo[key] = codehash.experiment_modules_in(git.reader(commit),
                                                       git.files(commit, codehash.EXPERIMENTS_PACKAGE + "/"))
    return git.memo[key]


def _code_at(git: Git, commit: str):
    """An experiment's code hash from a commit's files (None: the commit has no such experiment)."""
    found = _experiments_at(git, commit)

    def code(experiment: str) -> str | None:
        module = found.get(experiment)
        if module is None and experiment in registry.EXPERIMENTS:   # an experiment kept outside repro/
            module = registry.EXPERIMENTS[experiment].__module__
        if module is None:
            return None
        key = ("code", commit, module)
        if key not in git.memo:
            git.memo[key] = codehash.code_hash_in(module, git.reader(commit))
        return git.memo[key]
    return code


def suite_at(git: Git, commit: str, suite_path: str) -> suites.Suite | None:
    """The suite file as it was at a commit (None: not there, or in a format this code cannot read)."""
    key = ("suite", commit, suite_path)
    if key in git.memo:
        return git.memo[key]
    text = git.show(commit, suite_path)
    found = None
    if text is not None:
        try:
            found = suites.load(Path(suite_path), check=False, text=text.decode("utf-8"))
        except (suites.SuiteError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
            found = None
    git.memo[key] = found
    return found


def design_at(git: Git, commit: str, suite_path: str, claim_id: str, profile: str) -> dict | None:
    """The claim's design (:func:`repro.design.of`) computed from a commit's suite file and code."""
    from repro import runner

    key = ("design", commit, suite_path, claim_id, profile)
    if key in git.memo:
        return git.memo[key]
    s = suite_at(git, commit, suite_path)
    claim = next((c for c in s.claims if c.id == claim_id), None) if s is not None else None
    found = None
    if claim is not None:
        code = _code_at(git, commit)
        keys = {r.id: runner.run_key(s, r, profile, code) for r in design.runs_of(s, claim)}
        found = design.of(s, claim, profile, keys)
    git.memo[key] = found
    return found


@dataclasses.dataclass
class Registration:
    """Was the design of a record's claim committed before the run? ``registered`` is None when it
    cannot be told (no git history, a commit this repository lacks)."""

    registered: bool | None
    why: str
    since: str = ""          # the commit since which the design had stood unchanged (when looked for)
    since_date: str = ""


def suite_file(git: Git, suite_name: str) -> str | None:
    """The suite file's path in the repository (None: the suites are outside it)."""
    return git.rel(suites.suites_dir() / f"{suite_name}.yaml") if git else None


def registration(git: Git, rec: dict, claim_id: str, find_since: bool = False) -> Registration:
    """Whether the design a record ran for ``claim_id`` was committed before the run: a clean commit,
    a run (not a re-judgement), and the design at that commit equal to the record's (its stored design
    hash; for older records, its runs' keys and judged lines). With ``find_since``: the commit since
    which the design had stood unchanged, walking back through the commits that touched the suite file
    or the runs' code."""
    commit = str(rec.get("commit") or "")
    if rec.get("rejudged"):
        at = rec["rejudged"].get("at_commit") or "a later commit"
        return Registration(False, f"re-judged at {at} from the values of the run at {commit}, not re-run")
    if commit.endswith("-dirty"):
        return Registration(False, f"run at {commit}: the tree had uncommitted changes, so its design was "
                                   "not committed before the run")
    if not git:
        return Registration(None, "no git history to check it against")
    full = git.resolve(commit)
    if full is None:
        return Registration(None, f"commit {commit} is not in this repository's history")
    path = suite_file(git, rec["suite"])
    if path is None:
        return Registration(None, "the suites are outside this repository")
    entry = rec["claims"].get(claim_id) or {}
    here = design_at(git, full, path, claim_id, rec["profile"])
    if here is None:
        if rec.get("schema") == 1:
            return Registration(True, f"run at {commit}, a clean commit (its suite file, of format 1, is not "
                                      "re-read: the design was committed, its code not re-checked)")
        return Registration(None, f"the suite at {commit} is in a format this code does not read")
    stored = entry.get("design")
    if stored:
        same = stored.get("hash") == here["hash"]
    else:
        same = all((rec.get("runs") or {}).get(rid, {}).get("code_hash") == key for rid, key in here["runs"].items())
        s = suite_at(git, full, path)
        if same and s is not None:
            same = design.rules_of(entry) == {m.name: (m.rule, m.precondition) for m in s.claim(claim_id).metrics
                                              if m.rule is not None}
    if not same:
        return Registration(False, f"the record's design differs from the one committed at {commit} (code or "
                                   "suite entry not as committed: uncommitted files, or edited after)")
    reg = Registration(True, f"run at {commit}, a clean commit whose suite entry and code are the record's")
    if find_since:
        reg.since, reg.since_date = _since(git, full, path, claim_id, rec["profile"], here["hash"])
        if reg.since:
            reg.why += f"; the design stood unchanged since {reg.since[:10]} ({reg.since_date})"
    return reg


def _since(git: Git, commit: str, suite_path: str, claim_id: str, profile: str, target: str,
           limit: int = 60) -> tuple[str, str]:
    """The oldest commit (among those touching the suite file or the code) from which the design was
    ``target`` without a change up to ``commit``."""
    s = suite_at(git, commit, suite_path)
    read = git.reader(commit)
    found = _experiments_at(git, commit)
    files = {suite_path}
    if s is not None:
        for r in design.runs_of(s, s.claim(claim_id)):
            module = found.get(r.experiment)
            if module:
                files.update(codehash.modules_in(module, read).values())
    since, date = commit, ""
    for sha, when, _subject in git.log(*sorted(files), rev=commit)[:limit]:
        d = design_at(git, sha, suite_path, claim_id, profile)
        if d is None or d["hash"] != target:
            break
        since, date = sha, when
    return since, date


# ---- histories -------------------------------------------------------------------------------------------

@dataclasses.dataclass
class State:
    """One committed (or local) state of a record file."""

    path: str                 # relative to the results folder
    commit: str               # the git commit that wrote this state ("" for the working tree's)
    date: str
    rec: dict


@dataclasses.dataclass
class Entry:
    """One full-profile record of a claim in its history."""

    claim: str
    record: str               # its path relative to the results folder
    run_commit: str           # the commit the run was made at
    finished: str
    version: Any              # the claim version as first recorded
    verdict: str | None
    deciding: str
    numbers: str              # the judged parts' measured values and outcomes
    committed_in: str = ""    # the git commit that first stored it ("" when not committed)
    removed_in: str = ""      # the git commit that removed the file, if one did
    rejudged: str = ""        # 're-judged, not re-run' when even its first state was judged from stored values
    rejudgements: list[dict] = dataclasses.field(default_factory=list)   # later states: commit, date, version, verdict
    registered: bool | None = None
    registered_why: str = ""
    differences: list[str] = dataclasses.field(default_factory=list)    # design changes since the entry before
    changes: list[suites.Change] = dataclasses.field(default_factory=list)   # the suite's notes in between
    speaks: bool = False      # the record README's table takes for this claim
    stale: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class History:
    claim: str
    suite: str
    text: str                 # the claim in a few words
    version: int | None       # the claim version in the suite now
    entries: list[Entry]
    pending: list[suites.Change]          # notes on changes made after the newest record
    post_result: tuple[suites.Change, ...]   # changes made after a result of the claim had been seen

    @property
    def changed_after_result(self) -> bool:
        return bool(self.post_result)


def numbers_text(entry: dict) -> str:
    """The judged parts of a record entry: 'name value → outcome; ...'."""
    metrics = entry.get("metrics") or {}
    if isinstance(metrics, str):
        return ""
    parts = []
    for n, m in metrics.items():
        if not isinstance(m, dict) or m.get("status") in (None, "info"):
            continue
        parts.append(f"{n} {record.measured_text(m)} → {m['status']}")
    return "; ".join(parts) or (entry.get("error") or "").split("\n")[0]


class Histories:
    """Every state of every full-profile record under a results folder (git's and the working tree's),
    read once for all the claims asked about."""

    def __init__(self, results_dir: Path = record.RESULTS_DIR, profile: str = "full"):
        self.results_dir = Path(results_dir)
        self.profile = profile
        self.git = Git(self.results_dir if self.results_dir.exists() else self.results_dir.parent)
        self.now = selection.today()
        self.selected = selection.select(self.results_dir, profile, self.now)
        self.states: dict[str, list[State]] = {}
        self.removed: dict[str, str] = {}
        self._read()

    def _wanted(self, name: str) -> bool:
        return bool(re.fullmatch(rf"[^/]+/[^/]+-{re.escape(self.profile)}-[^/]+\.json", name))

    def _read(self) -> None:
        base = self.git.rel(self.results_dir) if self.git else None
        if base is not None:
            out = self.git._run("log", "--reverse", "--format=@%H%x09%cI", "--name-status", "--no-renames",
                                "--", base) or ""
            sha = date = ""
            for line in out.splitlines():
                if line.startswith("@"):
                    sha, date = line[1:].split("\t")
                    continue
                if not line.strip():
                    continue
                status, path = line.split("\t", 1)
                rel = path[len(base) + 1:] if base not in ("", ".") else path
                if not self._wanted(rel):
                    continue
                if status.startswith("D"):
                    self.removed[rel] = sha
                    continue
                data = self.git.show(sha, path)
                rec = self._parse(data)
                if rec is not None:
                    self.states.setdefault(rel, []).append(State(rel, sha, date, rec))
                    self.removed.pop(rel, None)
        for p in sorted(self.results_dir.glob("*/*.json")):
            rel = p.relative_to(self.results_dir).as_posix()
            if not self._wanted(rel):
                continue
            rec = self._parse(p.read_bytes())
            if rec is None:
                continue
            known = self.states.get(rel)
            if not known or known[-1].rec != rec:
                self.states.setdefault(rel, []).append(State(rel, "", "", rec))
        self.git.close()

    @staticmethod
    def _parse(data: bytes | None) -> dict | None:
        if not data:
            return None
        try:
            rec = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return None
        return rec if isinstance(rec, dict) and isinstance(rec.get("claims"), dict) else None

    def claim_ids(self) -> list[str]:
        return list(self.now) + sorted({cid for sts in self.states.values() for s in sts for cid in s.rec["claims"]}
                                       - set(self.now))

    def of(self, claim_id: str, check_registration: bool = True) -> History:
        """The history of one claim (KeyError: no suite or record knows it)."""
        s, c = self.now.get(claim_id, (None, None))
        entries: list[Entry] = []
        for rel, states in self.states.items():
            with_claim = [st for st in states if claim_id in st.rec["claims"]]
            if not with_claim:
                continue
            first = with_claim[0]
            e = first.rec["claims"][claim_id]
            rejudged = (selection.rejudged_text(first.rec) or
                        ("re-judged, not re-run: first stored in this record by a re-judgement"
                         if first is not states[0] else ""))
            entry = Entry(claim=claim_id, record=rel, run_commit=str(first.rec.get("commit", "")),
                          finished=str(first.rec.get("finished") or ""), version=e.get("version"),
                          verdict=e.get("verdict"), deciding=e.get("deciding") or "", numbers=numbers_text(e),
                          committed_in=first.commit, removed_in=self.removed.get(rel, ""), rejudged=rejudged)
            last = (e.get("version"), e.get("verdict"), e.get("deciding"))
            for st in with_claim[1:]:
                x = st.rec["claims"][claim_id]
                now = (x.get("version"), x.get("verdict"), x.get("deciding"))
                if now != last:
                    rj = st.rec.get("rejudged") or {}
                    entry.rejudgements.append({"commit": st.commit, "date": st.date, "version": x.get("version"),
                                               "verdict": x.get("verdict"), "deciding": x.get("deciding") or "",
                                               "at_commit": rj.get("at_commit", ""), "numbers": numbers_text(x)})
                    last = now
            newest = with_claim[-1].rec
            if check_registration:
                reg = registration(self.git, first.rec, claim_id)
                entry.registered, entry.registered_why = reg.registered, reg.why
            sel = self.selected.get(claim_id)
            if sel is not None and sel.record.get("_path") == rel:
                entry.speaks, entry.stale = True, list(sel.stale)
            entry._entry = newest["claims"][claim_id]   # type: ignore[attr-defined]
            entry._first = e                            # type: ignore[attr-defined]
            entries.append(entry)
        if not entries and c is None:
            raise KeyError(claim_id)
        # records finish at a resolution of seconds: two in one second keep the order of their versions
        entries.sort(key=lambda x: (x.finished, x.version if isinstance(x.version, int) else 0, x.record))
        for prev, cur in zip(entries, entries[1:]):
            cur.differences = design.differences(prev._first, cur._first)   # type: ignore[attr-defined]
        notes = list(c.changes) if c is not None else []
        pending = self._attach(entries, notes)
        for x in entries:
            for attr in ("_entry", "_first"):
                x.__dict__.pop(attr, None)
        self.git.close()
        return History(claim=claim_id, suite=s.name if s else (entries[-1].record.split("/")[-1].split("-")[0]),
                       text=c.claim if c else "", version=c.version if c else None, entries=entries,
                       pending=pending, post_result=c.changed_after_result if c else ())

    def _attach(self, entries: list[Entry], notes: list[suites.Change]) -> list[suites.Change]:
        """Put each version note before the first record that ran with it: a note naming a commit goes
        to the first record run at or after that commit, one without to the first record at its version
        or later. What no record ran yet is pending."""
        pending = []
        for n in notes:
            target = None
            for x in entries:
                run = self.git.resolve(x.run_commit.removesuffix("-dirty")) if self.git else None
                if n.commit and run and self.git.resolve(n.commit):
                    if self.git.is_ancestor(n.commit, run):
                        target = x
                        break
                elif isinstance(x.version, int) and x.version >= n.version:
                    target = x
                    break
            if target is None:
                pending.append(n)
            else:
                target.changes.append(n)
        return pending


def claim_history(claim_id: str, results_dir: Path = record.RESULTS_DIR, profile: str = "full") -> History:
    """The history of one claim (KeyError when no suite or record knows the ID)."""
    return Histories(results_dir, profile).of(claim_id)


def histories(results_dir: Path = record.RESULTS_DIR, profile: str = "full",
              check_registration: bool = True) -> dict[str, History]:
    """Every claim's history (for the report's cards), reading git and the records once."""
    h = Histories(results_dir, profile)
    return {cid: h.of(cid, check_registration) for cid in h.claim_ids()}
