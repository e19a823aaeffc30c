"""The queue implementations under test: sqlitequeue, the raw sqlite3 loop and the peers.

Each is a :class:`QueueImpl` opened on one file by one process; :data:`QUEUE_IMPLS` maps
the keys used in the report to the classes. :func:`raw_connect` and :func:`retry_locked`
are shared with the raw stream loop.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlitequeue.bench.microbench.patterns import PEER_EMPTY_SLEEP, PUT_BATCH, QUEUE_NAME
from sqlitequeue.internals import DURABILITY, WAIT_MAX_SLEEP, WAIT_MIN_SLEEP, Database

# -- implementations: the queue side ----------------------------------------------------


class QueueImpl:
    """One queue implementation under test, opened on one file by one process.

    ``durabilities`` lists the settings it can run at; ``batched`` says whether it has a
    batch API; ``multiprocess`` whether several processes may share its file.
    """

    key = ""
    label = ""
    durabilities: tuple[str, ...] = ("normal", "full")
    batched = True
    multiprocess = True
    why_not_multiprocess = ""

    def location(self, directory: Path) -> Path:
        """Where this implementation keeps its data inside a fresh directory."""
        return directory / "bench.db"

    def open(self, path: Path, durability: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def put(self, data: bytes) -> None:
        raise NotImplementedError

    def put_many(self, items: list[bytes]) -> None:
        raise NotImplementedError

    def fill(self, items: list[bytes]) -> None:
        """Enqueue ``items`` as fast as the implementation allows (set-up, not timed)."""
        for start in range(0, len(items), PUT_BATCH):
            self.put_many(items[start : start + PUT_BATCH])

    def get_ack(self) -> bool:
        """Claim one message and acknowledge it; False when the queue is empty."""
        raise NotImplementedError

    def claim_ack(self, count: int) -> int:
        """Claim up to ``count`` messages in one call, acknowledge them; return how many."""
        raise NotImplementedError

    def receive(self, timeout: float, limit: int) -> tuple[Any, list[bytes]] | None:
        """Wait up to ``timeout`` s for messages; claim up to ``limit`` (one if the
        implementation has no batch claim); return (handle, payloads) or None."""
        raise NotImplementedError

    def ack(self, handle: Any) -> None:
        """Acknowledge everything :meth:`receive` returned with ``handle``."""
        raise NotImplementedError

    def settings(self) -> str:
        """What the implementation actually runs with (read back from SQLite)."""
        return ""


class OursQueue(QueueImpl):
    """:class:`sqlitequeue.Queue` through its public API."""

    key = "ours"
    label = "sqlitequeue"

    def open(self, path: Path, durability: str) -> None:
        from sqlitequeue.queue import Queue

        self.q = Queue(path, QUEUE_NAME, durability=durability)

    def close(self) -> None:
        self.q.close()

    def put(self, data: bytes) -> None:
        self.q.put(data)

    def put_many(self, items: list[bytes]) -> None:
        self.q.put_many(items)

    def get_ack(self) -> bool:
        msg = self.q.get(timeout=0)
        if msg is None:
            return False
        self.q.ack(msg)
        return True

    def claim_ack(self, count: int) -> int:
        msgs = self.q.get_many(count, timeout=0)
        if msgs:
            self.q.ack_many(msgs)
        return len(msgs)

    def receive(self, timeout: float, limit: int) -> tuple[Any, list[bytes]] | None:
        msgs = self.q.get_many(limit, timeout=timeout)
        return (msgs, [m.payload for m in msgs]) if msgs else None

    def ack(self, handle: Any) -> None:
        if len(handle) == 1:
            self.q.ack(handle[0])
        else:
            self.q.ack_many(handle)


def retry_locked(action: Callable[[], Any]) -> Any:
    """Run ``action``, retrying SQLite's ``database is locked`` (what any user must do)."""
    delay = 0.0005
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.02)


def raw_connect(path: Path, durability: str) -> sqlite3.Connection:
    """A plain connection with the pragmas our Database sets (file created by Database)."""
    Database(path, durability=durability).close()  # schema + WAL, not timed
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=5.0, cached_statements=256)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute(f"PRAGMA synchronous = {DURABILITY[durability]}")
    return conn


