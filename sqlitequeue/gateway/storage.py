"""The gateway's view of the file: Kafka topics and partitions are the Stream's.

One :class:`Log` per server, on one :class:`~sqlitequeue._db.Database` connection. A
produced batch becomes one row (schema v4); a Fetch returns stored batches as they are
and encodes the rows that ``Stream.append`` wrote as batches on the fly. Committed offsets
of a Kafka group are the ``stream_offsets`` rows of the Stream group of the same name.
Every method runs its own transaction; :meth:`Log.append` stores all of a request's
batches in one, and returns only after it committed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from sqlitequeue import _stream_log as log
from sqlitequeue._db import Database
from sqlitequeue.gateway.batches import Batch, build_batch
from sqlitequeue.stream import MAX_PARTITIONS

#: Most rows one partition's fetch reads at once.
FETCH_ROWS = 2000


class Log:
    """The topics of one file, as the gateway reads and writes them."""

    def __init__(
        self,
        path: str | Path,
        *,
        auto_create: bool = True,
        partitions: int = 1,
        lock_timeout: float = 30.0,
    ) -> None:
        """Open ``path``; its writes wait up to ``lock_timeout`` seconds for the file's
        lock (0: never wait, raise DatabaseBusy at once)."""
        self.path = Path(path)
        self.auto_create = auto_create  # the handlers create topics on first use
        self.default_partitions = partitions
        self.db = Database(path, durability="normal", lock_timeout=lock_timeout)
        self._topics: dict[str, log.TopicRow] = {}

    def close(self) -> None:
        self.db.close()

    def checkpoint_after_acks(self, backstop_pages: int) -> None:
        """Let this connection's commits checkpoint the WAL only once it holds
        ``backstop_pages`` pages (0: never): the owner calls :meth:`checkpoint` well
        before, once the appends it committed were answered (a checkpoint copies megabytes
        and syncs the file, too long to hold up an acknowledgement)."""
        self.db.conn.execute(f"PRAGMA wal_autocheckpoint = {int(backstop_pages)}")

    def checkpoint(self) -> bool:
        """Copy the WAL into the file as far as readers allow (a PASSIVE checkpoint);
        True when it copied every frame (the next commit then starts the WAL over)."""
        busy, pages, copied = self.db.checkpoint("PASSIVE")
        return not busy and pages >= 0 and copied == pages

    # -- topics --------------------------------------------------------------------------

    def topic(self, name: str) -> log.TopicRow | None:
        """The topic ``name``, or None if the file has none (cached once found)."""
        row = self._topics.get(name)
        if row is not None:
            return row
        with self.db.read() as conn:
            row = log.load_topic(conn, name)
        if row is not None:
            self._topics[name] = row
        return row

    def topic_names(self) -> list[str]:
        with self.db.read() as conn:
            return log.topic_names(conn)

    def create_topic(self, name: str, partitions: int) -> bool:
        """Create a topic; False if it already exists. The caller checked the name."""
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise ValueError(f"partitions must be 1..{MAX_PARTITIONS}")
        with self.db.write() as conn:
            if log.load_topic(conn, name) is not None:
                return False
            log.create_topic(conn, name, partitions, None, None, time.time())
        return True

    def delete_topic(self, name: str) -> bool:
        """Delete a topic and its records; False if there is none."""
        self._topics.pop(name, None)
        with self.db.write() as conn:
            row = log.load_topic(conn, name)
            if row is None:
                return False
            log.delete_topic(conn, row)
        return True

    def forget(self, name: str) -> None:
        """Drop a cached topic (e.g. after another process deleted it)."""
        self._topics.pop(name, None)

    # -- records -------------------------------------------------------------------------

    def append(self, writes: list[tuple[int, Batch]]) -> list[int]:
        """Store each (partition global id, batch) in one transaction; return base offsets."""
        now = time.time()
        with self.db.write() as conn:
            return [log.append_batch(conn, pid, b.data, b.count, now) for pid, b in writes]

    def append_all(self, jobs: list[list[tuple[int, Batch]]]) -> list[list[int]]:
        """Like :meth:`append` for several callers' writes, in one transaction."""
        now = time.time()
        with self.db.write() as conn:
            return [
                [log.append_batch(conn, pid, b.data, b.count, now) for pid, b in writes]
                for writes in jobs
            ]

    def bounds(self, pid: int) -> tuple[int, int]:
        """(log start offset, high watermark) of a partition."""
        with self.db.read() as conn:
            return log.partition_bounds(conn, pid)

    def read(self, pid: int, offset: int, max_bytes: int) -> tuple[int, int, bytes]:
        """Return (log start, high watermark, batches) of a partition from ``offset`` on.

        The batches hold at least one record when there is one (even over ``max_bytes``,
        as Kafka does), then whole batches while they fit. A stored batch that starts
        before ``offset`` is returned whole; clients skip the records before it.
        """
        base = pid << log.SHIFT
        with self.db.read() as conn:
            start, end = log.partition_bounds(conn, pid)
            if offset >= end or offset < start:
                return start, end, b""
            rows = conn.execute(
                log.FETCH, (base, base + offset, base + log.OFFSET_LIMIT, FETCH_ROWS)
            ).fetchall()
        parts: list[bytes] = []
        size = 0
        plain: list[tuple[int, float, bytes | None, bytes | None, bytes]] = []
        for rid, ts, count, key, headers, payload in rows:
            first = rid - base
            if count is None:
                if first >= offset and ((not parts and not plain) or size < max_bytes):
                    plain.append((first, ts, key, headers, payload))
                    size += len(payload) + (len(key) if key else 0) + 20
                elif first >= offset:
                    break
                continue
            if first + count <= offset:
                continue
            if plain and size >= max_bytes:
                break
            if plain:
                parts.append(build_batch(plain[0][0], plain))
                plain = []
            if parts and size + len(payload) > max_bytes:
                break
            parts.append(payload)
            size += len(payload)
            if size >= max_bytes:
                break
        if plain:
            parts.append(build_batch(plain[0][0], plain))
        return start, end, b"".join(parts)

    def offset_for_time(self, pid: int, ts_ms: int) -> tuple[int, int]:
        """(offset, timestamp ms) of the first record appended at or after ``ts_ms``, or
        (-1, -1) if none (Kafka's ListOffsets by timestamp)."""
        with self.db.read() as conn:
            start, end = log.partition_bounds(conn, pid)
            offset = log.first_offset_at_least(conn, pid, start, end, "ts", ts_ms / 1000)
            if offset >= end:
                return -1, -1
            row = conn.execute(
                log.ROW_AT.format("ts"), (pid << log.SHIFT, (pid << log.SHIFT) + offset)
            ).fetchone()
        return offset, int(row[0] * 1000)

    def recent_batches(self, pid: int, rows: int = 20) -> list[tuple[int, bytes]]:
        """The newest batch rows of a partition: (base offset, first 61 bytes), newest first."""
        base = pid << log.SHIFT
        with self.db.read() as conn:
            found = conn.execute(
                "SELECT id, substr(payload, 1, 61) FROM stream_records WHERE id >= ? AND id < ?"
                " AND records IS NOT NULL ORDER BY id DESC LIMIT ?",
                (base, base + log.OFFSET_LIMIT, rows),
            ).fetchall()
        return [(rid - base, head) for rid, head in found]

    def apply_retention(self) -> int:
        """Delete what each topic's retention (set through Stream) no longer keeps, a chunk
        per partition; return how many records were deleted."""
        deleted = 0
        with self.db.read() as conn:
            topics = conn.execute(
                "SELECT name, retention_age, retention_bytes FROM stream_topics"
                " WHERE retention_age IS NOT NULL OR retention_bytes IS NOT NULL"
            ).fetchall()
        for name, age, size in topics:
            row = self.topic(name)
            for pid in row.pids if row else ():
                with self.db.write() as conn:
                    first, cut = log.retention_step(conn, pid, age, size, time.time())
                deleted += cut - first
        return deleted

    # -- committed offsets ---------------------------------------------------------------

    def commit(self, group: str, offsets: Iterable[tuple[int, int]]) -> None:
        """Store a group's committed offsets (the Stream group of that name sees them)."""
        now = time.time()
        with self.db.write() as conn:
            conn.executemany(
                "INSERT INTO stream_offsets (grp, pid, committed, committed_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (grp, pid) DO UPDATE SET committed = excluded.committed,"
                " committed_at = excluded.committed_at",
                [(group, pid, offset, now) for pid, offset in offsets],
            )

    def committed(self, group: str, pids: Iterable[int]) -> dict[int, int]:
        """pid -> committed offset of ``group`` (partitions without one are left out)."""
        with self.db.read() as conn:
            return {
                pid: row[0]
                for pid in pids
                if (row := self._committed_row(conn, group, pid)) is not None
            }

    @staticmethod
    def _committed_row(conn: sqlite3.Connection, group: str, pid: int) -> tuple[int] | None:
        return conn.execute(
            "SELECT committed FROM stream_offsets WHERE grp = ? AND pid = ?", (group, pid)
        ).fetchone()

    def group_offsets(self, group: str) -> list[tuple[str, int, int]]:
        """Every (topic, partition, committed offset) of ``group``."""
        with self.db.read() as conn:
            return conn.execute(
                "SELECT t.name, p.partition, o.committed FROM stream_offsets o"
                " JOIN stream_partitions p ON p.pid = o.pid JOIN stream_topics t"
                " ON t.id = p.topic_id WHERE o.grp = ? ORDER BY t.name, p.partition",
                (group,),
            ).fetchall()

    def stored_groups(self) -> list[str]:
        """Names of every group with committed offsets in the file (Kafka's or Stream's)."""
        with self.db.read() as conn:
            return [r[0] for r in conn.execute("SELECT DISTINCT grp FROM stream_offsets")]

    def change_token(self) -> tuple[int, int]:
        """Changes when anyone commits to the file (see Database.wait_for_change)."""
        return self.db.change_token()
