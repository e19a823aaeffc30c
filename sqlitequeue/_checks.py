"""Checks for values SQLite cannot store, shared by Queue and Stream.

SQLite integers are signed 64-bit and its text is UTF-8, so an int outside
[INT64_MIN, INT64_MAX] (``OverflowError``) or a str holding a lone surrogate
(``UnicodeEncodeError``) would fail deep inside a statement. These checks turn both into
:class:`~sqlitequeue.errors.InvalidArgument` before anything is written.
"""

from __future__ import annotations

from sqlitequeue.errors import InvalidArgument

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def check_text(value: object, what: str) -> str:
    """Return ``value`` if it is a str that UTF-8 can encode; raise InvalidArgument if not
    (a str with a lone surrogate, e.g. from ``os.fsdecode`` of undecodable bytes)."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a str, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgument(
            f"{what} {value[:60]!r} holds a lone surrogate at position {exc.start}, which "
            "UTF-8 (and so SQLite) cannot store; decode the bytes it came from with "
            "errors='replace', or pass bytes where bytes are allowed"
        ) from None
    return value


def check_int64(value: int, what: str) -> int:
    """Return ``value`` if it fits SQLite's signed 64-bit integers; raise InvalidArgument."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidArgument(f"{what} must fit in 64 bits ({INT64_MIN}..{INT64_MAX}), not {value}")
    return value
