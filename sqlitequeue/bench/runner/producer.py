"""A producer process: send the workload's schedule, open loop, and report what happened.

Every message has a scheduled send time (from :func:`workload.schedule`); the producer
stamps that time, a sequence number and its index into the payload's first bytes
(:data:`workload.HEADER`) and sends when the time comes. When it falls behind, it sends at
once and records how late it was (``lag_ms``); publish latency counts from the scheduled
time, so the delay shows instead of hiding.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlitequeue.bench.backends import base
from sqlitequeue.bench.backends.base import BackendSpec, Delivery, DeliveryCallback
from sqlitequeue.bench.errors import BackendError
from sqlitequeue.bench.metrics import WindowedHistograms
from sqlitequeue.bench.runner.control import (
    PRIME,
    PRIME_TIMEOUT,
    REPORT_EVERY,
    Control,
    open_child_backend,
    reporting_failure,
)
from sqlitequeue.bench.runner.messages import (
    Message,
    ProducerDone,
    ProducerRole,
    ProducerStats,
    Ready,
)
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
        ctl.prime.wait()
        producer.send(None, HEADER.pack(time.time(), 0, PRIME) + bytes(workload.message_size))
        producer.flush(PRIME_TIMEOUT)
        ctl.go.wait()
        _produce(producer, workload, role, producers, ctl, out)
        producer.close()
        backend.close()


class _Tally:
    """A producer's counts since the last report; delivery callbacks add from other threads."""

    def __init__(self, role: ProducerRole, start: float) -> None:
        self.lock = threading.Lock()
        self.role = role
        self.start = start
        self.sent = self.acked = self.errors = 0
        self.lag_ms = 0.0
        self.last_error: str | None = None
        self.hist = WindowedHistograms()

    def callback(self, scheduled: float) -> DeliveryCallback:
        def on_delivery(d: Delivery) -> None:
            with self.lock:
                if d.ok:
                    self.acked += 1
                    self.hist.record(
                        scheduled - self.start, int((d.published_at - scheduled) * 1e6)
                    )
                else:
                    self.errors += 1
                    self.last_error = d.error

        return on_delivery

    def take(self) -> ProducerStats:
        """The counts since the last call, as a message; start counting afresh."""
        with self.lock:
            out = ProducerStats(
                self.role,
                sent=self.sent,
                acked=self.acked,
                errors=self.errors,
                lag_ms=self.lag_ms,
                last_error=self.last_error,
                publish=self.hist.take(),
            )
            self.sent = self.acked = self.errors = 0
            self.lag_ms = 0.0
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
    start = ctl.start_at.value
    tally = _Tally(role, start)
    payloads = _Payloads(workload, role.index)
    next_report = time.monotonic() + REPORT_EVERY
    sends = schedule(workload, role.index, producers)
    unsent = 0
    for seq, send in enumerate(sends):
        scheduled = start + send.at
        delay = scheduled - time.time()
        if (delay > 0 or seq % 64 == 0) and ctl.stop.is_set():
            unsent = 1 + sum(1 for _ in sends)  # scheduled, but the run ended first
            break
        if delay > 0:
            time.sleep(delay)
        elif -delay * 1000 > tally.lag_ms:
            tally.lag_ms = -delay * 1000
        producer.send(send.key, payloads.build(send, scheduled, seq), tally.callback(scheduled))
        tally.sent += 1
        if time.monotonic() >= next_report:
            out.put(tally.take())
            next_report = time.monotonic() + REPORT_EVERY
    try:
        producer.flush(30.0)
    except BackendError as exc:
        tally.last_error = str(exc)
    out.put(tally.take())
    out.put(ProducerDone(role, unsent))
