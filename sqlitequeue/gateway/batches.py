"""Record batches: checking what producers send, and building batches for consumers.

A produced batch is checked without decoding its records one by one: the header, the
CRC-32C (``crc32c`` package, as Kafka computes it), the record count against the last
offset delta, and the record lengths adding up to the batch. A compressed batch is
decompressed and rebuilt uncompressed (kafka-python's ``kafka.record`` does both; lz4,
snappy and zstd need their packages), so that the file only holds uncompressed batches,
which the stdlib-only :class:`~sqlitequeue.Stream` can read (:mod:`sqlitequeue._stream_batch`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import crc32c
from kafka.errors import UnsupportedCodecError
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from sqlitequeue import _stream_batch
from sqlitequeue import _stream_codec as codec
from sqlitequeue.gateway.wire import ErrorCode

HEADER = _stream_batch.HEADER
#: Offset of the attributes field: the CRC covers the batch from here to its end.
CRC_START = 21
COMPRESSION_MASK = 0x07
TRANSACTIONAL = 0x10
CONTROL = 0x20


class BatchError(Exception):
    """A produced batch that must not be stored; ``code`` is the Kafka error to answer."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Batch:
    """A checked, uncompressed batch ready to store, and its producer fields."""

    data: bytes
    count: int
    producer_id: int
    producer_epoch: int
    base_sequence: int


def _skip_records(buf: bytes | bytearray, at: int, count: int) -> int:
    """Walk ``count`` length-prefixed records from ``at``; return where they end."""
    for _ in range(count):
        shift = length = 0
        while True:
            byte = buf[at]
            at += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 28:
                raise BatchError(ErrorCode.CORRUPT_MESSAGE, "record length varint too long")
        length = (length >> 1) ^ -(length & 1)
        if length < 0:
            raise BatchError(ErrorCode.CORRUPT_MESSAGE, "negative record length")
        at += length
    return at


def check_batch(records: bytes | None, max_size: int) -> Batch:
    """Check a partition's produced records and return the batch to store.

    Raises BatchError (with the Kafka error code) for anything Kafka would refuse:
    CORRUPT_MESSAGE for a bad CRC or inconsistent lengths, UNSUPPORTED_FOR_MESSAGE_FORMAT
    for a record format before v2, UNSUPPORTED_COMPRESSION_TYPE when a codec's package is
    missing, MESSAGE_TOO_LARGE over ``max_size``, INVALID_RECORD for a transactional or
    control batch (transactions are not supported).
    """
    if not records:
        raise BatchError(ErrorCode.CORRUPT_MESSAGE, "no record batch")
    data = bytes(records)
    if len(data) < HEADER.size:
        raise BatchError(ErrorCode.CORRUPT_MESSAGE, "record batch shorter than its header")
    header = HEADER.unpack_from(data)
    length, magic, crc, attributes, last_delta = (
        header[1],
        header[3],
        header[4],
        header[5],
        header[6],
    )
    if magic != 2:
        raise BatchError(ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, f"record format v{magic}")
    if length + 12 != len(data):
        raise BatchError(ErrorCode.CORRUPT_MESSAGE, "batch length does not match its bytes")
    if len(data) > max_size:
        raise BatchError(ErrorCode.MESSAGE_TOO_LARGE, f"batch of {len(data)} bytes")
    if crc32c.crc32c(memoryview(data)[CRC_START:]) != crc:
        raise BatchError(ErrorCode.CORRUPT_MESSAGE, "record batch CRC does not match")
    if attributes & (TRANSACTIONAL | CONTROL):
        raise BatchError(ErrorCode.INVALID_RECORD, "transactional batches are not supported")
    count = header[12]
    if count <= 0 or count != last_delta + 1:
        raise BatchError(ErrorCode.CORRUPT_MESSAGE, "record count does not match offsets")
    if attributes & COMPRESSION_MASK:
        data = _decompress(data)
    else:
        try:
            end = _skip_records(data, HEADER.size, count)
        except IndexError:
            end = -1
        if end != len(data):
            raise BatchError(ErrorCode.CORRUPT_MESSAGE, "record lengths do not add up")
    return Batch(data, count, header[9], header[10], header[11])


def _decompress(data: bytes) -> bytes:
    """Rebuild a compressed batch uncompressed, keeping every field of every record."""
    batch = DefaultRecordBatch(data)
    try:
        records = list(batch)
    except UnsupportedCodecError as exc:
        raise BatchError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, str(exc)) from exc
    except Exception as exc:
        raise BatchError(ErrorCode.CORRUPT_MESSAGE, f"cannot decompress: {exc!r}") from exc
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=batch.producer_id,
        producer_epoch=batch.producer_epoch,
        base_sequence=batch.base_sequence,
        batch_size=1 << 31,
    )
    for i, record in enumerate(records):
        builder.append(i, record.timestamp, record.key, record.value, record.headers)
    return bytes(builder.build())


def build_batch(
    base_offset: int, rows: list[tuple[int, float, bytes | None, bytes | None, bytes]]
) -> bytes:
    """Encode Stream rows (offset, seconds, key, encoded headers, payload) as one batch."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 31,
    )
    for offset, ts, key, headers, payload in rows:
        pairs = list(codec.decode_headers(headers).items()) if headers else []
        builder.append(offset - base_offset, int(ts * 1000), key, payload, pairs)
    data = bytearray(builder.build())
    struct.pack_into(">q", data, 0, base_offset)
    return bytes(data)
