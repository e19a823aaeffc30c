"""Locust-free clients that drive one backend from the workbench protocol and time each call.

Layer one of the Locust custom-client pattern (see docs/locust.md): these classes know
nothing about Locust. They return :class:`Measurement` values; the Locust user
(``backend_user.py``) turns each into one ``events.request`` call. Keeping Locust out of
this module means the timing code is the same whether it runs under Locust or not.

Accounting is the workbench's (:mod:`sqlitequeue.bench.runner`), so a Locust run and a
workbench run of the same workload replay the same events:

* the schedule is :func:`sqlitequeue.bench.workload.schedule` for this producer's index;
* every payload starts with :data:`~sqlitequeue.bench.workload.HEADER` (scheduled wall
  time, sequence number, producer index) and is sliced from the same
  :func:`~sqlitequeue.bench.workload.payload_pool` at the same offset as the runner's;
* ``publish`` = confirmation time - *scheduled* time (open loop: a producer that falls
  behind shows the delay), measured with ``time.perf_counter``;
* ``end-to-end`` = receive time - scheduled time read from the payload (``time.time``: the
  stamp crosses processes, and machines in distributed mode);
* ``consume`` = the duration of one ``poll`` + ``commit`` that returned records;
* messages scheduled during the workload's warm-up are sent but not reported.

Delivery callbacks run on the backend's own threads; they only append to a deque, and
:meth:`ProducerClient.take` hands the measurements to the caller's thread (Locust's stats
are not thread-safe).
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlitequeue.bench.backends.base import Backend, Consumer, Delivery, Producer
from sqlitequeue.bench.runner import POLL_RECORDS, PRIME
from sqlitequeue.bench.workload import HEADER, HEADER_SIZE, Send, Workload, payload_pool, schedule

PUBLISH = "publish"
CONSUME = "consume"
END_TO_END = "end-to-end"
#: seconds a consumer's poll may block (short: the poll blocks its process's event loop)
POLL_TIMEOUT = 0.02
#: a producer wakes this early and sleeps the rest precisely (event-loop timers are ~1 ms)
EARLY = 0.002


@dataclass(frozen=True)
class Measurement:
    """One operation to report: name, duration in ms (float), bytes, error text or None."""

    name: str
    ms: float
    length: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Role:
    """What one user does in a run: produce to, or consume from, one topic."""

    kind: str  # "producer" | "consumer"
    topic: int
    index: int  # producer index within its topic, or member index within its group
    group: int = 0


def roles(workload: Workload) -> list[Role]:
    """Return every role the workload needs, consumers first (they subscribe first).

    Consumers: ``topics x subscriptionsPerTopic x consumerPerSubscription``; producers:
    ``topics x producersPerTopic``. A Locust run needs exactly ``len(roles(workload))`` users.
    """
    out = [
        Role("consumer", t, c, g)
        for t in range(workload.topics)
        for g in range(workload.subscriptions_per_topic)
        for c in range(workload.consumer_per_subscription)
    ]
    out += [
        Role("producer", t, p)
        for t in range(workload.topics)
        for p in range(workload.producers_per_topic)
    ]
    return out


def topic_names(workload: Workload, nonce: str) -> list[str]:
    """Return the run's topic names (``sqq-locust-<workload>-<nonce>-<i>``)."""
    slug = "".join(c if c.isalnum() else "-" for c in workload.name.lower())[:40]
    return [f"sqq-locust-{slug}-{nonce}-{i}" for i in range(workload.topics)]


def group_name(topic: str, group: int) -> str:
    """Return the consumer group name of subscription ``group`` on ``topic``."""
    return f"sub-{group}-{topic}"


def response_time_bucket(ms: float) -> float:
    """Round ``ms`` to two significant digits, keeping sub-millisecond values (0.347 -> 0.35).

    Locust's default rounds everything below 100 ms to whole milliseconds, which would turn
    a 0.4 ms median into 0; this keeps the same relative precision at every magnitude.
    """
    if ms <= 0 or not math.isfinite(ms):
        return 0.0
    digits = 1 - math.floor(math.log10(ms))
    return float(round(ms, digits))


