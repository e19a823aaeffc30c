"""What a queue benchmark run produced: measurements, the targets and their verdicts.

:func:`evaluate` checks the medians against the targets of issues 2 and 3.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from sqlitequeue.bench.microbench.patterns import PATTERN_BY_KEY, Sizes

RAW_TARGET = 0.60  # ours / raw loop, every pattern
#: Targets of one row rather than of a whole pattern: ours / this row (issue 15, "Faster").
#: The minimal correct design is the anchor of put and get + ack; "1-thread" is ours at
#: FULL from one thread, the row ours from PUT_THREADS threads must beat by 4x.
ROW_TARGETS: dict[tuple[str, str], float] = {
    ("put", "minimal"): 0.8,
    ("get_ack", "minimal"): 0.8,
    ("put_threads", "1-thread"): 4.0,
}
#: The peers whose rows carry the pattern's ``peer_target`` (set against them in issues 2
#: and 3); the peers added later (honker, huey) are shown side by side without one.
TARGETED_PEERS = frozenset({"persist-queue", "litequeue"})
LATENCY_P99_TARGET_MS = {1000: 2.0, 5000: 5.0}
LATENCY_P50_TARGET_MS = {1000: 1.0}
IDLE_CPU_TARGET = 5.0  # % of one core, a consumer blocked in get with nothing to get
LIFECYCLE_TARGET = 100_000.0  # records/s, batched append + poll + commit


@dataclass
class Measurement:
    """The repeats of one (pattern, durability, implementation): samples and notes.

    A throughput sample is ``{"rate": ops_per_s}``; a latency sample adds ``p50``, ``p95``,
    ``p99``, ``max`` (ms) and ``idle_cpu`` (% of a core), and ``rate`` is the rate actually
    sent. ``skipped`` explains a
    row that was not measured (e.g. a peer without a batch API).
    """

    pattern: str
    durability: str
    impl: str
    label: str
    samples: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str = ""

    def median(self, stat: str = "rate") -> float | None:
        """Median of ``stat`` over the repeats, or None when nothing was measured."""
        values = [s[stat] for s in self.samples if stat in s]
        return statistics.median(values) if values else None


@dataclass(frozen=True)
class Check:
    """One target: ``value`` compared with ``target`` (``passed`` None = not measurable)."""

    pattern: str
    durability: str
    what: str
    value: float | None
    target: str
    passed: bool | None


@dataclass
class Report:
    """Everything one benchmark run measured, with the targets evaluated."""

    sizes: Sizes
    repeats: int
    measurements: list[Measurement]
    checks: list[Check]
    seconds: float
    environment: dict[str, Any]


# -- targets -----------------------------------------------------------------------------


def median_ratio(ours: Measurement, other: Measurement, stat: str, latency: bool) -> float | None:
    """ours / other of the medians of ``stat`` (other / ours for a latency: > 1 means
    ours is faster); None when either median is missing or not positive."""
    a, b = ours.median(stat), other.median(stat)
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return b / a if latency else a / b


def evaluate(measurements: list[Measurement]) -> list[Check]:
    """The targets of issues 2 and 3 over the measured medians.

    * ours / raw loop >= 0.60 for every pattern (latency: raw p50 / ours p50);
    * ours / minimal design >= 0.8 on put and on get + ack, and ours from 8 threads >= 4x
      ours from one thread at FULL (group commit) (issue 15, ROW_TARGETS);
    * ours / persist-queue and ours / litequeue >= 10 on get + ack and >= 1.5 on put, at the
      peer's durability (the other peers carry no target);
    * p99 end-to-end < 2 ms at 1,000 msgs/s and < 5 ms at 5,000 msgs/s; p50 < 1 ms at
      1,000 msgs/s with an idle blocked consumer under 5% of a core;
    * batched append + poll + commit > 100,000 records/s.
    """
    checks = []
    by_key = {(m.pattern, m.durability, m.impl): m for m in measurements}
    for m in measurements:
        pattern = PATTERN_BY_KEY[m.pattern]
        ours = by_key.get((m.pattern, m.durability, "ours"))
        if m.impl == "ours":
            checks += _absolute_checks(m)
            continue
        if ours is None or m.skipped:
            continue
        stat = "p50" if pattern.latency else "rate"
        ratio = median_ratio(ours, m, stat, pattern.latency)
        target = _row_target(m.pattern, m.impl, pattern.peer_target)
        if target is None:
            continue
        what = f"ours/{m.impl}" + (" (p50)" if pattern.latency else "")
        passed = None if ratio is None else ratio >= target
        checks.append(Check(m.pattern, m.durability, what, ratio, f">= {target:g}", passed))
    return checks


def _row_target(pattern: str, impl: str, peer_target: float | None) -> float | None:
    """The minimum ours / row ``impl`` of ``pattern``, or None for a row without one."""
    if impl == "raw":
        return RAW_TARGET
    if (pattern, impl) in ROW_TARGETS:
        return ROW_TARGETS[pattern, impl]
    return peer_target if impl in TARGETED_PEERS else None


def _absolute_checks(m: Measurement) -> list[Check]:
    if m.pattern.startswith("latency_"):
        rate = int(m.pattern.split("_")[1])
        limit = LATENCY_P99_TARGET_MS[rate]
        p99 = m.median("p99")
        passed = None if p99 is None else p99 < limit
        checks = [Check(m.pattern, m.durability, "p99 ms", p99, f"< {limit:g}", passed)]
        if rate in LATENCY_P50_TARGET_MS:
            checks.append(_below(m, "p50", "p50 ms", LATENCY_P50_TARGET_MS[rate]))
            checks.append(_below(m, "idle_cpu", "idle cpu %", IDLE_CPU_TARGET))
        return checks
    if m.pattern == "lifecycle":
        records = m.median()
        passed = None if records is None else records > LIFECYCLE_TARGET
        return [Check(m.pattern, m.durability, "records/s", records, "> 100000", passed)]
    return []


def _below(m: Measurement, stat: str, what: str, limit: float) -> Check:
    value = m.median(stat)
    passed = None if value is None else value < limit
    return Check(m.pattern, m.durability, what, value, f"< {limit:g}", passed)
