"""``sqlite-queue``: :class:`sqlitequeue.Queue`, the reference work queue, as a backend.

A queue has no log to replay, so a consumer group maps to one queue per group, named
``<topic>/<group>``, fed at publish time: the file records which groups subscribed to
which topic (table ``bench_subscriptions``, written when a consumer is created), and a
producer puts every record into the queue of every subscribed group. Consumers of one
group compete for that queue's messages. ``poll`` is ``get_many`` (a claim under a lease),
``commit`` is ``ack_many`` of everything polled, and ``close`` nacks what was polled but
not committed, so it is delivered again at once; a consumer that dies instead leaves its
messages leased until ``lease_s`` passes, then they are delivered again.

Limits: consumers must subscribe before records are produced (``replays_history`` is
False); with several groups a batch is one transaction per group, not one in all; keys
are stored but a queue keeps per-key order only with one consumer per group.
Producers batch adaptively on a background thread (see ``sqlite-stream``). Every topic
lives in one file, ``<data_dir>/sqlite-queue.db``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from sqlitequeue.bench.backends._common import (
    BatchingWriter,
    base_description,
    durability,
    merged_settings,
    sqlite_description,
    sqlitequeue_version,
)
from sqlitequeue.bench.backends.base import (
    Backend,
    BackendSpec,
    Consumer,
    DeliveryCallback,
    Producer,
    Received,
)
from sqlitequeue.bench.errors import BackendError
from sqlitequeue.errors import LeaseLost, QueueError
from sqlitequeue.internals import Database
from sqlitequeue.queue import Message, Queue

DEFAULTS: dict[str, Any] = {
    "synchronous": "NORMAL",
    "max_batch": 1000,
    "max_buffered": 100_000,
    "lease_s": 30.0,
    "max_attempts": 1000,
    "max_payload_size": 4 * 1024 * 1024,
}

SUBSCRIPTIONS = (
    "CREATE TABLE IF NOT EXISTS bench_subscriptions ("
    " topic TEXT NOT NULL, grp TEXT NOT NULL, PRIMARY KEY (topic, grp)) WITHOUT ROWID"
)


def queue_name(topic: str, group: str) -> str:
    """Return the name of the queue that feeds ``group`` of ``topic``."""
    return f"{topic}/{group}"


class SqliteQueueBackend(Backend):
    """Consumer groups as queues fed at publish time (see the module docstring)."""

    name = "sqlite-queue"
    replays_history = False

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self.settings = merged_settings(self.name, DEFAULTS, spec.settings)
        self.durability = durability(self.name, self.settings["synchronous"])
        self.path = Path(spec.data_dir) / "sqlite-queue.db"

    def database(self) -> Database:
        """Open the backend's file with the subscriptions table created."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = Database(self.path, durability=self.durability)
            db.run_write(SUBSCRIPTIONS)
        except QueueError as exc:
            raise BackendError(f"sqlite-queue: cannot open {self.path}: {exc}") from exc
        return db

    def queue(self, topic: str, group: str) -> Queue:
        """Open the queue of ``group`` on ``topic``."""
        try:
            return Queue(
                self.path,
                queue_name(topic, group),
                durability=self.durability,
                lease=float(self.settings["lease_s"]),
                max_attempts=int(self.settings["max_attempts"]),
                max_payload_size=int(self.settings["max_payload_size"]),
            )
        except QueueError as exc:
            raise BackendError(f"sqlite-queue: cannot open {self.path}: {exc}") from exc

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        """Create the file (a queue has no partitions; ``partitions`` is ignored)."""
        self.database().close()

    def producer(self, topic: str) -> Producer:
        """Return a producer feeding every group subscribed to ``topic``."""
        return QueueProducer(self, topic)

    def consumer(self, topic: str, group: str) -> Consumer:
        """Subscribe ``group`` to ``topic`` (recorded in the file) and return a member."""
        db = self.database()
        try:
            db.run_write(
                "INSERT OR IGNORE INTO bench_subscriptions (topic, grp) VALUES (?, ?)",
                (topic, group),
            )
        finally:
            db.close()
        return QueueConsumer(self.queue(topic, group))

    def describe(self) -> dict[str, Any]:
        """Return settings, versions and the effective durability pragmas."""
        info = base_description(self.name, self.spec.profile, self.settings)
        db = self.database()
        try:
            with db.read() as conn:
                info.update(sqlite_description(conn))  # read back from a real connection
        finally:
            db.close()
        info.update(sqlitequeue=sqlitequeue_version(), file=str(self.path))
        return info


