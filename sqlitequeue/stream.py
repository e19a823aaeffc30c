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
import socket
import sqlite3
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from sqlitequeue import _stream_codec as codec
from sqlitequeue import _stream_log as log
from sqlitequeue._db import Database
from sqlitequeue.errors import (
    Closed,
    InvalidArgument,
    NotPartitionOwner,
    OffsetOutOfRange,
    PayloadTooLarge,
    StreamError,
)

logger = logging.getLogger("sqlitequeue.stream")

#: Default largest record (payload + key + encoded headers), as Kafka's message.max.bytes.
DEFAULT_MAX_PAYLOAD_SIZE = 1024 * 1024
#: Default member lease: a member that does not poll for this long loses its partitions.
DEFAULT_LEASE = 10.0
#: How often an appending Stream applies the topic's retention, in seconds.
RETENTION_INTERVAL = 1.0
#: Largest number of partitions of one topic.
MAX_PARTITIONS = 4096
#: Topic names: Kafka's rule (letters, digits, ".", "_", "-"; up to 249 characters).
TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
START_POSITIONS = ("earliest", "latest")

#: What payloads, keys and header values may be (stored as bytes).
BytesLike = bytes | bytearray | memoryview


class Offset(NamedTuple):
    """Where a record was stored: its partition and its offset in that partition."""

    partition: int
    offset: int


class Record(NamedTuple):
    """One record read from a topic. ``timestamp`` is seconds since the epoch (append time)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    payload: bytes
    headers: Mapping[str, bytes]
    timestamp: float


class Reset(NamedTuple):
    """A position moved by the consumer itself: ``from_offset`` was no longer retained."""

    partition: int
    from_offset: int
    to_offset: int
    reason: str


@dataclass(frozen=True)
class Retention:
    """How long a topic keeps records: by age (seconds) and/or size (bytes per partition).

    A record is deleted once it is older than ``max_age`` or once the newer records of its
    partition alone exceed ``max_bytes`` (payload + key + headers). None = no limit.
    """

    max_age: float | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        codec.check_seconds(self.max_age, "Retention.max_age")
        if self.max_bytes is not None:
            codec.check_int(self.max_bytes, "Retention.max_bytes", minimum=0)


@dataclass(frozen=True)
class PartitionInfo:
    """One partition of a topic: retained offsets [earliest, end), bytes and newest time."""

    partition: int
    earliest: int
    end: int
    records: int
    bytes: int
    last_timestamp: float | None


@dataclass(frozen=True)
class TopicInfo:
    """A topic of the file, as :func:`topics` reports it."""

    name: str
    partitions: tuple[PartitionInfo, ...]
    retention: Retention | None
    created_at: float

    @property
    def records(self) -> int:
        """Records retained over all partitions."""
        return sum(p.records for p in self.partitions)

    @property
    def bytes(self) -> int:
        """Bytes retained over all partitions (payload + key + headers)."""
        return sum(p.bytes for p in self.partitions)


@dataclass(frozen=True)
class GroupPartition:
    """A group's progress in one partition; ``lag`` counts retained records not committed."""

    partition: int
    committed: int
    earliest: int
    end: int
    lag: int
    owner: str | None


@dataclass(frozen=True)
class GroupInfo:
    """A consumer group of a topic, as :func:`groups` reports it."""

    topic: str
    group: str
    members: tuple[str, ...]
    partitions: tuple[GroupPartition, ...]

    @property
    def lag(self) -> int:
        """Total lag over all partitions."""
        return sum(p.lag for p in self.partitions)


def _timestamp(value: object, what: str = "timestamp") -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    seconds = codec.check_seconds(value, what, allow_none=False)
    assert seconds is not None
    return seconds


def _check_group(group: object) -> str:
    if not isinstance(group, str) or not group:
        raise InvalidArgument(f"group must be a non-empty str, not {group!r}")
    return group