class RawQueue(QueueImpl):
    """The physical reference: sqlitequeue.queue's own statements, issued by hand.

    Same schema, same statements (copied from :mod:`sqlitequeue.queue`), same
    transactions: put, claim (``UPDATE ... RETURNING``) and ack are one autocommit
    statement each, and at most every millisecond a claim first promotes due rows and
    sweeps tombstones in one ``BEGIN IMMEDIATE`` transaction; put_many and ack_many are one
    ``BEGIN IMMEDIATE`` transaction each; at FULL, claims and acks commit at NORMAL like
    ours (see ``Database._set_sync``). Nothing else: no argument checks, no
    Message objects, no wake-up logic beyond polling ``PRAGMA data_version``.
    """

    key = "raw"
    label = "raw sqlite3 loop"

    # Copies of sqlitequeue.queue's statements (re-check them when queue.py changes; the
    # test suite runs this loop against the current schema).
    INSERT = (
        "INSERT INTO queue_messages "
        "(queue, state, priority, available_at, enqueued_at, key, payload) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    PROMOTE = (
        "UPDATE queue_messages SET "
        "state = CASE WHEN state = 2 AND attempts >= ?3 THEN 3 ELSE 0 END, "
        "last_error = CASE WHEN state = 2 THEN 'lease expired on delivery ' || attempts "
        "|| CASE WHEN attempts >= ?3 THEN ' (max_attempts reached)' ELSE '' END "
        "ELSE last_error END "
        "WHERE queue = ?1 AND state IN (1, 2) AND available_at <= ?2"
    )
    CLAIM = (
        "UPDATE queue_messages "
        "SET state = 2, attempts = attempts + 1, lease_token = ?2, available_at = ?3 "
        "WHERE id IN (SELECT id FROM queue_messages WHERE queue = ?1 AND state = 0 "
        "ORDER BY priority DESC, id LIMIT ?4) "
        "RETURNING id, payload, key, priority, attempts, enqueued_at, last_error"
    )
    SWEEP_TOMBSTONES = (
        "DELETE FROM queue_messages WHERE state = 4 AND id < (SELECT max(id) FROM queue_messages)"
    )
    SETTLE_INTERVAL = 0.001
    ACK = "DELETE FROM queue_messages WHERE id = ? AND lease_token = ?"
    ACK_MANY = (
        "DELETE FROM queue_messages WHERE lease_token = ?2 "
        "AND id IN (SELECT value FROM json_each(?1)) RETURNING id"
    )

    def open(self, path: Path, durability: str) -> None:
        self.conn = raw_connect(path, durability)
        self.name = QUEUE_NAME
        self.max_attempts = 5
        self.next_settle = 0.0
        self.full = durability == "full"
        self.sync = DURABILITY[durability]

    def _sync(self, durable: bool) -> None:
        """At FULL, switch to NORMAL for claims and acks and back for puts."""
        wanted = "FULL" if durable else "NORMAL"
        if self.full and wanted != self.sync:
            self.conn.execute(f"PRAGMA synchronous = {wanted}")
            self.sync = wanted

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        retry_locked(lambda: conn.execute("COMMIT"))

    def put(self, data: bytes) -> None:
        now = time.time()
        row = (self.name, 0, 0, now, now, None, data)
        self._sync(True)
        retry_locked(lambda: self.conn.execute(self.INSERT, row))

    def put_many(self, items: list[bytes]) -> None:
        now = time.time()
        name = self.name
        self._sync(True)
        with self._write() as conn:
            conn.executemany(self.INSERT, [(name, 0, 0, now, now, None, d) for d in items])

    def _claim(self, count: int) -> tuple[int, list[tuple[int, bytes]]]:
        """Like Queue._claim: one autocommit UPDATE ... RETURNING; at most every
        SETTLE_INTERVAL, promote due rows and sweep tombstones first, in one transaction."""
        now = time.time()
        token = random.getrandbits(62)
        params = (self.name, token, now + 30.0, count)
        self._sync(False)
        tick = time.monotonic()
        if tick >= self.next_settle:
            self.next_settle = tick + self.SETTLE_INTERVAL
            with self._write() as conn:
                conn.execute(self.PROMOTE, (self.name, now, self.max_attempts))
                conn.execute(self.SWEEP_TOMBSTONES)
                rows = conn.execute(self.CLAIM, params).fetchall()
        else:
            rows = retry_locked(lambda: self.conn.execute(self.CLAIM, params).fetchall())
        return token, [(r[0], r[1]) for r in rows]

    def get_ack(self) -> bool:
        token, rows = self._claim(1)
        if not rows:
            return False
        self.ack((token, [rows[0][0]]))
        return True

    def claim_ack(self, count: int) -> int:
        token, rows = self._claim(count)
        if rows:
            self.ack((token, [r[0] for r in rows]))
        return len(rows)

    def receive(self, timeout: float, limit: int) -> tuple[Any, list[bytes]] | None:
        deadline = time.monotonic() + timeout
        while True:
            version = self.conn.execute("PRAGMA data_version").fetchone()[0]
            token, rows = self._claim(limit)
            if rows:
                return (token, [r[0] for r in rows]), [r[1] for r in rows]
            if not _raw_wait_for_change(self.conn, version, deadline):
                return None

    def ack(self, handle: Any) -> None:
        token, ids = handle
        self._sync(False)
        if len(ids) == 1:
            retry_locked(lambda: self.conn.execute(self.ACK, (ids[0], token)))
            return
        id_list = "[" + ",".join(map(str, ids)) + "]"
        with self._write() as conn:
            conn.execute(self.ACK_MANY, (id_list, token)).fetchall()


