"""Drive one workload against one backend: producers and consumers in their own processes.

Open loop. Every message has a scheduled send time (from :func:`workload.schedule`); the
producer stamps that time, a sequence number and its index into the payload's first bytes
(:data:`workload.HEADER`) and sends when the time comes. Latency is measured from the
*scheduled* time, never from when the send actually happened, so a backend that makes the
producer fall behind shows the queueing delay instead of hiding it:

* publish latency = delivery callback time - scheduled time (recorded by the producer);
* end-to-end latency = time the consumer got it - scheduled time (read from the payload).

Messages scheduled during the warm-up are excluded from the latency histograms and rates.
Consumers keep a bitmap of sequence numbers per producer, so the runner counts duplicates
and lost messages per consumer group. The parent process samples rates, backlog, CPU and
memory of every process (and the Kafka JVM when its pid is given) and disk bytes once per
second, shows a progress bar, and returns a :class:`RunResult`; :func:`write_result`
stores it with a :class:`~sqlitequeue.bench.results.RunWriter`. No charts, no formats.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import shutil
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlitequeue.bench.backends import base
from sqlitequeue.bench.backends.base import BackendSpec, Delivery, open_backend
from sqlitequeue.bench.errors import BackendError, BenchError
from sqlitequeue.bench.metrics import Histogram, ResourceSampler, WindowedHistograms, path_bytes
from sqlitequeue.bench.workload import (
    HEADER,
    HEADER_SIZE,
    Workload,
    payload_pool,
    ramp_rates,
    schedule,
)


class NotApplicable(BackendError):
    """The workload needs something the backend does not do (e.g. fan-out to groups)."""


REPORT_EVERY = 0.25  # seconds between children's stats messages
POLL_RECORDS = 1000
READY_TIMEOUT = 90.0
PRIME_TIMEOUT = 30.0
#: producer index stamped into priming messages (sent before the run; never counted)
PRIME = 0xFFFFFFFF


@dataclass
class RunResult:
    """What one (workload, backend) run measured; see :func:`write_result`."""

    backend: str
    workload: str
    target_rate: float
    describe: dict[str, Any]
    scalars: dict[str, float] = field(default_factory=dict)
    series: list[tuple[str, float, float]] = field(default_factory=list)
    publish: Histogram = field(default_factory=Histogram)
    e2e: Histogram = field(default_factory=Histogram)
    steps: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Control:
    """Events and values shared by the parent and its children."""

    go: Any
    stop: Any
    consume_go: Any
    consumers_stop: Any
    start_at: Any
    prime: Any

    @classmethod
    def create(cls, ctx: Any) -> _Control:
        e = ctx.Event
        return cls(e(), e(), e(), e(), ctx.Value("d", 0.0), e())


def _context() -> Any:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["sqlitequeue.bench.runner.run"])
    return ctx


# --- children --------------------------------------------------------------------------


def _child_backend(spec: BackendSpec, registry: Mapping[str, str]) -> base.Backend:
    base.BACKENDS.update(registry)  # backends registered at run time (tests) travel along
    return open_backend(spec)


def _producer_main(
    spec: BackendSpec,
    registry: Mapping[str, str],
    workload: Workload,
    topic: tuple[int, str],
    index: int,
    producers: int,
    ctl: _Control,
    out: Any,
) -> None:
    role = ("producer", topic[0], index)
    try:
        backend = _child_backend(spec, registry)
        producer = backend.producer(topic[1])
        out.put(("ready", role, os.getpid()))
        ctl.prime.wait()
        producer.send(None, HEADER.pack(time.time(), 0, PRIME) + bytes(workload.message_size))
        producer.flush(PRIME_TIMEOUT)
        ctl.go.wait()
        _produce(producer, workload, index, producers, ctl, out, role)
        producer.close()
        backend.close()
    except BaseException:
        out.put(("error", role, traceback.format_exc()))


class _ProducerStats:
    def __init__(self, start: float) -> None:
        import threading

        self.lock = threading.Lock()
        self.start = start
        self.sent = self.acked = self.errors = 0
        self.lag_ms = 0.0
        self.last_error: str | None = None
        self.hist = WindowedHistograms()

    def callback(self, scheduled: float) -> Any:
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

    def take(self) -> dict[str, Any]:
        with self.lock:
            out = {
                "sent": self.sent,
                "acked": self.acked,
                "errors": self.errors,
                "lag_ms": self.lag_ms,
                "last_error": self.last_error,
                "hist": self.hist.take(),
            }
            self.sent = self.acked = self.errors = 0
            self.lag_ms = 0.0
            return out


def _produce(
    producer: base.Producer,
    workload: Workload,
    index: int,
    producers: int,
    ctl: _Control,
    out: Any,
    role: tuple[str, int, int],
) -> None:
    start = ctl.start_at.value
    stats = _ProducerStats(start)
    pool = payload_pool(workload)
    span = max(1, len(pool) - workload.message_size)
    next_report = time.monotonic() + REPORT_EVERY
    sends = schedule(workload, index, producers)
    unsent = 0
    for seq, send in enumerate(sends):
        scheduled = start + send.at
        delay = scheduled - time.time()
        if (delay > 0 or seq % 64 == 0) and ctl.stop.is_set():
            unsent = 1 + sum(1 for _ in sends)  # scheduled, but the run ended first
            break
        if delay > 0:
            time.sleep(delay)
        elif -delay * 1000 > stats.lag_ms:
            stats.lag_ms = -delay * 1000
        body = send.payload if send.payload is not None else pool
        offset = 0 if send.payload is not None else (seq * 7919) % span
        payload = (
            HEADER.pack(scheduled, seq, index) + body[offset + HEADER_SIZE : offset + send.size]
        )
        producer.send(send.key, payload, stats.callback(scheduled))
        stats.sent += 1
        if time.monotonic() >= next_report:
            out.put(("stats", role, stats.take()))
            next_report = time.monotonic() + REPORT_EVERY
    try:
        producer.flush(30.0)
    except BackendError as exc:
        stats.last_error = str(exc)
    out.put(("stats", role, stats.take()))
    out.put(("done", role, {"unsent": unsent}))


def _consumer_main(
    spec: BackendSpec,
    registry: Mapping[str, str],
    topic: tuple[int, str],
    group: tuple[int, str],
    index: int,
    ctl: _Control,
    out: Any,
) -> None:
    role = ("consumer", topic[0], group[0], index)
    try:
        backend = _child_backend(spec, registry)
        consumer = backend.consumer(topic[1], group[1])
        state = _ConsumerState()
        out.put(("ready", role, os.getpid()))
        _await_prime(consumer, ctl, out, role)
        ctl.consume_go.wait()
        state.start = ctl.start_at.value
        _consume(consumer, state, ctl, out, role)
        consumer.close()
        backend.close()
    except BaseException:
        out.put(("error", role, traceback.format_exc()))


class _ConsumerState:
    def __init__(self) -> None:
        self.start = 0.0
        self.received = self.duplicates = 0
        self.hist = WindowedHistograms()
        self.seen: dict[int, bytearray] = {}

    def handle(self, payload: bytes, now: float) -> None:
        scheduled, seq, producer = HEADER.unpack_from(payload)
        self.hist.record(scheduled - self.start, int((now - scheduled) * 1e6))
        bitmap = self.seen.get(producer)
        if bitmap is None:
            bitmap = self.seen[producer] = bytearray()
        byte, bit = seq >> 3, 1 << (seq & 7)
        if byte >= len(bitmap):
            bitmap.extend(bytes(byte + 4096 - len(bitmap)))
        if bitmap[byte] & bit:
            self.duplicates += 1
        else:
            bitmap[byte] |= bit
        self.received += 1

    def take(self) -> dict[str, Any]:
        out = {"received": self.received, "duplicates": self.duplicates, "hist": self.hist.take()}
        self.received = self.duplicates = 0
        return out


def _await_prime(consumer: base.Consumer, ctl: _Control, out: Any, role: tuple[Any, ...]) -> None:
    """Poll until the run starts, reporting each priming message (the group is live)."""
    while not ctl.go.is_set():
        records = consumer.poll(100, 0.05)
        for record in records:
            if HEADER.unpack_from(record.payload)[2] == PRIME:
                out.put(("primed", role, None))
        if records:
            consumer.commit()


def _consume(
    consumer: base.Consumer, state: _ConsumerState, ctl: _Control, out: Any, role: tuple[Any, ...]
) -> None:
    next_report = time.monotonic() + REPORT_EVERY
    while not ctl.consumers_stop.is_set():
        records = consumer.poll(POLL_RECORDS, 0.05)
        now = time.time()
        for record in records:
            if (
                len(record.payload) >= HEADER_SIZE
                and HEADER.unpack_from(record.payload)[2] != PRIME
            ):
                state.handle(record.payload, now)
        if records:
            consumer.commit()
        if time.monotonic() >= next_report:
            out.put(("stats", role, state.take()))
            next_report = time.monotonic() + REPORT_EVERY
    out.put(("stats", role, state.take()))
    out.put(("done", role, {"seen": {p: bytes(b) for p, b in state.seen.items()}}))


# --- parent ----------------------------------------------------------------------------


@dataclass
class _Live:
    """The parent's running totals, fed by the children's stats messages."""

    topics: int
    groups: int
    sent: dict[int, int] = field(default_factory=dict)  # topic -> sent
    acked: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    last_error: str | None = None
    received: dict[tuple[int, int], int] = field(default_factory=dict)  # (topic, group)
    duplicates: int = 0
    unsent: int = 0
    lag_ms: float = 0.0
    publish: WindowedHistograms = field(default_factory=WindowedHistograms)
    e2e: WindowedHistograms = field(default_factory=WindowedHistograms)
    seen: dict[tuple[int, int], dict[tuple[int, int], bytes]] = field(default_factory=dict)
    pids: dict[str, list[int]] = field(default_factory=lambda: {"producer": [], "consumer": []})
    done: set[tuple[Any, ...]] = field(default_factory=set)

    def add(self, role: tuple[Any, ...], data: dict[str, Any]) -> None:
        if role[0] == "producer":
            t = role[1]
            self.sent[t] = self.sent.get(t, 0) + data["sent"]
            self.acked[t] = self.acked.get(t, 0) + data["acked"]
            self.errors += data["errors"]
            self.last_error = data["last_error"] or self.last_error
            self.lag_ms = max(self.lag_ms, data["lag_ms"])
            self.publish.merge_states(data["hist"])
        else:
            key = (role[1], role[2])
            self.received[key] = self.received.get(key, 0) + data["received"]
            self.duplicates += data["duplicates"]
            self.e2e.merge_states(data["hist"])

    def total_sent(self) -> int:
        return sum(self.sent.values())

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
        return all(
            self.received.get((t, g), 0) >= self.acked.get(t, 0)
            for t in range(self.topics)
            for g in range(self.groups)
        )


class _Run:
    """One run in the parent: start children, monitor, drain, collect."""

    def __init__(
        self,
        workload: Workload,
        spec: BackendSpec,
        *,
        progress: bool,
        kafka_pid: int | None,
        disk_paths: Iterable[str],
        drain_timeout: float,
    ) -> None:
        self.workload = workload
        self.spec = spec
        self.progress = progress
        self.kafka_pid = kafka_pid
        self.extra_disk = [str(p) for p in disk_paths]
        self.drain_timeout = drain_timeout
        self.ctx = _context()
        self.ctl = _Control.create(self.ctx)
        self.out = self.ctx.Queue()
        self.procs: list[Any] = []
        groups = workload.subscriptions_per_topic
        self.live = _Live(workload.topics, groups)
        self.series: list[tuple[str, float, float]] = []
        self.notes: list[str] = []
        self.steps: list[dict[str, Any]] = []
        self.failed_step: int | None = None
        self.drain_started: float | None = None
        self.drain_ended: float | None = None
        self.disk_baseline = 0

    # setup
    def topics(self) -> list[str]:
        slug = "".join(c if c.isalnum() else "-" for c in self.workload.name.lower())[:40]
        nonce = uuid.uuid4().hex[:8]
        return [f"sqq-{slug}-{nonce}-{i}" for i in range(self.workload.topics)]

    def start_children(self, topics: list[str]) -> None:
        w = self.workload
        registry = dict(base.BACKENDS)
        for t, topic in enumerate(topics):
            for g in range(w.subscriptions_per_topic):
                group = f"sub-{g}-{topic}"
                for c in range(w.consumer_per_subscription):
                    args = (self.spec, registry, (t, topic), (g, group), c, self.ctl, self.out)
                    self._spawn(_consumer_main, args, f"sqq-consumer-{t}-{g}-{c}")
        self._wait_ready(len(self.procs))
        for t, topic in enumerate(topics):
            n = w.producers_per_topic
            for p in range(n):
                pargs = (self.spec, registry, w, (t, topic), p, n, self.ctl, self.out)
                self._spawn(_producer_main, pargs, f"sqq-producer-{t}-{p}")
        self._wait_ready(w.producers_per_topic * w.topics)

    def prime(self) -> None:
        """Send one priming message per producer; wait until every group has received one.

        Joining a group and finding a new topic take a while on Kafka; priming keeps that
        out of the measurement for every backend alike. Raises BackendError when a group
        has received nothing after PRIME_TIMEOUT seconds (its consumers never started
        receiving, so the run would measure nothing).
        """
        self.ctl.prime.set()
        w = self.workload
        waiting = {(t, g) for t in range(w.topics) for g in range(w.subscriptions_per_topic)}
        deadline = time.monotonic() + PRIME_TIMEOUT
        while waiting and time.monotonic() < deadline:
            try:
                kind, role, data = self.out.get(timeout=0.5)
            except queue.Empty:
                continue
            if kind == "error":
                raise BackendError(f"{self.spec.name}: a {role[0]} process failed:\n{data}")
            if kind == "primed":
                waiting.discard((role[1], role[2]))
        if waiting:
            raise BackendError(
                f"{self.spec.name}: {len(waiting)} consumer group(s) received nothing within "
                f"{PRIME_TIMEOUT:.0f} s of the producers' first message; the run was abandoned "
                "(is the topic visible to the consumers? see the backend's log)"
            )

    def _spawn(self, target: Any, args: tuple[Any, ...], name: str) -> None:
        proc = self.ctx.Process(target=target, args=args, name=name, daemon=True)
        proc.start()
        self.procs.append(proc)

    def _wait_ready(self, count: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        ready = 0
        while ready < count:
            dead = [p.name for p in self.procs if p.exitcode is not None]
            if dead and self.out.empty():
                raise BackendError(f"{self.spec.name}: process {dead[0]} exited while starting")
            try:
                kind, role, data = self.out.get(timeout=min(1.0, deadline - time.monotonic()))
            except queue.Empty:
                if time.monotonic() < deadline:
                    continue
                raise BackendError(
                    f"{self.spec.name}: {count - ready} process(es) not ready after "
                    f"{READY_TIMEOUT:.0f} s; is the backend reachable?"
                ) from None
            if kind == "error":
                raise BackendError(f"{self.spec.name}: {role[0]} failed to start:\n{data}")
            if kind == "ready":
                self.live.pids[role[0]].append(data)
                ready += 1

    # monitoring
    def handle(self, timeout: float) -> None:
        """Process children's messages for up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                kind, role, data = self.out.get(timeout=max(0.0, remaining))
            except queue.Empty:
                return
            if kind == "stats":
                self.live.add(role, data)
            elif kind == "done":
                self.live.done.add(role)
                self.live.unsent += data.get("unsent", 0)
                if role[0] == "consumer":
                    for producer, bitmap in data["seen"].items():
                        key = (role[1], role[2])
                        seen = self.live.seen.setdefault(key, {})
                        old = seen.get((role[1], producer), b"")
                        seen[(role[1], producer)] = _or_bytes(old, bitmap)
            elif kind == "error":
                raise BackendError(f"{self.spec.name}: a {role[0]} process failed:\n{data}")
            if remaining <= 0:
                return

    def monitor(self, sampler: ResourceSampler, bar: Any) -> None:
        w = self.workload
        start = self.ctl.start_at.value
        measure_from = start + w.warmup_seconds
        end = start + w.duration_seconds
        last = (time.time(), 0, 0)
        next_tick = start + 1.0
        drain_deadline: float | None = None
        while True:
            self.handle(min(0.25, max(0.0, next_tick - time.time())))
            now = time.time()
            if now >= next_tick:
                next_tick += 1.0
                last = self._sample(now, last, measure_from, sampler, bar)
                self._maybe_start_drain(now)
                if w.finds_max_rate:
                    self._check_ramp(now, start)
            if drain_deadline is None:
                if now >= end or self.failed_step is not None:
                    self.ctl.stop.set()
                    self.ctl.consume_go.set()
                    drain_deadline = now + self.drain_timeout
            elif (self._producers_done() and self.live.drained()) or now >= drain_deadline:
                self._sample(now, last, measure_from, sampler, None)
                if not self.live.drained():
                    self.notes.append(
                        f"not drained within {self.drain_timeout:.0f} s after the run: "
                        f"{self.live.backlog()} message(s) still in the backlog"
                    )
                return

    def _producers_done(self) -> bool:
        producers = self.workload.producers_per_topic * self.workload.topics
        return sum(1 for r in self.live.done if r[0] == "producer") >= producers

    def _sample(
        self,
        now: float,
        last: tuple[float, int, int],
        measure_from: float,
        sampler: ResourceSampler,
        bar: Any,
    ) -> tuple[float, int, int]:
        sent, received = self.live.total_sent(), self.live.total_received()
        dt = max(now - last[0], 1e-6)
        pub_rate, con_rate = (sent - last[1]) / dt, (received - last[2]) / dt
        t = round(now - measure_from, 3)
        start = self.ctl.start_at.value
        recent = self.live.e2e.between(now - start - 3.0, now - start)
        p99 = recent.percentile(99)
        resources = sampler.sample()
        if resources.get("disk_bytes") is not None:
            resources["disk_bytes"] -= self.disk_baseline
        if t >= 0:
            self.series += [
                ("publish_rate", t, pub_rate),
                ("consume_rate", t, con_rate),
                ("backlog", t, float(self.live.backlog())),
                ("producer_lag_ms", t, self.live.lag_ms),
            ]
            if recent.total:
                self.series.append(("e2e_latency_ms.p99", t, p99))
            self.series += [(k, t, v) for k, v in resources.items()]
        self.live.lag_ms = 0.0
        if bar is not None:
            bar.n = min(bar.total, round(now - start, 1))
            bar.set_postfix_str(f"rate={pub_rate:,.0f}/s p99={p99:,.1f}ms", refresh=False)
            bar.refresh()
        return (now, sent, received)

    def _maybe_start_drain(self, now: float) -> None:
        target = self.workload.consumer_backlog_messages
        if self.drain_started is not None:
            if self.drain_ended is None and self.live.backlog() <= max(10, target // 100):
                self.drain_ended = now
            return
        if not target:
            return
        if sum(self.live.acked.values()) >= target:
            self.drain_started = now
            self.ctl.consume_go.set()

    def _check_ramp(self, now: float, start: float) -> None:
        w = self.workload
        rates = ramp_rates(w)
        step = w.ramp_step_seconds
        while len(self.steps) < len(rates):
            k = len(self.steps)
            lo = w.warmup_seconds + k * step
            if now - start < lo + step + 1.0 or self.failed_step is not None:
                return
            self.steps.append(self._step(k, rates[k], lo, lo + step))
            if len(self.steps) >= 2 and not (self.steps[-1]["ok"] or self.steps[-2]["ok"]):
                self.failed_step = k - 1  # two failures in a row: not a one-off stall
                self.ctl.stop.set()
                return

    def _step(self, k: int, rate: float, lo: float, hi: float) -> dict[str, Any]:
        hist = self.live.e2e.between(lo, hi)
        expected = rate * (hi - lo)
        p99 = hist.percentile(99)
        ok = p99 <= self.workload.p99_target_ms and hist.total >= 0.95 * expected
        return {
            "step": k,
            "target_rate": rate,
            "achieved_rate": hist.total / (hi - lo),
            "p50_ms": hist.percentile(50),
            "p99_ms": p99,
            "ok": ok,
        }

    def stop_children(self) -> None:
        self.ctl.stop.set()
        self.ctl.consume_go.set()
        self.ctl.go.set()
        self.ctl.consumers_stop.set()
        consumers = len(self.live.pids["consumer"])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            done = sum(1 for r in self.live.done if r[0] == "consumer")
            if done >= consumers:
                break
            with contextlib.suppress(BackendError):
                self.handle(0.2)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)

    # results
    def result(self, describe: dict[str, Any]) -> RunResult:
        w = self.workload
        measured = (w.warmup_seconds, float("inf"))
        publish = self.live.publish.between(*measured)
        e2e = self.live.e2e.between(*measured)
        res = RunResult(self.spec.name, w.name, _target_rate(w), describe)
        res.publish, res.e2e, res.series, res.steps = publish, e2e, self.series, self.steps
        res.notes = self.notes
        res.scalars = self._scalars(publish, e2e)
        if self.failed_step is not None:
            step = self.steps[self.failed_step]
            res.notes.append(
                f"max-rate search stopped at step {step['step']} ({step['target_rate']:,.0f} "
                f"msg/s): p99 {step['p99_ms']:,.1f} ms against a target of "
                f"{w.p99_target_ms:g} ms, {step['achieved_rate']:,.0f} msg/s arrived"
            )
        elif self.live.unsent:
            res.notes.append(
                f"{self.live.unsent} scheduled message(s) were never sent: the producers fell "
                "behind the schedule and the run ended first"
            )
        if self.live.errors and self.live.last_error:
            res.notes.append(f"{self.live.errors} send error(s); last: {self.live.last_error}")
        return res

    def _scalars(self, publish: Histogram, e2e: Histogram) -> dict[str, float]:
        w = self.workload
        window = max(w.duration_seconds - w.warmup_seconds, 1e-6)
        unique, lost = self._unique_and_lost()
        s: dict[str, float] = {
            "target_rate": _target_rate(w),
            "sent": self.live.total_sent(),
            "unsent": self.live.unsent,
            "acknowledged": sum(self.live.acked.values()),
            "received": self.live.total_received(),
            "unique_received": unique,
            "errors": self.live.errors,
            "duplicates": self.live.total_received() - unique,
            "lost": lost,
            "publish_rate_mean": publish.total / window,
            "consume_rate_mean": e2e.total / window / max(1, w.subscriptions_per_topic),
            "duration_seconds": w.duration_seconds,
            "warmup_seconds": w.warmup_seconds,
            "p99_target_ms": w.p99_target_ms,
        }
        for name, value in publish.summary().items():
            s[f"publish_latency_ms.{name}"] = value
        for name, value in e2e.summary().items():
            s[f"e2e_latency_ms.{name}"] = value
        disk = [v for m, _, v in self.series if m == "disk_bytes"]
        if disk:
            s["disk_bytes_final"] = disk[-1]
        if self.drain_started is not None:
            end = self.drain_ended or time.time()
            s["drain_seconds"] = end - self.drain_started
            s["backlog_messages"] = w.consumer_backlog_messages
        if w.finds_max_rate:
            s["max_sustainable_rate"] = _max_sustainable(self.steps)
        return s

    def _unique_and_lost(self) -> tuple[int, int]:
        unique = lost = 0
        for t in range(self.workload.topics):
            for g in range(self.workload.subscriptions_per_topic):
                bitmaps = self.live.seen.get((t, g), {})
                count = sum(int.from_bytes(b, "little").bit_count() for b in bitmaps.values())
                unique += count
                lost += max(0, self.live.acked.get(t, 0) - count)
        return unique, lost


