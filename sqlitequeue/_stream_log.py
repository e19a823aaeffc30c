"""The stream's SQL: topics and partitions, appends, range reads, retention, searches.

Every function here runs on a connection that the caller has inside a transaction
(``Database.write()`` or ``Database.read()``). A record's rowid is ``pid << SHIFT | offset``
(see :mod:`sqlitequeue._schema`), so a partition is one contiguous rowid range.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from sqlitequeue.errors import StreamError

#: Bits of a record id that hold the offset; the partition's global id sits above them.
SHIFT = 47
#: Offsets of a partition lie in [0, OFFSET_LIMIT).
OFFSET_LIMIT = 1 << SHIFT
#: Partition global ids must stay below this so ids fit in SQLite's signed 64-bit rowid.
PID_LIMIT = 1 << (63 - SHIFT)
#: Retention deletes at most this many records per partition per transaction, so that
#: other writers never wait long for the lock.
RETENTION_CHUNK = 20_000

TAIL = (
    "SELECT id, ts, cum_bytes, records FROM stream_records"
    " WHERE id = (SELECT max(id) FROM stream_records WHERE id >= ? AND id < ?)"
)
INSERT = (
    "INSERT INTO stream_records (id, ts, cum_bytes, key, headers, payload)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_BATCH = (
    "INSERT INTO stream_records (id, ts, cum_bytes, records, payload) VALUES (?, ?, ?, ?, ?)"
)
#: Rows from the one holding offset ?2 (a batch row may start before it) up to id ?3.
#: Parameters: partition base, base + offset, base + OFFSET_LIMIT, row limit.
FETCH = (
    "SELECT id, ts, records, key, headers, payload FROM stream_records"
    " WHERE id >= coalesce((SELECT max(id) FROM stream_records WHERE id >= ?1 AND id <= ?2), ?2)"
    " AND id < ?3 ORDER BY id LIMIT ?4"
)
#: The row holding an offset: parameters base, base + offset.
ROW_AT = "SELECT {} FROM stream_records WHERE id >= ? AND id <= ? ORDER BY id DESC LIMIT 1"
PARTITION_STATE = (
    "SELECT partition, pid, log_start, next_offset FROM stream_partition_state"
    " WHERE topic_id = ? ORDER BY partition"
)


class TopicRow(NamedTuple):
    """A topic as stored: its id, partition count, retention and partition global ids."""

    id: int
    partitions: int
    retention_age: float | None
    retention_bytes: int | None
    pids: tuple[int, ...]


def load_topic(conn: sqlite3.Connection, name: str) -> TopicRow | None:
    """Return the stored topic ``name``, or None if the file has no such topic."""
    row = conn.execute(
        "SELECT id, partitions, retention_age, retention_bytes FROM stream_topics WHERE name = ?",
        (name,),
    ).fetchone()
    if row is None:
        return None
    pids = tuple(
        r[0]
        for r in conn.execute(
            "SELECT pid FROM stream_partitions WHERE topic_id = ? ORDER BY partition", (row[0],)
        )
    )
    return TopicRow(row[0], row[1], row[2], row[3], pids)


def create_topic(
    conn: sqlite3.Connection,
    name: str,
    partitions: int,
    retention_age: float | None,
    retention_bytes: int | None,
    now: float,
) -> None:
    """Insert topic ``name`` and its partitions (the caller checked it does not exist)."""
    topic_id = conn.execute(
        "INSERT INTO stream_topics (name, partitions, retention_age, retention_bytes,"
        " created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        (name, partitions, retention_age, retention_bytes, now),
    ).fetchone()[0]
    conn.executemany(
        "INSERT INTO stream_partitions (topic_id, partition) VALUES (?, ?)",
        [(topic_id, p) for p in range(partitions)],
    )


def delete_topic(conn: sqlite3.Connection, topic: TopicRow) -> None:
    """Delete a topic with its records, committed offsets and members."""
    for pid in topic.pids:
        conn.execute(
            "DELETE FROM stream_records WHERE id >= ? AND id < ?",
            (pid << SHIFT, (pid + 1) << SHIFT),
        )
        conn.execute("DELETE FROM stream_offsets WHERE pid = ?", (pid,))
    conn.execute("DELETE FROM stream_members WHERE topic_id = ?", (topic.id,))
    conn.execute("DELETE FROM stream_partitions WHERE topic_id = ?", (topic.id,))
    conn.execute("DELETE FROM stream_topics WHERE id = ?", (topic.id,))


def topic_names(conn: sqlite3.Connection) -> list[str]:
    """Names of every topic in the file, sorted."""
    return [r[0] for r in conn.execute("SELECT name FROM stream_topics ORDER BY name")]


def tail(conn: sqlite3.Connection, pid: int) -> tuple[int, float, int]:
    """Return (end offset, newest timestamp, bytes ever appended) of partition ``pid``."""
    base = pid << SHIFT
    row = conn.execute(TAIL, (base, base + OFFSET_LIMIT)).fetchone()
    if row is not None:
        return row[0] - base + (row[3] or 1), row[1], row[2]
    row = conn.execute(
        "SELECT log_start, start_ts, start_bytes FROM stream_partitions WHERE pid = ?", (pid,)
    ).fetchone()
    return int(row[0]), float(row[1]), int(row[2])


def append_batch(conn: sqlite3.Connection, pid: int, batch: bytes, count: int, now: float) -> int:
    """Store a Kafka record batch of ``count`` records as one row at the end of ``pid``.

    ``batch`` must be an uncompressed v2 batch (see :mod:`sqlitequeue._stream_batch`); its
    base offset is rewritten to the offset it gets, which is returned. Raises StreamError
    when the partition's offsets are used up.
    """
    end, last_ts, cum = tail(conn, pid)
    if end + count >= OFFSET_LIMIT:
        raise StreamError(f"partition {pid} has used all {OFFSET_LIMIT} offsets")
    stored = end.to_bytes(8, "big") + batch[8:]
    conn.execute(
        INSERT_BATCH, ((pid << SHIFT) + end, max(now, last_ts), cum + len(batch), count, stored)
    )
    return end


def partition_bounds(conn: sqlite3.Connection, pid: int) -> tuple[int, int]:
    """Return (earliest retained offset, end offset) of partition ``pid``."""
    start = conn.execute("SELECT log_start FROM stream_partitions WHERE pid = ?", (pid,))
    return int(start.fetchone()[0]), tail(conn, pid)[0]


def first_offset_at_least(
    conn: sqlite3.Connection, pid: int, lo: int, hi: int, column: str, value: float
) -> int:
    """Smallest offset in [lo, hi) whose ``column`` is >= ``value``, or ``hi`` if none.

    ``column`` must never decrease with the offset (``ts`` and ``cum_bytes`` do not), and
    every offset in [lo, hi) must exist (the partition's retained range). An offset inside
    a batch row has that row's value, so the answer is ``lo`` or the start of a row.
    Binary search with point reads: O(log n) rows touched, nothing loaded in bulk.
    """
    sql = ROW_AT.format(column)
    base = pid << SHIFT
    while lo < hi:
        mid = (lo + hi) // 2
        row = conn.execute(sql, (base, base + mid)).fetchone()
        if row is None or row[0] >= value:
            hi = mid
        else:
            lo = mid + 1
    return lo


def offset_for_timestamp(conn: sqlite3.Connection, pid: int, ts: float) -> int:
    """The first retained offset of ``pid`` whose timestamp is >= ``ts`` (or the end offset)."""
    start, end = partition_bounds(conn, pid)
    return first_offset_at_least(conn, pid, start, end, "ts", ts)


def retention_step(
    conn: sqlite3.Connection, pid: int, max_age: float | None, max_bytes: int | None, now: float
) -> tuple[int, int]:
    """Delete the oldest records of ``pid`` that retention no longer keeps, up to a chunk.

    Returns (first deleted offset, new earliest offset); equal when nothing was deleted.
    Deletes one contiguous offset range with one statement; never reads payloads.
    """
    start, start_bytes = conn.execute(
        "SELECT log_start, start_bytes FROM stream_partitions WHERE pid = ?", (pid,)
    ).fetchone()
    end, last_ts, end_bytes = tail(conn, pid)
    cut = start
    if max_age is not None and start < end:
        cutoff = now - max_age
        if last_ts < cutoff:
            cut = end
        else:
            cut = first_offset_at_least(conn, pid, start, end, "ts", cutoff)
    if max_bytes is not None and end_bytes - start_bytes > max_bytes:
        # Deleting through offset j leaves end_bytes - cum_bytes(j) bytes.
        last = first_offset_at_least(conn, pid, start, end, "cum_bytes", end_bytes - max_bytes)
        cut = max(cut, last + 1)
    cut = min(cut, start + RETENTION_CHUNK, end)
    base = pid << SHIFT
    if start < cut < end:  # never split a batch row: keep the whole row holding ``cut``
        cut = max(start, conn.execute(ROW_AT.format("id"), (base, base + cut)).fetchone()[0] - base)
    if cut <= start:
        return start, start
    new_start_ts, new_start_bytes = conn.execute(
        ROW_AT.format("ts, cum_bytes"), (base, base + cut - 1)
    ).fetchone()
    conn.execute("DELETE FROM stream_records WHERE id >= ? AND id < ?", (base + start, base + cut))
    conn.execute(
        "UPDATE stream_partitions SET log_start = ?, start_bytes = ?, start_ts = ? WHERE pid = ?",
        (cut, new_start_bytes, new_start_ts, pid),
    )
    return start, cut


TOPICS = (
    "SELECT t.name, t.retention_age, t.retention_bytes, t.created_at, p.partition,"
    " p.log_start, p.next_offset, p.end_bytes - p.start_bytes, p.last_ts"
    " FROM stream_topics t JOIN stream_partition_state p ON p.topic_id = t.id"
    " ORDER BY t.name, p.partition"
)

GROUP_OFFSETS = (
    "SELECT t.name, o.grp, p.partition, o.committed, p.log_start, p.next_offset, o.owner,"
    " o.committed_at FROM stream_offsets o"
    " JOIN stream_partition_state p ON p.pid = o.pid JOIN stream_topics t ON t.id = p.topic_id"
    " WHERE (?1 IS NULL OR t.name = ?1) AND (?2 IS NULL OR o.grp = ?2)"
    " ORDER BY t.name, o.grp, p.partition"
)
LIVE_MEMBERS = (
    "SELECT t.name, m.grp, m.member FROM stream_members m"
    " JOIN stream_topics t ON t.id = m.topic_id"
    " WHERE m.expires_at >= ?3 AND (?1 IS NULL OR t.name = ?1) AND (?2 IS NULL OR m.grp = ?2)"
    " ORDER BY t.name, m.grp, m.member"
)