def _raw_wait_for_change(conn: sqlite3.Connection, version: int, deadline: float) -> bool:
    """Poll ``PRAGMA data_version`` with the back-off sqlitequeue uses; False at deadline."""
    sleep = WAIT_MIN_SLEEP
    while conn.execute("PRAGMA data_version").fetchone()[0] == version:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(sleep, left))
        sleep = min(sleep * 1.5, WAIT_MAX_SLEEP)
    return True


def _synchronous(conn: sqlite3.Connection) -> str:
    value = conn.execute("PRAGMA synchronous").fetchone()[0]
    return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(value, str(value))


class PersistQueuePeer(QueueImpl):
    """persist-queue's ``SQLiteAckQueue`` as it ships (pickle, synchronous left at FULL)."""

    key = "persist-queue"
    label = "persist-queue"
    durabilities = ("full",)
    batched = False
    multiprocess = False
    why_not_multiprocess = "not multi-process safe (its docs)"

    def __init__(self) -> None:
        self.label = f"persist-queue {_version('persist-queue')}"

    def location(self, directory: Path) -> Path:
        return directory / "persist-queue"

    def open(self, path: Path, durability: str) -> None:
        from persistqueue import SQLiteAckQueue

        self.q = SQLiteAckQueue(str(path))

    def close(self) -> None:
        self.q.close()

    def put(self, data: bytes) -> None:
        self.q.put(data)

    def fill(self, items: list[bytes]) -> None:
        """Its own INSERT and serializer, in one transaction (put would fsync each item)."""
        q = self.q
        conn: sqlite3.Connection = q._putter  # type: ignore[assignment]
        now = time.time()
        conn.executemany(q._sql_insert, [(q._serializer.dumps(d), now) for d in items])
        conn.commit()
        q.total = q._count()

    def get_ack(self) -> bool:
        from persistqueue.exceptions import Empty

        try:
            item = self.q.get(block=False, raw=True)
        except Empty:
            return False
        self.q.ack(id=item["pqid"])
        return True

    def settings(self) -> str:
        return f"synchronous={_synchronous(self.q._getter)}"  # type: ignore[arg-type]


class LiteQueuePeer(QueueImpl):
    """litequeue as it ships (it sets WAL and synchronous=NORMAL itself)."""

    key = "litequeue"
    label = "litequeue"
    durabilities = ("normal",)
    batched = False

    def __init__(self) -> None:
        self.label = f"litequeue {_version('litequeue')}"

    def open(self, path: Path, durability: str) -> None:
        from litequeue import LiteQueue

        self.q = LiteQueue(str(path), queue_name=QUEUE_NAME)

    def close(self) -> None:
        self.q.close()

    def put(self, data: bytes) -> None:
        retry_locked(lambda: self.q.put(data))

    def fill(self, items: list[bytes]) -> None:
        with self.q.transaction(mode="IMMEDIATE"):
            for data in items:
                self.q.put(data)

    def get_ack(self) -> bool:
        msg = retry_locked(self.q.pop)
        if msg is None:
            return False
        retry_locked(lambda: self.q.done(msg.message_id))
        return True

    def receive(self, timeout: float, limit: int) -> tuple[Any, list[bytes]] | None:
        deadline = time.monotonic() + timeout
        while True:
            msg = retry_locked(self.q.pop)
            if msg is not None:
                return msg.message_id, [msg.data]
            if time.monotonic() >= deadline:
                return None
            time.sleep(PEER_EMPTY_SLEEP)

    def ack(self, handle: Any) -> None:
        retry_locked(lambda: self.q.done(handle))

    def settings(self) -> str:
        return f"synchronous={_synchronous(self.q.conn)}"


def _version(package: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


QUEUE_IMPLS: dict[str, type[QueueImpl]] = {
    "ours": OursQueue,
    "raw": RawQueue,
    "persist-queue": PersistQueuePeer,
    "litequeue": LiteQueuePeer,
}
