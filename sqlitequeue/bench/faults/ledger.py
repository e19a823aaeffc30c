"""Event ledgers written by fault-experiment workers, and the accounting done from them.

Each worker process appends one line per event to its own ledger file, written with a single
``os.write`` on an ``O_APPEND`` descriptor right after the event happened, so a SIGKILL can
cut off at most the event in progress (a torn last line is ignored)::

    <unix time> <kind> <ids>

``kind`` is one of :data:`KINDS`; ``ids`` is a comma-separated list of ids and ranges
(``5-9,12``), or for ``E`` the error's class and message. Accounting never assumes: every
number in :class:`Accounting` is computed from the ids found in ledgers and in the store.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: S: about to send; A: the store acknowledged; R: a consumer received; P: a consumer
#: processed (its side effect happened); C: a consumer acknowledged/committed; E: an error.
KINDS = ("S", "A", "R", "P", "C", "E")


def encode_ids(ids: Iterable[int]) -> str:
    """Return ``ids`` (in order) as a compact list with runs as ranges: ``1-4,7``."""
    parts: list[str] = []
    start = prev = None
    for i in ids:
        if start is not None and prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = i
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(parts)


def decode_ids(text: str) -> list[int]:
    """Inverse of :func:`encode_ids`; raises ValueError on malformed text."""
    ids: list[int] = []
    for part in text.split(","):
        if not part:
            continue
        first, sep, last = part.partition("-")
        ids.extend(range(int(first), int(last) + 1) if sep else [int(first)])
    return ids


class LedgerWriter:
    """Appends events to a ledger file; each event is one atomic ``write``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def event(self, kind: str, ids: Iterable[int], at: float) -> None:
        """Record that ``kind`` happened to ``ids`` at unix time ``at``."""
        text = encode_ids(ids)
        if text:
            os.write(self._fd, f"{at:.6f} {kind} {text}\n".encode())

    def error(self, exc: BaseException, at: float) -> None:
        """Record an error: its class name and its message on one line."""
        self.failure(f"{type(exc).__name__}: {exc}", at)

    def failure(self, text: str, at: float) -> None:
        """Record an error already put in words (``Class: message``) on one line."""
        message = " ".join(text.split())
        os.write(self._fd, f"{at:.6f} E {message}\n".encode())

    def close(self) -> None:
        """Close the file; safe to call twice."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True)
class Event:
    """One ledger line."""

    at: float
    kind: str
    ids: tuple[int, ...] = ()
    error: str = ""


def read_ledger(path: str | os.PathLike[str]) -> list[Event]:
    """Return the events of one ledger (empty if missing); a torn last line is skipped."""
    p = Path(path)
    if not p.exists():
        return []
    events = []
    for line in p.read_text(errors="replace").splitlines():
        event = _parse(line)
        if event is not None:
            events.append(event)
    return events


def _parse(line: str) -> Event | None:
    parts = line.split(" ", 2)
    if len(parts) != 3 or parts[1] not in KINDS:
        return None
    try:
        at = float(parts[0])
        if parts[1] == "E":
            return Event(at, "E", (), parts[2])
        return Event(at, parts[1], tuple(decode_ids(parts[2])))
    except ValueError:
        return None


def ids_of(events: Iterable[Event], kind: str) -> Iterator[tuple[float, int]]:
    """Yield ``(time, id)`` for every id of every event of ``kind``."""
    for event in events:
        if event.kind == kind:
            for i in event.ids:
                yield event.at, i


def first_time(events: Iterable[Event], kind: str) -> dict[int, float]:
    """Return id -> time of its first event of ``kind``."""
    times: dict[int, float] = {}
    for at, i in ids_of(events, kind):
        times.setdefault(i, at)
    return times


@dataclass
class Accounting:
    """What was produced, acknowledged, recovered, lost and duplicated, from ids.

    ``recovered`` counts acknowledged ids found after recovery, so ``lost ==
    acknowledged - recovered`` always; ``extra`` counts ids found that were never
    acknowledged (sent, stored, but the producer died before hearing back).
    """

    produced: int
    acknowledged: int
    recovered: int
    lost: int
    duplicated: int
    extra: int
    lost_ids: list[int] = field(default_factory=list)

    def as_row(self) -> dict[str, int]:
        """Return the counting columns of a faults.csv row."""
        return {
            "produced": self.produced,
            "acknowledged": self.acknowledged,
            "recovered": self.recovered,
            "lost": self.lost,
            "duplicated": self.duplicated,
        }


def account(
    produced: Iterable[int],
    acknowledged: Iterable[int],
    found: Iterable[int],
    delivered: Iterable[int] = (),
) -> Accounting:
    """Compute the accounting of one experiment.

    ``produced``: ids the producers tried to send; ``acknowledged``: ids the store
    confirmed; ``found``: every id present after recovery (what consumers processed plus
    what is still stored); ``delivered``: every processing of an id, repeats included
    (an id processed twice counts once in ``duplicated``). Duplicates in ``found``
    (e.g. a Kafka producer retry that wrote twice) count as duplicated too.
    """
    acked = set(acknowledged)
    found_list = list(found)
    found_set = set(found_list)
    lost = sorted(acked - found_set)
    dup_ids = {i for i, n in Counter(delivered).items() if n > 1}
    dup_ids |= {i for i, n in Counter(found_list).items() if n > 1}
    produced_set = set(produced) | acked
    return Accounting(
        produced=len(produced_set),
        acknowledged=len(acked),
        recovered=len(acked & found_set),
        lost=len(lost),
        duplicated=len(dup_ids),
        extra=len(found_set - acked),
        lost_ids=lost,
    )


def rates(times: Iterable[float], origin: float, bin_s: float) -> list[tuple[float, float]]:
    """Return ``(t, events per second)`` per bin of ``bin_s`` s, ``t`` relative to ``origin``.

    Bins with no events inside the covered span are reported as 0 (a visible outage).
    """
    counts: Counter[int] = Counter(int((t - origin) // bin_s) for t in times)
    if not counts:
        return []
    lo, hi = min(counts), max(counts)
    return [(round(b * bin_s, 6), counts.get(b, 0) / bin_s) for b in range(lo, hi + 1)]
