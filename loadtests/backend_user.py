"""The abstract Locust user holding a backend client, and the run's coordination.

Layer two of the Locust custom-client pattern: :class:`BackendUser` holds one producer
or consumer from the workbench's backend protocol (through ``backend_client``) and fires
one ``events.request`` per measured operation: ``publish``, ``consume``, ``end-to-end``,
with the backend's name as the request type and times in ms (floats).

A workload needs a fixed set of roles (its consumers and producers, see
:func:`backend_client.roles`), so the users of one run coordinate through Locust's
custom messages, which work the same in one process, with ``--processes`` and with
``--master``/``--worker`` on several machines:

1. at ``test_start`` the master (or the single local runner) names the run's topics,
   creates them, and picks the data directory;
2. each user sends ``sqq_join``; the master answers ``sqq_role`` with the next role
   (consumers first) and the run's topics; a user beyond the workload's roles stops;
3. each user opens its producer or consumer (a consumer subscribes: ``sqlite-queue``
   needs that before anything is produced) and sends ``sqq_ready``;
4. once every role is ready the master broadcasts ``sqq_go`` with a common start time
   (wall clock, half a second ahead); producers replay their schedules from it.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import gevent
import gevent.monkey
from backend_client import (
    EARLY,
    ConsumerClient,
    Measurement,
    ProducerClient,
    Role,
    open_roles,
    roles,
    topic_names,
)
from gevent.event import AsyncResult
from locust import User
from locust.exception import StopUser
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from sqlitequeue.bench.backends.base import Backend, BackendSpec, Consumer, Producer, open_backend
from sqlitequeue.bench.workload import Workload

log = logging.getLogger("sqlitequeue.locust")
#: the unpatched time.sleep: blocks this process's event loop for at most EARLY seconds
REAL_SLEEP = gevent.monkey.get_original("time", "sleep")
#: real client threads (loadtests/run_locust.py) rather than greenlets (kafka-python)
NATIVE_THREADS = not gevent.monkey.is_module_patched("threading")


@contextlib.contextmanager
def precise_sleep() -> Iterator[None]:
    """Let the calling code's ``time.sleep`` block for real (sub-ms) instead of yielding.

    gevent's patched sleep wakes on the event loop's ~1 ms timer ticks, which would add up
    to a millisecond to every SQLite poll (``wait_for_change`` sleeps 50 us .. 2 ms). With
    real client threads and one user per process nothing else needs the loop meanwhile.
    """
    if not NATIVE_THREADS:
        yield
        return
    patched = time.sleep
    time.sleep = REAL_SLEEP
    try:
        yield
    finally:
        time.sleep = patched


JOIN, ROLE, READY, GO = "sqq_join", "sqq_role", "sqq_ready", "sqq_go"
JOIN_TIMEOUT = 120.0  # seconds a user waits for its role
GO_TIMEOUT = 180.0  # seconds a producer waits for every other user to be ready
GO_LEAD = 0.5  # seconds between "everyone is ready" and the common start
IDLE_WAIT = 0.25  # seconds between checks once a producer's schedule is done
FLUSH_TIMEOUT = 10.0


@dataclass
class RunConfig:
    """Everything a process needs to build clients (from the command line, see locustfile)."""

    backend: str
    spec: BackendSpec
    workload: Workload  # as loaded; each user applies the master's ``seconds``
    seconds: float  # how long producers replay at most (the master decides at the start)
    run_time: float | None = None  # Locust's --run-time (known to the master only)
    drain: float = 0.0  # seconds kept at the end of --run-time for consumers to catch up
    max_rate: bool = False
    data_dir: str | None = None  # --data-dir; None: the master makes a temporary one
    workload_arg: str = ""  # --workload as given to the master (workers follow it)


@dataclass
class MasterState:
    """The coordinator's view of one test run (the master or the local runner)."""

    topics: list[str] = field(default_factory=list)
    data_dir: str = ""
    temp_dir: str | None = None
    roles: list[Role] = field(default_factory=list)
    assigned: int = 0
    ready: set[str] = field(default_factory=set)
    start_at: float | None = None
    seconds: float = 0.0
    test_started: float = 0.0
    describe: dict[str, Any] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget the previous test run's roles (the temporary data directory stays)."""
        self.topics, self.roles, self.ready = [], [], set()
        self.assigned, self.start_at, self.seconds = 0, None, 0.0
        self.test_started = time.time()