class Stream:
    """A topic of a sqlitequeue file: append records, read them through consumer groups.

    ``partitions`` is used when the topic is created (default 1); for an existing topic it
    must be None or its actual count. ``retention`` (a :class:`Retention`) is stored with
    the topic; None keeps what is stored. ``durability`` is ``"full"``, ``"normal"`` or
    ``"off"`` (see :class:`sqlitequeue._db.Database`). ``create=False`` raises
    InvalidArgument instead of creating a missing topic. Thread-safe; use one per process.
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
        codec.check_int(partition, "partition")
        assert isinstance(partition, int)
        if partition >= self.partitions:
            raise InvalidArgument(
                f"topic {self.topic!r} has partitions 0..{self.partitions - 1}; "
                f"there is no partition {partition}"
            )
        return partition

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
        key: BytesLike | None = None,
        headers: Mapping[str, BytesLike] | None = None,
    ) -> Offset:
        """Append one record; return where it was stored once it is committed.

        Raises TypeError for a payload, key or header value that is not bytes-like,
        PayloadTooLarge over ``max_payload_size``; nothing is stored in either case.
        """
        payload = codec.as_bytes(payload, "payload")
        if key is not None:
            key = codec.as_bytes(key, "key")
        blob = codec.encode_headers(headers)
        size = self._record_size(payload, key, blob)
        partition = self._partition_of(key)
        with self._db.write() as conn:
            offset, ts, cum = self._reserve(conn, partition, 1, time.time())
            row = (self._bases[partition] + offset, ts, cum + size, key, blob, payload)
            conn.execute(log.INSERT, row)
        self._maybe_apply_retention()
        return Offset(partition, offset)

    def append_many(
        self,
        payloads: Iterable[BytesLike],
        *,
        key: BytesLike | None = None,
        keys: Iterable[BytesLike | None] | None = None,
        headers: Mapping[str, BytesLike] | Sequence[Mapping[str, BytesLike] | None] | None = None,
    ) -> list[Offset]:
        """Append records in one transaction; return their offsets in input order.

        ``key`` applies to every record; ``keys`` gives one key (or None) per record.
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
        self, count: int, key: BytesLike | None, keys: Iterable[BytesLike | None] | None
    ) -> list[bytes | None] | None:
        if keys is None:
            return None if key is None else [codec.as_bytes(key, "key")] * count
        if key is not None:
            raise InvalidArgument("give either key= (one for all) or keys= (one per record)")
        key_list = [None if k is None else codec.as_bytes(k, "key") for k in keys]
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
        with self._db.read() as conn:
            rows = conn.execute(
                log.FETCH,
                (base + min(offset, log.OFFSET_LIMIT), base + log.OFFSET_LIMIT, max_records),
            ).fetchall()
        return _records(self.topic, partition, base, rows)

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
        ts = _timestamp(timestamp)
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
        self, group: str, *, start: str = "earliest", lease: float = DEFAULT_LEASE
    ) -> Consumer:
        """Join consumer group ``group`` and return a new member.

        ``start`` ("earliest" or "latest") is where the group begins in a partition for which
        it has no committed offset yet; that starting offset is stored at once. ``lease`` is
        how long (seconds) the member keeps its partitions without polling.
        """
        consumer = Consumer(self, group, start=start, lease=lease)
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
        _check_group(group)
        if (to is None) == (timestamp is None):
            raise InvalidArgument("give exactly one of to= and timestamp=")
        if isinstance(to, str) and to not in START_POSITIONS:
            raise InvalidArgument(f"to must be 'earliest', 'latest' or an offset, not {to!r}")
        if to is not None and not isinstance(to, str):
            codec.check_int(to, "offset")
        ts = None if timestamp is None else _timestamp(timestamp)
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
                (self._row.id, group, time.time()),
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
        _check_in_range(self.topic, partition, to, start, end)
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


