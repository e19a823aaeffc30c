"""The stream's data types (records, offsets, retention, introspection) and shared checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlitequeue import _stream_codec as codec
from sqlitequeue._checks import check_text
from sqlitequeue._stream_batch import decode_batch
from sqlitequeue.errors import InvalidArgument, OffsetOutOfRange

#: Where a group starts in a partition it has no committed offset for.
START_POSITIONS = ("earliest", "latest")

#: What payloads, keys and header values may be (stored as bytes).
BytesLike = bytes | bytearray | memoryview

#: What a record key may be: a str is stored as its UTF-8 bytes; keys are read back as bytes.
KeyLike = str | bytes | bytearray | memoryview


class Offset(NamedTuple):
    """Where a record was stored: its partition and its offset in that partition."""

    partition: int
    offset: int


class TopicHandle(NamedTuple):
    """What a consumer needs of its stream: the file, and the topic's stored layout.

    ``pids`` are the partitions' global ids, ``bases`` their first record ids
    (``pid << SHIFT``), both indexed by partition number.
    """

    path: Path
    durability: str
    name: str
    topic_id: int
    pids: tuple[int, ...]
    bases: tuple[int, ...]

    def check_partition(self, partition: object) -> int:
        """Return ``partition`` if the topic has it; raise InvalidArgument otherwise."""
        return check_partition(self.name, len(self.pids), partition)


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


def to_timestamp(value: object, what: str = "timestamp") -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    seconds = codec.check_seconds(value, what, allow_none=False)
    assert seconds is not None
    return seconds


def check_group(group: object) -> str:
    if not isinstance(group, str) or not group:
        raise InvalidArgument(f"group must be a non-empty str, not {group!r}")
    return check_text(group, "group")


def check_partition(topic: str, partitions: int, partition: object) -> int:
    """Return ``partition`` if it is one of the topic's ``partitions``; else InvalidArgument."""
    number = codec.check_int(partition, "partition")
    if number >= partitions:
        raise InvalidArgument(
            f"topic {topic!r} has partitions 0..{partitions - 1}; there is no partition {number}"
        )
    return number


def check_in_range(topic: str, partition: int, offset: int, start: int, end: int) -> None:
    if not start <= offset <= end:
        raise OffsetOutOfRange(
            f"offset {offset} is outside partition {partition} of topic {topic!r}: its "
            f"retained offsets are {start}..{end} (the end offset {end} means 'next record')"
        )


def records_from_rows(
    topic: str, partition: int, base: int, rows: list[Any], first: int = 0, limit: int = 0
) -> list[Record]:
    """The records of ``rows`` (as :data:`_stream_log.FETCH` returns them) at offsets from
    ``first`` on, at most ``limit`` of them (0: all). A batch row gives its records, with
    their producer's timestamps; a null value is read as an empty payload."""
    decode = codec.decode_headers
    empty = codec.NO_HEADERS
    if all(r[2] is None for r in rows):
        records = [
            Record(
                topic, partition, rid - base, key, payload, empty if h is None else decode(h), ts
            )
            for rid, ts, _n, key, h, payload in rows
            if rid - base >= first
        ]
    else:
        records = []
        for row in rows:
            records += _row_records(topic, partition, base, row, first)
    return records[:limit] if limit else records


def _row_records(topic: str, partition: int, base: int, row: Any, first: int) -> list[Record]:
    rid, ts, count, key, h, payload = row
    start = rid - base
    if count is None:
        if start < first:
            return []
        headers = codec.NO_HEADERS if h is None else codec.decode_headers(h)
        return [Record(topic, partition, start, key, payload, headers, ts)]
    return [
        Record(
            topic,
            partition,
            start + r.position,
            r.key,
            r.value or b"",
            {k: v or b"" for k, v in r.headers} if r.headers else codec.NO_HEADERS,
            r.timestamp_ms / 1000,
        )
        for r in decode_batch(payload)
        if start + r.position >= first
    ]
