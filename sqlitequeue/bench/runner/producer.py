"""A producer process: send the workload's schedule, open loop, and report what happened.

Every message has a scheduled send time (from :func:`workload.schedule`, or step by step
from :func:`ramp.search_sends` in a max-rate search); the producer stamps that time, a
sequence number and its index into the payload's first bytes (:data:`workload.HEADER`) and
sends when the time comes. When it falls behind, it sends at once and records how late it
was (``lag_ms``); publish latency counts from the scheduled time, so the delay shows
instead of hiding.

The send loop works in ticks, to keep the harness's own cost per message low: it sends
everything that is due, then sleeps until the next send is due (at least ``SEND_TICK``),
reading the clock once per tick. Delivery callbacks only append to a list; the loop counts
and times them while it would otherwise sleep.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from sqlitequeue.bench.backends import base
from sqlitequeue.bench.backends.base import BackendSpec, Delivery, DeliveryCallback
from sqlitequeue.bench.errors import BackendError
from sqlitequeue.bench.runner.control import (
    CLOCK_EVERY,
    PRIME,
    PRIME_TIMEOUT,
    REPORT_EVERY,
    SEGMENT_POLL,
    SEND_TICK,
    Control,
    open_child_backend,
    reporting_failure,
)
from sqlitequeue.bench.runner.latency import LatencyRecorder
from sqlitequeue.bench.runner.messages import (
    Message,
    ProducerDone,
    ProducerRole,
    ProducerStats,
    Ready,
)
from sqlitequeue.bench.runner.ramp import search_sends
from sqlitequeue.bench.workload import HEADER, HEADER_SIZE, Send, Workload, payload_pool, schedule

if TYPE_CHECKING:
    from multiprocessing.queues import Queue


def producer_main(
    spec: BackendSpec,
    registry: Mapping[str, str],
    workload: Workload,
    topic: str,
    role: ProducerRole,
    producers: int,
    ctl: Control,
    out: Queue[Message],
) -> None:
    """The producer process: connect, prime, send the schedule of ``role.index`` of
    ``producers``, and report; any exception is reported as :class:`Failed`."""
    with reporting_failure(out, role):
        backend = open_child_backend(spec, registry)
        producer = backend.producer(topic)
        out.put(Ready(role, os.getpid()))
        gc.freeze()  # what exists now lives as long as the process: keep it out of every GC
        ctl.prime.wait()
        producer.send(None, HEADER.pack(time.time(), 0, PRIME) + bytes(workload.message_size))
        producer.flush(PRIME_TIMEOUT)
        ctl.go.wait()
        _produce(producer, workload, role, producers, ctl, out)
        producer.close()
        backend.close()


class _Tally:
    """A producer's counts since the last report.

    Delivery callbacks (on the backend's threads) only append ``(scheduled, delivery)`` to a
    list; the producer's own thread absorbs them (:meth:`absorb`) while it waits for the
    next send, all reported so far in one histogram call.
    """

    def __init__(self, role: ProducerRole, start: float) -> None:
        self.role = role
        self.sent = self.acked = self.errors = 0
        self.last_error: str | None = None
        self.publish = LatencyRecorder(start)
        self.delivered: list[tuple[float, Delivery]] = []

    def callback(self, scheduled: float) -> DeliveryCallback:
        append = self.delivered.append

        def on_delivery(d: Delivery) -> None:
            append((scheduled, d))

        return on_delivery

    def absorb(self) -> None:
        """Count and time the deliveries reported so far."""
        count = len(self.delivered)
        if not count:
            return
        delivered = self.delivered[:count]
        del self.delivered[:count]  # callbacks only ever append: this removes what was read
        timings = [(scheduled, d.published_at) for scheduled, d in delivered if d.ok]
        self.acked += len(timings)
        self.publish.record_many(timings)
        if len(timings) < count:
            failed = [d for _, d in delivered if not d.ok]
            self.errors += len(failed)
            self.last_error = failed[-1].error

    def take(self, sent: int, lag_ms: float) -> ProducerStats:
        """The counts since the last call, as a message, given ``sent`` in all so far and the
        worst lag since the last call; start counting afresh."""
        self.absorb()
        out = ProducerStats(
            self.role,
            sent=sent - self.sent,
            acked=self.acked,
            errors=self.errors,
            lag_ms=lag_ms,
            last_error=self.last_error,
            publish=self.publish.take(),
        )
        self.sent = sent
        self.acked = self.errors = 0
        return out


class _Payloads:
    """Payloads of the scheduled sizes: a header, then a slice of a shared random pool."""

    def __init__(self, workload: Workload, index: int) -> None:
        self.index = index
        self.pool = payload_pool(workload)
        self.span = max(1, len(self.pool) - workload.message_size)

    def build(self, send: Send, scheduled: float, seq: int) -> bytes:
        body = send.payload if send.payload is not None else self.pool
        offset = 0 if send.payload is not None else (seq * 7919) % self.span
        header = HEADER.pack(scheduled, seq, self.index)
        return header + body[offset + HEADER_SIZE : offset + send.size]


def _produce(
    producer: base.Producer,
    workload: Workload,
    role: ProducerRole,
    producers: int,
    ctl: Control,
    out: Queue[Message],
) -> None:
    """Send the schedule in ticks: everything due, then sleep until the next send is due
    (at least SEND_TICK). The clock is read once per tick (and every CLOCK_EVERY sends while
    behind), as are the stop signal and the report timer."""
    start = ctl.start_at.value
    tally = _Tally(role, start)
    payloads = _Payloads(workload, role.index)
    sends: Iterator[Send | None] = (
        search_sends(workload, ctl, role.index, producers)
        if workload.finds_max_rate
        else schedule(workload, role.index, producers)
    )
    send, build, callback, clock = producer.send, payloads.build, tally.callback, time.time
    now = clock()
    next_report = now + REPORT_EVERY
    seq = unsent = behind = 0
    lag = 0.0
    for item in sends:
        if item is None:  # between two steps of a max-rate search: wait for the next
            tally.absorb()
            if clock() >= next_report:
                out.put(tally.take(seq, lag * 1000))
                lag, next_report = 0.0, clock() + REPORT_EVERY
            time.sleep(SEGMENT_POLL)
            now = clock()
            continue
        scheduled = start + item.at
        if scheduled > now or behind >= CLOCK_EVERY:
            now, behind = clock(), 0
            if now >= next_report:
                out.put(tally.take(seq, lag * 1000))
                lag, next_report = 0.0, now + REPORT_EVERY
            if ctl.stop.is_set():  # what is left was scheduled, but the run ended first
                unsent = 1 + sum(1 for s in sends if s is not None)
                break
            if scheduled > now:
                tally.absorb()
                now = clock()
                if scheduled > now:
                    time.sleep(max(scheduled - now, SEND_TICK))
                    now = clock()
        if now - scheduled > lag:
            lag = now - scheduled
        send(item.key, build(item, scheduled, seq), callback(scheduled))
        seq += 1
        behind += 1
    try:
        producer.flush(30.0)
    except BackendError as exc:
        tally.last_error = str(exc)
    out.put(tally.take(seq, lag * 1000))
    out.put(ProducerDone(role, unsent))