def _check_in_range(topic: str, partition: int, offset: int, start: int, end: int) -> None:
    if not start <= offset <= end:
        raise OffsetOutOfRange(
            f"offset {offset} is outside partition {partition} of topic {topic!r}: its "
            f"retained offsets are {start}..{end} (the end offset {end} means 'next record')"
        )


def _records(topic: str, partition: int, base: int, rows: list[tuple]) -> list[Record]:
    decode = codec.decode_headers
    empty = codec.NO_HEADERS
    return [
        Record(topic, partition, rid - base, key, payload, empty if h is None else decode(h), ts)
        for rid, ts, key, h, payload in rows
    ]


_UPSERT_MEMBER = (
    "INSERT INTO stream_members (topic_id, grp, member, expires_at, joined_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (topic_id, grp, member)"
    " DO UPDATE SET expires_at = excluded.expires_at"
)
_ASSIGNMENT_STATE = (
    "SELECT p.partition, p.pid, p.log_start, p.next_offset, o.committed, o.owner"
    " FROM stream_partition_state p LEFT JOIN stream_offsets o ON o.pid = p.pid AND o.grp = ?"
    " WHERE p.topic_id = ? ORDER BY p.partition"
)
_COMMIT = (
    "UPDATE stream_offsets SET committed = ?, committed_at = ? WHERE grp = ? AND pid = ?"
    " AND owner = ?"
)


