"""Byte-level helpers of the stream: argument checks, key hashing, header encoding.

* Keys are bytes; a str key is stored as its UTF-8 encoding (:func:`as_key`), the bytes
  Kafka's StringSerializer would send, so it hashes to the same partition as with Kafka.
* Keys are hashed with Kafka's own murmur2 (``toPositive(murmur2(key)) % partitions``), so
  a key lands in the same partition number as with Kafka's default partitioner: a topic
  moved from Kafka keeps its key-to-partition mapping. The hash is stable across
  processes and Python versions (unlike ``hash()``).
* Headers (``dict[str, bytes]``) are stored as one BLOB: a count, then for each header a
  length-prefixed UTF-8 name and a length-prefixed value (big-endian ``u16``/``u32``).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from types import MappingProxyType

from sqlitequeue._checks import INT64_MAX, check_text
from sqlitequeue.errors import InvalidArgument

#: The headers of a record that has none (shared, read-only).
NO_HEADERS: Mapping[str, bytes] = MappingProxyType({})

_MURMUR_SEED = 0x9747B28C
_MURMUR_M = 0x5BD1E995
_MASK32 = 0xFFFFFFFF


def as_bytes(value: object, what: str) -> bytes:
    """Return ``value`` as ``bytes``; raise TypeError unless it is bytes-like."""
    if type(value) is bytes:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    hint = " (encode text first, e.g. s.encode())" if isinstance(value, str) else ""
    raise TypeError(f"{what} must be bytes-like, not {type(value).__name__}{hint}")


def as_key(value: object, what: str = "key") -> bytes:
    """Return a record key as ``bytes``: a str is encoded as UTF-8 (as Kafka's
    StringSerializer does), bytes-like values are copied. Raises InvalidArgument for a str
    UTF-8 cannot encode (a lone surrogate), TypeError for any other type."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return check_text(value, what).encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str, bytes-like or None, not {type(value).__name__}")


def check_int(value: object, what: str, minimum: int = 0) -> int:
    """Return ``value`` if it is an int from ``minimum`` to 2**63 - 1 (what SQLite stores);
    raise InvalidArgument otherwise."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{what} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise InvalidArgument(f"{what} must be >= {minimum}, not {value}")
    if value > INT64_MAX:
        raise InvalidArgument(f"{what} must be <= 2**63 - 1 (SQLite's largest int), not {value}")
    return value


def check_seconds(value: object, what: str, *, allow_none: bool = True) -> float | None:
    """Return ``value`` as float seconds (>= 0, or None if allowed); raise InvalidArgument."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InvalidArgument(f"{what} must be a number of seconds, not {type(value).__name__}")
    if not value >= 0:  # also rejects NaN
        raise InvalidArgument(f"{what} must be >= 0 seconds, not {value}")
    return float(value)


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of ``data`` as an unsigned 32-bit int."""
    length = len(data)
    h = (_MURMUR_SEED ^ length) & _MASK32
    words = length // 4
    for k in struct.unpack_from(f"<{words}I", data):
        k = (k * _MURMUR_M) & _MASK32
        k ^= k >> 24
        k = (k * _MURMUR_M) & _MASK32
        h = ((h * _MURMUR_M) & _MASK32) ^ k
    extra = length & 3
    if extra:
        tail = data[words * 4 :]
        if extra == 3:
            h ^= tail[2] << 16
        if extra >= 2:
            h ^= tail[1] << 8
        h ^= tail[0]
        h = (h * _MURMUR_M) & _MASK32
    h ^= h >> 13
    h = (h * _MURMUR_M) & _MASK32
    h ^= h >> 15
    return h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition of ``key`` among ``partitions``, as Kafka's default partitioner."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def encode_headers(headers: object) -> bytes | None:
    """Encode a ``dict[str, bytes]`` (None or empty -> None); raise TypeError on bad types."""
    if headers is None:
        return None
    if not isinstance(headers, Mapping):
        raise TypeError(f"headers must be a dict of str -> bytes, not {type(headers).__name__}")
    if not headers:
        return None
    parts = [struct.pack(">H", len(headers))]
    for name, value in headers.items():
        if not isinstance(name, str):
            raise TypeError(f"header names must be str, not {type(name).__name__}")
        raw_name = check_text(name, "header name").encode("utf-8")
        raw_value = as_bytes(value, f"header {name!r}")
        if len(raw_name) > 0xFFFF:
            raise InvalidArgument(f"header name {name[:40]!r}... is longer than 65535 bytes")
        parts.append(struct.pack(">H", len(raw_name)))
        parts.append(raw_name)
        parts.append(struct.pack(">I", len(raw_value)))
        parts.append(raw_value)
    return b"".join(parts)


def decode_headers(blob: bytes | None) -> Mapping[str, bytes]:
    """Decode what :func:`encode_headers` produced (None -> empty mapping)."""
    if not blob:
        return NO_HEADERS
    (count,) = struct.unpack_from(">H", blob)
    at = 2
    headers = {}
    for _ in range(count):
        (name_len,) = struct.unpack_from(">H", blob, at)
        name = blob[at + 2 : at + 2 + name_len].decode("utf-8")
        at += 2 + name_len
        (value_len,) = struct.unpack_from(">I", blob, at)
        headers[name] = bytes(blob[at + 4 : at + 4 + value_len])
        at += 4 + value_len
    return headers
