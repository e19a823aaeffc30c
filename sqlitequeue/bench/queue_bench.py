"""Micro-benchmarks of Queue and Stream against a raw-sqlite3 loop and the Python peers.

Every pattern runs, in one process run, for:

* ``sqlitequeue``: :class:`sqlitequeue.Queue` / :class:`sqlitequeue.Stream`;
* ``raw``: a plain ``sqlite3`` loop that issues the same statements in the same
  transactions on the same schema (the physical reference: what SQLite itself costs);
* the peers, as they ship: persist-queue's ``SQLiteAckQueue`` (synchronous=FULL, its
  default) and litequeue (synchronous=NORMAL, set by litequeue itself).

Comparisons are made at equal durability: ours and the raw loop run once at NORMAL (against
litequeue) and once at FULL (against persist-queue). Every measurement uses fresh temporary
files, 64-byte payloads, and is repeated; the report gives medians and ratios with
PASS/FAIL against the targets of issues 2 and 3. Nothing here asserts timings: callers
print :func:`format_report` or save :func:`report_to_json`.

Multi-process patterns (end-to-end latency, 4 draining consumers, 2 stream groups) start
worker processes with the ``spawn`` method; the workers open their own connections.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import random
import sqlite3
import statistics
import struct
import tempfile
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlitequeue import _stream_log
from sqlitequeue._db import DURABILITY, WAIT_MAX_SLEEP, WAIT_MIN_SLEEP, Database
from sqlitequeue.errors import BenchError

PAYLOAD_BYTES = 64
PUT_BATCH = 1000  # put_many / append_many batch
CLAIM_BATCH = 100  # get_many / poll batch
LIFECYCLE_POLL_BATCH = 1000  # poll batch of the batched append+poll+commit pattern
DRAIN_CONSUMERS = 4
STREAM_GROUPS = 2
LATENCY_RATES = (1000, 5000)
LATENCY_WARMUP = 0.25  # seconds of messages a latency consumer discards at the start
PEER_EMPTY_SLEEP = 0.001  # a peer without a blocking get sleeps this long on an empty queue
QUEUE_NAME = "bench"
TOPIC = "bench"

RAW_TARGET = 0.60  # ours / raw loop, every pattern
LATENCY_P99_TARGET_MS = {1000: 2.0, 5000: 5.0}
LIFECYCLE_TARGET = 100_000.0  # records/s, batched append + poll + commit


# -- sizes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How much work each pattern does. Peers that are too slow stop at ``peer_cap``."""

    puts: int  # put / append one at a time at NORMAL
    puts_full: int  # put one at a time at FULL (an fsync per commit)
    batch_rows: int  # rows written by put_many(1000) / append_many(1000)
    get_acks: int  # get+ack one at a time at NORMAL (also the queue depth)
    get_acks_full: int  # get+ack one at a time at FULL
    claim_rows: int  # rows drained by get_many(100)+ack_many
    latency_seconds: float  # length of each end-to-end latency run
    drain_messages: int  # messages drained by the 4 consumer processes
    stream_rows: int  # records of the poll/commit and lifecycle patterns
    cap_seconds: float  # safety net: a measurement of ours or the raw loop stops after this
    peer_cap_seconds: float  # a peer's measurement stops after this (they can be very slow)
    drain_cap_seconds: float  # the drain of ours or the raw loop stops after this

    def cap(self, key: str, pattern: str = "") -> float:
        """The time budget of one measurement of implementation ``key``."""
        if key not in ("ours", "raw"):
            return self.peer_cap_seconds
        return self.drain_cap_seconds if pattern == "drain" else self.cap_seconds


FULL_SIZES = Sizes(
    puts=20_000,
    puts_full=1_000,
    batch_rows=100_000,
    get_acks=10_000,
    get_acks_full=1_000,
    claim_rows=100_000,
    latency_seconds=2.0,
    drain_messages=100_000,
    stream_rows=200_000,
    cap_seconds=6.0,
    peer_cap_seconds=3.0,
    drain_cap_seconds=16.0,
)
QUICK_SIZES = Sizes(
    puts=3_000,
    puts_full=300,
    batch_rows=20_000,
    get_acks=10_000,
    get_acks_full=300,
    claim_rows=20_000,
    latency_seconds=0.75,
    drain_messages=10_000,
    stream_rows=50_000,
    cap_seconds=3.0,
    peer_cap_seconds=1.0,
    drain_cap_seconds=5.0,
)


def payload(i: int = 0) -> bytes:
    """A 64-byte payload whose first 8 bytes hold ``i``."""
    return struct.pack("<q", i) + b"x" * (PAYLOAD_BYTES - 8)


def payloads(count: int) -> list[bytes]:
    """``count`` distinct 64-byte payloads."""
    return [payload(i) for i in range(count)]


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


def _retry_locked(action: Callable[[], Any]) -> Any:
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


def _raw_connect(path: Path, durability: str) -> sqlite3.Connection:
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
        self.conn = _raw_connect(path, durability)
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
        _retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        _retry_locked(lambda: conn.execute("COMMIT"))

    def put(self, data: bytes) -> None:
        now = time.time()
        row = (self.name, 0, 0, now, now, None, data)
        self._sync(True)
        _retry_locked(lambda: self.conn.execute(self.INSERT, row))

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
            rows = _retry_locked(lambda: self.conn.execute(self.CLAIM, params).fetchall())
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
            _retry_locked(lambda: self.conn.execute(self.ACK, (ids[0], token)))
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
        _retry_locked(lambda: self.q.put(data))

    def fill(self, items: list[bytes]) -> None:
        with self.q.transaction(mode="IMMEDIATE"):
            for data in items:
                self.q.put(data)

    def get_ack(self) -> bool:
        msg = _retry_locked(self.q.pop)
        if msg is None:
            return False
        _retry_locked(lambda: self.q.done(msg.message_id))
        return True

    def receive(self, timeout: float, limit: int) -> tuple[Any, list[bytes]] | None:
        deadline = time.monotonic() + timeout
        while True:
            msg = _retry_locked(self.q.pop)
            if msg is not None:
                return msg.message_id, [msg.data]
            if time.monotonic() >= deadline:
                return None
            time.sleep(PEER_EMPTY_SLEEP)

    def ack(self, handle: Any) -> None:
        _retry_locked(lambda: self.q.done(handle))

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


