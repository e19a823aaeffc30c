"""The stream implementations under test: sqlitequeue's Stream and the raw sqlite3 loop.

Each is a :class:`StreamImpl`; :data:`STREAM_IMPLS` maps report keys to the classes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlitequeue.bench.microbench.patterns import PUT_BATCH, TOPIC
from sqlitequeue.bench.microbench.queues import raw_connect, retry_locked
from sqlitequeue.internals import stream_log as _stream_log

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
        self.conn = raw_connect(path, durability)
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
        retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
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
        retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
        offset, ts, cum = self._tail()
        row = (self.base + offset, max(ts, time.time()), cum + len(data), None, None, data)
        conn.execute(self.INSERT, row)
        conn.execute("COMMIT")

    def append_many(self, items: list[bytes]) -> None:
        conn = self.conn
        retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
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
        retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
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
        retry_locked(lambda: conn.execute(self.COMMIT, args))
        return len(rows)


STREAM_IMPLS: dict[str, type[StreamImpl]] = {"ours": OursStream, "raw": RawStream}
