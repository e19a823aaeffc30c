"""The max-rate search per backend: its figure, the spread over repeats, how it ended.

A search's figure is only a capacity when the search *converged* (the lowest failing rate
within ``searchResolution`` of the highest passing one). Otherwise it says something else,
and the report must say what: at the harness's ceiling the backend's maximum is higher;
when the time budget (the workload's duration) ended first, or a backlog did not drain,
the figure is a lower bound; when even the lowest rate missed, there is no figure.
:func:`search_outcomes` reads that from the scalars each repeat recorded
(``max_sustainable_rate``, ``max_rate_failed``, ``max_rate_gap``, ``max_rate_resolution``,
``max_rate_harness_limited``; ``repeats.csv`` when the run repeated, else ``metrics.csv``)
and the run's notes. Reads results files only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlitequeue.bench.report.formatting import format_number, format_range

if TYPE_CHECKING:
    from sqlitequeue.bench.results import Results


class SearchOutcome(StrEnum):
    """How one max-rate search ended, as a reader should take its figure."""

    CONVERGED = "converged"
    CEILING = "harness ceiling"
    BUDGET = "budget ended before convergence"
    BACKLOG = "backlog did not drain before convergence"
    FLOOR = "missed at every rate tried"


#: what each outcome makes of the figure, for a reader
MEANING = {
    SearchOutcome.CONVERGED: "the maximum, within the search's resolution",
    SearchOutcome.CEILING: "the harness's ceiling: the backend's maximum is higher",
    SearchOutcome.BUDGET: "a lower bound: the search ran out of time before converging",
    SearchOutcome.BACKLOG: "a lower bound: a failed step's backlog did not drain",
    SearchOutcome.FLOOR: "no rate met the target",
}
#: outcomes whose figure is not the backend's maximum
NOT_A_MAXIMUM = frozenset(MEANING) - {SearchOutcome.CONVERGED}


class Capacity(NamedTuple):
    """One backend's max-rate search, over its repeats.

    ``median``, ``low`` and ``high`` are ``max_sustainable_rate`` over the ``n`` repeats;
    ``failed`` the median lowest rate that missed twice in a row (None when none did);
    ``outcomes`` counts how the searches ended (empty for runs that did not record it).
    """

    backend: str
    workload: str
    median: float
    low: float
    high: float
    n: int
    outcomes: Mapping[SearchOutcome, int]
    failed: float | None = None

    @property
    def converged(self) -> bool:
        """True when every repeat's search converged (or the run did not say)."""
        return not (set(self.outcomes) & NOT_A_MAXIMUM)

    @property
    def spread(self) -> str:
        """ "2,401-6,931" over the repeats; "-" for one run."""
        return format_range(self.low, self.high) if self.n > 1 else "-"

    @property
    def ended(self) -> str:
        """How the searches ended: "converged", or e.g. "budget ended before convergence
        (2 of 3)"; "" when the run did not record it."""
        if not self.outcomes:
            return ""
        total = sum(self.outcomes.values())
        parts = [
            str(o) if count == total else f"{o} ({count} of {total})"
            for o, count in sorted(self.outcomes.items(), key=lambda kv: -kv[1])
        ]
        return "; ".join(parts)

    def describe(self) -> str:
        """ "at least 9,700 msg/s (8,900-9,900 over 3 repeats; below 16,000; budget ended
        before convergence)" and the like: the figure, its spread over repeats, and what it
        is when not the maximum."""
        rate = f"{format_number(self.median)} msg/s"
        spread = f"{self.spread} over {self.n} repeats" if self.n > 1 else ""
        below = f"below {format_number(self.failed)}" if self.failed else ""
        worst = next((o for o in MEANING if o in self.outcomes and o in NOT_A_MAXIMUM), None)
        if worst is SearchOutcome.CEILING:
            return f"{rate} or more" + _aside(spread, "the harness's ceiling was the limit")
        if not self.median and self.outcomes:
            missed = f"{format_number(self.failed)} msg/s missed" if self.failed else ""
            ended = str(worst) if worst is not SearchOutcome.FLOOR else ""
            return "no rate met the target" + _aside(missed, ended)
        if worst is not None:
            return f"at least {rate}" + _aside(spread, below, str(worst))
        return rate + _aside(spread)


def _aside(*parts: str) -> str:
    """ " (a; b)" of the non-empty ``parts``; "" when there are none."""
    shown = [p for p in parts if p]
    return f" ({'; '.join(shown)})" if shown else ""


def search_outcome(scalars: Mapping[str, Any], notes: str = "") -> SearchOutcome | None:
    """How one search ended, from its scalars (and ``notes``, its run's notes as text);
    None for a run that did not record it (written before searches bisected)."""
    if "max_rate_harness_limited" not in scalars:
        return None
    if _number(scalars.get("max_rate_harness_limited")):
        return SearchOutcome.CEILING
    passing = _number(scalars.get("max_sustainable_rate"))
    gap = scalars.get("max_rate_gap")
    resolution = _number(scalars.get("max_rate_resolution")) or 0.1
    if passing and _present(gap) and _number(gap) <= resolution + 1e-9:
        return SearchOutcome.CONVERGED
    if "backlog did not drain" in notes:
        return SearchOutcome.BACKLOG
    if not passing and "missed at every rate tried" in notes:
        return SearchOutcome.FLOOR
    return SearchOutcome.BUDGET


def search_outcomes(res: Results) -> list[Capacity]:
    """One :class:`Capacity` per (backend, max-rate workload), in the run's order."""
    runs = _per_repeat(res)
    notes = res.meta.get("notes") or {}
    found = []
    for (backend, workload), repeats in runs.items():
        rates = [_number(s.get("max_sustainable_rate")) for s in repeats.values()]
        text = " ".join(map(str, notes.get(f"{backend} / {workload}") or []))
        outcomes: Counter[SearchOutcome] = Counter()
        for repeat, scalars in repeats.items():
            mine = _notes_of(text, repeat, len(repeats))
            outcome = search_outcome(scalars, mine)
            if outcome is not None:
                outcomes[outcome] += 1
        ordered = sorted(rates)
        failed = sorted(
            _number(s["max_rate_failed"])
            for s in repeats.values()
            if _present(s.get("max_rate_failed"))
        )
        found.append(
            Capacity(
                backend,
                workload,
                _median(ordered),
                ordered[0],
                ordered[-1],
                len(rates),
                outcomes,
                _median(failed) if failed else None,
            )
        )
    return found


def _per_repeat(res: Results) -> dict[tuple[str, str], dict[int, dict[str, Any]]]:
    """(backend, workload) -> repeat -> scalars, for the runs with a max-rate search."""
    table = res.tables.get("repeats")
    if table is None or table.empty:
        rows = res.metrics[res.metrics.t.isna()].assign(repeat=1)
    else:
        rows = table
    out: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for row in rows.itertuples(index=False):
        key = (str(row.backend), str(row.workload))
        out.setdefault(key, {}).setdefault(int(row.repeat), {})[str(row.metric)] = row.value
    return {k: v for k, v in out.items() if any("max_sustainable_rate" in s for s in v.values())}


def _notes_of(text: str, repeat: int, repeats: int) -> str:
    """The part of a run's notes about ``repeat`` (notes of repeats start "repeat k:")."""
    if repeats == 1 or "repeat " not in text:
        return text
    parts = text.split("repeat ")
    return " ".join(p for p in parts if p.startswith(f"{repeat}:"))


def _median(ordered: list[float]) -> float:
    n = len(ordered)
    middle = n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _present(value: Any) -> bool:
    return value is not None and value == value  # NaN != NaN


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number == number else 0.0
