"""Producer and consumer processes for the fault experiments (run, then SIGKILLed, for real).

Each worker is its own process started by the trials (:mod:`sqlitequeue.bench.faults.lab`)::

    python -m sqlitequeue.bench.faults.workers ROLE CONFIG_JSON

and drives one backend through the workbench's one producer/consumer seam
(:mod:`sqlitequeue.bench.backends`), by name: ``open_backend(config.backend)``, then
``producer.send`` + ``flush`` or ``consumer.poll`` + ``commit``. Any registered backend can
run in the lab. A worker records what happens in a ledger
(:mod:`sqlitequeue.bench.faults.ledger`) right after it happens: ``S`` before a send, ``A``
once the backend's delivery report confirmed it, ``R``/``P``/``C`` when a consumer receives,
processes and commits, ``E`` for an error. Message ids travel inside the payload (the first
12 bytes, ASCII), so every count is computed from ids. A worker stops when the file named
``stop`` in its config exists (or when killed).

Roles: ``producer`` (:class:`ProducerConfig`) and ``consumer`` (:class:`ConsumerConfig`).
A consumer prints each rebalance the backend reports (:meth:`Consumer.on_rebalance`) to its
stdout as ``<unix time> assigned|revoked <partitions>``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

from sqlitequeue.bench.backends import Backend, BackendSpec, Consumer, Delivery, open_backend
from sqlitequeue.bench.backends.base import DeliveryCallback, Producer
from sqlitequeue.bench.errors import BackendError, BenchError
from sqlitequeue.bench.faults.ledger import LedgerWriter

ID_BYTES = 12


def payload_for(message_id: int, size: int) -> bytes:
    """Return a payload of ``size`` bytes (at least 12) carrying ``message_id``."""
    head = f"{message_id:>{ID_BYTES}d}".encode()
    return head + b"x" * max(0, size - ID_BYTES)


def id_of(payload: bytes | None) -> int:
    """Return the message id carried by ``payload``; raises ValueError if it has none."""
    if payload is None:
        raise ValueError("a record without a payload carries no message id")
    return int(payload[:ID_BYTES])


class OnError(StrEnum):
    """What a producer does when the backend reports a failed delivery (always recorded)."""

    #: Go on with the next batch: the failed messages stay unacknowledged.
    CONTINUE = "continue"
    #: Free space (delete the ballast file, if any), wait ``retry_s``, send them again.
    RETRY = "retry"


@dataclass(frozen=True, kw_only=True)
class RoleConfig:
    """What every worker has: the backend to open (by name), its topic, ledger, stop file."""

    role: ClassVar[str]
    backend: BackendSpec
    topic: str
    ledger: str
    stop: str


@dataclass(frozen=True, kw_only=True)
class ProducerConfig(RoleConfig):
    """What a producer worker does: send paced batches of ids to ``topic`` on ``backend``.

    ``rate`` msg/s (0: as fast as the backend takes them) in batches of ``batch``, ids from
    ``first_id``, ``count`` of them (None: until ``stop`` exists). ``groups`` are subscribed
    before the first send when the backend feeds groups at publish time
    (``replays_history`` False), so nothing is dropped for want of a subscriber.
    ``wait_each_batch``: flush after every batch, as an application that waits for its
    write (else sends are pipelined and acknowledgements drained as they come). On a failed
    delivery see :class:`OnError`; with ``stop_after_recovery`` the producer stops after the
    first batch confirmed following a failure. ``copy_out`` names a directory that every
    file of the backend's ``data_dir`` (but ``-shm`` and the ballast) is copied into at the
    end (for a file system that vanishes with the process). At the end the producer waits
    up to ``flush_s`` for outstanding acknowledgements.
    """

    role: ClassVar[str] = "producer"
    rate: float = 0.0
    batch: int = 10
    payload_size: int = 100
    first_id: int = 0
    count: int | None = None
    groups: tuple[str, ...] = ()
    wait_each_batch: bool = False
    on_error: OnError = OnError.CONTINUE
    retry_s: float = 0.05
    ballast: str | None = None
    stop_after_recovery: bool = False
    copy_out: str | None = None
    flush_s: float = 60.0


@dataclass(frozen=True, kw_only=True)
class ConsumerConfig(RoleConfig):
    """What a consumer worker does: poll batches as a member of ``group``, process, commit.

    ``process_s`` per message (one ``P`` event each); ``poll_s`` the poll timeout; once
    ``stop`` exists the consumer leaves after ``idle_s`` without records.
    """

    role: ClassVar[str] = "consumer"
    group: str
    batch: int = 10
    process_s: float = 0.0
    poll_s: float = 0.2
    idle_s: float = 1.0


WorkerConfig = ProducerConfig | ConsumerConfig
CONFIGS: dict[str, type[ProducerConfig] | type[ConsumerConfig]] = {
    ProducerConfig.role: ProducerConfig,
    ConsumerConfig.role: ConsumerConfig,
}


def config_to_json(config: WorkerConfig) -> str:
    """Return ``config`` as the JSON a worker takes on its command line."""
    return json.dumps(dataclasses.asdict(config))


def config_from_json(role: str, text: str) -> WorkerConfig:
    """Return the config of ``role`` read from :func:`config_to_json`'s JSON.

    Raises ValueError for an unknown role, TypeError for unknown fields.
    """
    if role not in CONFIGS:
        raise ValueError(f"unknown worker role {role!r}; choose one of: {', '.join(CONFIGS)}")
    fields = json.loads(text)
    fields["backend"] = BackendSpec(**fields["backend"])
    if role == ProducerConfig.role:
        fields["groups"] = tuple(fields.get("groups", ()))
        fields["on_error"] = OnError(fields.get("on_error", OnError.CONTINUE))
    return CONFIGS[role](**fields)


def command(config: WorkerConfig) -> list[str]:
    """Return the argv that runs a worker with ``config`` in a new Python process."""
    module = "sqlitequeue.bench.faults.workers"
    return [sys.executable, "-m", module, config.role, config_to_json(config)]


def subscribe_groups(backend: Backend, topic: str, groups: Iterable[str]) -> None:
    """Subscribe ``groups`` to ``topic`` where the backend feeds groups at publish time.

    A no-op for a backend that replays history (a log: a group reads whatever is stored).
    """
    if backend.replays_history:
        return
    for group in groups:
        backend.consumer(topic, group).close()


def paced_batches(config: ProducerConfig) -> Iterator[list[int]]:
    """Yield batches of consecutive ids at ``config.rate`` msg/s until ``count`` or ``stop``."""
    next_id, batch = config.first_id, config.batch
    end = None if config.count is None else next_id + config.count
    stop = Path(config.stop)
    started = time.monotonic()
    sent = 0
    while not stop.exists():
        n = batch if end is None else min(batch, end - next_id)
        if n <= 0:
            return
        if config.rate > 0:
            pause = started + sent / config.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        yield list(range(next_id, next_id + n))
        next_id += n
        sent += n


def recorded_error(exc: BaseException) -> BaseException:
    """The error to write in a ledger: the store's own error behind a BackendError."""
    if isinstance(exc, BackendError) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


