"""Kafka's log semantics in one SQLite file: topics, partitions, offsets, consumer groups.

``Stream(path, topic)`` appends records to a partitioned, retained log; ``stream.consumer(
group)`` reads it as a member of a consumer group whose committed offsets live in the same
file. Several groups read the same records independently and can replay them; members of
one group share the partitions through leases stored in the database. Delivery is
at-least-once: records polled but not committed are delivered again to the group after a
crash or a rebalance.

Guarantees:

* offsets of a partition start at 0, increase by one per record and are never reused
  (not even after retention deleted every record);
* records with the same key go to the same partition (Kafka's murmur2 partitioner), so
  per-key order holds; records without a key are spread round-robin;
* ``append_many`` and ``commit`` are all or nothing;
* a partition is owned by at most one live member of a group; a member that stops
  heartbeating (``poll``) for ``lease`` seconds loses its partitions to the others;
  committing for a partition that moved raises :class:`~sqlitequeue.errors.NotPartitionOwner`.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import re
import sqlite3
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from sqlitequeue import _stream_codec as codec
from sqlitequeue import _stream_log as log
from sqlitequeue._db import Database
from sqlitequeue._stream_assignment import AssignmentCallback
from sqlitequeue._stream_consumer import DEFAULT_LEASE, Consumer
from sqlitequeue._stream_types import (
    START_POSITIONS,
    BytesLike,
    GroupInfo,
    GroupPartition,
    KeyLike,
    Offset,
    PartitionInfo,
    Record,
    Reset,
    Retention,
    TopicHandle,
    TopicInfo,
    check_group,
    check_in_range,
    check_partition,
    records_from_rows,
    to_timestamp,
)
from sqlitequeue.errors import InvalidArgument, PayloadTooLarge, StreamError

__all__ = [
    "DEFAULT_LEASE",
    "BytesLike",
    "Consumer",
    "GroupInfo",
    "GroupPartition",
    "KeyLike",
    "Offset",
    "PartitionInfo",
    "Record",
    "Reset",
    "Retention",
    "Stream",
    "TopicInfo",
    "groups",
    "topics",
]

logger = logging.getLogger("sqlitequeue.stream")

#: Default largest record (payload + key + encoded headers), as Kafka's message.max.bytes.
DEFAULT_MAX_PAYLOAD_SIZE = 1024 * 1024
#: How often an appending Stream applies the topic's retention, in seconds.
RETENTION_INTERVAL = 1.0
#: Largest number of partitions of one topic.
MAX_PARTITIONS = 4096
#: Topic names: Kafka's rule (letters, digits, ".", "_", "-"; up to 249 characters).
TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


class Stream:
    """A topic of a sqlitequeue file: append records, read them through consumer groups.

    ``partitions`` is used when the topic is created (default 1); for an existing topic it
    must be None or its actual count. ``retention`` (a :class:`Retention`) is stored with
    the topic; None keeps what is stored. ``durability`` is ``"full"``, ``"normal"`` or
    ``"off"`` (see :class:`sqlitequeue._db.Database`). ``create=False`` raises
    InvalidArgument instead of creating a missing topic. Thread-safe: threads may share one.
    Raises InvalidArgument on bad arguments and a DatabaseError subclass for a bad file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        topic: str,
        *,
        partitions: int | None = None,
        retention: Retention | None = None,
        durability: str = "normal",
        max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
        create: bool = True,
    ) -> None:
        if not isinstance(topic, str) or not TOPIC_NAME.fullmatch(topic):
            raise InvalidArgument(
                f"topic must be 1-249 letters, digits, '.', '_' or '-', not {topic!r}"
            )
        if partitions is not None:
            codec.check_int(partitions, "partitions", minimum=1)
            if partitions > MAX_PARTITIONS:
                raise InvalidArgument(f"partitions must be <= {MAX_PARTITIONS}, not {partitions}")
        if retention is not None and not isinstance(retention, Retention):
            raise InvalidArgument(
                f"retention must be a sqlitequeue.stream.Retention, not {type(retention).__name__}"
            )
        self.max_payload_size = codec.check_int(max_payload_size, "max_payload_size", 1)
        self.path = Path(path)
        self.topic = topic
        self.durability = durability
        if not create and not self.path.exists():
            raise InvalidArgument(f"{self.path} does not exist")
        self._db = Database(path, durability=durability)
        try:
            self._row = self._open_topic(partitions, retention, create)
        except BaseException:
            self._db.close()
            raise
        self.partitions = self._row.partitions
        self._pids = self._row.pids
        self._bases = tuple(pid << log.SHIFT for pid in self._pids)
        self._round_robin = random.randrange(self.partitions)  # next keyless partition
        self._retention_due = 0.0
        self._consumers: weakref.WeakSet[Consumer] = weakref.WeakSet()

    # -- topic ---------------------------------------------------------------------------

    def _open_topic(
        self, partitions: int | None, retention: Retention | None, create: bool
    ) -> log.TopicRow:
        with self._db.read() as conn:
            row = log.load_topic(conn, self.topic)
        if row is None and not create:
            with self._db.read() as conn:
                names = log.topic_names(conn)
            raise InvalidArgument(
                f"{self.path} has no topic {self.topic!r}; its topics are: "
                f"{', '.join(names) if names else '(none)'}"
            )
        if row is None or (retention is not None and self._retention_changed(row, retention)):
            with self._db.write() as conn:
                row = log.load_topic(conn, self.topic)
                if row is None:
                    age, size = (
                        (retention.max_age, retention.max_bytes) if retention else (None, None)
                    )
                    count = partitions or 1
                    log.create_topic(conn, self.topic, count, age, size, time.time())
                elif retention is not None:
                    conn.execute(
                        "UPDATE stream_topics SET retention_age = ?, retention_bytes = ?"
                        " WHERE id = ?",
                        (retention.max_age, retention.max_bytes, row.id),
                    )
                row = log.load_topic(conn, self.topic)
                assert row is not None
                if len(row.pids) and row.pids[-1] >= log.PID_LIMIT:
                    raise StreamError(f"{self.path} has too many partitions (over {log.PID_LIMIT})")
        if partitions is not None and partitions != row.partitions:
            raise InvalidArgument(
                f"topic {self.topic!r} in {self.path} has {row.partitions} partitions, not "
                f"{partitions}; open it with partitions=None (or {row.partitions})"
            )
        return row

    @staticmethod
    def _retention_changed(row: log.TopicRow, retention: Retention) -> bool:
        return (row.retention_age, row.retention_bytes) != (retention.max_age, retention.max_bytes)

    @property
    def retention(self) -> Retention | None:
        """The topic's retention as currently stored (None when records are kept forever)."""
        with self._db.read() as conn:
            row = log.load_topic(conn, self.topic)
        assert row is not None
        if row.retention_age is None and row.retention_bytes is None:
            return None
        return Retention(row.retention_age, row.retention_bytes)

    def _check_partition(self, partition: object) -> int:
        return check_partition(self.topic, self.partitions, partition)

    # -- appending -----------------------------------------------------------------------

    def _partition_of(self, key: bytes | None) -> int:
        if key is None:
            self._round_robin = partition = (self._round_robin + 1) % self.partitions
            return partition
        return codec.partition_for_key(key, self.partitions)

    def _record_size(self, payload: bytes, key: bytes | None, headers: bytes | None) -> int:
        size = len(payload) + (len(key) if key else 0) + (len(headers) if headers else 0)
        if size > self.max_payload_size:
            raise PayloadTooLarge(
                f"record of {size} bytes (payload + key + headers) is over the maximum of "
                f"{self.max_payload_size} bytes for topic {self.topic!r}; store large blobs "
                "elsewhere and append a reference, or raise max_payload_size"
            )
        return size

    def append(
        self,
        payload: BytesLike,
        *,
        key: KeyLike | None = None,
        headers: Mapping[str, BytesLike] | None = None,
    ) -> Offset:
        """Append one record; return where it was stored once it is committed.

        A str ``key`` is stored (and read back, and hashed) as its UTF-8 bytes. Raises
        TypeError for a payload or header value that is not bytes-like or a key that is
        neither str nor bytes-like, InvalidArgument for a key with a lone surrogate,
        PayloadTooLarge over ``max_payload_size``; nothing is stored in any case.
        """
        payload = codec.as_bytes(payload, "payload")
        raw_key = None if key is None else codec.as_key(key)
        blob = codec.encode_headers(headers)
        size = self._record_size(payload, raw_key, blob)
        partition = self._partition_of(raw_key)
        with self._db.write() as conn:
            offset, ts, cum = self._reserve(conn, partition, 1, time.time())
            row = (self._bases[partition] + offset, ts, cum + size, raw_key, blob, payload)
            conn.execute(log.INSERT, row)
        self._maybe_apply_retention()
        return Offset(partition, offset)

    def append_many(
        self,
        payloads: Iterable[BytesLike],
        *,
        key: KeyLike | None = None,
        keys: Iterable[KeyLike | None] | None = None,
        headers: Mapping[str, BytesLike] | Sequence[Mapping[str, BytesLike] | None] | None = None,
    ) -> list[Offset]:
        """Append records in one transaction; return their offsets in input order.

        ``key`` applies to every record; ``keys`` gives one key (or None) per record
        (str keys as in :meth:`append`).
        ``headers`` is one mapping for every record, or a sequence with one per record.
        All or nothing: on any error (TypeError, PayloadTooLarge, InvalidArgument for
        mismatched lengths, a database error) no record is stored.
        """
        items = payloads if isinstance(payloads, list) else list(payloads)
        key_list = self._keys_for(len(items), key, keys)
        header_list = self._headers_for(len(items), headers)
        if key_list is None and header_list is None and items:
            return self._append_plain(items)
        prepared = self._prepare(items, key_list, header_list)
        if not prepared:
            return []
        return self._store(prepared)

    def _append_plain(self, given: list[BytesLike]) -> list[Offset]:
        """append_many's fast path for records without key or headers (C-level loops)."""
        if set(map(type, given)) == {bytes}:
            items: list[bytes] = given  # type: ignore[assignment]
        else:
            items = [codec.as_bytes(p, f"payload #{i}") for i, p in enumerate(given)]
        sizes = list(map(len, items))
        if max(sizes) > self.max_payload_size:
            self._record_size(items[sizes.index(max(sizes))], None, None)
        count, spread = len(items), self.partitions
        first = self._round_robin
        self._round_robin = (first + count) % spread
        now = time.time()
        rows: list[tuple[object, ...]] = []
        starts = {}
        with self._db.write() as conn:
            for j in range(min(spread, count)):
                partition = (first + 1 + j) % spread
                part_sizes = sizes[j::spread]
                offset, ts, cum = self._reserve(conn, partition, len(part_sizes), now)
                starts[partition] = offset
                base = self._bases[partition] + offset
                rows += zip(
                    range(base, base + len(part_sizes)),
                    itertools.repeat(ts),
                    itertools.islice(itertools.accumulate(part_sizes, initial=cum), 1, None),
                    itertools.repeat(None),
                    itertools.repeat(None),
                    items[j::spread],
                )
            conn.executemany(log.INSERT, rows)
        self._maybe_apply_retention()
        return [
            Offset(p, starts[p] + i // spread)
            for i, p in enumerate((first + 1 + i) % spread for i in range(count))
        ]

    def _keys_for(
        self, count: int, key: KeyLike | None, keys: Iterable[KeyLike | None] | None
    ) -> list[bytes | None] | None:
        if keys is None:
            return None if key is None else [codec.as_key(key)] * count
        if key is not None:
            raise InvalidArgument("give either key= (one for all) or keys= (one per record)")
        key_list = [None if k is None else codec.as_key(k) for k in keys]
        if len(key_list) != count:
            raise InvalidArgument(f"keys has {len(key_list)} items for {count} payloads")
        return None if key_list.count(None) == count else key_list

    @staticmethod
    def _headers_for(count: int, headers: object) -> list[bytes | None] | None:
        if headers is None or isinstance(headers, Mapping):
            blob = codec.encode_headers(headers)
            return None if blob is None else [blob] * count
        if not isinstance(headers, Sequence) or isinstance(headers, (str, bytes)):
            raise TypeError("headers must be a dict of str -> bytes, or a list of them")
        if len(headers) != count:
            raise InvalidArgument(f"headers has {len(headers)} items for {count} payloads")
        return [codec.encode_headers(h) for h in headers]

    def _prepare(
        self,
        items: list[BytesLike],
        keys: list[bytes | None] | None,
        headers: list[bytes | None] | None,
    ) -> list[tuple[int, bytes | None, bytes | None, bytes, int]]:
        """Check every record and choose its partition: (partition, key, headers, payload, size)."""
        prepared = []
        limit = self.max_payload_size
        for i, payload in enumerate(items):
            if type(payload) is not bytes:
                payload = codec.as_bytes(payload, f"payload #{i}")
            k = None if keys is None else keys[i]
            h = None if headers is None else headers[i]
            size = len(payload)
            if k is not None or h is not None or size > limit:
                size = self._record_size(payload, k, h)
            prepared.append((self._partition_of(k), k, h, payload, size))
        return prepared

    def _store(
        self, prepared: list[tuple[int, bytes | None, bytes | None, bytes, int]]
    ) -> list[Offset]:
        counts: dict[int, int] = {}
        for entry in prepared:
            counts[entry[0]] = counts.get(entry[0], 0) + 1
        now = time.time()
        rows = []
        offsets = []
        with self._db.write() as conn:
            state = {p: self._reserve(conn, p, n, now) for p, n in counts.items()}
            bases = self._bases
            for partition, k, h, payload, size in prepared:
                offset, ts, cum = state[partition]
                state[partition] = (offset + 1, ts, cum + size)
                rows.append((bases[partition] + offset, ts, cum + size, k, h, payload))
                offsets.append(Offset(partition, offset))
            conn.executemany(log.INSERT, rows)
        self._maybe_apply_retention()
        return offsets

    def _reserve(
        self, conn: sqlite3.Connection, partition: int, count: int, now: float
    ) -> tuple[int, float, int]:
        """Inside a write: return (first offset, timestamp, bytes so far) for ``count`` records.

        The timestamp never goes below the partition's newest one (clocks can step back).
        """
        offset, last_ts, cum = log.tail(conn, self._pids[partition])
        self._check_offset_limit(offset + count)
        return offset, max(now, last_ts), cum

    def _check_offset_limit(self, next_offset: int) -> None:
        if next_offset >= log.OFFSET_LIMIT:
            raise StreamError(
                f"topic {self.topic!r} has used all {log.OFFSET_LIMIT} offsets of a partition; "
                "append to a new topic"
            )

    # -- retention -----------------------------------------------------------------------

    def _maybe_apply_retention(self) -> None:
        now = time.monotonic()
        if now >= self._retention_due:
            self._retention_due = now + RETENTION_INTERVAL
            self.apply_retention()

    def apply_retention(self) -> dict[int, int]:
        """Delete the records the topic's retention no longer keeps; return counts per partition.

        Runs automatically about once a second while appending. Deletes contiguous offset
        ranges (in chunks, so the write lock is never held long); never loads the topic
        into memory and never rewrites the file (freed pages are reused by new records).
        """
        retention = self.retention
        if retention is None:
            return {}
        deleted: dict[int, int] = {}
        for partition, pid in enumerate(self._pids):
            while True:
                with self._db.write() as conn:
                    first, cut = log.retention_step(
                        conn, pid, retention.max_age, retention.max_bytes, time.time()
                    )
                if cut == first:
                    break
                deleted[partition] = deleted.get(partition, 0) + cut - first
                logger.info(
                    "retention: topic %r partition %d: deleted offsets %d..%d",
                    self.topic,
                    partition,
                    first,
                    cut - 1,
                )
                if cut - first < log.RETENTION_CHUNK:
                    break
        return deleted

    # -- reading without a group ---------------------------------------------------------

    def read(self, partition: int, offset: int, max_records: int = 500) -> list[Record]:
        """Return up to ``max_records`` retained records of ``partition`` from ``offset`` on.

        A stateless read that belongs to no group. Offsets already deleted by retention
        are skipped. Raises InvalidArgument for a bad partition, offset or count.
        """
        self._check_partition(partition)
        codec.check_int(offset, "offset")
        codec.check_int(max_records, "max_records", minimum=1)
        base = self._bases[partition]
        offset = min(offset, log.OFFSET_LIMIT)
        with self._db.read() as conn:
            rows = conn.execute(
                log.FETCH, (base, base + offset, base + log.OFFSET_LIMIT, max_records)
            ).fetchall()
        return records_from_rows(self.topic, partition, base, rows, offset, max_records)

    def earliest_offsets(self) -> dict[int, int]:
        """Return partition -> earliest retained offset (the end offset when none is retained)."""
        return {p: start for p, (start, _end) in self._bounds().items()}

    def end_offsets(self) -> dict[int, int]:
        """Return partition -> end offset (the offset the next appended record will get)."""
        return {p: end for p, (_start, end) in self._bounds().items()}

    def _bounds(self) -> dict[int, tuple[int, int]]:
        with self._db.read() as conn:
            rows = conn.execute(log.PARTITION_STATE, (self._row.id,)).fetchall()
        return {p: (start, end) for p, _pid, start, end in rows}

    def offsets_for_timestamp(self, timestamp: float | datetime) -> dict[int, int]:
        """Return partition -> first retained offset appended at or after ``timestamp``.

        ``timestamp`` is seconds since the epoch or a datetime; a partition with no such
        record maps to its end offset.
        """
        ts = to_timestamp(timestamp)
        with self._db.read() as conn:
            return {p: log.offset_for_timestamp(conn, pid, ts) for p, pid in enumerate(self._pids)}

    def wait(self, timeout: float | None) -> bool:
        """Block until the file changes (e.g. a record is appended) or ``timeout`` passes.

        Returns True on a change, False on timeout (None waits forever). For readers that
        follow the topic with :meth:`read`; consumers' ``poll`` waits by itself.
        """
        codec.check_seconds(timeout, "timeout")
        return self._db.wait_for_change(timeout)

    # -- groups --------------------------------------------------------------------------

    def consumer(
        self,
        group: str,
        *,
        start: str = "earliest",
        lease: float = DEFAULT_LEASE,
        on_assign: AssignmentCallback[Consumer] | None = None,
        on_revoke: AssignmentCallback[Consumer] | None = None,
    ) -> Consumer:
        """Join consumer group ``group`` and return a new member.

        ``start`` ("earliest" or "latest") is where the group begins in a partition for which
        it has no committed offset yet; that starting offset is stored at once. ``lease`` is
        how long (seconds) the member keeps its partitions without polling. ``on_assign`` and
        ``on_revoke`` are called as ``f(consumer, partitions)`` from inside ``poll`` when
        partitions are gained, or are about to be handed over (see docs/stream.md).
        """
        handle = TopicHandle(
            self.path, self.durability, self.topic, self._row.id, self._pids, self._bases
        )
        consumer = Consumer(
            handle, group, start=start, lease=lease, on_assign=on_assign, on_revoke=on_revoke
        )
        self._consumers.add(consumer)
        return consumer

    def topics(self) -> list[TopicInfo]:
        """Describe every topic of this file (see :func:`topics`)."""
        return _topics(self._db)

    def groups(self) -> list[GroupInfo]:
        """Describe every consumer group of this topic (see :func:`groups`)."""
        return _groups(self._db, self.topic, None)

    def reset_offsets(
        self,
        group: str,
        *,
        to: str | int | None = None,
        timestamp: float | datetime | None = None,
        partitions: Iterable[int] | None = None,
        dry_run: bool = False,
    ) -> dict[int, int]:
        """Set ``group``'s committed offsets; return partition -> new offset.

        Exactly one of ``to`` ("earliest", "latest" or an offset applied to every chosen
        partition) and ``timestamp`` (first record at or after it). ``partitions`` limits
        the change (default: all). The group must have no live member (like Kafka's tool):
        raises StreamError naming them otherwise. OffsetOutOfRange for an offset outside a
        partition's retained range. ``dry_run`` computes without writing.
        """
        check_group(group)
        if (to is None) == (timestamp is None):
            raise InvalidArgument("give exactly one of to= and timestamp=")
        if isinstance(to, str) and to not in START_POSITIONS:
            raise InvalidArgument(f"to must be 'earliest', 'latest' or an offset, not {to!r}")
        if to is not None and not isinstance(to, str):
            codec.check_int(to, "offset")
        ts = None if timestamp is None else to_timestamp(timestamp)
        chosen = sorted({self._check_partition(p) for p in (partitions or range(self.partitions))})
        with self._db.write() as conn:
            self._refuse_live_members(conn, group)
            targets = {p: self._reset_target(conn, p, to, ts) for p in chosen}
            if not dry_run:
                now = time.time()
                conn.executemany(
                    "INSERT INTO stream_offsets (grp, pid, committed, committed_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (grp, pid)"
                    " DO UPDATE SET committed = excluded.committed,"
                    " committed_at = excluded.committed_at, owner = NULL",
                    [(group, self._pids[p], off, now) for p, off in targets.items()],
                )
        if not dry_run:
            logger.info("group %r of topic %r: offsets reset to %s", group, self.topic, targets)
        return targets

    def _refuse_live_members(self, conn: sqlite3.Connection, group: str) -> None:
        live = [
            r[0]
            for r in conn.execute(
                "SELECT member FROM stream_members WHERE topic_id = ? AND grp = ?"
                " AND expires_at >= ?",
                (self._row.id, group, self._db.now()),
            )
        ]
        if live:
            raise StreamError(
                f"group {group!r} of topic {self.topic!r} has {len(live)} live member(s) "
                f"({', '.join(live)}); stop them, or wait for their lease to expire, then retry"
            )

    def _reset_target(
        self, conn: sqlite3.Connection, partition: int, to: str | int | None, ts: float | None
    ) -> int:
        pid = self._pids[partition]
        start, end = log.partition_bounds(conn, pid)
        if ts is not None:
            return log.first_offset_at_least(conn, pid, start, end, "ts", ts)
        if to == "earliest":
            return start
        if to == "latest":
            return end
        assert isinstance(to, int)
        check_in_range(self.topic, partition, to, start, end)
        return to

    # -- life cycle ----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._db.closed

    def close(self) -> None:
        """Close the stream and every consumer it created; safe to call twice."""
        for consumer in list(self._consumers):
            consumer.close()
        self._db.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Stream({str(self.path)!r}, {self.topic!r}, partitions={self.partitions})"


# -- introspection -----------------------------------------------------------------------


def _open_existing(path: str | os.PathLike[str]) -> Database:
    if not Path(path).exists():
        raise InvalidArgument(f"{path} does not exist")
    return Database(path)


def topics(path: str | os.PathLike[str]) -> list[TopicInfo]:
    """Describe every topic of the file at ``path``: partitions, retained offsets and bytes.

    Raises InvalidArgument if the file does not exist (it is never created).
    """
    with _open_existing(path) as db:
        return _topics(db)


def groups(
    path: str | os.PathLike[str], *, topic: str | None = None, group: str | None = None
) -> list[GroupInfo]:
    """Describe consumer groups of the file (optionally of one topic / one group name):
    live members and, per partition, committed offset, end offset, lag and owner.
    """
    with _open_existing(path) as db:
        return _groups(db, topic, group)


def _topics(db: Database) -> list[TopicInfo]:
    with db.read() as conn:
        rows = conn.execute(log.TOPICS).fetchall()
    result = []
    for name, group_rows in itertools.groupby(rows, key=lambda r: r[0]):
        parts = list(group_rows)
        _name, age, size, created = parts[0][:4]
        retention = None if age is None and size is None else Retention(age, size)
        infos = tuple(
            PartitionInfo(p, start, end, end - start, nbytes, last_ts or None)
            for *_, p, start, end, nbytes, last_ts in parts
        )
        result.append(TopicInfo(name, infos, retention, created))
    return result


def _groups(db: Database, topic: str | None, group: str | None) -> list[GroupInfo]:
    with db.read() as conn:
        rows = conn.execute(log.GROUP_OFFSETS, (topic, group)).fetchall()
        member_rows = conn.execute(log.LIVE_MEMBERS, (topic, group, db.now())).fetchall()
    members: dict[tuple[str, str], list[str]] = {}
    for t, g, m in member_rows:
        members.setdefault((t, g), []).append(m)
    result = []
    for (t, g), group_rows in itertools.groupby(rows, key=lambda r: (r[0], r[1])):
        live = members.get((t, g), [])
        parts = tuple(
            GroupPartition(
                p,
                committed,
                start,
                end,
                end - max(committed, start),
                owner if owner in live else None,
            )
            for _t, _g, p, committed, start, end, owner, _at in group_rows
        )
        result.append(GroupInfo(t, g, tuple(live), parts))
    return result
