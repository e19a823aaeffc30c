"""Reading Kafka record batches (record format v2) stored in a stream row, stdlib only.

``sqlitequeue serve`` stores each batch a Kafka producer sends as one row (schema version
4, see :mod:`sqlitequeue._schema`), uncompressed, with its producer's timestamps, keys,
values and headers as sent. This module decodes such a row into records for
:class:`~sqlitequeue.Stream` readers. The layout is Kafka's (``DefaultRecordBatch``):
a 61-byte header, then per record a varint length, attributes, varint timestamp and
offset deltas, and length-prefixed key, value and headers. Only uncompressed batches are
stored, so nothing here needs a compression library or CRC-32C (the gateway checked the
CRC before storing).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

#: baseOffset, batchLength, partitionLeaderEpoch, magic, crc, attributes, lastOffsetDelta,
#: baseTimestamp, maxTimestamp, producerId, producerEpoch, baseSequence, recordCount.
HEADER = struct.Struct(">qiibIhiqqqhii")


class BatchRecord(NamedTuple):
    """One record of a batch: its position in the batch, timestamp (ms), key, value, headers."""

    position: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    """Decode a zigzag varint at ``at``; return (value, next position)."""
    shift = result = 0
    while True:
        byte = buf[at]
        at += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), at
        shift += 7


def _bytes(buf: bytes, at: int) -> tuple[bytes | None, int]:
    length, at = _varint(buf, at)
    if length < 0:
        return None, at
    return buf[at : at + length], at + length


def decode_batch(blob: bytes) -> list[BatchRecord]:
    """Decode every record of an uncompressed v2 record batch.

    Raises ValueError if ``blob`` is not one (the gateway never stores anything else).
    """
    header = HEADER.unpack_from(blob)
    if header[3] != 2 or header[5] & 0x07:
        raise ValueError("not an uncompressed record batch of format v2")
    base_ts, count = header[7], header[12]
    at = HEADER.size
    records = []
    for index in range(count):
        _length, at = _varint(blob, at)
        at += 1  # attributes (unused)
        ts_delta, at = _varint(blob, at)
        _offset_delta, at = _varint(blob, at)
        key, at = _bytes(blob, at)
        value, at = _bytes(blob, at)
        header_count, at = _varint(blob, at)
        headers = []
        for _ in range(header_count):
            name, at = _bytes(blob, at)
            hvalue, at = _bytes(blob, at)
            headers.append(((name or b"").decode("utf-8", "replace"), hvalue))
        records.append(BatchRecord(index, base_ts + ts_delta, key, value, headers))
    return records