# -- implementations: the stream side ---------------------------------------------------


class StreamImpl:
    """One stream implementation: append records, read them as a group and commit."""

    key = ""
    label = ""

    def open(self, path: Path, durability: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def append(self, data: bytes) -> None:
        raise NotImplementedError

    def append_many(self, items: list[bytes]) -> None:
        raise NotImplementedError

    def reader(self, group: str) -> Any:
        """Join ``group`` (from the earliest offset); return what poll_commit needs."""
        raise NotImplementedError

    def poll_commit(self, reader: Any, count: int) -> int:
        """Read up to ``count`` records, commit past them; return how many were read."""
        raise NotImplementedError

    def fill(self, items: list[bytes]) -> None:
        """Append ``items`` in batches (set-up, not timed)."""
        for start in range(0, len(items), PUT_BATCH):
            self.append_many(items[start : start + PUT_BATCH])


class OursStream(StreamImpl):
    """:class:`sqlitequeue.Stream` through its public API (one partition)."""

    key = "ours"
    label = "sqlitequeue"

    def open(self, path: Path, durability: str) -> None:
        from sqlitequeue.stream import Stream

        self.s = Stream(path, TOPIC, partitions=1, durability=durability)

    def close(self) -> None:
        self.s.close()

    def append(self, data: bytes) -> None:
        self.s.append(data)

    def append_many(self, items: list[bytes]) -> None:
        self.s.append_many(items)

    def reader(self, group: str) -> Any:
        return self.s.consumer(group, start="earliest")

    def poll_commit(self, reader: Any, count: int) -> int:
        records = reader.poll(max_records=count, timeout=0)
        if records:
            reader.commit()
        return len(records)


class RawStream(StreamImpl):
    """The physical reference for the stream: sqlitequeue.stream's statements by hand.

    Append = ``BEGIN IMMEDIATE``, read the partition's tail, insert, ``COMMIT``; poll = one
    read transaction with the range fetch; commit = one autocommit owner-guarded offset
    update, as ``Consumer.commit`` does for a single partition.
    """

    key = "raw"
    label = "raw sqlite3 loop"

    # Copies of sqlitequeue's stream statements (re-check them when the stream changes).
    TAIL = (
        "SELECT id, ts, cum_bytes FROM stream_records"
        " WHERE id = (SELECT max(id) FROM stream_records WHERE id >= ? AND id < ?)"
    )
    INSERT = (
        "INSERT INTO stream_records (id, ts, cum_bytes, key, headers, payload)"
        " VALUES (?, ?, ?, ?, ?, ?)"
    )
    FETCH = (
        "SELECT id, ts, key, headers, payload FROM stream_records"
        " WHERE id >= ? AND id < ? ORDER BY id LIMIT ?"
    )
    COMMIT = (
        "UPDATE stream_offsets SET committed = ?, committed_at = ? WHERE grp = ? AND pid = ?"
        " AND owner = ?"
    )

    def open(self, path: Path, durability: str) -> None:
        self.conn = _raw_connect(path, durability)
        self.pid = self._topic_pid()
        self.base = self.pid << _stream_log.SHIFT
        self.limit = self.base + _stream_log.OFFSET_LIMIT

    def _topic_pid(self) -> int:
        conn = self.conn
        row = conn.execute(
            "SELECT p.pid FROM stream_partitions p JOIN stream_topics t ON t.id = p.topic_id"
            " WHERE t.name = ?",
            (TOPIC,),
        ).fetchone()
        if row is not None:
            return int(row[0])
        _retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
        _stream_log.create_topic(conn, TOPIC, 1, None, None, time.time())
        conn.execute("COMMIT")
        return self._topic_pid()

    def close(self) -> None:
        self.conn.close()

    def _tail(self) -> tuple[int, float, int]:
        row = self.conn.execute(self.TAIL, (self.base, self.limit)).fetchone()
        if row is None:
            return 0, 0.0, 0
        return row[0] - self.base + 1, row[1], row[2]

    def append(self, data: bytes) -> None:
        conn = self.conn
        _retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
        offset, ts, cum = self._tail()
        row = (self.base + offset, max(ts, time.time()), cum + len(data), None, None, data)
        conn.execute(self.INSERT, row)
        conn.execute("COMMIT")

    def append_many(self, items: list[bytes]) -> None:
        conn = self.conn
        _retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
        offset, ts, cum = self._tail()
        ts = max(ts, time.time())
        rows = []
        for i, data in enumerate(items):
            cum += len(data)
            rows.append((self.base + offset + i, ts, cum, None, None, data))
        conn.executemany(self.INSERT, rows)
        conn.execute("COMMIT")

    def reader(self, group: str) -> Any:
        member = f"raw-{os.getpid()}-{group}"
        conn = self.conn
        _retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
        conn.execute(
            "INSERT INTO stream_offsets (grp, pid, committed, committed_at, owner)"
            " VALUES (?, ?, 0, ?, ?)",
            (group, self.pid, time.time(), member),
        )
        conn.execute("COMMIT")
        return {"group": group, "member": member, "position": 0}

    def poll_commit(self, reader: Any, count: int) -> int:
        conn, base = self.conn, self.base
        conn.execute("BEGIN")
        rows = conn.execute(self.FETCH, (base + reader["position"], self.limit, count)).fetchall()
        conn.execute("COMMIT")
        if not rows:
            return 0
        reader["position"] = rows[-1][0] - base + 1
        args = (reader["position"], time.time(), reader["group"], self.pid, reader["member"])
        _retry_locked(lambda: conn.execute(self.COMMIT, args))
        return len(rows)


STREAM_IMPLS: dict[str, type[StreamImpl]] = {"ours": OursStream, "raw": RawStream}


# -- patterns ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """One benchmarked pattern: what it measures and which targets apply to it.

    ``peer_target`` is the minimum ours/peer ratio (None: shown without a target).
    """

    key: str
    title: str
    unit: str  # "msgs/s", "records/s" or "ms"
    peer_target: float | None = None
    latency: bool = False


PATTERNS = (
    Pattern("put", "put one at a time", "msgs/s", peer_target=1.5),
    Pattern("put_many", f"put_many({PUT_BATCH})", "msgs/s"),
    Pattern("get_ack", "get + ack one at a time", "msgs/s", peer_target=10.0),
    Pattern("get_many", f"get_many({CLAIM_BATCH}) + ack_many", "msgs/s"),
    Pattern("latency_1000", "end-to-end latency at 1,000 msgs/s", "ms", latency=True),
    Pattern("latency_5000", "end-to-end latency at 5,000 msgs/s", "ms", latency=True),
    Pattern("drain", f"{DRAIN_CONSUMERS} consumer processes draining (get + ack)", "msgs/s"),
    Pattern("append", "stream: append one at a time", "records/s"),
    Pattern("append_many", f"stream: append_many({PUT_BATCH})", "records/s"),
    Pattern("poll_commit", f"stream: poll({CLAIM_BATCH}) + commit", "records/s"),
    Pattern("groups", f"stream: {STREAM_GROUPS} groups reading concurrently", "records/s"),
    Pattern(
        "lifecycle",
        f"stream: append_many({PUT_BATCH}) + poll({LIFECYCLE_POLL_BATCH}) + commit",
        "records/s",
    ),
)
PATTERN_BY_KEY = {p.key: p for p in PATTERNS}


@dataclass
class Measurement:
    """The repeats of one (pattern, durability, implementation): samples and notes.

    A throughput sample is ``{"rate": ops_per_s}``; a latency sample adds ``p50``, ``p95``,
    ``p99``, ``max`` (ms) and ``rate`` is the rate actually sent. ``skipped`` explains a
    row that was not measured (e.g. a peer without a batch API).
    """

    pattern: str
    durability: str
    impl: str
    label: str
    samples: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str = ""

    def median(self, stat: str = "rate") -> float | None:
        """Median of ``stat`` over the repeats, or None when nothing was measured."""
        values = [s[stat] for s in self.samples if stat in s]
        return statistics.median(values) if values else None


@dataclass(frozen=True)
class Check:
    """One target: ``value`` compared with ``target`` (``passed`` None = not measurable)."""

    pattern: str
    durability: str
    what: str
    value: float | None
    target: str
    passed: bool | None


@dataclass
class Report:
    """Everything one benchmark run measured, with the targets evaluated."""

    sizes: Sizes
    repeats: int
    measurements: list[Measurement]
    checks: list[Check]
    seconds: float
    environment: dict[str, Any]


class _Cap:
    """Counts operations and says when a measurement ran out of its time budget."""

    def __init__(self, seconds: float) -> None:
        self.start = time.perf_counter()
        self.deadline = self.start + seconds
        self.capped = False

    def over(self, done: int) -> bool:
        if done & 63 == 0 and time.perf_counter() > self.deadline:
            self.capped = True
        return self.capped

    def rate(self, done: int) -> float:
        return done / max(time.perf_counter() - self.start, 1e-9)


def _sample(rate: float, capped: bool, done: int, planned: int) -> tuple[dict[str, float], str]:
    note = "stopped by the time budget (rate of a partial run)" if capped else ""
    return {"rate": rate, "done": done, "planned": planned}, note


def time_put(impl: QueueImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Put ``count`` payloads one call each; return ({"rate": msgs/s}, note)."""
    items = payloads(count)
    clock = _Cap(cap)
    done = 0
    for data in items:
        if clock.over(done):
            break
        impl.put(data)
        done += 1
    return _sample(clock.rate(done), clock.capped, done, count)


def time_put_many(impl: QueueImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Put ``count`` payloads with put_many(PUT_BATCH); return ({"rate": msgs/s}, note)."""
    batches = [payloads(PUT_BATCH) for _ in range(max(1, count // PUT_BATCH))]
    clock = _Cap(cap)
    done = 0
    for batch in batches:
        if time.perf_counter() > clock.deadline:
            clock.capped = True
            break
        impl.put_many(batch)
        done += len(batch)
    return _sample(clock.rate(done), clock.capped, done, count)


def time_get_ack(impl: QueueImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Fill ``count`` messages (untimed), then get+ack one at a time until empty."""
    impl.fill(payloads(count))
    clock = _Cap(cap)
    done = 0
    while not clock.over(done) and impl.get_ack():
        done += 1
    sample, note = _sample(clock.rate(done), clock.capped, done, count)
    if not clock.capped and done != count:
        note = f"ERROR: got {done:,} of {count:,} messages"
    return sample, note


def time_get_many(impl: QueueImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Fill ``count`` messages (untimed), then get_many(CLAIM_BATCH)+ack_many until empty."""
    impl.fill(payloads(count))
    clock = _Cap(cap)
    done = 0
    while time.perf_counter() < clock.deadline:
        got = impl.claim_ack(CLAIM_BATCH)
        if not got:
            break
        done += got
    else:
        clock.capped = True
    sample, note = _sample(clock.rate(done), clock.capped, done, count)
    if not clock.capped and done != count:
        note = f"ERROR: got {done:,} of {count:,} messages"
    return sample, note


def time_append(impl: StreamImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Append ``count`` records one call each."""
    items = payloads(count)
    clock = _Cap(cap)
    done = 0
    for data in items:
        if clock.over(done):
            break
        impl.append(data)
        done += 1
    return _sample(clock.rate(done), clock.capped, done, count)


def time_append_many(impl: StreamImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Append ``count`` records with append_many(PUT_BATCH)."""
    batches = [payloads(PUT_BATCH) for _ in range(max(1, count // PUT_BATCH))]
    clock = _Cap(cap)
    done = 0
    for batch in batches:
        if time.perf_counter() > clock.deadline:
            clock.capped = True
            break
        impl.append_many(batch)
        done += len(batch)
    return _sample(clock.rate(done), clock.capped, done, count)


def _read_all(impl: StreamImpl, reader: Any, count: int, batch: int, clock: _Cap) -> int:
    done = 0
    while done < count:
        if time.perf_counter() > clock.deadline:
            clock.capped = True
            break
        got = impl.poll_commit(reader, batch)
        if not got:
            break
        done += got
    return done


def time_poll_commit(impl: StreamImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Fill ``count`` records (untimed), then poll(CLAIM_BATCH)+commit through them."""
    impl.fill(payloads(count))
    reader = impl.reader("g1")
    clock = _Cap(cap)
    done = _read_all(impl, reader, count, CLAIM_BATCH, clock)
    sample, note = _sample(clock.rate(done), clock.capped, done, count)
    if not clock.capped and done != count:
        note = f"ERROR: read {done:,} of {count:,} records"
    return sample, note


def time_lifecycle(impl: StreamImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Append ``count`` records in batches, then read and commit them all; records/s."""
    batches = [payloads(PUT_BATCH) for _ in range(max(1, count // PUT_BATCH))]
    total = len(batches) * PUT_BATCH
    reader = impl.reader("g1")
    clock = _Cap(cap * 2)
    for batch in batches:
        impl.append_many(batch)
    done = _read_all(impl, reader, total, LIFECYCLE_POLL_BATCH, clock)
    sample, note = _sample(clock.rate(done), clock.capped, done, total)
    if not clock.capped and done != total:
        note = f"ERROR: read {done:,} of {total:,} records"
    return sample, note


# -- multi-process patterns --------------------------------------------------------------

_MP = mp.get_context("spawn")
_WORKER_TIMEOUT = 60.0


def _report_errors(results: Any, role: str, body: Callable[[], Any]) -> None:
    """Run a worker body; put its result, or the error it raised, on ``results``."""
    try:
        results.put((role, "ok", body()))
    except BaseException as exc:
        results.put((role, "error", f"{type(exc).__name__}: {exc}"))


def _latency_budget(seconds: float) -> float:
    """How long a latency run may last before its workers give up (an overloaded system)."""
    return seconds * 1.5 + 2.0


def _latency_producer(
    key: str, path: str, durability: str, rate: int, count: int, ready: Any, results: Any
) -> None:
    def body() -> dict[str, float]:
        impl = QUEUE_IMPLS[key]()
        impl.open(Path(path), durability)
        pad = b"x" * (PAYLOAD_BYTES - 8)
        period = 1e9 / rate
        if not ready.wait(_WORKER_TIMEOUT):
            raise BenchError("the latency consumer did not start")
        start = time.monotonic_ns() + 20_000_000
        give_up = start + int(_latency_budget(count / rate) * 1e9)
        sent = 0
        for i in range(count):
            due = start + int(i * period)
            now = time.monotonic_ns()
            if due > now:
                time.sleep((due - now) / 1e9)
                now = time.monotonic_ns()
            elif now > give_up:
                break
            impl.put(struct.pack("<q", now) + pad)  # stamped just before the send
            sent += 1
        elapsed = (time.monotonic_ns() - start) / 1e9
        impl.close()
        return {"sent": sent, "sent_rate": sent / elapsed}

    _report_errors(results, "producer", body)


def _latency_consumer(
    key: str,
    path: str,
    durability: str,
    count: int,
    skip: int,
    budget: float,
    ready: Any,
    results: Any,
) -> None:
    def body() -> tuple[bytes, int]:
        impl = QUEUE_IMPLS[key]()
        impl.open(Path(path), durability)
        latencies = array("d")
        ready.set()
        deadline = time.monotonic() + budget + 1.0
        got = 0
        while got < count and time.monotonic() < deadline:
            item = impl.receive(0.2, CLAIM_BATCH)
            if item is None:
                continue
            now = time.monotonic_ns()
            handle, batch = item
            for data in batch:
                got += 1
                if got > skip:
                    latencies.append((now - struct.unpack_from("<q", data)[0]) / 1e6)
            impl.ack(handle)
        impl.close()
        return latencies.tobytes(), got

    _report_errors(results, "consumer", body)


def _collect(results: Any, procs: list[Any], expected: int) -> list[tuple[str, str, Any]]:
    """Gather ``expected`` worker results; raise BenchError naming a failed worker."""
    got: list[tuple[str, str, Any]] = []
    deadline = time.monotonic() + _WORKER_TIMEOUT * 2
    while len(got) < expected:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BenchError("benchmark workers did not finish in time")
        try:
            got.append(results.get(timeout=min(left, 1.0)))
        except Exception:  # queue.Empty
            if not any(p.is_alive() for p in procs) and results.empty():
                raise BenchError("a benchmark worker died without reporting") from None
    for p in procs:
        p.join(10)
        if p.is_alive():
            p.kill()
    errors = [f"{role}: {detail}" for role, status, detail in got if status != "ok"]
    if errors:
        raise BenchError("; ".join(errors))
    return got


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def time_latency(
    key: str, path: Path, durability: str, rate: int, seconds: float
) -> tuple[dict[str, float], str]:
    """Paced open-loop producer process -> consumer process; end-to-end latency in ms.

    The producer sends ``rate * seconds`` messages on a fixed schedule and stamps each with
    ``time.monotonic_ns()`` just before ``put``; the consumer blocks in
    ``get_many(CLAIM_BATCH, timeout)`` (one message when it keeps up, a batch when it
    fell behind; peers without a batch claim get one at a time), takes the time as soon
    as the call returns, acks (``ack`` for one, ``ack_many`` for more) and ignores the
    first ``LATENCY_WARMUP`` seconds. Returns p50/p95/p99/max and the rate actually sent.
    """
    count = max(10, int(rate * seconds))
    skip = min(count // 2, int(rate * LATENCY_WARMUP))
    impl = QUEUE_IMPLS[key]()
    impl.open(path, durability)  # create the file before two processes race to do it
    impl.close()
    ready, results = _MP.Event(), _MP.Queue()
    args = (key, str(path), durability)
    procs = [
        _MP.Process(
            target=_latency_consumer,
            args=(*args, count, skip, _latency_budget(seconds), ready, results),
        ),
        _MP.Process(target=_latency_producer, args=(*args, rate, count, ready, results)),
    ]
    for p in procs:
        p.start()
    got = {role: detail for role, _status, detail in _collect(results, procs, 2)}
    arr = array("d")
    arr.frombytes(got["consumer"][0])
    received, sent = got["consumer"][1], int(got["producer"]["sent"])
    ordered = sorted(arr)
    if not ordered:
        raise BenchError("the latency consumer received nothing")
    sample = {
        "p50": _percentile(ordered, 0.50),
        "p95": _percentile(ordered, 0.95),
        "p99": _percentile(ordered, 0.99),
        "max": ordered[-1],
        "rate": got["producer"]["sent_rate"],
    }
    sample["received_fraction"] = received / max(sent, 1)
    notes = []
    if sent < count or sample["rate"] < rate * 0.95:
        notes.append("producer fell behind the rate")
    if received > sent:
        notes.append("ERROR: received more than was sent")
    elif received < sent:
        notes.append("consumer fell behind (percentiles are a lower bound)")
    return sample, "; ".join(notes)


def _drain_worker(
    key: str, path: str, durability: str, cap: float, barrier: Any, results: Any
) -> None:
    def body() -> tuple[int, int, bool]:
        impl = QUEUE_IMPLS[key]()
        impl.open(Path(path), durability)
        barrier.wait(_WORKER_TIMEOUT)
        clock = _Cap(cap)
        done = 0
        while not clock.over(done) and impl.get_ack():
            done += 1
        end = time.monotonic_ns()
        impl.close()
        return done, end, clock.capped

    _report_errors(results, "drain consumer", body)


def time_drain(
    key: str, path: Path, durability: str, count: int, cap: float
) -> tuple[dict[str, float], str]:
    """Fill ``count`` messages, then DRAIN_CONSUMERS processes get+ack until it is empty."""
    impl = QUEUE_IMPLS[key]()
    impl.open(path, durability)
    impl.fill(payloads(count))
    impl.close()
    barrier, results = _MP.Barrier(DRAIN_CONSUMERS + 1), _MP.Queue()
    procs = [
        _MP.Process(target=_drain_worker, args=(key, str(path), durability, cap, barrier, results))
        for _ in range(DRAIN_CONSUMERS)
    ]
    for p in procs:
        p.start()
    barrier.wait(_WORKER_TIMEOUT)
    start = time.monotonic_ns()
    got = [detail for _role, _status, detail in _collect(results, procs, DRAIN_CONSUMERS)]
    done = sum(d[0] for d in got)
    elapsed = (max(d[1] for d in got) - start) / 1e9
    capped = any(d[2] for d in got)
    sample, note = _sample(done / max(elapsed, 1e-9), capped, done, count)
    if not capped and done != count:
        note = f"ERROR: drained {done:,} of {count:,} messages"
    return sample, note


def _group_worker(
    key: str, path: str, group: str, count: int, cap: float, barrier: Any, results: Any
) -> None:
    def body() -> tuple[int, int, bool]:
        impl = STREAM_IMPLS[key]()
        impl.open(Path(path), "normal")
        reader = impl.reader(group)
        barrier.wait(_WORKER_TIMEOUT)
        clock = _Cap(cap)
        done = _read_all(impl, reader, count, CLAIM_BATCH, clock)
        end = time.monotonic_ns()
        impl.close()
        return done, end, clock.capped

    _report_errors(results, f"group {group}", body)


def time_groups(key: str, path: Path, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Fill ``count`` records, then STREAM_GROUPS processes (one group each) read them all
    with poll(CLAIM_BATCH)+commit at the same time; records delivered per second in total.
    """
    impl = STREAM_IMPLS[key]()
    impl.open(path, "normal")
    impl.fill(payloads(count))
    impl.close()
    barrier, results = _MP.Barrier(STREAM_GROUPS + 1), _MP.Queue()
    procs = [
        _MP.Process(
            target=_group_worker, args=(key, str(path), f"g{i}", count, cap, barrier, results)
        )
        for i in range(STREAM_GROUPS)
    ]
    for p in procs:
        p.start()
    barrier.wait(_WORKER_TIMEOUT)
    start = time.monotonic_ns()
    got = [detail for _role, _status, detail in _collect(results, procs, STREAM_GROUPS)]
    done = sum(d[0] for d in got)
    elapsed = (max(d[1] for d in got) - start) / 1e9
    capped = any(d[2] for d in got)
    planned = count * STREAM_GROUPS
    sample, note = _sample(done / max(elapsed, 1e-9), capped, done, planned)
    if not capped and done != planned:
        note = f"ERROR: read {done:,} of {planned:,} records"
    return sample, note


# -- the plan: which (pattern, durability, implementation) rows run ----------------------


@dataclass(frozen=True)
class Job:
    """One row of the report and how to measure one repeat of it."""

    pattern: str
    durability: str
    impl: str
    label: str
    skipped: str
    run: Callable[[Path], tuple[dict[str, float], str]] | None


def _queue_label(key: str) -> str:
    return QUEUE_IMPLS[key]().label


def _queue_job(pattern: str, durability: str, key: str, sizes: Sizes) -> Job:
    impl_cls = QUEUE_IMPLS[key]
    label = _queue_label(key)
    if pattern in ("put_many", "get_many") and not impl_cls.batched:
        return Job(pattern, durability, key, label, "no batch API", None)
    multi = pattern in ("drain", "latency_1000", "latency_5000")
    if multi and not impl_cls.multiprocess:
        return Job(pattern, durability, key, label, impl_cls.why_not_multiprocess, None)
    if durability not in impl_cls.durabilities:
        return Job(pattern, durability, key, label, "skip", None)
    return Job(pattern, durability, key, label, "", _queue_runner(pattern, key, durability, sizes))


def _queue_runner(
    pattern: str, key: str, durability: str, sizes: Sizes
) -> Callable[[Path], tuple[dict[str, float], str]]:
    full = durability == "full"
    single: dict[str, tuple[Callable[[QueueImpl, int, float], Any], int]] = {
        "put": (time_put, sizes.puts_full if full else sizes.puts),
        "put_many": (time_put_many, sizes.batch_rows),
        "get_ack": (time_get_ack, sizes.get_acks_full if full else sizes.get_acks),
        "get_many": (time_get_many, sizes.claim_rows),
    }
    if pattern in single:
        func, count = single[pattern]

        def run_single(directory: Path) -> tuple[dict[str, float], str]:
            impl = QUEUE_IMPLS[key]()
            impl.open(impl.location(directory), durability)
            try:
                sample, note = func(impl, count, sizes.cap(key))
                setting = impl.settings()
            finally:
                impl.close()
            return sample, "; ".join(n for n in (setting, note) if n)

        return run_single
    if pattern == "drain":
        return lambda d: time_drain(
            key,
            QUEUE_IMPLS[key]().location(d),
            durability,
            sizes.drain_messages,
            sizes.cap(key, "drain"),
        )
    rate = int(pattern.split("_")[1])
    return lambda d: time_latency(
        key, QUEUE_IMPLS[key]().location(d), durability, rate, sizes.latency_seconds
    )


def _stream_job(pattern: str, key: str, sizes: Sizes) -> Job:
    label = STREAM_IMPLS[key].label
    single: dict[str, tuple[Callable[[StreamImpl, int, float], Any], int]] = {
        "append": (time_append, sizes.puts),
        "append_many": (time_append_many, sizes.batch_rows),
        "poll_commit": (time_poll_commit, sizes.stream_rows),
        "lifecycle": (time_lifecycle, sizes.stream_rows),
    }
    if pattern == "groups":
        return Job(
            pattern,
            "normal",
            key,
            label,
            "",
            lambda d: time_groups(key, d / "bench.db", sizes.stream_rows, sizes.cap(key)),
        )
    func, count = single[pattern]

    def run_single(directory: Path) -> tuple[dict[str, float], str]:
        impl = STREAM_IMPLS[key]()
        impl.open(directory / "bench.db", "normal")
        try:
            return func(impl, count, sizes.cap(key))
        finally:
            impl.close()

    return Job(pattern, "normal", key, label, "", run_single)


QUEUE_ROWS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "put": [("normal", ("ours", "raw", "litequeue")), ("full", ("ours", "raw", "persist-queue"))],
    "put_many": [
        ("normal", ("ours", "raw", "litequeue")),
        ("full", ("ours", "raw", "persist-queue")),
    ],
    "get_ack": [
        ("normal", ("ours", "raw", "litequeue")),
        ("full", ("ours", "raw", "persist-queue")),
    ],
    "get_many": [("normal", ("ours", "raw", "litequeue", "persist-queue"))],
    "latency_1000": [("normal", ("ours", "raw", "litequeue", "persist-queue"))],
    "latency_5000": [("normal", ("ours", "raw", "litequeue", "persist-queue"))],
    "drain": [("normal", ("ours", "raw", "litequeue", "persist-queue"))],
}
STREAM_PATTERNS = ("append", "append_many", "poll_commit", "groups", "lifecycle")


def plan(sizes: Sizes, only: Iterable[str] | None = None) -> list[Job]:
    """Every row of the report, in print order; ``only`` limits it to some pattern keys.

    Raises BenchError for an unknown pattern key.
    """
    wanted = list(PATTERN_BY_KEY) if only is None else list(only)
    unknown = [k for k in wanted if k not in PATTERN_BY_KEY]
    if unknown:
        raise BenchError(f"unknown pattern(s) {unknown}; choose from {list(PATTERN_BY_KEY)}")
    jobs: list[Job] = []
    for pattern in PATTERN_BY_KEY:
        if pattern not in wanted:
            continue
        if pattern in STREAM_PATTERNS:
            jobs += [_stream_job(pattern, key, sizes) for key in ("ours", "raw")]
            continue
        for durability, keys in QUEUE_ROWS[pattern]:
            for key in keys:
                job = _queue_job(pattern, durability, key, sizes)
                if job.skipped != "skip":
                    jobs.append(job)
    return jobs


# -- running -----------------------------------------------------------------------------


def _measure_once(job: Job, root: Path | None) -> tuple[dict[str, float] | None, str]:
    assert job.run is not None
    with tempfile.TemporaryDirectory(prefix="sqq-bench-", dir=root) as directory:
        try:
            return job.run(Path(directory))
        except Exception as exc:  # a failing implementation must not hide the others
            return None, f"ERROR: {type(exc).__name__}: {exc}"


def run_benchmark(
    sizes: Sizes = FULL_SIZES,
    repeats: int = 3,
    *,
    only: Iterable[str] | None = None,
    directory: Path | None = None,
    progress: TextIO | None = None,
) -> Report:
    """Measure every planned row ``repeats`` times (fresh temp files each time).

    Repeats are interleaved (repeat 1 of every row of a pattern, then repeat 2, ...) so
    that a slow moment of a shared machine hits every implementation alike. Errors of one
    implementation are recorded in its row's notes, never raised. Returns the Report with
    the targets evaluated; raises BenchError for bad arguments.
    """
    if repeats < 1:
        raise BenchError(f"repeats must be at least 1, not {repeats}")
    from sqlitequeue.bench.results import environment

    started = time.perf_counter()
    load_before = _load_average()
    jitter = sleep_jitter()
    jobs = plan(sizes, only)
    rows = {id(j): Measurement(j.pattern, j.durability, j.impl, j.label) for j in jobs}
    for job in jobs:
        rows[id(job)].skipped = job.skipped
    for pattern in PATTERN_BY_KEY:
        active = [j for j in jobs if j.pattern == pattern and j.run is not None]
        if not active:
            continue
        t0 = time.perf_counter()
        for _ in range(repeats):
            for job in active:
                sample, note = _measure_once(job, directory)
                row = rows[id(job)]
                if sample is not None:
                    row.samples.append(sample)
                for part in filter(None, note.split("; ")):
                    if part not in row.notes:
                        row.notes.append(part)
        if progress is not None:
            took = time.perf_counter() - t0
            print(f"  measured {PATTERN_BY_KEY[pattern].title} ({took:.1f} s)", file=progress)
            progress.flush()
    measurements = [rows[id(j)] for j in jobs]
    env = environment()
    env["bench_directory"] = str(directory or tempfile.gettempdir())
    env["bench_filesystem"] = _filesystem_type(Path(directory or tempfile.gettempdir()))
    env["load_average_before"] = load_before
    env["load_average_after"] = _load_average()
    env["sleep_jitter_ms"] = jitter
    return Report(
        sizes,
        repeats,
        measurements,
        evaluate(measurements),
        time.perf_counter() - started,
        env,
    )


def sleep_jitter(samples: int = 500, pause: float = 0.001) -> dict[str, float]:
    """How late ``time.sleep(pause)`` wakes up here, in ms (p50/p99/max): the machine's
    scheduling noise floor, which no queue's latency tail can beat."""
    late = []
    for _ in range(samples):
        start = time.perf_counter()
        time.sleep(pause)
        late.append((time.perf_counter() - start - pause) * 1000)
    late.sort()
    return {
        "p50": _percentile(late, 0.5),
        "p99": _percentile(late, 0.99),
        "max": late[-1],
    }


def _load_average() -> float | None:
    """The 1-minute load average (other work on the machine skews every number)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _filesystem_type(path: Path) -> str:
    """The file system type holding ``path`` (from /proc/mounts), or "unknown"."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    best, kind = "", "unknown"
    target = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and target.startswith(parts[1]) and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return kind


# -- targets -----------------------------------------------------------------------------


def _ratio(ours: Measurement, other: Measurement, stat: str, latency: bool) -> float | None:
    a, b = ours.median(stat), other.median(stat)
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return b / a if latency else a / b


def evaluate(measurements: list[Measurement]) -> list[Check]:
    """The targets of issues 2 and 3 over the measured medians.

    * ours / raw loop >= 0.60 for every pattern (latency: raw p50 / ours p50);
    * ours / peer >= 10 on get + ack and >= 1.5 on put, at the peer's durability;
    * p99 end-to-end < 2 ms at 1,000 msgs/s and < 5 ms at 5,000 msgs/s;
    * batched append + poll + commit > 100,000 records/s.
    """
    checks = []
    by_key = {(m.pattern, m.durability, m.impl): m for m in measurements}
    for m in measurements:
        pattern = PATTERN_BY_KEY[m.pattern]
        ours = by_key.get((m.pattern, m.durability, "ours"))
        if m.impl == "ours":
            checks += _absolute_checks(m)
            continue
        if ours is None or m.skipped:
            continue
        stat = "p50" if pattern.latency else "rate"
        ratio = _ratio(ours, m, stat, pattern.latency)
        target = RAW_TARGET if m.impl == "raw" else pattern.peer_target
        if target is None:
            continue
        what = f"ours/{m.impl}" + (" (p50)" if pattern.latency else "")
        passed = None if ratio is None else ratio >= target
        checks.append(Check(m.pattern, m.durability, what, ratio, f">= {target:g}", passed))
    return checks


def _absolute_checks(m: Measurement) -> list[Check]:
    if m.pattern.startswith("latency_"):
        rate = int(m.pattern.split("_")[1])
        limit = LATENCY_P99_TARGET_MS[rate]
        p99 = m.median("p99")
        passed = None if p99 is None else p99 < limit
        return [Check(m.pattern, m.durability, "p99 ms", p99, f"< {limit:g}", passed)]
    if m.pattern == "lifecycle":
        records = m.median()
        passed = None if records is None else records > LIFECYCLE_TARGET
        return [Check(m.pattern, m.durability, "records/s", records, "> 100000", passed)]
    return []


# -- output ------------------------------------------------------------------------------


def _fmt_rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def fmt_ratio(value: float) -> str:
    """A ratio with 3 significant digits (0.598, 1.32, 13.3, 174), so a value just under
    its target never prints as the target itself."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _verdict(check: Check | None) -> tuple[str, str]:
    """(target text, PASS/FAIL/n/a) for a row's target cells."""
    if check is None:
        return "", ""
    return check.target, {True: "PASS", False: "FAIL", None: "n/a"}[check.passed]


def _pattern_sizes(pattern: str, sizes: Sizes) -> str:
    text = {
        "put": f"{sizes.puts:,} msgs at NORMAL, {sizes.puts_full:,} at FULL",
        "put_many": f"{sizes.batch_rows:,} msgs",
        "get_ack": f"queue of {sizes.get_acks:,} at NORMAL, {sizes.get_acks_full:,} at FULL",
        "get_many": f"queue of {sizes.claim_rows:,}",
        "latency_1000": f"{sizes.latency_seconds:g} s, producer and consumer processes",
        "latency_5000": f"{sizes.latency_seconds:g} s, producer and consumer processes",
        "drain": f"queue of {sizes.drain_messages:,}",
        "append": f"{sizes.puts:,} records",
        "append_many": f"{sizes.batch_rows:,} records",
        "poll_commit": f"{sizes.stream_rows:,} records",
        "groups": f"{sizes.stream_rows:,} records, each group in its own process",
        "lifecycle": f"{sizes.stream_rows:,} records",
    }
    return text[pattern]


def format_report(report: Report) -> str:
    """The side-by-side tables, one per pattern, then a summary of the targets."""
    env = report.environment
    versions = env.get("versions", {})
    cpus = env.get("host", {}).get("cpu_count")
    lines = [
        f"sqlitequeue bench queue: {PAYLOAD_BYTES}-byte payloads, WAL, median of "
        f"{report.repeats} repeat(s); {cpus} CPUs, SQLite {versions.get('sqlite')}, "
        f"Python {versions.get('python')}; files in {env.get('bench_directory')} "
        f"({env.get('bench_filesystem')}); load average {env.get('load_average_before')} "
        f"before, {env.get('load_average_after')} after; sleep(1 ms) wakes late by "
        f"{_jitter_text(env.get('sleep_jitter_ms'))} (the noise floor of every latency)",
        "ours/this and raw/this are ours (or the raw loop) / this row for throughput and "
        "this row / ours for latency p50 (> 1: faster than this row); raw/this is the best "
        "ratio any code issuing our SQL could reach",
    ]
    checks = {(c.pattern, c.durability, c.what.split(" ")[0]): c for c in report.checks}
    for pattern in PATTERNS:
        rows = [m for m in report.measurements if m.pattern == pattern.key]
        if not rows:
            continue
        lines += ["", f"{pattern.title} ({_pattern_sizes(pattern.key, report.sizes)})"]
        lines += _latency_table(rows, checks) if pattern.latency else _rate_table(rows, checks)
    lines += ["", _summary(report)]
    return "\n".join(lines)


def _jitter_text(jitter: dict[str, float] | None) -> str:
    if not jitter:
        return "n/a"
    return f"p50 {jitter['p50']:.2f} / p99 {jitter['p99']:.2f} / max {jitter['max']:.2f} ms"


def _check_for(checks: dict[tuple[str, str, str], Check], m: Measurement) -> Check | None:
    if m.impl == "ours":
        for what in ("p99", "records/s"):
            found = checks.get((m.pattern, m.durability, what))
            if found:
                return found
        return None
    return checks.get((m.pattern, m.durability, f"ours/{m.impl}"))


def _note(m: Measurement) -> str:
    if m.skipped:
        return m.skipped
    return "; ".join(m.notes)


def _peer_ratios(
    rows: list[Measurement], m: Measurement, stat: str, latency: bool
) -> tuple[str, str]:
    """(ours/this, raw/this) for row ``m``, at its durability; raw/this only for peers."""
    if m.skipped or m.impl == "ours":
        return "", ""
    same = {o.impl: o for o in rows if o.durability == m.durability}
    texts = []
    for reference in ("ours", "raw"):
        base = same.get(reference)
        value = None
        if base is not None and not (reference == "raw" and m.impl == "raw"):
            value = _ratio(base, m, stat, latency)
        texts.append("" if value is None else fmt_ratio(value))
    return texts[0], texts[1]


def _rate_table(rows: list[Measurement], checks: dict[tuple[str, str, str], Check]) -> list[str]:
    unit = PATTERN_BY_KEY[rows[0].pattern].unit
    head = f"  {'sync':<7} {'implementation':<22} {unit:>11}  {'ours/this':>9} {'raw/this':>8}  "
    head += f"{'target':<8} {'':<4}  notes"
    out = [head]
    for m in rows:
        target, mark = _verdict(_check_for(checks, m))
        ours_ratio, raw_ratio = _peer_ratios(rows, m, "rate", False)
        cell = "-" if m.skipped else _fmt_rate(m.median())
        sync = "-" if m.skipped else m.durability.upper()
        out.append(
            f"  {sync:<7} {m.label:<22} {cell:>11}  {ours_ratio:>9} {raw_ratio:>8}  "
            f"{target:<8} {mark:<4}  {_note(m)}".rstrip()
        )
    return out


def _latency_table(rows: list[Measurement], checks: dict[tuple[str, str, str], Check]) -> list[str]:
    head = f"  {'sync':<7} {'implementation':<22} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
    head += f" {'max ms':>7} {'sent/s':>7}  {'ours/this':>9} {'raw/this':>8}  {'target':<12}"
    head += f" {'':<4}  notes"
    out = [head]
    for m in rows:
        target, mark = _verdict(_check_for(checks, m))
        if m.impl == "ours" and target:
            target = f"p99 {target} ms"
        ours_ratio, raw_ratio = _peer_ratios(rows, m, "p50", True)
        cells = " ".join(f"{_fmt_ms(m.median(s)):>7}" for s in ("p50", "p95", "p99", "max"))
        if m.skipped:
            cells = " ".join(f"{'-':>7}" for _ in range(4))
        sent = "-" if m.skipped else _fmt_rate(m.median("rate"))
        sync = "-" if m.skipped else m.durability.upper()
        out.append(
            f"  {sync:<7} {m.label:<22} {cells} {sent:>7}  {ours_ratio:>9} {raw_ratio:>8}  "
            f"{target:<12} {mark:<4}  {_note(m)}".rstrip()
        )
    return out


def _summary(report: Report) -> str:
    passed = sum(1 for c in report.checks if c.passed is True)
    failed = [c for c in report.checks if c.passed is False]
    missing = [c for c in report.checks if c.passed is None]
    lines = [
        f"targets: {passed} PASS, {len(failed)} FAIL, {len(missing)} not measured "
        f"(benchmark took {report.seconds:.0f} s)"
    ]
    for c in failed + missing:
        if c.value is None:
            value = "n/a"
        elif c.what in ("p99 ms", "records/s"):
            value = f"{c.value:,.2f}"
        else:
            value = fmt_ratio(c.value)
        state = "FAIL" if c.passed is False else "n/a "
        title = PATTERN_BY_KEY[c.pattern].title
        lines.append(
            f"  {state} {title} [{c.durability.upper()}]: {c.what} = {value} (target {c.target})"
        )
    return "\n".join(lines)


def report_to_json(report: Report) -> dict[str, Any]:
    """The report as plain data: sizes, environment, every sample, medians and checks."""
    return {
        "kind": "queue-bench",
        "payload_bytes": PAYLOAD_BYTES,
        "repeats": report.repeats,
        "seconds": report.seconds,
        "sizes": asdict(report.sizes),
        "environment": report.environment,
        "measurements": [
            {
                **asdict(m),
                "title": PATTERN_BY_KEY[m.pattern].title,
                "unit": PATTERN_BY_KEY[m.pattern].unit,
                "median": {
                    stat: m.median(stat)
                    for stat in ("rate", "p50", "p95", "p99", "max")
                    if m.median(stat) is not None
                },
            }
            for m in report.measurements
        ],
        "checks": [asdict(c) for c in report.checks],
    }
