"""Which results folders a decision uses: reused, named, or measured now.

By default a decision reuses the newest finished runs under the results root
(:func:`latest_compare`, :func:`latest_faults`) and measures only what they lack
(:func:`missing_experiments`). Each folder used becomes a :class:`Source` that says what it
is and how old it is. Reads ``run.json`` files only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the failure-lab cases the criteria read, as ``bench faults --experiment`` selectors:
#: SQLite's host loss (write unavailability, data loss) and consumer kill (redelivery);
#: Kafka's consumer kill, broker kill and leader failover (its figures beside SQLite's)
NEEDED_EXPERIMENTS = (
    "host-loss:sqlite-queue",
    "consumer-kill:sqlite-queue",
    "consumer-kill:kafka",
    "broker-kill:kafka",
    "leader-failover:kafka",
)
#: a reused run older than this gets a hint to measure again
STALE_AFTER = dt.timedelta(days=7)

REUSED, GIVEN, MEASURED = "reused", "given", "measured"


@dataclass(frozen=True)
class Source:
    """One results folder a decision uses: its kind, when it was made, and how it was chosen.

    ``how`` is ``reused`` (found under the results root), ``given`` (``--results``) or
    ``measured`` (run just now).
    """

    path: Path
    kind: str
    created: dt.datetime | None
    how: str
    quick: bool | None = None
    #: what run.json lists under ``failures`` (a compare run's backend x workload failures)
    failures: tuple[str, ...] = ()

    @classmethod
    def of(cls, folder: str | os.PathLike[str], how: str) -> Source:
        """Describe ``folder`` from its run.json (kind ``bench`` when it does not say)."""
        meta = _meta(Path(folder))
        return cls(
            path=Path(folder),
            kind=str(meta.get("kind") or "bench"),
            created=_created(meta),
            how=how,
            quick=meta.get("quick") if isinstance(meta.get("quick"), bool) else None,
            failures=tuple(map(str, meta.get("failures") or ())),
        )

    def age(self, now: dt.datetime | None = None) -> dt.timedelta | None:
        """How long ago the run was made (None when run.json does not say)."""
        if self.created is None:
            return None
        return (now or dt.datetime.now(dt.UTC)) - self.created

    def describe(self, now: dt.datetime | None = None) -> str:
        """One line, e.g. "results/X: compare run of 2026-11-28 13:49 UTC, 3 days old (reused)"."""
        what = "compare run" if self.kind == "bench" else f"{self.kind} run"
        mode = " (quick)" if self.quick else ""
        age = self.age(now)
        when = (
            "of unknown age"
            if self.created is None or age is None
            else f"of {self.created:%Y-%m-%d %H:%M} UTC, {format_age(age)} old"
        )
        stale = (
            "; older than a week: `--measure` runs it again"
            if self.how == REUSED and age is not None and age > STALE_AFTER
            else ""
        )
        failed = (
            f"; {len(self.failures)} failed in it, first: {self.failures[0]}"
            if self.failures
            else ""
        )
        return f"{self.path}: {what}{mode} {when} ({self.how}{stale}){failed}"


def format_age(age: dt.timedelta) -> str:
    """A duration in the largest whole unit: "40 seconds", "5 minutes", "3 hours", "12 days"."""
    seconds = max(age.total_seconds(), 0.0)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'' if n == 1 else 's'}"
    n = int(seconds)
    return f"{n} second{'' if n == 1 else 's'}"


def _meta(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / "run.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _created(meta: dict[str, Any]) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(str(meta.get("created")))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _finished_runs(root: Path, kind: str) -> list[Path]:
    """Finished runs of ``kind`` under ``root``, newest first (a run in progress is skipped)."""
    from sqlitequeue.bench.results import list_runs

    found = []
    for folder in list_runs(root, kind):
        meta = _meta(folder)
        if meta.get("finished"):
            found.append((str(meta.get("created", "")), folder.name, folder))
    return [folder for *_, folder in sorted(found, reverse=True)]


def latest_compare(root: str | os.PathLike[str]) -> Path | None:
    """The newest finished ``compare`` run under ``root`` (one with a max-rate search), or None.

    A ``bench run`` of a single steady workload is also ``kind: bench``; without a
    ``rate_steps.csv`` it cannot answer the throughput criterion, so it is passed over.
    """
    runs = _finished_runs(Path(root), "bench")
    return next((f for f in runs if (f / "rate_steps.csv").is_file()), None)


def latest_faults(root: str | os.PathLike[str]) -> Path | None:
    """The newest finished failure-lab run under ``root``, or None."""
    return next(iter(_finished_runs(Path(root), "faults")), None)


def missing_experiments(folder: str | os.PathLike[str]) -> list[str]:
    """The :data:`NEEDED_EXPERIMENTS` with no row at all in ``folder``'s ``faults.csv``.

    A row that says the case failed or was unavailable counts as present: measuring it
    again here would most likely fail the same way.
    """
    import csv

    path = Path(folder) / "faults.csv"
    if not path.is_file():
        return list(NEEDED_EXPERIMENTS)
    with path.open(newline="") as fh:
        seen = {(r.get("experiment"), r.get("backend")) for r in csv.DictReader(fh)}
    return [s for s in NEEDED_EXPERIMENTS if tuple(s.split(":")[:2]) not in seen]