class QueueProducer(Producer):
    """Puts each adaptive batch into the queue of every subscribed group."""

    def __init__(self, backend: SqliteQueueBackend, topic: str) -> None:
        self._backend = backend
        self._topic = topic
        self._db = backend.database()
        self._queues: dict[str, Queue] = {}
        self._writer = BatchingWriter(
            self._write,
            max_batch=int(backend.settings["max_batch"]),
            max_buffered=int(backend.settings["max_buffered"]),
            name="sqlite-queue-producer",
        )
        self._closed = False

    def _groups(self) -> list[str]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT grp FROM bench_subscriptions WHERE topic = ?", (self._topic,)
            ).fetchall()
        return [row[0] for row in rows]

    def _write(self, records: list[tuple[bytes | None, bytes]]) -> None:
        groups = self._groups()
        if not groups:
            raise BackendError(
                f"no consumer group subscribed to topic {self._topic!r}, so the records were "
                "dropped: sqlite-queue feeds groups at publish time; create consumers first"
            )
        payloads = [payload for _, payload in records]
        keys = [key for key, _ in records]
        for group in groups:
            if group not in self._queues:
                self._queues[group] = self._backend.queue(self._topic, group)
            self._queues[group].put_many(payloads, keys=keys)

    def send(
        self, key: bytes | None, payload: bytes, on_delivery: DeliveryCallback | None = None
    ) -> None:
        """Buffer one record; delivery is reported once every group's queue has it."""
        self._writer.send(key, payload, on_delivery)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every record sent so far is committed; BackendError on timeout."""
        self._writer.flush(timeout)

    def close(self) -> None:
        """Flush, stop the writer thread and close the file; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.close()
        finally:
            for queue in self._queues.values():
                queue.close()
            self._db.close()


class QueueConsumer(Consumer):
    """Claims with ``get_many``; ``commit`` acks everything polled since the last commit."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        self._polled: list[Message] = []
        self._closed = False

    def poll(self, max_records: int, timeout: float) -> list[Received]:
        """Claim up to ``max_records`` messages under a lease; wait up to ``timeout``."""
        if self._closed:
            raise BackendError("poll() after the consumer was closed")
        try:
            messages = self._queue.get_many(max_records, timeout=timeout)
        except QueueError as exc:
            raise BackendError(f"sqlite-queue poll failed: {exc}") from exc
        self._polled.extend(messages)
        return [
            Received(
                key=m.key.encode() if isinstance(m.key, str) else m.key,
                payload=m.payload,
                offset=m.id,
            )
            for m in messages
        ]

    def commit(self) -> None:
        """Ack every message polled since the last commit, in one transaction.

        Messages whose lease expired and were claimed again are counted in
        ``lost_commits`` (see Consumer.commit); the others are acked.
        """
        if self._closed:
            raise BackendError("commit() after the consumer was closed")
        polled, self._polled = self._polled, []
        try:
            self._queue.ack_many(polled)
        except LeaseLost:
            self.lost_commits += 1  # leases expired: those messages are delivered again
        except QueueError as exc:
            raise BackendError(f"sqlite-queue commit failed: {exc}") from exc

    def close(self) -> None:
        """Give back (nack) what was polled but not committed, then close. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            for message in self._polled:
                with contextlib.suppress(QueueError):
                    self._queue.nack(message)
        finally:
            self._polled = []
            self._queue.close()
