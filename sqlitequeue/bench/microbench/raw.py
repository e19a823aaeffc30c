"""``raw``: the physical references, the library's own statements issued by hand on sqlite3.

Same schema (the file is created by the library's ``Database``), same statements (taken
from the library through :mod:`sqlitequeue.internals`, never copied), same transactions,
with nothing else: no argument checks, no Message or Record objects, no wake-up logic beyond
polling ``PRAGMA data_version``. What these loops reach is what any code issuing our SQL
could reach. ``tests/test_queue_bench.py`` checks that every statement they issue is one of
the library's.

* Queue: put, claim (``UPDATE ... RETURNING``) and ack are one autocommit statement each;
  an ack marks the row acked and remembers its id; at most every ``QUEUE_SETTLE_INTERVAL`` a
  claim first deletes the acked rows and promotes due rows in one ``BEGIN IMMEDIATE``
  transaction; put_many and ack_many are one ``BEGIN IMMEDIATE`` transaction each; at FULL,
  claims and acks commit at NORMAL like the library's (see ``Database._set_sync``).
* Stream: append = ``BEGIN IMMEDIATE``, read the partition's tail, insert, ``COMMIT``; poll =
  one read transaction with the range fetch; commit = one autocommit owner-guarded offset
  update, as the library's consumer does for a single partition (no membership rows).
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlitequeue.bench.backends.base import BackendSpec, Consumer, Producer, Received
from sqlitequeue.bench.microbench.subject import BufferedProducer, Subject, retry_locked
from sqlitequeue.internals import (
    DURABILITY,
    QUEUE_SETTLE_INTERVAL,
    QUEUE_SQL,
    STREAM_ASSIGNMENT_STATE,
    STREAM_COMMIT,
    WAIT_MAX_SLEEP,
    WAIT_MIN_SLEEP,
    Database,
    boottime,
    stream_log,
)

#: Set-up statements of a consumer joining a group, as ``sqlitequeue._stream_consumer``
#: issues them inline (not timed; the test pins them to the library's source).
JOIN_NEW_GROUP = (
    "INSERT INTO stream_offsets (grp, pid, committed, committed_at, owner) VALUES (?, ?, ?, ?, ?)"
)
TAKE_PARTITION = "UPDATE stream_offsets SET owner = ? WHERE grp = ? AND pid = ?"


def raw_connect(path: Path, durability: str) -> tuple[sqlite3.Connection, float]:
    """A plain connection with the pragmas our Database sets (file created by Database),
    and the offset of the file's clock: deadlines are stored as ``boottime() + offset``,
    as ``Database.now()`` computes them."""
    db = Database(path, durability=durability)  # schema, WAL and the file clock, not timed
    clock_offset = db.now() - boottime()
    db.close()
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=5.0, cached_statements=256)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute(f"PRAGMA synchronous = {DURABILITY[durability]}")
    return conn, clock_offset


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction; rolled back on any error."""
    retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    retry_locked(lambda: conn.execute("COMMIT"))


def wait_for_change(conn: sqlite3.Connection, version: int, deadline: float) -> bool:
    """Poll ``PRAGMA data_version`` with the back-off sqlitequeue uses; False at deadline."""
    sleep = WAIT_MIN_SLEEP
    while conn.execute("PRAGMA data_version").fetchone()[0] == version:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(sleep, left))
        sleep = min(sleep * 1.5, WAIT_MAX_SLEEP)
    return True


# -- the queue ---------------------------------------------------------------------------


class RawQueue(Subject):
    """The queue's statements by hand; one connection per process, shared by its clients."""

    name = "raw-queue"
    key = "raw"
    title = "raw sqlite3 loop"
    fan_out = False
    SQL = QUEUE_SQL
    LEASE = 30.0  # the library's default lease and max_attempts
    MAX_ATTEMPTS = 5

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self.conn, self.clock_offset = raw_connect(self.path, self.durability)
        self.full = self.durability == "full"
        self.sync = DURABILITY[self.durability]

    def use_sync(self, durable: bool) -> None:
        """At FULL, switch to NORMAL for claims and acks and back for puts."""
        wanted = "FULL" if durable else "NORMAL"
        if self.full and wanted != self.sync:
            self.conn.execute(f"PRAGMA synchronous = {wanted}")
            self.sync = wanted

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        """Nothing to do: a queue is a name in the messages table."""

    def producer(self, topic: str) -> Producer:
        writer = _RawQueueWriter(self, topic)
        return BufferedProducer(writer.put, writer.put_many)

    def consumer(self, topic: str, group: str) -> Consumer:
        return _RawQueueConsumer(self, topic)

    def close(self) -> None:
        self.conn.close()