@dataclass
class WorkerState:
    """A worker process's pending role requests and the run's start time."""

    pending: dict[str, AsyncResult] = field(default_factory=dict)
    go: dict[str, AsyncResult] = field(default_factory=dict)
    users: int = 0

    def go_for(self, run: str) -> AsyncResult:
        """Return the start-time result of run ``run`` (created on first use)."""
        return self.go.setdefault(run, AsyncResult())


CONFIG: RunConfig | None = None
MASTER = MasterState()
WORKER = WorkerState()


# --- coordination (master side) --------------------------------------------------------


def is_coordinator(runner: Any) -> bool:
    """True for the process that assigns roles: the master, or a single local runner."""
    return isinstance(runner, MasterRunner | LocalRunner)


def register(environment: Any, config: RunConfig) -> None:
    """Install ``config`` and this process's message handlers (call from the init event)."""
    global CONFIG
    CONFIG = config
    runner = environment.runner
    if is_coordinator(runner):
        runner.register_message(JOIN, _on_join)
        runner.register_message(READY, _on_ready)
        environment.events.test_start.add_listener(_on_test_start)
        environment.events.quitting.add_listener(_on_quitting)
    if isinstance(runner, WorkerRunner | LocalRunner):
        runner.register_message(ROLE, _on_role)
        runner.register_message(GO, _on_go)


def _on_test_start(environment: Any, **_: Any) -> None:
    """Name and create the run's topics; reset the role assignment."""
    assert CONFIG is not None
    run = uuid.uuid4().hex[:8]
    if MASTER.temp_dir is None and CONFIG.data_dir is None:
        MASTER.temp_dir = tempfile.mkdtemp(prefix=f"sqq-locust-{CONFIG.backend}-")
    data_dir = CONFIG.data_dir or MASTER.temp_dir or "."
    MASTER.reset()
    MASTER.data_dir = str(Path(data_dir).resolve())
    MASTER.topics = topic_names(CONFIG.workload, run)
    MASTER.roles = roles(CONFIG.workload)
    backend = open_backend(replace(CONFIG.spec, data_dir=MASTER.data_dir))
    try:
        for topic in MASTER.topics:
            backend.create_topic(topic, CONFIG.workload.partitions_per_topic)
        MASTER.describe = backend.describe()
    finally:
        backend.close()
    log.info(
        "%s: %d user(s) needed (%s); topics %s",
        CONFIG.workload.name,
        len(MASTER.roles),
        ", ".join(f"{r.kind} {r.topic}/{r.group}/{r.index}" for r in MASTER.roles),
        ", ".join(MASTER.topics),
    )


def _on_join(environment: Any, msg: Any, **_: Any) -> None:
    assert CONFIG is not None
    token = msg.data["token"]
    reply: dict[str, Any] = {"token": token, "role": None, "users": len(MASTER.roles)}
    if MASTER.assigned < len(MASTER.roles):
        reply.update(
            role=asdict(MASTER.roles[MASTER.assigned]),
            topics=MASTER.topics,
            data_dir=MASTER.data_dir,
            run=MASTER.topics[0],
            workload=CONFIG.workload_arg,
            profile=CONFIG.spec.profile,
            max_rate=CONFIG.max_rate,
        )
        MASTER.assigned += 1
    environment.runner.send_message(ROLE, reply, client_id=msg.node_id)


def _on_ready(environment: Any, msg: Any, **_: Any) -> None:
    MASTER.ready.add(msg.data["token"])
    if MASTER.start_at is None and len(MASTER.ready) >= len(MASTER.roles):
        MASTER.start_at = start_at = time.time() + GO_LEAD
        MASTER.seconds = replay_seconds(start_at)
        data = {"run": MASTER.topics[0], "start_at": start_at, "seconds": MASTER.seconds}
        environment.runner.send_message(GO, data)


def replay_seconds(start_at: float) -> float:
    """Return how long producers replay from ``start_at``: the planned seconds, cut so that
    ``drain`` seconds of Locust's run time remain after the last send (setup took a while)."""
    assert CONFIG is not None
    if not CONFIG.run_time:
        return CONFIG.seconds
    left = MASTER.test_started + CONFIG.run_time - CONFIG.drain - start_at
    return max(1.0, min(CONFIG.seconds, left))


def _on_quitting(environment: Any, **_: Any) -> None:
    """Write the exact response-time histogram next to Locust's CSVs; remove temp data."""
    prefix = getattr(environment.parsed_options, "csv_prefix", None)
    if prefix:
        write_response_times(environment.stats, f"{prefix}_response_times.csv")
        write_run_facts(f"{prefix}_sqq.json")
    if MASTER.temp_dir:
        shutil.rmtree(MASTER.temp_dir, ignore_errors=True)
        MASTER.temp_dir = None


