"""Checks for values SQLite cannot store, shared by Queue and Stream.

SQLite integers are signed 64-bit and its text is UTF-8, so an int outside
[INT64_MIN, INT64_MAX] (``OverflowError``) or a str holding a lone surrogate
(``UnicodeEncodeError``) would fail deep inside a statement. These checks turn both into
:class:`~sqlitequeue.errors.InvalidArgument` before anything is written. Also the queue's
checks of seconds (finite, not negative) and counts (1 to 2**63 - 1).
"""

from __future__ import annotations

import math

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


def check_seconds(what: str, value: float, *, positive: bool = False) -> float:
    """Return ``value`` as a float if it is a finite number of seconds (>= 0, or > 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument(f"{what} must be a finite number of seconds, not {value!r}")
    if value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise InvalidArgument(f"{what} must be {bound} seconds, not {value!r}")
    return float(value)


def check_count(what: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an int in [minimum, 2**63 - 1]; raise InvalidArgument."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= INT64_MAX:
        raise InvalidArgument(
            f"{what} must be an integer from {minimum} to 2**63 - 1, not {value!r}"
        )
    return value
