"""The parent's running totals of a run, fed by its children's messages.

Stats messages are deltas, so totals are sums; latencies are merged into histograms by
scheduled time (:class:`~sqlitequeue.bench.metrics.WindowedHistograms`), so any window of
the run (after the warm-up, one step of a max-rate search) can be read afterwards. Topics
and consumer groups are indices, as in the roles of
:mod:`~sqlitequeue.bench.runner.messages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlitequeue.bench.metrics import WindowedHistograms
from sqlitequeue.bench.runner.messages import (
    ConsumerDone,
    ConsumerRole,
    ConsumerStats,
    ProducerDone,
    ProducerRole,
    ProducerStats,
    Ready,
)


@dataclass
class Live:
    """Running totals over ``topics`` topics, each read by ``groups`` consumer groups."""

    topics: int
    groups: int
    sent: dict[int, int] = field(default_factory=dict)  # topic -> sent
    acked: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    last_error: str | None = None
    received: dict[tuple[int, int], int] = field(default_factory=dict)  # (topic, group)
    duplicates: int = 0
    unsent: int = 0
    #: the worst producer lag since the parent last sampled it (ms)
    lag_ms: float = 0.0
    publish: WindowedHistograms = field(default_factory=WindowedHistograms)
    e2e: WindowedHistograms = field(default_factory=WindowedHistograms)
    #: (topic, group) -> (topic, producer index) -> bitmap of sequence numbers received
    seen: dict[tuple[int, int], dict[tuple[int, int], bytes]] = field(default_factory=dict)
    producer_pids: list[int] = field(default_factory=list)
    consumer_pids: list[int] = field(default_factory=list)
    producers_done: set[ProducerRole] = field(default_factory=set)
    consumers_done: set[ConsumerRole] = field(default_factory=set)

    def add_ready(self, message: Ready) -> None:
        if isinstance(message.role, ProducerRole):
            self.producer_pids.append(message.pid)
        else:
            self.consumer_pids.append(message.pid)

    def add_producer_stats(self, stats: ProducerStats) -> None:
        t = stats.role.topic
        self.sent[t] = self.sent.get(t, 0) + stats.sent
        self.acked[t] = self.acked.get(t, 0) + stats.acked
        self.errors += stats.errors
        self.last_error = stats.last_error or self.last_error
        self.lag_ms = max(self.lag_ms, stats.lag_ms)
        self.publish.merge_states(stats.publish)

    def add_consumer_stats(self, stats: ConsumerStats) -> None:
        key = (stats.role.topic, stats.role.group)
        self.received[key] = self.received.get(key, 0) + stats.received
        self.duplicates += stats.duplicates
        self.e2e.merge_states(stats.e2e)

    def add_producer_done(self, done: ProducerDone) -> None:
        self.producers_done.add(done.role)
        self.unsent += done.unsent

    def add_consumer_done(self, done: ConsumerDone) -> None:
        """Count the consumer as done; merge what it saw into its group's bitmaps."""
        role = done.role
        self.consumers_done.add(role)
        seen = self.seen.setdefault((role.topic, role.group), {})
        for producer, bitmap in done.seen.items():
            key = (role.topic, producer)
            seen[key] = _or_bytes(seen.get(key, b""), bitmap)

    def total_sent(self) -> int:
        return sum(self.sent.values())

    def total_acked(self) -> int:
        return sum(self.acked.values())

    def total_received(self) -> int:
        return sum(self.received.values())

    def backlog(self) -> int:
        """Messages acknowledged but not yet consumed by the slowest group, over topics."""
        total = 0
        for t in range(self.topics):
            acked = self.acked.get(t, 0)
            behind = [acked - self.received.get((t, g), 0) for g in range(self.groups)]
            total += max(0, *behind)
        return total

    def drained(self) -> bool:
        """True when every group has received as many messages as were acknowledged."""
        return all(
            self.received.get((t, g), 0) >= self.acked.get(t, 0)
            for t in range(self.topics)
            for g in range(self.groups)
        )

    def unique_and_lost(self) -> tuple[int, int]:
        """Distinct messages received, and acknowledged ones never received, over groups.

        Read from the consumers' bitmaps, so only complete once every consumer is done.
        """
        unique = lost = 0
        for t in range(self.topics):
            for g in range(self.groups):
                bitmaps = self.seen.get((t, g), {})
                count = sum(int.from_bytes(b, "little").bit_count() for b in bitmaps.values())
                unique += count
                lost += max(0, self.acked.get(t, 0) - count)
        return unique, lost


def _or_bytes(a: bytes, b: bytes) -> bytes:
    if not a:
        return b
    n = max(len(a), len(b))
    value = int.from_bytes(a, "little") | int.from_bytes(b, "little")
    return value.to_bytes(n, "little")