class _RawQueueWriter:
    """put: one autocommit INSERT; put_many: the INSERTs in one transaction."""

    def __init__(self, backend: RawQueue, topic: str) -> None:
        self._backend = backend
        self._topic = topic

    def put(self, payload: bytes) -> None:
        row = (self._topic, 0, 0, ~0, time.time(), None, payload)  # ready, rank ~priority
        conn = self._backend.conn
        self._backend.use_sync(True)
        retry_locked(lambda: conn.execute(QUEUE_SQL.insert, row))

    def put_many(self, payloads: list[bytes]) -> None:
        topic, now = self._topic, time.time()
        self._backend.use_sync(True)
        with immediate(self._backend.conn) as conn:
            conn.executemany(QUEUE_SQL.insert, [(topic, 0, 0, ~0, now, None, p) for p in payloads])


class _RawQueueConsumer(Consumer):
    def __init__(self, backend: RawQueue, topic: str) -> None:
        self._backend = backend
        self._topic = topic
        self._next_settle = 0.0
        self._pending: list[tuple[int, list[int]]] = []  # (lease token, ids) per claim
        self._acked: list[int] = []  # acked one at a time, rows not yet deleted

    def _claim(self, count: int) -> list[Received]:
        """Like Queue._claim: one autocommit UPDATE ... RETURNING; at most every
        QUEUE_SETTLE_INTERVAL, delete acked rows and promote due rows
        first, in one transaction."""
        backend = self._backend
        now = boottime() + backend.clock_offset  # the file clock, as Database.now()
        token = random.getrandbits(62)
        params: tuple[object, ...]
        if count == 1:
            claim, params = QUEUE_SQL.claim_one, (self._topic, token, now + backend.LEASE)
        else:
            claim, params = QUEUE_SQL.claim, (self._topic, token, now + backend.LEASE, count)
        backend.use_sync(False)
        tick = time.monotonic()
        if tick >= self._next_settle:
            self._next_settle = tick + QUEUE_SETTLE_INTERVAL
            with immediate(backend.conn) as conn:
                if self._acked:
                    acked, self._acked = self._acked, []
                    conn.execute(QUEUE_SQL.forget_acked, ("[" + ",".join(map(str, acked)) + "]",))
                conn.execute(QUEUE_SQL.drop_acked, (self._topic, now))
                conn.execute(QUEUE_SQL.promote, (self._topic, now, backend.MAX_ATTEMPTS))
                rows = conn.execute(claim, params).fetchall()
        else:
            conn = backend.conn
            rows = retry_locked(lambda: conn.execute(claim, params).fetchall())
        if rows:
            self._pending.append((token, [r[0] for r in rows]))
        return [Received(None, r[1], 0, r[0]) for r in rows]

    def poll(self, max_records: int, timeout: float) -> list[Received]:
        """Claim up to ``max_records``; wait up to ``timeout`` for a commit elsewhere."""
        if timeout <= 0:
            return self._claim(max_records)
        conn = self._backend.conn
        deadline = time.monotonic() + timeout
        while True:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            records = self._claim(max_records)
            if records or not wait_for_change(conn, version, deadline):
                return records

    def commit(self) -> None:
        """ACK for a single message, else ACK_MANY per claim in one transaction."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        self._backend.use_sync(False)
        conn = self._backend.conn
        if len(pending) == 1 and len(pending[0][1]) == 1:
            args = (pending[0][1][0], pending[0][0])
            if retry_locked(lambda: conn.execute(QUEUE_SQL.ack, args)).rowcount == 1:
                self._acked.append(args[0])
            elif retry_locked(lambda: conn.execute(QUEUE_SQL.ack_settled, args)).rowcount != 1:
                self.lost_commits += 1
            return
        with immediate(conn):
            for token, ids in pending:
                id_list = "[" + ",".join(map(str, ids)) + "]"
                rows = conn.execute(QUEUE_SQL.ack_many, (id_list, token)).fetchall()
                if len(rows) != len(ids):  # the highest id is kept as an acked row
                    rows += conn.execute(QUEUE_SQL.ack_many_top, (id_list, token)).fetchall()
                if len(rows) != len(ids):
                    self.lost_commits += 1
            now = boottime() + self._backend.clock_offset
            conn.execute(QUEUE_SQL.drop_acked, (self._topic, now))


# -- the stream --------------------------------------------------------------------------


class RawStream(Subject):
    """The stream's statements by hand (one partition per topic); one connection."""

    name = "raw-stream"
    key = "raw"
    title = "raw sqlite3 loop"

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self.conn, _ = raw_connect(self.path, self.durability)

    def topic(self, name: str) -> stream_log.TopicRow:
        """The stored topic ``name``, created with one partition if it is missing."""
        conn = self.conn
        with immediate(conn):
            found = stream_log.load_topic(conn, name)
            if found is None:
                stream_log.create_topic(conn, name, 1, None, None, time.time())
                found = stream_log.load_topic(conn, name)
        assert found is not None
        return found

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        """Create ``topic`` with one partition (``partitions`` is ignored)."""
        self.topic(topic)

    def producer(self, topic: str) -> Producer:
        writer = _RawStreamWriter(self.conn, self.topic(topic).pids[0])
        return BufferedProducer(writer.append, writer.append_many)

    def consumer(self, topic: str, group: str) -> Consumer:
        return _RawStreamConsumer(self.conn, self.topic(topic), group)

    def close(self) -> None:
        self.conn.close()


