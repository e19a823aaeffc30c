"""The peer queues as they ship: persist-queue's ``SQLiteAckQueue``, litequeue, honker and
huey's ``SqliteStorage``.

None is driven through a batch claim: ``poll`` returns at most one message whatever
``max_records`` says, and ``commit`` acks what was polled one message at a time. None is
timed through a batch put of its own (``batched`` is False, so the put_many and get_many
rows are skipped); a flush of several records, used only to fill a queue before a timed
read, writes them in one transaction by the fastest route each offers. persist-queue
opens its queue when built (the topic is ignored: one queue per directory), the others
one queue per topic on first use, shared by the subject's producers and consumers. A
missing peer raises a BenchError naming the ``bench`` extra.
"""

from __future__ import annotations

import importlib
import sqlite3
import time
from typing import Any, cast

from sqlitequeue.bench.backends.base import BackendSpec, Consumer, Producer, Received
from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.microbench.patterns import PEER_EMPTY_SLEEP
from sqlitequeue.bench.microbench.subject import (
    BufferedProducer,
    Subject,
    TopicSubject,
    retry_locked,
    synchronous,
)


class PersistQueue(Subject):
    """persist-queue's ``SQLiteAckQueue`` as it ships (pickle, synchronous left at FULL).

    Records polled but not committed are delivered again when the queue is next opened
    (its ``auto_resume``).
    """

    name = "persist-queue"
    key = "persist-queue"
    title = "persist-queue"
    package = "persist-queue"
    durabilities = ("full",)
    batched = False
    multiprocess = False
    why_not_multiprocess = "not multi-process safe (its docs)"
    fan_out = False
    file_name = "persist-queue"

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        from persistqueue import SQLiteAckQueue

        self.queue = SQLiteAckQueue(str(self.path))

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        """Nothing to do: the queue was opened when the subject was built."""

    def producer(self, topic: str) -> Producer:
        return BufferedProducer(self.queue.put, self.put_in_one_transaction)

    def put_in_one_transaction(self, payloads: list[bytes]) -> None:
        """Its own INSERT and serializer in one transaction (``put`` fsyncs each item)."""
        q = self.queue
        conn = cast(sqlite3.Connection, q._putter)  # typed None until opened
        now = time.time()
        conn.executemany(q._sql_insert, [(q._serializer.dumps(p), now) for p in payloads])
        conn.commit()
        q.total = q._count()

    def consumer(self, topic: str, group: str) -> Consumer:
        return _PersistQueueConsumer(self.queue)

    def describe(self) -> dict[str, Any]:
        getter = cast(sqlite3.Connection, self.queue._getter)  # typed None until opened
        return {**super().describe(), "synchronous": synchronous(getter)}

    def close(self) -> None:
        self.queue.close()


class _PersistQueueConsumer(Consumer):
    def __init__(self, queue: Any) -> None:
        from persistqueue.exceptions import Empty

        self._queue = queue
        self._empty = Empty
        self._pending: list[int] = []

    def poll(self, max_records: int, timeout: float) -> list[Received]:
        """One ``get`` (blocking up to ``timeout``); ``max_records`` is ignored."""
        try:
            if timeout > 0:
                item = self._queue.get(block=True, timeout=timeout, raw=True)
            else:
                item = self._queue.get(block=False, raw=True)
        except self._empty:
            return []
        self._pending.append(item["pqid"])
        return [Received(None, item["data"], 0, item["pqid"])]

    def commit(self) -> None:
        """``ack`` each message polled since the last commit."""
        pending, self._pending = self._pending, []
        for pqid in pending:
            self._queue.ack(id=pqid)


class LiteQueue(TopicSubject[Any]):
    """litequeue as it ships (it sets WAL and synchronous=NORMAL itself).

    A popped message stays locked until it is done: records polled but not committed are
    not delivered again (``redelivers_uncommitted`` is False).
    """

    name = "litequeue"
    key = "litequeue"
    title = "litequeue"
    package = "litequeue"
    durabilities = ("normal",)
    batched = False
    fan_out = False
    redelivers_uncommitted = False

    def open_topic(self, topic: str) -> Any:
        from litequeue import LiteQueue as Opened

        return Opened(str(self.path), queue_name=topic)

    def producer(self, topic: str) -> Producer:
        queue = self.opened(topic)

        def put(payload: bytes) -> None:
            retry_locked(lambda: queue.put(payload))

        def put_in_one_transaction(payloads: list[bytes]) -> None:
            with queue.transaction(mode="IMMEDIATE"):
                for payload in payloads:
                    queue.put(payload)

        return BufferedProducer(put, put_in_one_transaction)

    def consumer(self, topic: str, group: str) -> Consumer:
        return _LiteQueueConsumer(self.opened(topic))

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        for queue in self._opened.values():
            info["synchronous"] = synchronous(queue.conn)
        return info


class _LiteQueueConsumer(Consumer):
    def __init__(self, queue: Any) -> None:
        self._queue = queue
        self._pending: list[str] = []

    def poll(self, max_records: int, timeout: float) -> list[Received]:
        """One ``pop``; litequeue cannot block, so an empty queue is polled every
        PEER_EMPTY_SLEEP until ``timeout``. ``max_records`` is ignored."""
        deadline = time.monotonic() + timeout
        while True:
            message = retry_locked(self._queue.pop)
            if message is not None:
                self._pending.append(message.message_id)
                return [Received(None, message.data, 0, -1)]
            if time.monotonic() >= deadline:
                return []
            time.sleep(PEER_EMPTY_SLEEP)

    def commit(self) -> None:
        """``done`` for each message polled since the last commit."""
        pending, self._pending = self._pending, []
        for message_id in pending:
            retry_locked(lambda: self._queue.done(message_id))  # noqa: B023 - called at once