def _or_bytes(a: bytes, b: bytes) -> bytes:
    if not a:
        return b
    n = max(len(a), len(b))
    value = int.from_bytes(a, "little") | int.from_bytes(b, "little")
    return value.to_bytes(n, "little")


def _target_rate(w: Workload) -> float:
    if w.finds_max_rate:
        return 0.0
    if w.trace is not None:
        return 0.0
    s = w.shape
    if s.type == "daily":
        trough = s.trough_rate or s.peak_rate / 10
        return (trough + s.peak_rate) / 2
    if s.type == "bursts":
        frac = min(1.0, s.burst_seconds / s.period_seconds)
        return w.producer_rate * (1 - frac) + s.burst_rate * frac
    return w.producer_rate


def _max_sustainable(steps: list[dict[str, Any]]) -> float:
    """The last passing step before two failures in a row (one failure alone is a stall)."""
    best = 0.0
    for k, step in enumerate(steps):
        if step["ok"]:
            best = step["achieved_rate"]
        elif k + 1 < len(steps) and not steps[k + 1]["ok"]:
            break
    return best


def run_workload(
    workload: Workload,
    spec: BackendSpec,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    kafka_pid: int | None = None,
    disk_paths: Iterable[str | os.PathLike[str]] = (),
    drain_timeout: float | None = None,
) -> RunResult:
    """Run ``workload`` against the backend ``spec`` and return what was measured.

    ``data_dir`` (default: a fresh temporary folder, removed afterwards) replaces the
    spec's data directory; ``kafka_pid`` adds the broker's JVM to the resource samples;
    ``disk_paths`` adds folders (e.g. Kafka's log dir) to ``disk_bytes`` (as growth during
    the run). Producers stop at the workload's duration; consumers then drain for up to
    ``drain_timeout`` seconds (default: the duration, at least 5 s, at most 60 s).

    Raises BackendError if the backend cannot be opened or a producer/consumer process
    fails; every child process is stopped before returning or raising.
    """
    temp = None
    if data_dir is None:
        temp = tempfile.mkdtemp(prefix=f"sqq-{spec.name}-")
        data_dir = temp
    spec = replace(spec, data_dir=str(data_dir))
    if drain_timeout is None:
        drain_timeout = min(60.0, max(5.0, workload.duration_seconds))
    run = _Run(
        workload,
        spec,
        progress=progress,
        kafka_pid=kafka_pid,
        disk_paths=[str(p) for p in disk_paths],
        drain_timeout=drain_timeout,
    )
    try:
        return _execute(run)
    finally:
        run.stop_children()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def _execute(run: _Run) -> RunResult:
    backend = open_backend(run.spec)
    try:
        if run.workload.subscriptions_per_topic > 1 and not getattr(backend, "fan_out", True):
            raise NotApplicable(
                f"{run.spec.name} has no consumer groups, so it cannot serve "
                f"{run.workload.subscriptions_per_topic} subscriptions per topic (fan-out)"
            )
        topics = run.topics()
        for topic in topics:
            backend.create_topic(topic, run.workload.partitions_per_topic)
        describe = backend.describe()
    finally:
        backend.close()
    run.start_children(topics)
    run.prime()
    data_paths = [run.spec.data_dir]
    kafka_pid = run.kafka_pid
    run.disk_baseline = path_bytes(run.extra_disk)
    sampler = ResourceSampler(
        {
            "producers": lambda: run.live.pids["producer"],
            "consumers": lambda: run.live.pids["consumer"],
            "harness": lambda: [os.getpid()],
            **({"kafka": lambda: [kafka_pid]} if kafka_pid else {}),
        },
        disk_paths=lambda: [*data_paths, *run.extra_disk],
    )
    sampler.sample()
    bar = _progress_bar(run) if run.progress else None
    run.ctl.start_at.value = time.time() + 0.2
    run.ctl.go.set()
    if not run.workload.consumer_backlog_messages:
        run.ctl.consume_go.set()
    try:
        run.monitor(sampler, bar)
    finally:
        if bar is not None:
            bar.close()
    run.stop_children()
    return run.result(describe)