# -- producer ----------------------------------------------------------------------------


class Deliveries:
    """Delivery reports gathered from the backend's thread until the worker writes them.

    :meth:`drain` writes one ``A`` event for the ids confirmed since the last drain (at the
    latest confirmation's time) and one ``E`` event per distinct error among the failed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._acked: list[tuple[float, int]] = []
        self._failed: list[tuple[float, int, str]] = []

    def callback(self, message_id: int) -> DeliveryCallback:
        """Return the ``on_delivery`` callback for the message ``message_id``."""

        def delivered(delivery: Delivery) -> None:
            with self._lock:
                if delivery.ok:
                    self._acked.append((delivery.published_at, message_id))
                else:
                    error = delivery.error or "delivery failed"
                    self._failed.append((delivery.published_at, message_id, error))

        return delivered

    def drain(self, ledger: LedgerWriter) -> list[int]:
        """Write what arrived since the last drain; return the ids whose delivery failed."""
        with self._lock:
            acked, self._acked = self._acked, []
            failed, self._failed = self._failed, []
        if acked:
            ledger.event("A", [i for _, i in acked], max(at for at, _ in acked))
        errors: dict[str, float] = {}
        for at, _, error in failed:
            errors[error] = min(at, errors.get(error, at))
        for error, at in errors.items():
            ledger.failure(error, at)
        return [i for _, i, _ in failed]


def run_producer(config: ProducerConfig) -> int:
    """Send paced batches through the seam; return the exit code (1: could not start).

    Raises nothing for a failed delivery: it is recorded and handled per ``on_error``.
    """
    ledger = LedgerWriter(config.ledger)
    try:
        backend = open_backend(config.backend)
        subscribe_groups(backend, config.topic, config.groups)
        producer = backend.producer(config.topic)
    except BenchError as exc:
        ledger.error(recorded_error(exc), time.time())
        return 1
    deliveries = Deliveries()
    had_failure = False
    try:
        for ids in paced_batches(config):
            if had_failure and config.stop_after_recovery:
                break
            had_failure = _send_until_done(config, producer, deliveries, ledger, ids) or had_failure
        producer.flush(config.flush_s)
    except BenchError as exc:  # a flush that timed out, a send the client refused
        ledger.error(recorded_error(exc), time.time())
        deliveries.drain(ledger)
        return 1
    with contextlib.suppress(BenchError):
        producer.close()  # joins the thread that reports deliveries, so none is missed
    deliveries.drain(ledger)
    backend.close()
    if config.copy_out:
        copy_data_dir(Path(config.backend.data_dir), Path(config.copy_out), config.ballast)
    return 0


def _send_until_done(
    config: ProducerConfig,
    producer: Producer,
    deliveries: Deliveries,
    ledger: LedgerWriter,
    ids: list[int],
) -> bool:
    """Send ``ids`` (again, per ``on_error``); return True if some delivery failed first."""
    failed_before = False
    pending = ids
    while True:
        ledger.event("S", pending, time.time())
        for i in pending:
            producer.send(None, payload_for(i, config.payload_size), deliveries.callback(i))
        if config.wait_each_batch:
            producer.flush(config.flush_s)
        failed = deliveries.drain(ledger)
        if not failed or config.on_error is OnError.CONTINUE:
            return failed_before or bool(failed)
        failed_before = True
        if config.ballast and Path(config.ballast).exists():
            Path(config.ballast).unlink()
        time.sleep(config.retry_s)
        pending = failed


def copy_data_dir(data_dir: Path, target: Path, ballast: str | None = None) -> None:
    """Copy what a reboot would find in ``data_dir`` (every file but ``-shm``) to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    skip = {Path(ballast).name} if ballast else set()
    for source in sorted(data_dir.iterdir()):
        if source.is_file() and not source.name.endswith("-shm") and source.name not in skip:
            shutil.copyfile(source, target / source.name)


