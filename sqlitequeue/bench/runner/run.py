"""Drive one workload against one backend: producers and consumers in their own processes.

Open loop: producers send on a schedule and latency counts from the *scheduled* time
(:mod:`~sqlitequeue.bench.runner.producer`, :mod:`~sqlitequeue.bench.runner.consumer`), so
a backend that makes the producer fall behind shows the queueing delay instead of hiding it:

* publish latency = delivery callback time - scheduled time (recorded by the producer);
* end-to-end latency = time the consumer got it - scheduled time (read from the payload).

Messages scheduled during the warm-up are excluded from the latency histograms and rates.
Consumers keep a bitmap of sequence numbers per producer, so the runner counts duplicates
and lost messages per consumer group. The parent process (here) starts the children, primes
every consumer group, then samples rates, backlog, CPU and memory of every process (and the
Kafka JVM when its pid is given) and disk bytes once per second, shows a progress bar, and
returns a :class:`~sqlitequeue.bench.runner.result.RunResult`. No charts, no formats.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlitequeue.bench.backends import base
from sqlitequeue.bench.backends.base import BackendSpec, open_backend
from sqlitequeue.bench.errors import BackendError
from sqlitequeue.bench.metrics import ResourceSampler, path_bytes
from sqlitequeue.bench.runner.consumer import consumer_main
from sqlitequeue.bench.runner.control import PRIME_TIMEOUT, READY_TIMEOUT, Control, context
from sqlitequeue.bench.runner.live import Live
from sqlitequeue.bench.runner.messages import (
    ConsumerDone,
    ConsumerRole,
    ConsumerStats,
    Failed,
    Message,
    Primed,
    ProducerDone,
    ProducerRole,
    ProducerStats,
    Ready,
)
from sqlitequeue.bench.runner.producer import producer_main
from sqlitequeue.bench.runner.ramp import SearchDriver, SearchEnd
from sqlitequeue.bench.runner.result import (
    RunResult,
    SeriesPoint,
    measured_scalars,
    result_notes,
    target_rate,
)
from sqlitequeue.bench.workload import Workload

if TYPE_CHECKING:
    from multiprocessing.queues import Queue


#: seconds between the parent's looks at a max-rate search (to judge a step, start the next)
SEARCH_POLL = 0.05


class NotApplicable(BackendError):
    """The workload needs something the backend does not do (e.g. fan-out to groups)."""


class _Mark(NamedTuple):
    """Totals at one sample, to turn the next sample's totals into rates."""

    at: float
    sent: int
    received: int


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
        self.ctx = context()
        self.ctl = Control.create(self.ctx)
        self.out: Queue[Message] = self.ctx.Queue()
        self.procs: list[BaseProcess] = []
        self.live = Live(workload.topics, workload.subscriptions_per_topic)
        self.series: list[SeriesPoint] = []
        self.notes: list[str] = []
        self.driver: SearchDriver | None = None
        if workload.finds_max_rate:
            self.driver = SearchDriver(workload, self.ctl, self.live)
        self.drain_started: float | None = None
        self.drain_ended: float | None = None
        self.disk_baseline = 0
        #: the processes the backend runs besides its clients (a server it started)
        self.server_pids: Callable[[], list[int]] | None = None

    # setup
    def topics(self) -> list[str]:
        slug = "".join(c if c.isalnum() else "-" for c in self.workload.name.lower())[:40]
        nonce = uuid.uuid4().hex[:8]
        return [f"sqq-{slug}-{nonce}-{i}" for i in range(self.workload.topics)]

    def start_children(self, topics: list[str]) -> None:
        """Start every consumer, wait until all are ready, then the same for producers."""
        w = self.workload
        registry = dict(base.BACKENDS)
        for t, topic in enumerate(topics):
            for g in range(w.subscriptions_per_topic):
                group = f"sub-{g}-{topic}"
                for c in range(w.consumer_per_subscription):
                    crole = ConsumerRole(t, g, c)
                    cargs = (self.spec, registry, topic, group, crole, self.ctl, self.out)
                    self._spawn(consumer_main, cargs, crole.process_name)
        self._wait_ready(len(self.procs))
        n = w.producers_per_topic
        for t, topic in enumerate(topics):
            for p in range(n):
                prole = ProducerRole(t, p)
                pargs = (self.spec, registry, w, topic, prole, n, self.ctl, self.out)
                self._spawn(producer_main, pargs, prole.process_name)
        self._wait_ready(n * w.topics)

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
                message = self.out.get(timeout=0.5)
            except queue.Empty:
                continue
            match message:
                case Failed():
                    raise self._failed(message, f"a {message.role.kind} process failed")
                case Primed(role=role):
                    waiting.discard((role.topic, role.group))
        if waiting:
            raise BackendError(
                f"{self.spec.name}: {len(waiting)} consumer group(s) received nothing within "
                f"{PRIME_TIMEOUT:.0f} s of the producers' first message; the run was abandoned "
                "(is the topic visible to the consumers? see the backend's log)"
            )

    def _spawn(self, target: Callable[..., None], args: tuple[Any, ...], name: str) -> None:
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
                message = self.out.get(timeout=min(1.0, deadline - time.monotonic()))
            except queue.Empty:
                if time.monotonic() < deadline:
                    continue
                raise BackendError(
                    f"{self.spec.name}: {count - ready} process(es) not ready after "
                    f"{READY_TIMEOUT:.0f} s; is the backend reachable?"
                ) from None
            match message:
                case Failed():
                    raise self._failed(message, f"{message.role.kind} failed to start")
                case Ready():
                    self.live.add_ready(message)
                    ready += 1

    def _failed(self, message: Failed, what: str) -> BackendError:
        return BackendError(f"{self.spec.name}: {what}:\n{message.traceback}")

    # monitoring
    def handle(self, timeout: float) -> None:
        """Process children's messages for up to ``timeout`` seconds.

        Raises BackendError when a child reports that it failed.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                message = self.out.get(timeout=max(0.0, remaining))
            except queue.Empty:
                return
            match message:
                case ProducerStats():
                    self.live.add_producer_stats(message)
                case ConsumerStats():
                    self.live.add_consumer_stats(message)
                case ProducerDone():
                    self.live.add_producer_done(message)
                case ConsumerDone():
                    self.live.add_consumer_done(message)
                case Failed():
                    raise self._failed(message, f"a {message.role.kind} process failed")
                case _:
                    pass  # Ready and Primed matter only while starting
            if remaining <= 0:
                return

    def monitor(self, sampler: ResourceSampler, bar: Any) -> None:
        """Sample once a second until the producers have stopped and the consumers have
        drained (or ``drain_timeout`` has passed); a note says when they did not drain.
        A max-rate search is moved on every SEARCH_POLL seconds and ends the run early."""
        w = self.workload
        start = self.ctl.start_at.value
        measure_from = start + w.warmup_seconds
        end = start + w.duration_seconds
        last = _Mark(time.time(), 0, 0)
        next_tick = start + 1.0
        drain_deadline: float | None = None
        poll = SEARCH_POLL if self.driver is not None else 0.25
        while True:
            self.handle(min(poll, max(0.0, next_tick - time.time())))
            now = time.time()
            if now >= next_tick:
                next_tick += 1.0
                last = self._sample(now, last, measure_from, sampler, bar)
                self._maybe_start_drain(now)
            searched = self.driver is not None and self.driver.advance(now - start)
            if drain_deadline is None:
                if now >= end and self.driver is not None:
                    self.driver.search.stop(SearchEnd.BUDGET)  # e.g. while a backlog drained
                if now >= end or searched:
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
        return len(self.live.producers_done) >= producers

    def _sample(
        self, now: float, last: _Mark, measure_from: float, sampler: ResourceSampler, bar: Any
    ) -> _Mark:
        """Add one second's rates, backlog, lag, p99 and resources to the series (once the
        warm-up is over) and to the progress ``bar``; return the totals for the next one."""
        mark = _Mark(now, self.live.total_sent(), self.live.total_received())
        dt = max(now - last.at, 1e-6)
        pub_rate, con_rate = (mark.sent - last.sent) / dt, (mark.received - last.received) / dt
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
        return mark

    def _maybe_start_drain(self, now: float) -> None:
        """Let consumers start once the backlog the workload asks for has been built;
        note when it has been consumed."""
        target = self.workload.consumer_backlog_messages
        if self.drain_started is not None:
            if self.drain_ended is None and self.live.backlog() <= max(10, target // 100):
                self.drain_ended = now
            return
        if not target:
            return
        if self.live.total_acked() >= target:
            self.drain_started = now
            self.ctl.consume_go.set()

    def stop_children(self) -> None:
        """Signal every child to stop, collect the consumers' last messages (15 s at most),
        and join every process, killing what does not exit."""
        self.ctl.stop.set()
        self.ctl.consume_go.set()
        self.ctl.go.set()
        self.ctl.consumers_stop.set()
        consumers = len(self.live.consumer_pids)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if len(self.live.consumers_done) >= consumers:
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
        drain_seconds = None
        if self.drain_started is not None:
            drain_seconds = (self.drain_ended or time.time()) - self.drain_started
        search = None if self.driver is None else self.driver.search
        steps = [] if self.driver is None else self.driver.steps
        scalars = measured_scalars(
            w, self.live, publish, e2e, self.series, drain_seconds=drain_seconds, search=search
        )
        return RunResult(
            backend=self.spec.name,
            workload=w.name,
            target_rate=target_rate(w),
            describe=describe,
            scalars=scalars,
            series=self.series,
            publish=publish,
            e2e=e2e,
            steps=steps,
            notes=[*self.notes, *result_notes(self.live, steps, search)],
        )


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

    Raises NotApplicable if the workload needs fan-out and the backend has no consumer
    groups, BackendError if the backend cannot be opened or a producer/consumer process
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
    topics, describe = _create_topics(run)
    run.start_children(topics)
    run.prime()
    run.disk_baseline = path_bytes(run.extra_disk)
    sampler = _resource_sampler(run)
    sampler.sample()
    bar = _progress_bar(run) if run.progress else None
    run.ctl.start_at.value = time.time() + 0.2
    if run.driver is not None:
        run.driver.begin()
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


def _create_topics(run: _Run) -> tuple[list[str], dict[str, Any]]:
    """Create the run's topics; return their names and the backend's ``describe()``.

    Raises NotApplicable when the workload fans out and the backend has no groups.
    """
    backend = open_backend(run.spec)
    if backend.server_pids(run.spec):  # it runs a server: sample it too
        run.server_pids = partial(type(backend).server_pids, run.spec)
    try:
        if run.workload.subscriptions_per_topic > 1 and not getattr(backend, "fan_out", True):
            raise NotApplicable(
                f"{run.spec.name} has no consumer groups, so it cannot serve "
                f"{run.workload.subscriptions_per_topic} subscriptions per topic (fan-out)"
            )
        topics = run.topics()
        for topic in topics:
            backend.create_topic(topic, run.workload.partitions_per_topic)
        return topics, backend.describe()
    finally:
        backend.close()


def _resource_sampler(run: _Run) -> ResourceSampler:
    """CPU and memory by process kind (and the Kafka JVM), and bytes on disk."""
    data_paths = [run.spec.data_dir]
    kafka_pid = run.kafka_pid
    return ResourceSampler(
        {
            "producers": lambda: run.live.producer_pids,
            "consumers": lambda: run.live.consumer_pids,
            "harness": lambda: [os.getpid()],
            **({"kafka": lambda: [kafka_pid]} if kafka_pid else {}),
            **({"server": run.server_pids} if run.server_pids is not None else {}),
        },
        disk_paths=lambda: [*data_paths, *run.extra_disk],
    )


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