class Consumer:
    """A member of a consumer group reading one topic. Create it with :meth:`Stream.consumer`.

    Owns some of the topic's partitions (all of them when it is the group's only member),
    reads them from its position, and commits positions to the group. Not thread-safe:
    use one consumer per thread. ``resets`` lists the positions this consumer moved
    because retention had deleted them (each also logged as a warning).
    """

    def __init__(self, stream: Stream, group: str, *, start: str, lease: float) -> None:
        self.group = _check_group(group)
        if start not in START_POSITIONS:
            raise InvalidArgument(f"start must be 'earliest' or 'latest', not {start!r}")
        lease_seconds = codec.check_seconds(lease, "lease", allow_none=False)
        assert lease_seconds is not None
        if lease_seconds <= 0:
            raise InvalidArgument("lease must be > 0 seconds")
        self.stream = stream
        self.topic = stream.topic
        self.start = start
        self.lease = lease_seconds
        self.member = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.resets: list[Reset] = []
        self._topic_id = stream._row.id
        self._pids = stream._pids
        self._bases = stream._bases
        self._positions: dict[int, int] = {}  # owned partition -> next offset to read
        self._committed: dict[int, int] = {}  # owned partition -> offset committed in the file
        self._rotation = 0
        self._next_heartbeat = 0.0
        self._db = Database(stream.path, durability=stream.durability)
        try:
            self._heartbeat()
        except BaseException:
            self._db.close()
            raise

    # -- membership ----------------------------------------------------------------------

    def _heartbeat(self) -> None:
        """Renew this member's lease; take and release partitions to match the live members.

        Partition ``p`` belongs to the ``p % n``-th live member (by id). A member takes a
        partition only when it is free (never owned, released, or its owner's lease
        expired), so a partition never has two live owners.
        """
        now = time.time()
        pending = False
        with self._db.write() as conn:
            key = (self._topic_id, self.group)
            conn.execute(_UPSERT_MEMBER, (*key, self.member, now + self.lease, now))
            conn.execute(
                "DELETE FROM stream_members WHERE topic_id = ? AND grp = ? AND expires_at < ?",
                (*key, now),
            )
            members = [
                r[0]
                for r in conn.execute(
                    "SELECT member FROM stream_members WHERE topic_id = ? AND grp = ?"
                    " ORDER BY member",
                    key,
                )
            ]
            live = set(members)
            for row in conn.execute(_ASSIGNMENT_STATE, (self.group, self._topic_id)).fetchall():
                pending |= self._reconcile(conn, members, live, now, *row)
        interval = self.lease / (10 if pending else 3)
        self._next_heartbeat = time.monotonic() + interval

    def _reconcile(
        self,
        conn: sqlite3.Connection,
        members: list[str],
        live: set[str],
        now: float,
        partition: int,
        pid: int,
        start: int,
        end: int,
        committed: int | None,
        owner: str | None,
    ) -> bool:
        """Take, keep or release one partition; return True if it is ours but not yet free."""
        mine = members[partition % len(members)] == self.member
        if owner != self.member and partition in self._positions:
            self._drop(partition, f"was taken over by {owner or 'nobody'}")
        if owner == self.member and not mine:
            conn.execute(
                "UPDATE stream_offsets SET owner = NULL WHERE grp = ? AND pid = ?",
                (self.group, pid),
            )
            self._drop(partition, "was handed over to another member")
            return False
        if not mine:
            return False
        if owner is not None and owner != self.member and owner in live:
            return True  # the previous owner releases it at its next heartbeat
        if owner == self.member and partition in self._positions:
            return False
        if committed is None:
            committed = start if self.start == "earliest" else end
            conn.execute(
                "INSERT INTO stream_offsets (grp, pid, committed, committed_at, owner)"
                " VALUES (?, ?, ?, ?, ?)",
                (self.group, pid, committed, now, self.member),
            )
        else:
            conn.execute(
                "UPDATE stream_offsets SET owner = ? WHERE grp = ? AND pid = ?",
                (self.member, self.group, pid),
            )
        if owner is not None and owner != self.member:
            logger.info(
                "group %r of topic %r: %s took partition %d from expired member %s",
                self.group,
                self.topic,
                self.member,
                partition,
                owner,
            )
        self._committed[partition] = committed
        self._positions[partition] = committed
        if committed < start:
            self._reset(partition, committed, start)
        return False

    def _drop(self, partition: int, why: str) -> None:
        position = self._positions.pop(partition, None)
        committed = self._committed.pop(partition, None)
        if position is not None and position != committed:
            logger.info(
                "group %r of topic %r: partition %d %s; records %d..%d were not committed "
                "and will be delivered again to its new owner",
                self.group,
                self.topic,
                partition,
                why,
                committed,
                position - 1,
            )

    def _reset(self, partition: int, old: int, new: int) -> None:
        reason = (
            f"offset {old} of partition {partition} of topic {self.topic!r} was deleted by "
            f"retention; group {self.group!r} continues at the earliest retained offset {new}"
        )
        self.resets.append(Reset(partition, old, new, reason))
        self._positions[partition] = new
        logger.warning("%s (%d records skipped)", reason, new - old)

    # -- reading -------------------------------------------------------------------------

    def poll(self, max_records: int = 500, timeout: float | None = None) -> list[Record]:
        """Return up to ``max_records`` records from the owned partitions, oldest first per
        partition, and advance the position past them.

        Blocks until at least one record is available or ``timeout`` seconds pass (None
        waits forever; 0 never waits), then returns an empty list. Also heartbeats: renews
        this member's lease and takes part in rebalancing. Wakes within a few ms of an
        append by another process.
        """
        codec.check_int(max_records, "max_records", minimum=1)
        codec.check_seconds(timeout, "timeout")
        self._check_open()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if time.monotonic() >= self._next_heartbeat:
                self._heartbeat()
            records = self._fetch(max_records)
            if records:
                return records
            version = self._db.data_version()
            records = self._fetch(max_records)  # anything committed before `version`
            if records:
                return records
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return []
            wait = self._next_heartbeat - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            self._wait_for_change(version, wait)

    def _wait_for_change(self, version: int, timeout: float) -> None:
        """Sleep until the file changes after ``version`` was read, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        sleep = 0.00005
        while self._db.data_version() == version:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(sleep, left))
            sleep = min(sleep * 1.5, 0.002)

    def _fetch(self, max_records: int) -> list[Record]:
        owned = list(self._positions)
        if not owned:
            return []
        self._rotation += 1
        first = self._rotation % len(owned)
        records: list[Record] = []
        with self._db.read() as conn:
            for partition in owned[first:] + owned[:first]:
                position = self._positions[partition]
                base = self._bases[partition]
                rows = conn.execute(
                    log.FETCH,
                    (base + position, base + log.OFFSET_LIMIT, max_records - len(records)),
                ).fetchall()
                if not rows:
                    continue
                if rows[0][0] - base != position:
                    self._reset(partition, position, rows[0][0] - base)
                records += _records(self.topic, partition, base, rows)
                self._positions[partition] = rows[-1][0] - base + 1
                if len(records) >= max_records:
                    break
        return records

    # -- positions -----------------------------------------------------------------------

    def commit(self, offsets: Mapping[int, int] | Iterable[Offset] | None = None) -> None:
        """Commit offsets for the group, all or nothing.

        Without arguments commits the position (after the last polled record) of every
        owned partition. ``offsets`` maps partition -> next offset to read (or is a list of
        :class:`Offset` with that meaning). Raises NotPartitionOwner if a partition is
        owned by another member now (its uncommitted records go to that member; nothing
        is committed), OffsetOutOfRange for an offset past the end, InvalidArgument for
        a bad partition or offset.
        """
        self._check_open()
        if offsets is None:
            updates = {
                p: pos for p, pos in self._positions.items() if self._committed.get(p) != pos
            }
            explicit = False
        else:
            updates = self._check_offsets(offsets)
            explicit = True
        if not updates:
            return
        now = time.time()
        args = [(off, now, self.group, self._pids[p], self.member) for p, off in updates.items()]
        lost: list[int] = []
        try:
            with self._db.write() as conn:
                if explicit:
                    for p, off in updates.items():
                        _start, end = log.partition_bounds(conn, self._pids[p])
                        if off > end:
                            _check_in_range(self.topic, p, off, 0, end)
                cursor = conn.executemany(_COMMIT, args)
                if cursor.rowcount != len(args):
                    lost = self._lost_partitions(conn, updates)
                    raise NotPartitionOwner(self._not_owner_message(lost))
        except NotPartitionOwner:
            for partition in lost:
                self._drop(partition, "was lost")
            self._next_heartbeat = 0.0
            raise
        self._committed.update(updates)

    def _check_offsets(self, offsets: object) -> dict[int, int]:
        pairs: Iterable[tuple[object, object]]
        if isinstance(offsets, Mapping):
            pairs = offsets.items()
        elif isinstance(offsets, Iterable) and not isinstance(offsets, (str, bytes)):
            pairs = [self._offset_pair(o) for o in offsets]
        else:
            raise InvalidArgument(
                f"offsets must be a dict partition -> offset, not {type(offsets).__name__}"
            )
        updates = {}
        for partition, offset in pairs:
            p = self.stream._check_partition(partition)
            updates[p] = codec.check_int(offset, f"offset for partition {p}")
        return updates

    @staticmethod
    def _offset_pair(item: object) -> tuple[object, object]:
        if isinstance(item, Offset) or (isinstance(item, tuple) and len(item) == 2):
            return item[0], item[1]
        raise InvalidArgument(f"offsets must hold Offset(partition, offset) items, not {item!r}")

    def _lost_partitions(self, conn: sqlite3.Connection, updates: Mapping[int, int]) -> list[int]:
        lost = []
        for p in updates:
            row = conn.execute(
                "SELECT owner FROM stream_offsets WHERE grp = ? AND pid = ?",
                (self.group, self._pids[p]),
            ).fetchone()
            if row is None or row[0] != self.member:
                lost.append(p)
        return lost

    def _not_owner_message(self, lost: list[int]) -> str:
        return (
            f"member {self.member} of group {self.group!r} no longer owns partition(s) "
            f"{', '.join(map(str, lost))} of topic {self.topic!r} (its lease expired and "
            "another member took them over), so nothing was committed; their uncommitted "
            f"records go to the new owner. Poll at least every {self.lease:g} s (the lease), "
            "or raise lease="
        )

    def _owned(self, partition: object) -> int:
        p = self.stream._check_partition(partition)
        if p not in self._positions:
            raise NotPartitionOwner(
                f"partition {p} of topic {self.topic!r} is not assigned to member "
                f"{self.member} of group {self.group!r}; it owns {self.assignment()}"
            )
        return p

    def seek(self, partition: int, offset: int) -> None:
        """Move the position of an owned ``partition`` to ``offset`` (next poll reads it).

        Raises InvalidArgument for a bad partition or offset, NotPartitionOwner if this
        member does not own the partition, OffsetOutOfRange outside the retained range
        (the end offset itself is allowed). Commit to make it the group's position.
        """
        self._check_open()
        p = self._owned(partition)
        codec.check_int(offset, "offset")
        with self._db.read() as conn:
            start, end = log.partition_bounds(conn, self._pids[p])
        _check_in_range(self.topic, p, offset, start, end)
        self._positions[p] = offset

    def seek_to_timestamp(self, timestamp: float | datetime) -> dict[int, int]:
        """Move every owned partition to its first record at or after ``timestamp``.

        Returns partition -> new position (the end offset where no record is that recent).
        """
        self._check_open()
        ts = _timestamp(timestamp)
        with self._db.read() as conn:
            for p in self._positions:
                self._positions[p] = log.offset_for_timestamp(conn, self._pids[p], ts)
        return dict(self._positions)

    def seek_to_beginning(self) -> dict[int, int]:
        """Move every owned partition to its earliest retained offset; return the positions."""
        return self._seek_all(0)

    def seek_to_end(self) -> dict[int, int]:
        """Move every owned partition to its end offset; return the positions."""
        return self._seek_all(1)

    def _seek_all(self, which: int) -> dict[int, int]:
        self._check_open()
        with self._db.read() as conn:
            for p in self._positions:
                self._positions[p] = log.partition_bounds(conn, self._pids[p])[which]
        return dict(self._positions)

    def position(self) -> dict[int, int]:
        """Return owned partition -> next offset this consumer will read."""
        return dict(self._positions)

    def committed(self) -> dict[int, int]:
        """Return owned partition -> offset committed by the group (as last seen)."""
        return dict(self._committed)

    def assignment(self) -> list[int]:
        """Return the partitions this member owns now (changes at rebalances)."""
        return sorted(self._positions)

    def lag(self) -> dict[int, int]:
        """Return owned partition -> retained records after this consumer's position."""
        self._check_open()
        with self._db.read() as conn:
            bounds = {p: log.partition_bounds(conn, self._pids[p]) for p in self._positions}
        return {p: end - max(self._positions[p], start) for p, (start, end) in bounds.items()}

    # -- life cycle ----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._db.closed

    def _check_open(self) -> None:
        if self._db.closed:
            raise Closed(f"consumer {self.member} of group {self.group!r} was closed")

    def close(self) -> None:
        """Leave the group without committing: release the partitions at once (the other
        members take them at their next poll) and close the connection. Safe to call twice.
        """
        if self._db.closed:
            return
        try:
            with self._db.write() as conn:
                conn.execute(
                    "UPDATE stream_offsets SET owner = NULL WHERE grp = ? AND owner = ?",
                    (self.group, self.member),
                )
                conn.execute(
                    "DELETE FROM stream_members WHERE topic_id = ? AND grp = ? AND member = ?",
                    (self._topic_id, self.group, self.member),
                )
        finally:
            self._positions.clear()
            self._db.close()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Consumer(topic={self.topic!r}, group={self.group!r}, member={self.member!r})"


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
        member_rows = conn.execute(log.LIVE_MEMBERS, (topic, group, time.time())).fetchall()
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