class ProducerClient:
    """Sends one producer's share of the workload on schedule and times each confirmation.

    ``start_at`` is the run's common start (wall clock, ``time.time()``). With
    ``max_rate`` the schedule's sizes and keys are kept but every send is due at once, and
    latency is measured from the moment of sending.
    """

    def __init__(
        self,
        producer: Producer,
        workload: Workload,
        index: int,
        producers: int,
        start_at: float,
        *,
        max_rate: bool = False,
    ) -> None:
        self.producer = producer
        self.workload = workload
        self.index = index
        self.start_at = start_at
        self.max_rate = max_rate
        # perf_counter value at start_at: scheduled times live on the perf_counter clock
        self.start_pc = time.perf_counter() + (start_at - time.time())
        self.measure_from = start_at + workload.warmup_seconds
        self.pool = payload_pool(workload)
        self.span = max(1, len(self.pool) - workload.message_size)
        self._sends: Iterator[Send] = schedule(workload, index, producers)
        self._next: Send | None = next(self._sends, None)
        self._seq = 0
        self._done: collections.deque[Measurement] = collections.deque()
        self.sent = 0
        self.confirmed = 0

    @property
    def finished(self) -> bool:
        """True once every scheduled message was sent."""
        return self._next is None

    def seconds_until_due(self, early: float = 0.0) -> float:
        """Return how long to wait until ``early`` seconds before the next send is due
        (0 when due or finished)."""
        if self._next is None or self.max_rate:
            return 0.0
        return max(0.0, self.start_pc + self._next.at - early - time.perf_counter())

    def send_due(self, limit: int = 1000, sleep: Any = None, early: float = 0.0) -> int:
        """Send every message that is due now (at most ``limit``); return how many were sent.

        With ``sleep`` (a blocking sleep), a send due within ``early`` seconds is waited for
        precisely and sent on time, as the workbench's producers do with ``time.sleep``.
        """
        sent = 0
        while self._next is not None and sent < limit:
            send = self._next
            due_pc = self.start_pc + send.at
            now_pc = time.perf_counter()
            if sleep is not None and not self.max_rate and 0 < due_pc - now_pc <= early:
                sleep(due_pc - now_pc)
                now_pc = time.perf_counter()
            if not self.max_rate and due_pc > now_pc:
                break
            if self.max_rate:
                due_pc, scheduled = now_pc, time.time()
            else:
                scheduled = self.start_at + send.at
            payload = self._payload(send, scheduled)
            self.producer.send(send.key, payload, self._on(due_pc, scheduled, len(payload)))
            self._seq += 1
            self.sent += 1
            sent += 1
            self._next = next(self._sends, None)
        return sent

    def _payload(self, send: Send, scheduled: float) -> bytes:
        """Stamp the header into the payload exactly as the workbench runner does."""
        seq = self._seq
        body = send.payload if send.payload is not None else self.pool
        offset = 0 if send.payload is not None else (seq * 7919) % self.span
        return (
            HEADER.pack(scheduled, seq, self.index)
            + body[offset + HEADER_SIZE : offset + send.size]
        )

    def _on(self, due_pc: float, scheduled: float, size: int) -> Any:
        counted = scheduled >= self.measure_from

        def on_delivery(d: Delivery) -> None:
            ms = (time.perf_counter() - due_pc) * 1000.0
            self.confirmed += 1
            if counted or not d.ok:
                self._done.append(Measurement(PUBLISH, ms, size, None if d.ok else d.error))

        return on_delivery

    def take(self) -> list[Measurement]:
        """Return (and forget) the confirmations that arrived since the last call."""
        out = []
        while self._done:
            out.append(self._done.popleft())
        return out


class ConsumerClient:
    """Polls one consumer, commits, and times each batch and each record's end-to-end delay."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.measure_from: float | None = None  # wall time; None until the run starts
        self.received = 0

    def start(self, start_at: float, warmup: float) -> None:
        """Report records scheduled from ``start_at + warmup`` on (earlier ones are skipped)."""
        self.measure_from = start_at + warmup

    def poll(self, timeout: float = POLL_TIMEOUT) -> list[Measurement]:
        """Poll once and commit; return one ``consume`` and one ``end-to-end`` per record.

        Returns an empty list when nothing arrived. A backend failure is returned as a
        failed ``consume`` measurement (the caller decides whether to go on).
        """
        began = time.perf_counter()
        try:
            records = self.consumer.poll(POLL_RECORDS, timeout)
            received = time.time()
            if records:
                self.consumer.commit()
        except Exception as exc:  # a BackendError or the client's own: report, don't crash
            ms = (time.perf_counter() - began) * 1000.0
            return [Measurement(CONSUME, ms, 0, f"{type(exc).__name__}: {exc}")]
        if not records:
            return []
        ms = (time.perf_counter() - began) * 1000.0
        out = [Measurement(CONSUME, ms, sum(len(r.payload) for r in records))]
        for record in records:
            out += self._record(record.payload, received)
        return out

    def _record(self, payload: bytes, received: float) -> list[Measurement]:
        if len(payload) < HEADER_SIZE:
            return []
        scheduled, _seq, producer = HEADER.unpack_from(payload)
        if producer == PRIME:  # a workbench priming message (a shared topic): never counted
            return []
        self.received += 1
        if self.measure_from is None or scheduled < self.measure_from:
            return []
        return [Measurement(END_TO_END, (received - scheduled) * 1000.0, len(payload))]


def open_roles(backend: Backend, role: Role, topics: list[str]) -> Producer | Consumer:
    """Return the backend producer or consumer (subscribed) for ``role``."""
    topic = topics[role.topic]
    if role.kind == "consumer":
        return backend.consumer(topic, group_name(topic, role.group))
    return backend.producer(topic)
