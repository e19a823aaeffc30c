"""Bad input through the public API: always a QueueError that says what to do, and the file
is left exactly as it was (issue 15, defects 3, 4 and 5)."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlitequeue import (
    DatabaseBusy,
    InvalidArgument,
    NotAQueueDatabase,
    Queue,
    QueueError,
    Stream,
)
from sqlitequeue._db import Database
from tests.helpers import REPO

BIG = 2**63
LONE_SURROGATE = "bad \ud800 text"


def dump(path: Path) -> list[str]:
    """Every table row and schema entry of the file, read by a plain sqlite3 connection."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def queue(db_path: Path) -> Iterator[Queue]:
    with Queue(db_path) as q:
        q.put(b"first", key="k")
        q.put(b"second")
        yield q


@pytest.fixture
def stream(db_path: Path) -> Iterator[Stream]:
    with Stream(db_path, "t", partitions=2) as s:
        s.append_many([b"a", b"b", b"c"])
        yield s


def refused(call: Callable[[], object], path: Path, match: str | None = None) -> QueueError:
    """Assert ``call`` raises a QueueError (with ``match`` in its text) and changes nothing."""
    before = dump(path)
    with pytest.raises(QueueError, match=match) as info:
        call()
    assert dump(path) == before
    return info.value


# -- 64-bit overflow -------------------------------------------------------------------------


@pytest.mark.parametrize("priority", [BIG, -BIG - 1, 10**30])
def test_priority_outside_64_bits_is_invalid(queue: Queue, priority: int) -> None:
    refused(lambda: queue.put(b"x", priority=priority), queue.path, "priority")
    refused(lambda: queue.put_many([b"x"], priority=priority), queue.path, "priority")


@pytest.mark.parametrize("name", ["get_many", "peek", "dead_letters"])
def test_counts_outside_64_bits_are_invalid(queue: Queue, name: str) -> None:
    method = getattr(queue, name)
    refused(lambda: method(BIG), queue.path, "must be an integer")


def test_max_attempts_outside_64_bits_is_invalid(db_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="max_attempts"):
        Queue(db_path, max_attempts=BIG)
    assert not db_path.exists()


def test_stream_counts_and_offsets_outside_64_bits_are_invalid(stream: Stream) -> None:
    consumer = stream.consumer("g")
    refused(lambda: consumer.poll(max_records=BIG, timeout=0), stream.path, "max_records")
    refused(lambda: stream.read(0, 0, max_records=BIG), stream.path, "max_records")
    refused(lambda: consumer.commit({0: BIG}), stream.path, "offset")
    consumer.close()
    refused(lambda: stream.reset_offsets("g", to=BIG), stream.path, "offset")


# -- text that SQLite cannot store -----------------------------------------------------------


def test_lone_surrogates_in_queue_text_are_invalid(db_path: Path, queue: Queue) -> None:
    message = queue.get(timeout=0)
    assert message is not None
    refused(lambda: Queue(db_path, LONE_SURROGATE), db_path, "queue name")
    refused(lambda: queue.put(b"x", key=LONE_SURROGATE), db_path, "key")
    refused(lambda: queue.put_many([b"x"], keys=[LONE_SURROGATE]), db_path, "key")
    refused(lambda: queue.nack(message, reason=LONE_SURROGATE), db_path, "reason")
    refused(lambda: queue.bury(message, LONE_SURROGATE), db_path, "reason")


def test_lone_surrogates_in_stream_text_are_invalid(stream: Stream) -> None:
    refused(lambda: stream.append(b"x", headers={LONE_SURROGATE: b"v"}), stream.path, "header")
    refused(lambda: stream.consumer(LONE_SURROGATE), stream.path, "group")
    refused(lambda: stream.reset_offsets(LONE_SURROGATE, to=0), stream.path, "group")


def test_path_with_a_lone_surrogate_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="path"):
        Queue(tmp_path / "q\ud800.db")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("opener", [Queue, lambda p: Stream(p, "t"), Database])
def test_nul_byte_in_the_path_is_invalid(tmp_path: Path, opener: Callable[[str], object]) -> None:
    with pytest.raises(InvalidArgument, match="NUL"):
        opener(str(tmp_path / "q\x00.db"))
    assert list(tmp_path.iterdir()) == []


# -- seconds that are not finite -------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_lock_timeout_must_be_finite(db_path: Path, value: float) -> None:
    with pytest.raises(InvalidArgument, match="lock_timeout"):
        Queue(db_path, lock_timeout=value)
    assert not db_path.exists()


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_consumer_lease_must_be_finite(stream: Stream, value: float) -> None:
    refused(lambda: stream.consumer("g", lease=value), stream.path, "lease")


# -- maintenance under a lock held elsewhere -------------------------------------------------