# -- consumer ----------------------------------------------------------------------------


def run_consumer(config: ConsumerConfig) -> int:
    """Poll, process (``P`` per message) and commit through the seam; return the exit code.

    A commit the group refused because the records moved to another member (the seam's
    ``lost_commits``) is recorded as ``E``, not ``C``: those records are delivered again.
    """
    ledger = LedgerWriter(config.ledger)
    try:
        backend = open_backend(config.backend)
        consumer = backend.consumer(config.topic, config.group)
    except BenchError as exc:
        ledger.error(recorded_error(exc), time.time())
        return 1
    consumer.on_rebalance(print_rebalance)
    stop = Path(config.stop)
    idle_since = time.monotonic()
    while True:
        try:
            records = consumer.poll(config.batch, config.poll_s)
        except BenchError as exc:
            ledger.error(recorded_error(exc), time.time())
            time.sleep(config.poll_s)
            continue
        if not records:
            if stop.exists() and time.monotonic() - idle_since > config.idle_s:
                break
            continue
        idle_since = time.monotonic()
        ids = [id_of(record.payload) for record in records]
        ledger.event("R", ids, time.time())
        process(ledger, ids, config.process_s)
        commit(consumer, ledger, ids)
    consumer.close()
    backend.close()
    return 0


def print_rebalance(kind: str, partitions: Sequence[int]) -> None:
    """Print ``<unix time> assigned|revoked <p,p,...>`` (the lab reads it from the log)."""
    print(f"{time.time():.6f} {kind} {','.join(map(str, partitions))}", flush=True)


def process(ledger: LedgerWriter, ids: list[int], process_s: float) -> None:
    """The consumer's side effect: one ``P`` event per message, ``process_s`` apart."""
    for i in ids:
        if process_s > 0:
            time.sleep(process_s)
        ledger.event("P", [i], time.time())


def commit(consumer: Consumer, ledger: LedgerWriter, ids: list[int]) -> None:
    """Commit what was polled: ``C`` for ``ids`` when it held, else an ``E`` event."""
    lost_before = consumer.lost_commits
    try:
        consumer.commit()
    except BenchError as exc:
        ledger.error(recorded_error(exc), time.time())
        return
    if consumer.lost_commits > lost_before:
        ledger.failure(
            f"LostCommit: {len(ids)} record(s) had moved to another member "
            "(rebalance or expired lease); they are delivered again",
            time.time(),
        )
        return
    ledger.event("C", ids, time.time())


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``ROLE CONFIG_JSON``; returns the worker's exit code (2: bad usage)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in CONFIGS:
        print(f"usage: workers {{{','.join(CONFIGS)}}} CONFIG_JSON", file=sys.stderr)
        return 2
    config = config_from_json(args[0], args[1])
    if isinstance(config, ProducerConfig):
        return run_producer(config)
    return run_consumer(config)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
