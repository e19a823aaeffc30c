"""A consumer process: receive, time each message from its schedule, and count it once.

End-to-end latency is the time the consumer got a message minus the scheduled time read
from its header. A bitmap of sequence numbers per producer tells duplicates apart and,
sent to the parent at the end, lets it count what each consumer group lost.

Each poll's records are handled in one pass (:meth:`_Receipts.handle`): one header decode
and one bitmap update per record, then the poll's latencies go into the histograms in one
call (they share the time they arrived), so one consumer keeps up with 100,000 msg/s.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlitequeue.bench.backends import base
from sqlitequeue.bench.backends.base import BackendSpec, Received
from sqlitequeue.bench.runner.control import (
    POLL_RECORDS,
    PRIME,
    REPORT_EVERY,
    Control,
    open_child_backend,
    reporting_failure,
)
from sqlitequeue.bench.runner.latency import LatencyRecorder
from sqlitequeue.bench.runner.messages import (
    ConsumerDone,
    ConsumerRole,
    ConsumerStats,
    Message,
    Primed,
    Ready,
)
from sqlitequeue.bench.workload import HEADER, HEADER_SIZE

if TYPE_CHECKING:
    from multiprocessing.queues import Queue


def consumer_main(
    spec: BackendSpec,
    registry: Mapping[str, str],
    topic: str,
    group: str,
    role: ConsumerRole,
    ctl: Control,
    out: Queue[Message],
) -> None:
    """The consumer process: join ``group`` on ``topic``, report priming, consume until
    stopped, and report; any exception is reported as :class:`Failed`."""
    with reporting_failure(out, role):
        backend = open_child_backend(spec, registry)
        consumer = backend.consumer(topic, group)
        receipts = _Receipts(role)
        out.put(Ready(role, os.getpid()))
        gc.freeze()  # what exists now lives as long as the process: keep it out of every GC
        _await_prime(consumer, ctl, out, role)
        ctl.consume_go.wait()
        receipts.e2e = LatencyRecorder(ctl.start_at.value)
        _consume(consumer, receipts, ctl, out)
        consumer.close()
        backend.close()


class _Receipts:
    """What a consumer received: counts since the last report, and every sequence seen."""

    def __init__(self, role: ConsumerRole) -> None:
        self.role = role
        self.received = self.duplicates = 0
        self.e2e = LatencyRecorder(0.0)
        #: producer index -> bitmap of the sequence numbers received from it
        self.seen: dict[int, bytearray] = {}

    def handle(self, records: list[Received], now: float) -> None:
        """Count and time ``records``, all received at ``now``; skip priming messages."""
        seen, unpack = self.seen, HEADER.unpack_from
        scheduled_at: list[float] = []
        timed = scheduled_at.append
        duplicates = 0
        for record in records:
            payload = record.payload
            if len(payload) < HEADER_SIZE:
                continue
            scheduled, seq, producer = unpack(payload)
            if producer == PRIME:
                continue
            timed(scheduled)
            bitmap = seen.get(producer)
            if bitmap is None:
                bitmap = seen[producer] = bytearray()
            byte, bit = seq >> 3, 1 << (seq & 7)
            if byte >= len(bitmap):
                bitmap.extend(bytes(byte + 4096 - len(bitmap)))
            if bitmap[byte] & bit:
                duplicates += 1
            else:
                bitmap[byte] |= bit
        self.e2e.record_arrivals(scheduled_at, now)
        self.received += len(scheduled_at)
        self.duplicates += duplicates

    def take(self) -> ConsumerStats:
        """The counts since the last call, as a message; start counting afresh."""
        out = ConsumerStats(
            self.role, received=self.received, duplicates=self.duplicates, e2e=self.e2e.take()
        )
        self.received = self.duplicates = 0
        return out

    def done(self) -> ConsumerDone:
        return ConsumerDone(self.role, {p: bytes(b) for p, b in self.seen.items()})


def _await_prime(
    consumer: base.Consumer, ctl: Control, out: Queue[Message], role: ConsumerRole
) -> None:
    """Poll until the run starts, reporting each priming message (the group is live)."""
    while not ctl.go.is_set():
        records = consumer.poll(100, 0.05)
        for record in records:
            if HEADER.unpack_from(record.payload)[2] == PRIME:
                out.put(Primed(role))
        if records:
            consumer.commit()


def _consume(
    consumer: base.Consumer, receipts: _Receipts, ctl: Control, out: Queue[Message]
) -> None:
    next_report = time.monotonic() + REPORT_EVERY
    while not ctl.consumers_stop.is_set():
        records = consumer.poll(POLL_RECORDS, 0.05)
        if records:
            receipts.handle(records, time.time())
            consumer.commit()
        if time.monotonic() >= next_report:
            out.put(receipts.take())
            next_report = time.monotonic() + REPORT_EVERY
    out.put(receipts.take())
    out.put(receipts.done())