def write_response_times(stats: Any, path: str) -> None:
    """Write every entry's response-time buckets: ``Type, Name, response_time_ms, count``.

    Locust's _stats.csv rounds percentiles to whole milliseconds; this file keeps the
    sub-millisecond buckets (see ``backend_client.response_time_bucket``) so the converter
    can compute percentiles and a latency histogram for the report.
    """
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["Type", "Name", "response_time_ms", "count"])
        for (name, method), entry in sorted(stats.entries.items()):
            for ms, count in sorted(entry.response_times.items()):
                out.writerow([method, name, ms, count])


def write_run_facts(path: str) -> None:
    """Write what the converter needs beside Locust's CSVs: backend, workload, timing."""
    assert CONFIG is not None
    workload = CONFIG.workload.with_duration(MASTER.seconds or CONFIG.seconds)
    facts = {
        "backend": CONFIG.backend,
        "workload": workload.name,
        "workload_path": workload.path,
        "replay_seconds": workload.duration_seconds,
        "warmup_seconds": workload.warmup_seconds,
        "groups": workload.subscriptions_per_topic * workload.topics,
        "start_at": MASTER.start_at,
        "users": len(MASTER.roles),
        "max_rate": CONFIG.max_rate,
        "profile": CONFIG.spec.profile,
        "topics": MASTER.topics,
        "describe": MASTER.describe,
        "workload_describe": workload.describe(),
    }
    Path(path).write_text(json.dumps(facts, indent=2, default=str) + "\n")


# --- coordination (worker side) --------------------------------------------------------


def _on_role(environment: Any, msg: Any, **_: Any) -> None:
    pending = WORKER.pending.pop(msg.data["token"], None)
    if pending is not None:
        pending.set(msg.data)


def _on_go(environment: Any, msg: Any, **_: Any) -> None:
    WORKER.go_for(msg.data["run"]).set((msg.data["start_at"], msg.data["seconds"]))


def follow_master(config: RunConfig, reply: dict[str, Any]) -> RunConfig:
    """Return ``config`` with the master's workload, profile and pacing (distributed workers
    may have been started with other arguments). Raises WorkloadError/BackendError."""
    from sqlitequeue.bench.profiles import backend_spec
    from sqlitequeue.bench.workload import load_workload

    if reply["workload"] == config.workload_arg and reply["profile"] == config.spec.profile:
        return replace(config, max_rate=reply["max_rate"])
    spec = backend_spec(
        config.backend, reply["profile"], bootstrap_servers=config.spec.bootstrap_servers
    )
    workload = load_workload(reply["workload"])
    return replace(config, spec=spec, workload=workload, max_rate=reply["max_rate"])


# --- the user --------------------------------------------------------------------------


