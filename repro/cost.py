"""What a run will cost, said before it starts: the time of its (run, seed) units from the records'
per-unit seconds, less the units this commit already has (an interrupted run's, reused).

Each run's time per unit is the mean over seeds of the newest record of the profile that ran it with
today's parameters (this machine's records first; another machine's are named); a run no record timed
with these parameters takes an older record's time with other parameters (said so), or has no
timing at all (said so, left out of the sum). A run starts at its profile's seed count and may grow
to its maximum while a part is undecided: both sums are given.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from repro import record, selection
from repro.suite import Claim, Suite


@dataclasses.dataclass
class RunCost:
    suite: str
    run: str
    start: int                 # units at the start seed count
    most: int                  # units at the maximum seed count
    cached: int                # units this commit already has, within the start count
    per_unit: float | None     # seconds per unit (None: no record timed it)
    cpu_per_unit: float | None = None   # CPU seconds per unit (records since they keep it)
    source: str = ""           # the record the timing comes from
    machine: str = ""          # the machine that record was made on
    other_params: bool = False  # timed with other parameters than today's


@dataclasses.dataclass
class Estimate:
    profile: str
    machine: str
    runs: list[RunCost]

    @property
    def seconds(self) -> float:
        """Seconds still to run at the start seed counts."""
        return sum((r.start - r.cached) * r.per_unit for r in self.runs if r.per_unit is not None)

    @property
    def most_seconds(self) -> float:
        return sum((r.most - r.cached) * r.per_unit for r in self.runs if r.per_unit is not None)

    @property
    def cached_seconds(self) -> float:
        return sum(r.cached * r.per_unit for r in self.runs if r.per_unit is not None)

    @property
    def cpu_seconds(self) -> float | None:
        """CPU seconds still to run, when every timed run's record kept its units' CPU time."""
        timed = [r for r in self.runs if r.per_unit is not None]
        if not timed or any(r.cpu_per_unit is None for r in timed):
            return None
        return sum((r.start - r.cached) * r.cpu_per_unit for r in timed)

    @property
    def untimed(self) -> list[RunCost]:
        return [r for r in self.runs if r.per_unit is None]

    def text(self) -> str:
        """'full profile: about 2 h 40 min on this machine ... ; 35 min cached' and what it does not know."""
        units = sum(r.start - r.cached for r in self.runs)
        cached_units = sum(r.cached for r in self.runs)
        if self.runs and len(self.untimed) == len(self.runs):
            return (f"{self.profile} profile: {units} (run, seed) unit(s) to run at the start seed counts"
                    f"{f', {cached_units} cached' if cached_units else ''}; no committed record of this profile "
                    "times any of them, so no estimate.")
        others = sorted({r.machine for r in self.runs if r.per_unit is not None and r.machine != self.machine})
        where = "on this machine" if not others else f"(timed on {', '.join(others)}" + \
            (f" and {self.machine})" if any(r.machine == self.machine for r in self.runs if r.per_unit) else ")")
        parts = [f"{self.profile} profile: about {duration(self.seconds)} {where} for {units} (run, seed) "
                 f"unit(s) at the start seed counts"]
        if self.most_seconds > self.seconds * 1.05:
            parts[0] += f", up to {duration(self.most_seconds)} if every run takes its maximum seeds"
        if cached_units:
            parts.append(f"{duration(self.cached_seconds)} cached ({cached_units} finished unit(s) of this "
                         "commit, reused)")
        else:
            parts.append("nothing cached")
        lines = ["; ".join(parts) + "."]
        if self.cpu_seconds is not None:
            lines.append(f"Those units took {duration(self.cpu_seconds)} of CPU time (wall time on idle cores is "
                         "about CPU time over the cores' parallel speed-up; recorded wall times include the load "
                         "of their day).")
        if self.untimed:
            lines.append("No committed timing for " + ", ".join(f"{r.suite}/{r.run}" for r in self.untimed)
                         + ": not in the estimate.")
        older = [r for r in self.runs if r.other_params]
        if older:
            lines.append("Timed with other parameters than today's: "
                         + ", ".join(f"{r.suite}/{r.run} ({r.source})" for r in older) + ".")
        return "\n".join(lines)


def duration(seconds: float) -> str:
    """'2 h 40 min', '35 min', '45 s'."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    m = int(round(s / 60))
    if m < 60:
        return f"{m} min"
    h, m = divmod(m, 60)
    return f"{h} h {m} min" if m else f"{h} h"


def _timings(results_dir: Path, profile: str) -> list[tuple[dict, Path]]:
    """Records of the profile, newest first."""
    return selection.records(results_dir, profile)[::-1]


def _per_unit(run_entry: dict, field: str = "seconds") -> float | None:
    secs = [o.get(field) for o in (run_entry.get("results") or {}).values() if not o.get("error")]
    secs = [s for s in secs if isinstance(s, (int, float))]
    return sum(secs) / len(secs) if secs else None


def estimate(selection: list[tuple[Suite, list[Claim]]], *, profile: str, machine: str, commit: str,
             results_dir: Path = record.RESULTS_DIR, seeds: int | None = None) -> Estimate:
    """The estimate for `repro run` of ``selection`` at ``profile`` on ``machine`` at ``commit``."""
    from repro import runner

    known = _timings(results_dir, profile)
    runs: list[RunCost] = []
    for s, claims in selection:
        cached = runner.cached_units(s, claims, profile=profile, machine=machine, commit=commit,
                                     results_dir=results_dir)
        for run in runner.needed_runs(s, claims):
            looks = s.looks(run, profile, seeds)
            start, most = (1, 1) if run.deterministic else (looks[0], looks[-1])
            have = len([k for k in cached.get(run.id, []) if k < start])
            cost = RunCost(s.name, run.id, start, most, have, None)
            ph = run.params_hash(profile)
            ranked = sorted(((rec["machine"] != machine, i, rec, p) for i, (rec, p) in enumerate(known)
                             if rec["suite"] == s.name and run.id in rec.get("runs", {})), key=lambda x: x[:2])
            same = [x for x in ranked if x[2]["runs"][run.id].get("params_hash") == ph]
            other = [x for x in ranked if x[2]["runs"][run.id].get("experiment") == run.experiment]
            for pick, older in ((same, False), (other, True)):
                for _, _, rec, p in pick:
                    t = _per_unit(rec["runs"][run.id])
                    if t is not None:
                        cost.per_unit, cost.source, cost.machine, cost.other_params = t, p.name, rec["machine"], older
                        cost.cpu_per_unit = _per_unit(rec["runs"][run.id], "cpu_seconds")
                        break
                if cost.per_unit is not None:
                    break
            runs.append(cost)
    return Estimate(profile, machine, runs)