class _RawStreamWriter:
    """append / append_many: read the partition's tail and insert, in one transaction."""

    def __init__(self, conn: sqlite3.Connection, pid: int) -> None:
        self._conn = conn
        self._base = pid << stream_log.SHIFT
        self._limit = self._base + stream_log.OFFSET_LIMIT

    def _tail(self) -> tuple[int, float, int]:
        """(next offset, last timestamp, cumulative bytes) of the partition."""
        row = self._conn.execute(stream_log.TAIL, (self._base, self._limit)).fetchone()
        if row is None:
            return 0, 0.0, 0
        return row[0] - self._base + 1, row[1], row[2]

    def append(self, payload: bytes) -> None:
        with immediate(self._conn) as conn:
            offset, ts, cum = self._tail()
            ts = max(ts, time.time())
            conn.execute(
                stream_log.INSERT,
                (self._base + offset, ts, cum + len(payload), None, None, payload),
            )

    def append_many(self, payloads: list[bytes]) -> None:
        with immediate(self._conn) as conn:
            offset, ts, cum = self._tail()
            ts = max(ts, time.time())
            first = self._base + offset
            rows = []
            for i, payload in enumerate(payloads):
                cum += len(payload)
                rows.append((first + i, ts, cum, None, None, payload))
            conn.executemany(stream_log.INSERT, rows)


class _RawStreamConsumer(Consumer):
    def __init__(self, conn: sqlite3.Connection, topic: stream_log.TopicRow, group: str) -> None:
        self._conn = conn
        self._pid = topic.pids[0]
        self._group = group
        self._member = f"raw-{os.getpid()}-{id(self)}"
        self._base = self._pid << stream_log.SHIFT
        self._limit = self._base + stream_log.OFFSET_LIMIT
        self._position = self._join(topic.id)
        self._committed = self._position

    def _join(self, topic_id: int) -> int:
        """Own the group's offset of the partition (starting at the earliest offset when
        the group is new); return the committed offset to read from."""
        group, pid, member = self._group, self._pid, self._member
        with immediate(self._conn) as conn:
            state = conn.execute(STREAM_ASSIGNMENT_STATE, (group, topic_id)).fetchone()
            committed: int | None = state[4]
            if committed is None:
                committed = int(state[2])  # log_start: "earliest"
                conn.execute(JOIN_NEW_GROUP, (group, pid, committed, time.time(), member))
            else:
                conn.execute(TAKE_PARTITION, (member, group, pid))
        return committed

    def poll(self, max_records: int, timeout: float) -> list[Received]:
        """One read transaction with the range fetch; wait up to ``timeout`` if empty."""
        conn = self._conn
        deadline = time.monotonic() + timeout
        while True:
            conn.execute("BEGIN")
            start = self._base + self._position
            params = (start, start, self._limit, max_records)  # rows from offset start on
            rows = conn.execute(stream_log.FETCH, params).fetchall()
            version = conn.execute("PRAGMA data_version").fetchone()[0] if not rows else 0
            conn.execute("COMMIT")
            if rows or timeout <= 0 or not wait_for_change(conn, version, deadline):
                break
        if rows:
            self._position = rows[-1][0] - self._base + 1
        # Rows of one record each (this loop writes no batch rows): payload is column 5.
        return [Received(None, r[5], 0, r[0] - self._base) for r in rows]

    def commit(self) -> None:
        """The owner-guarded offset update, when something was polled since the last one."""
        if self._position == self._committed:
            return
        self._committed = self._position
        args = (self._position, time.time(), self._group, self._pid, self._member)
        conn = self._conn
        if retry_locked(lambda: conn.execute(STREAM_COMMIT, args)).rowcount != 1:
            self.lost_commits += 1