class BackendUser(User):
    """Replays one role of the workload against ``backend``; concrete users add a @task.

    A producer sends on the workload's schedule (``wait_time`` sleeps until the next send
    is due, so the rate follows the workload's shape; ``--max-rate`` sends back to back);
    a consumer polls (``POLL_TIMEOUT``) and commits in a loop.
    """

    abstract = True
    #: the backend's registry name (sqlitequeue.bench.backends.base.BACKENDS)
    backend: ClassVar[str] = ""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.role: Role | None = None
        self.backend_client: Backend | None = None
        self.endpoint: Producer | Consumer | None = None
        self.producing: ProducerClient | None = None
        self.consuming: ConsumerClient | None = None
        self.run_id = ""
        self.flushed = False
        self.config: RunConfig | None = None

    def wait_time(self) -> float:
        """Seconds until the next scheduled send (producers); 0 for consumers."""
        if self.producing is None:
            return 0.0
        if self.producing.finished:
            return IDLE_WAIT
        return min(self.producing.seconds_until_due(EARLY), IDLE_WAIT)

    def on_start(self) -> None:
        """Take a role from the coordinator, open the client, wait for the common start."""
        assert CONFIG is not None, "the locustfile's init listener did not run"
        WORKER.users += 1
        if WORKER.users == 2:
            log.warning(
                "two or more users share one process: their blocking calls delay each other; "
                "run one user per process (--processes N with -u N), see docs/locust.md"
            )
        reply = self._join()
        if reply["role"] is None:
            log.warning("the workload needs only %d users; this one stops", reply["users"])
            raise StopUser()
        self.role = Role(**reply["role"])
        self.run_id = reply["run"]
        config = self.config = follow_master(CONFIG, reply)
        spec = replace(config.spec, data_dir=reply["data_dir"])
        self.backend_client = open_backend(spec)
        self.endpoint = open_roles(self.backend_client, self.role, reply["topics"])
        self.environment.runner.send_message(READY, {"token": reply["token"]})
        go = WORKER.go_for(self.run_id)
        if isinstance(self.endpoint, Consumer):
            self.consuming = ConsumerClient(self.endpoint)
            return  # consumers poll at once (joining the group) and learn the start later
        start_at, seconds = go.get(timeout=GO_TIMEOUT)
        w = config.workload.with_duration(seconds)
        self.producing = ProducerClient(
            self.endpoint,
            w,
            self.role.index,
            w.producers_per_topic,
            start_at,
            max_rate=config.max_rate,
        )

    def _join(self) -> dict[str, Any]:
        token = uuid.uuid4().hex
        result = AsyncResult()
        WORKER.pending[token] = result
        self.environment.runner.send_message(JOIN, {"token": token})
        try:
            reply: dict[str, Any] = result.get(timeout=JOIN_TIMEOUT)
        except Exception as exc:
            raise RuntimeError(f"no role from the master within {JOIN_TIMEOUT:g} s") from exc
        return reply

    def replay_workload(self) -> None:
        """One step: send what is due (producer) or poll once (consumer); report it."""
        if self.producing is not None:
            self._produce_step(self.producing)
        elif self.consuming is not None:
            self._consume_step(self.consuming)
        if self.wait_time() <= 0:
            # Locust then sleeps 0, which lets greenlets run but not the loop's I/O: a busy
            # consumer would delay the master's messages (start, quit) by a second or more.
            gevent.idle()

    def _produce_step(self, client: ProducerClient) -> None:
        if not client.finished:
            # a real sleep would starve kafka-python's I/O greenlet: only with real threads
            client.send_due(sleep=REAL_SLEEP if NATIVE_THREADS else None, early=EARLY)
        elif not self.flushed:
            self.flushed = True
            self._flush(client)
        self.report(client.take())

    def _consume_step(self, client: ConsumerClient) -> None:
        if client.measure_from is None and CONFIG is not None:
            go = WORKER.go_for(self.run_id)
            if go.ready():
                start_at, seconds = go.get()
                late = time.time() - start_at
                if late > 0:
                    log.info("consumer learned the start time %.3f s after it", late)
                workload = self.config.workload if self.config else CONFIG.workload
                client.start(start_at, workload.with_duration(seconds).warmup_seconds)
        with precise_sleep():
            measured = client.poll()
        self.report(measured)

    def _flush(self, client: ProducerClient) -> None:
        try:
            client.producer.flush(FLUSH_TIMEOUT)
        except Exception as exc:
            self.report([Measurement("publish", 0.0, 0, f"flush: {exc}")])

    def report(self, measurements: list[Measurement]) -> None:
        """Fire one ``events.request`` per measurement (request type = backend name)."""
        fire = self.environment.events.request.fire
        for m in measurements:
            fire(
                request_type=self.backend,
                name=m.name,
                response_time=m.ms,
                response_length=m.length,
                exception=None if m.error is None else RuntimeError(m.error),
                context={"role": self.role.kind if self.role else ""},
            )

    def on_stop(self) -> None:
        """Flush (producers) and report what is left; close the client in the background.

        Closing a Kafka consumer leaves its group, which can take a second; the master waits
        only 0.5 s for each worker's final statistics after the run time, so closing happens
        on a separate thread and this returns at once.
        """
        if self.producing is not None and not self.flushed:
            self.flushed = True
            self._flush(self.producing)
            self.report(self.producing.take())
        if self.consuming is not None:
            log.info("consumer stopping: %d record(s) received", self.consuming.received)
        if self.producing is not None:
            log.info(
                "producer stopping: %d sent, %d confirmed",
                self.producing.sent,
                self.producing.confirmed,
            )
        closing = [c for c in (self.endpoint, self.backend_client) if c is not None]
        self.endpoint = self.backend_client = None
        if closing:
            threading.Thread(target=_close_all, args=(closing,), daemon=True).start()


def _close_all(closables: list[Any]) -> None:
    for closable in closables:
        try:
            closable.close()
        except Exception as exc:
            log.warning("closing %s failed: %s", type(closable).__name__, exc)