@pytest.fixture
def locked(db_path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the file's write lock."""
    Queue(db_path).close()
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    yield other
    other.execute("ROLLBACK")
    other.close()


def test_compact_under_a_held_lock_ends_in_database_busy(
    db_path: Path, locked: sqlite3.Connection
) -> None:
    with Queue(db_path, lock_timeout=0.3) as q, pytest.raises(DatabaseBusy, match="lock_timeout"):
        q.compact()


def test_vacuum_under_a_held_lock_ends_in_database_busy(
    db_path: Path, locked: sqlite3.Connection
) -> None:
    """purge() frees pages with this after its delete; another process may take the lock
    in between."""
    with Database(db_path, lock_timeout=0.3) as db, pytest.raises(DatabaseBusy):
        db.vacuum_free_pages()


def test_purge_under_a_held_lock_ends_in_database_busy(
    db_path: Path, locked: sqlite3.Connection
) -> None:
    with Queue(db_path, lock_timeout=0.3) as q, pytest.raises(DatabaseBusy):
        q.purge()


# -- files that must not be opened -----------------------------------------------------------


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "queue.db"
    os.mkfifo(fifo)
    code = (
        "import sys\nfrom sqlitequeue import Queue, InvalidArgument\n"
        "try:\n    Queue(sys.argv[1])\nexcept InvalidArgument as exc:\n    print(exc)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(fifo)],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=REPO,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("Queue() on a FIFO blocked")
    assert "not a regular file" in done.stdout, done.stdout + done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["queue.db"]


@pytest.mark.parametrize("user_version", [1, 7])
def test_empty_foreign_file_with_a_user_version_is_refused_and_untouched(
    db_path: Path, user_version: int
) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(NotAQueueDatabase, match="another application"):
        Queue(db_path)
    assert db_path.read_bytes() == before


# -- fuzzing: any bad argument is a QueueError and changes nothing ---------------------------

bad_ints = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=BIG),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)
bad_seconds = st.one_of(
    st.floats(max_value=-1e-9),
    st.just(math.nan),
    st.just(math.inf),
    st.text(max_size=3),
    st.booleans(),
)
bad_text = st.one_of(st.text(min_size=1).map(lambda s: s + "\udc80"), st.just(""))


bad_priorities = st.one_of(
    st.integers(min_value=BIG),
    st.integers(max_value=-BIG - 1),
    st.floats(),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    call=st.one_of(
        st.tuples(st.just("get_many"), bad_ints),
        st.tuples(st.just("peek"), bad_ints),
        st.tuples(st.just("dead_letters"), bad_ints),
        st.tuples(st.just("priority"), bad_priorities),
        st.tuples(st.just("delay"), bad_seconds),
        st.tuples(st.just("timeout"), bad_seconds),
        st.tuples(st.just("lease"), bad_seconds),
        st.tuples(st.just("key"), bad_text.filter(bool)),
        st.tuples(st.just("reason"), bad_text.filter(bool)),
        st.tuples(st.just("name"), bad_text),
        st.tuples(st.just("max_attempts"), bad_ints),
        st.tuples(st.just("lock_timeout"), bad_seconds),
        st.tuples(st.just("durability"), st.one_of(st.text(max_size=5), st.lists(st.none()))),
    )
)
def test_fuzzed_bad_queue_arguments(queue: Queue, call: tuple[str, Any]) -> None:
    what, value = call
    if what == "reason":
        queue.put(b"to bury")
        message = queue.get(timeout=0)
        assert message is not None
        refused(lambda: queue.bury(message, value), queue.path)
        queue.ack(message)
        return
    calls: dict[str, Callable[[], object]] = {
        "get_many": lambda: queue.get_many(value, timeout=0),
        "peek": lambda: queue.peek(value),
        "dead_letters": lambda: queue.dead_letters(value),
        "priority": lambda: queue.put(b"x", priority=value),
        "delay": lambda: queue.put(b"x", delay=value),
        "timeout": lambda: queue.get(timeout=value),
        "lease": lambda: queue.get(timeout=0, lease=value),
        "key": lambda: queue.put(b"x", key=value),
        "name": lambda: Queue(queue.path, value),
        "max_attempts": lambda: Queue(queue.path, max_attempts=value),
        "lock_timeout": lambda: Queue(queue.path, lock_timeout=value),
        "durability": lambda: Queue(queue.path, durability=value),
    }
    refused(calls[what], queue.path)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    call=st.one_of(
        st.tuples(st.just("max_records"), bad_ints),
        st.tuples(st.just("read_offset"), st.one_of(st.integers(max_value=-1), bad_ints)),
        st.tuples(st.just("commit"), st.one_of(st.integers(max_value=-1), bad_ints)),
        st.tuples(st.just("group"), bad_text),
        st.tuples(st.just("header"), bad_text.filter(bool)),
        st.tuples(st.just("lease"), st.one_of(bad_seconds, st.just(0))),
        st.tuples(st.just("timeout"), bad_seconds.filter(lambda v: v != math.inf)),
    )
)
def test_fuzzed_bad_stream_arguments(stream: Stream, call: tuple[str, Any]) -> None:
    what, value = call
    consumer = stream.consumer("fuzz")
    calls: dict[str, Callable[[], object]] = {
        "max_records": lambda: consumer.poll(max_records=value, timeout=0),
        "read_offset": lambda: stream.read(0, value),
        "commit": lambda: consumer.commit({0: value}),
        "group": lambda: stream.consumer(value),
        "header": lambda: stream.append(b"x", headers={value: b"v"}),
        "lease": lambda: stream.consumer("other", lease=value),
        "timeout": lambda: consumer.poll(timeout=value),
    }
    try:
        refused(calls[what], stream.path)
    finally:
        consumer.close()