def _progress_bar(run: _Run) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=run.workload.duration_seconds,
        desc=f"{run.spec.name:>15} {run.workload.name[:28]:<28}",
        unit="s",
        bar_format="{desc} {bar} {n:.0f}/{total:.0f}s {postfix}",
        leave=False,
        disable=None,  # only on a terminal
    )


def write_result(writer: Any, result: RunResult) -> None:
    """Store ``result`` with ``writer`` (a RunWriter): scalars, series, histograms, steps.

    Adds ``latency_hist.csv`` rows (kind ``publish``/``e2e``), ``rate_steps.csv`` for a
    max-rate search, and the backend's ``describe()`` and notes under run.json keys
    ``backends`` and ``notes``.
    """
    b, w = result.backend, result.workload
    writer.metrics([(b, w, m, None, v) for m, v in result.scalars.items()])
    writer.metrics([(b, w, m, t, v) for m, t, v in result.series])
    for kind, hist in (("publish", result.publish), ("e2e", result.e2e)):
        writer.table(
            "latency_hist",
            [
                {"backend": b, "workload": w, "kind": kind, "upper_ms": u, "count": c}
                for u, c in hist.buckets_ms()
            ],
        )
    if result.steps:
        writer.table("rate_steps", [{"backend": b, "workload": w, **s} for s in result.steps])
    writer.metadata(backends={b: result.describe})
    if result.notes:
        writer.metadata(notes={f"{b} / {w}": result.notes})
    writer.flush()


def check_registry(names: Iterable[str]) -> None:
    """Raise BenchError naming the unknown backends among ``names``."""
    unknown = [n for n in names if n not in base.BACKENDS]
    if unknown:
        raise BenchError(
            f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(base.BACKENDS)}"
        )