class Honker(TopicSubject[Any]):
    """honker as it ships (a Rust core; it sets WAL and synchronous=NORMAL itself): one
    ``enqueue`` and one ``claim_one`` + ``ack`` per message, each its own transaction.

    Payloads are JSON in honker, so bytes travel as latin-1 text (what a user storing bytes
    would do). A claimed job is leased (its visibility timeout) and comes back if not acked.
    """

    name = "honker"
    key = "honker"
    title = "honker"
    package = "honker"
    durabilities = ("normal",)
    batched = False
    fan_out = False
    file_name = "honker.db"

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self._db = _peer_module("honker", "honker").open(str(self.path))

    def open_topic(self, topic: str) -> Any:
        return self._db.queue(topic)

    def producer(self, topic: str) -> Producer:
        queue, db = self.opened(topic), self._db

        def put(payload: bytes) -> None:
            queue.enqueue(payload.decode("latin-1"))

        def put_in_one_transaction(payloads: list[bytes]) -> None:
            with db.transaction() as tx:
                for payload in payloads:
                    queue.enqueue(payload.decode("latin-1"), tx=tx)

        return BufferedProducer(put, put_in_one_transaction)

    def consumer(self, topic: str, group: str) -> Consumer:
        return _HonkerConsumer(self.opened(topic))

    def describe(self) -> dict[str, Any]:
        value = self._db.query("PRAGMA synchronous")[0]["synchronous"]
        return {**super().describe(), "synchronous": {1: "NORMAL", 2: "FULL"}.get(value, value)}

    def close(self) -> None:
        self._db.close()


class _HonkerConsumer(Consumer):
    def __init__(self, queue: Any) -> None:
        self._queue = queue
        self._worker = f"bench-{id(self)}"
        self._pending: list[Any] = []

    def poll(self, max_records: int, timeout: float) -> list[Received]:
        """One ``claim_one``; an empty queue is polled every PEER_EMPTY_SLEEP until
        ``timeout`` (its blocking claim is async-only). ``max_records`` is ignored."""
        deadline = time.monotonic() + timeout
        while True:
            job = self._queue.claim_one(self._worker)
            if job is not None:
                self._pending.append(job)
                return [Received(None, job.payload.encode("latin-1"), 0, job.id)]
            if time.monotonic() >= deadline:
                return []
            time.sleep(PEER_EMPTY_SLEEP)

    def commit(self) -> None:
        """``ack`` each job polled since the last commit."""
        pending, self._pending = self._pending, []
        for job in pending:
            if not job.ack():
                self.lost_commits += 1


class HueyStorage(Subject):
    """huey's ``SqliteStorage`` as it ships (WAL; ``synchronous`` left at SQLite's FULL),
    the storage behind ``SqliteHuey``: ``enqueue`` and ``dequeue`` of raw bytes.

    ``dequeue`` deletes the row as it reads it: a consumer that dies with the message is
    the message lost (at-most-once), so ``commit`` has nothing to do and
    ``redelivers_uncommitted`` is False.
    """

    name = "huey"
    key = "huey"
    title = "huey SqliteStorage"
    package = "huey"
    durabilities = ("full",)
    batched = False
    fan_out = False
    redelivers_uncommitted = False
    file_name = "huey.db"

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self._storages: dict[str, Any] = {}

    def storage(self, topic: str) -> Any:
        """The storage of ``topic`` (one huey queue name per topic), opened on first use."""
        found = self._storages.get(topic)
        if found is None:
            storage_class = _peer_module("huey.storage", "huey").SqliteStorage
            found = self._storages[topic] = storage_class(name=topic, filename=str(self.path))
        return found

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        self.storage(topic)

    def producer(self, topic: str) -> Producer:
        storage = self.storage(topic)

        def put_in_one_transaction(payloads: list[bytes]) -> None:
            with storage.db(commit=True) as cursor:
                cursor.executemany(
                    "insert into task (queue, data, priority) values (?, ?, 0)",
                    [(topic, p) for p in payloads],
                )

        return BufferedProducer(storage.enqueue, put_in_one_transaction)

    def consumer(self, topic: str, group: str) -> Consumer:
        return _HueyConsumer(self.storage(topic))

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        for storage in self._storages.values():
            info["synchronous"] = synchronous(storage.conn)
        return info

    def close(self) -> None:
        for storage in self._storages.values():
            storage.close()


class _HueyConsumer(Consumer):
    def __init__(self, storage: Any) -> None:
        self._storage = storage

    def poll(self, max_records: int, timeout: float) -> list[Received]:
        """One ``dequeue`` (the message is deleted at once); an empty queue is polled every
        PEER_EMPTY_SLEEP until ``timeout``. ``max_records`` is ignored."""
        deadline = time.monotonic() + timeout
        while True:
            data = self._storage.dequeue()
            if data is not None:
                return [Received(None, bytes(data), 0, -1)]
            if time.monotonic() >= deadline:
                return []
            time.sleep(PEER_EMPTY_SLEEP)

    def commit(self) -> None:
        """Nothing: ``dequeue`` already deleted the message."""


def _peer_module(module: str, package: str) -> Any:
    """Import a peer's module; a BenchError naming the extra when it is missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise BenchError(
            f"the {package} peer is not installed ({exc.name}); install the workbench's "
            "extra: pip install 'sqlitequeue[bench]'"
        ) from exc
