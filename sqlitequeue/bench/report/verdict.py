"""The report's first section: a team profile's verdict on a results folder.

:func:`team_verdict` judges a team profile (default: the seed article's team,
:data:`DEFAULT_TEAM`) with :mod:`sqlitequeue.bench.decide` on the folder's compare run and a
failure-lab run: the folder itself when it holds ``faults.csv``, else the newest finished
``bench faults`` run under the same results root. Without one, the criteria it answers
are *unknown*, and :func:`verdict_html` says which and how to measure them. The section
itself is :func:`sqlitequeue.bench.decide.render_verdict_html`, the one ``decide`` writes.
Reads results files only.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlitequeue.bench.report.formatting import inline_html

if TYPE_CHECKING:
    from sqlitequeue.bench.decide.sources import Source
    from sqlitequeue.bench.decide.team_profile import Profile
    from sqlitequeue.bench.decide.verdict import Decision
    from sqlitequeue.bench.results import Results

#: the seed article's team: the profile a report is judged for unless told otherwise
DEFAULT_TEAM = Path(__file__).resolve().parents[3] / "examples" / "profiles" / "seed.yaml"
#: how to measure what the verdict lacks
MEASURE_FAULTS = "sqlitequeue bench faults"


@dataclass(frozen=True)
class TeamVerdict:
    """A decision on one results folder, and which failure-lab run it used.

    ``decision`` is None when no verdict could be reached (``error`` says why);
    ``faults`` is the failure-lab run used (None when none was found).
    """

    decision: Decision | None
    faults: Source | None
    error: str = ""

    @property
    def unknown(self) -> list[str]:
        """Titles of the hard criteria without a measurement."""
        from sqlitequeue.bench.decide.criteria import UNKNOWN

        if self.decision is None:
            return []
        return [c.title for c in self.decision.criteria if c.hard and c.status == UNKNOWN]


def _profile(team: str | os.PathLike[str] | Mapping[str, Any] | Profile | None) -> Profile:
    from sqlitequeue.bench.decide.team_profile import Profile, load_profile

    if isinstance(team, Profile):
        return team
    return load_profile(DEFAULT_TEAM if team is None else team)


def _faults_run(res: Results) -> Source | None:
    from sqlitequeue.bench.decide.sources import GIVEN, REUSED, Source, latest_faults

    if "faults" in res.tables:
        return Source.of(res.path, GIVEN)
    found = latest_faults(res.path.parent)
    return Source.of(found, REUSED) if found is not None else None


def team_verdict(
    res: Results, team: str | os.PathLike[str] | Mapping[str, Any] | Profile | None = None
) -> TeamVerdict:
    """Judge ``team`` (a profile path, mapping or Profile; default :data:`DEFAULT_TEAM`) on ``res``.

    Uses ``res`` and the failure-lab run :func:`_faults_run` finds. Raises ProfileError for
    a bad profile; a folder the criteria cannot read gives a TeamVerdict with ``error``.
    """
    from sqlitequeue.bench.decide.evidence import gather_evidence
    from sqlitequeue.bench.decide.verdict import evaluate
    from sqlitequeue.bench.errors import BenchError, ProfileError

    profile = _profile(team)
    faults = _faults_run(res)
    folders = [res.path] + ([faults.path] if faults and faults.path != res.path else [])
    try:
        decision = evaluate(profile, gather_evidence(folders))
    except ProfileError:
        raise
    except BenchError as exc:
        return TeamVerdict(None, faults, error=str(exc))
    return TeamVerdict(decision, faults)


def verdict_html(verdict: TeamVerdict) -> str:
    """The verdict section (a ``<section>``), then which runs it used and what it lacks."""
    from sqlitequeue.bench.decide.report import render_verdict_html

    e = html.escape
    if verdict.decision is None:
        return (
            "<section class='decision verdict-section'><h2>Decision: no verdict</h2>"
            f"<p>{e(verdict.error)}</p></section>"
        )
    notes = []
    if verdict.faults is None:
        notes.append(
            "No failure-lab results in this folder or beside it, so these criteria are "
            f"unknown: {'; '.join(verdict.unknown) or 'none'}. Measure them with "
            f"<code>{MEASURE_FAULTS}</code> (a few minutes), then write this report again."
        )
    else:
        notes.append(f"Failure-lab figures from {inline_html(_describe(verdict.faults))}.")
    tone = {"SQLite fits": "fits", "stay on Kafka": "stay"}.get(verdict.decision.verdict, "open")
    body = "".join(f"<p class='evidence'>{n}</p>" for n in notes)
    return f"<div class='verdict-box {tone}'>{render_verdict_html(verdict.decision)}{body}</div>"


def _describe(run: Source) -> str:
    """ "results/X (faults run of 2026-11-28 13:57 UTC, 8 days old)"; fresh ones: measure."""
    from sqlitequeue.bench.decide.sources import STALE_AFTER, format_age

    age = run.age()
    if run.created is None or age is None:
        return f"{run.path} (of unknown age)"
    text = f"{run.path} (run of {run.created:%Y-%m-%d %H:%M} UTC, {format_age(age)} old)"
    if age > STALE_AFTER:
        text += f"; `{MEASURE_FAULTS}` measures them again"
    return text


def verdict_line(verdict: TeamVerdict) -> str:
    """One line for a terminal: "verdict for seed: SQLite fits (...)"."""
    if verdict.decision is None:
        return f"verdict: none ({verdict.error})"
    d = verdict.decision
    line = f"verdict for team profile {d.profile.name}: {d.verdict}"
    if verdict.unknown:
        line += f"; unknown: {'; '.join(verdict.unknown)}"
        if verdict.faults is None:
            line += f" (measure with `{MEASURE_FAULTS}`)"
    return line
