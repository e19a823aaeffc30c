"""Queue behaviour in one process: put/get/ack, ordering, leases, retries, dead letters, errors."""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlitequeue import (
    Closed,
    CorruptDatabase,
    DatabaseBusy,
    InvalidArgument,
    LeaseLost,
    Message,
    NotAQueueDatabase,
    PayloadTooLarge,
    Queue,
    SchemaTooNew,
    _schema,
)
from tests.helpers import run_on_read_only_directory

# -- putting and getting -------------------------------------------------------------------


def test_put_get_ack_round_trip(db_path: Path) -> None:
    with Queue(db_path) as q:
        ids = [q.put(b"a"), q.put(bytearray(b"b"), key="k"), q.put(memoryview(b"c"), key=b"kb")]
        got = [q.get(timeout=0) for _ in ids]
        assert [m.payload for m in got if m] == [b"a", b"b", b"c"]
        assert all(type(m.payload) is bytes for m in got if m)
        assert [m.id for m in got if m] == ids
        assert [m.key for m in got if m] == [None, "k", b"kb"]
        first = got[0]
        assert first is not None
        assert first.attempts == 1 and first.queue == "default"
        assert first.lease_expires_at is not None and first.lease_expires_at > time.time()
        for m in got:
            assert m is not None
            q.ack(m)
        assert q.get(timeout=0) is None
        assert q.stats().pending == q.stats().in_flight == 0


@pytest.mark.parametrize("bad", ["text", 42, None, [b"x"], {"a": 1}, 3.5])
def test_non_bytes_payload_raises_type_error_and_writes_nothing(db_path: Path, bad: object) -> None:
    with Queue(db_path) as q:
        with pytest.raises(TypeError, match="bytes-like"):
            q.put(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="bytes-like"):
            q.put_many([b"ok", bad])  # type: ignore[list-item]
        assert q.stats().pending == 0


def test_oversize_payload_raises_and_put_many_writes_nothing(db_path: Path) -> None:
    with Queue(db_path, max_payload_size=10) as q:
        q.put(b"x" * 10)
        with pytest.raises(PayloadTooLarge, match="max_payload_size of 10 bytes"):
            q.put(b"x" * 11)
        with pytest.raises(PayloadTooLarge):
            q.put_many([b"a", b"b", b"x" * 11])
        assert q.stats().pending == 1


def test_put_many_returns_consecutive_ids_in_order(db_path: Path) -> None:
    with Queue(db_path) as q:
        q.put(b"first")
        ids = q.put_many([b"%d" % i for i in range(50)], keys=[str(i) for i in range(50)])
        assert ids == list(range(ids[0], ids[0] + 50))
        q.get(timeout=0)
        got = q.get_many(100, timeout=0)
        assert [m.id for m in got] == ids
        assert [m.payload for m in got] == [b"%d" % i for i in range(50)]
        assert [m.key for m in got] == [str(i) for i in range(50)]
        assert q.put_many([]) == []
        with pytest.raises(InvalidArgument, match="keys"):
            q.put_many([b"a"], keys=["x", "y"])


def test_order_is_priority_then_fifo(db_path: Path) -> None:
    with Queue(db_path) as q:
        q.put(b"low-1", priority=-1)
        q.put(b"mid-1")
        q.put(b"high-1", priority=5)
        q.put(b"mid-2")
        q.put(b"high-2", priority=5)
        assert [m.payload for m in q.peek(10)] == [
            b"high-1",
            b"high-2",
            b"mid-1",
            b"mid-2",
            b"low-1",
        ]
        batch = q.get_many(3, timeout=0)
        assert [m.payload for m in batch] == [b"high-1", b"high-2", b"mid-1"]
        rest = [q.get(timeout=0), q.get(timeout=0)]
        assert [m.payload for m in rest if m] == [b"mid-2", b"low-1"]


def test_get_timeout_returns_none_when_empty(db_path: Path) -> None:
    with Queue(db_path) as q:
        start = time.monotonic()
        assert q.get(timeout=0.1) is None
        assert time.monotonic() - start >= 0.09
        assert q.get_many(5, timeout=0) == []


def test_invalid_arguments_are_refused(db_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        Queue(db_path, lease=0)
    with pytest.raises(InvalidArgument):
        Queue(db_path, max_attempts=0)
    with pytest.raises(InvalidArgument):
        Queue(db_path, name="")
    with Queue(db_path) as q:
        for call in (
            lambda: q.get(timeout=-1),
            lambda: q.get(lease=0),
            lambda: q.get_many(0),
            lambda: q.put(b"x", delay=-1),
            lambda: q.put(b"x", delay=float("nan")),
            lambda: q.put(b"x", priority=1.5),  # type: ignore[arg-type]
            lambda: q.dead_letters(limit=0),
            lambda: q.redrive(["x"]),  # type: ignore[list-item]
        ):
            with pytest.raises(InvalidArgument):
                call()
        with pytest.raises(TypeError, match="key"):
            q.put(b"x", key=5)  # type: ignore[arg-type]


# -- delays and blocking gets --------------------------------------------------------------


def test_delayed_message_waits_and_blocking_get_wakes_when_due(db_path: Path) -> None:
    with Queue(db_path) as q:
        q.put(b"later", delay=0.3)
        assert q.get(timeout=0) is None
        assert q.stats().delayed == 1
        start = time.monotonic()
        msg = q.get(timeout=10)
        assert msg is not None and msg.payload == b"later"
        assert time.monotonic() - start >= 0.2


def test_blocking_get_wakes_on_put_from_another_process_connection(db_path: Path) -> None:
    with Queue(db_path) as consumer, Queue(db_path) as producer:
        timer = threading.Timer(0.1, lambda: producer.put(b"hello"))
        timer.start()
        try:
            msg = consumer.get(timeout=10)
        finally:
            timer.join()
        assert msg is not None and msg.payload == b"hello"


def test_blocking_get_wakes_on_put_from_another_thread_same_queue(db_path: Path) -> None:
    with Queue(db_path) as q:
        timer = threading.Timer(0.1, lambda: q.put(b"hello"))
        timer.start()
        try:
            start = time.monotonic()
            msg = q.get(timeout=10)
        finally:
            timer.join()
        assert msg is not None and msg.payload == b"hello"
        assert time.monotonic() - start < 5  # woke on the put, not on the timeout


def test_put_landing_between_the_look_and_the_wait_is_not_missed(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lost wake-up: a put committed right after get() looked (and found nothing)
    but before it started waiting must wake it, not wait for the next commit."""
    with Queue(db_path) as consumer, Queue(db_path) as producer:
        real_read = consumer._db.read

        @contextlib.contextmanager
        def read_then_put() -> Iterator[sqlite3.Connection]:
            with real_read() as conn:
                yield conn
            monkeypatch.setattr(consumer._db, "read", real_read)  # only the first look
            producer.put(b"hello")

        monkeypatch.setattr(consumer._db, "read", read_then_put)
        start = time.monotonic()
        msg = consumer.get(timeout=20)
        assert msg is not None and msg.payload == b"hello"
        assert time.monotonic() - start < 10  # woke on the put, not on the timeout


def test_blocking_get_sleeps_until_due_instead_of_polling_the_claim(db_path: Path) -> None:
    with Queue(db_path, lease=0.3) as q:
        q.put(b"job")
        assert q.get(timeout=0) is not None  # now leased for 0.3 s
        statements: list[str] = []
        q._db.conn.set_trace_callback(statements.append)
        msg = q.get(timeout=10)  # wakes when the lease expires
        q._db.conn.set_trace_callback(None)
        assert msg is not None and msg.attempts == 2
        claims = [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
        assert len(claims) <= 6, f"{len(claims)} claim/settle statements while waiting"


# -- leases --------------------------------------------------------------------------------


def test_expired_lease_is_redelivered_and_stale_ack_raises_lease_lost(db_path: Path) -> None:
    with Queue(db_path, lease=0.2) as a, Queue(db_path, lease=30) as b:
        a.put(b"job")
        first = a.get(timeout=0)
        assert first is not None
        assert b.get(timeout=0) is None  # leased: nobody else gets it
        second = b.get(timeout=10)  # wakes when a's lease expires
        assert second is not None and second.id == first.id
        assert second.attempts == 2
        assert second.last_error == "lease expired on delivery 1"
        with pytest.raises(LeaseLost, match=f"message {first.id}"):
            a.ack(first)
        with pytest.raises(LeaseLost):
            a.extend(first)
        with pytest.raises(LeaseLost):
            a.nack(first)
        with pytest.raises(LeaseLost):
            a.bury(first, "nope")
        assert b.stats().in_flight == 1  # the new claim is untouched
        b.ack(second)
        assert b.stats().in_flight == 0


def test_late_ack_succeeds_when_nobody_reclaimed(db_path: Path) -> None:
    with Queue(db_path, lease=0.05) as q:
        q.put(b"job")
        msg = q.get(timeout=0)
        assert msg is not None
        time.sleep(0.1)
        assert q.stats().pending == 1  # expired: claimable again
        q.ack(msg)  # but nobody claimed it, so the ack still counts
        assert q.get(timeout=0) is None


def test_extend_keeps_the_lease(db_path: Path) -> None:
    with Queue(db_path, lease=0.2) as q:
        q.put(b"job")
        msg = q.get(timeout=0)
        assert msg is not None and msg.lease_expires_at is not None
        extended = q.extend(msg, 30)
        assert extended.lease_expires_at is not None
        assert extended.lease_expires_at > msg.lease_expires_at + 20
        time.sleep(0.3)
        assert q.get(timeout=0) is None
        q.ack(extended)


def test_ack_twice_raises_lease_lost(db_path: Path) -> None:
    with Queue(db_path) as q:
        q.put(b"job")
        msg = q.get(timeout=0)
        assert msg is not None
        q.ack(msg)
        with pytest.raises(LeaseLost):
            q.ack(msg)


def test_ack_many_acks_held_leases_and_names_lost_ones(db_path: Path) -> None:
    with Queue(db_path) as q:
        q.put_many([b"a", b"b", b"c"])
        batch = q.get_many(3, timeout=0)
        q.ack(batch[1])
        with pytest.raises(LeaseLost, match=str(batch[1].id)):
            q.ack_many(batch)
        assert q.stats().in_flight == 0
        q.ack_many([])


def test_forged_message_cannot_ack(db_path: Path) -> None:
    with Queue(db_path) as q:
        mid = q.put(b"job")
        q.get(timeout=0)
        forged = Message(mid, b"job", None, 0, 1, 0.0, None, "default", 12345)
        with pytest.raises(LeaseLost):
            q.ack(forged)


# -- retries and dead letters --------------------------------------------------------------


def test_nack_redelivers_with_reason_and_delay(db_path: Path) -> None:
    with Queue(db_path) as q:
        q.put(b"job")
        msg = q.get(timeout=0)
        assert msg is not None
        q.nack(msg, reason="db down")
        again = q.get(timeout=0)
        assert again is not None and again.attempts == 2 and again.last_error == "db down"
        q.nack(again, delay=30)
        stats = q.stats()
        assert (stats.pending, stats.delayed, stats.in_flight) == (0, 1, 0)


def test_poison_message_goes_to_dead_letters_after_max_attempts(db_path: Path) -> None:
    with Queue(db_path, max_attempts=3) as q:
        q.put(b"poison")
        q.put(b"fine")
        deliveries = 0
        while (msg := q.get(timeout=0)) is not None:
            if msg.payload == b"poison":
                deliveries += 1
                q.nack(msg, reason=f"crash #{deliveries}")
            else:
                q.ack(msg)
        assert deliveries == 3
        dead = q.dead_letters()
        assert [(m.payload, m.attempts, m.last_error) for m in dead] == [(b"poison", 3, "crash #3")]
        assert q.stats().dead == 1 and q.stats().pending == 0


def test_expired_leases_count_as_attempts(db_path: Path) -> None:
    with Queue(db_path, lease=0.05, max_attempts=2) as q:
        q.put(b"hangs")
        for _ in range(2):
            assert q.get(timeout=10) is not None  # and never acked: the lease expires
        assert q.get(timeout=0.3) is None
        dead = q.dead_letters()
        assert len(dead) == 1 and dead[0].attempts == 2
        assert dead[0].last_error is not None and "max_attempts" in dead[0].last_error


def test_bury_and_redrive(db_path: Path) -> None:
    with Queue(db_path) as q:
        ids = q.put_many([b"a", b"b", b"c"])
        for msg in q.get_many(3, timeout=0):
            q.bury(msg, f"bad {msg.payload.decode()}")
        assert [m.last_error for m in q.dead_letters(limit=2)] == ["bad a", "bad b"]
        assert q.redrive([ids[1], 999_999]) == 1
        msg = q.get(timeout=0)
        assert msg is not None and msg.id == ids[1] and msg.attempts == 1
        assert q.redrive() == 2
        assert q.redrive() == 0
        assert q.stats().dead == 0 and q.stats().pending == 2


# -- inspecting and operating --------------------------------------------------------------


def test_stats_counts_every_state(db_path: Path) -> None:
    with Queue(db_path) as q:
        assert q.stats().oldest_pending_age is None
        q.put_many([b"1", b"2", b"3", b"4"])
        q.put(b"later", delay=60)
        taken = q.get(timeout=0)
        dead = q.get(timeout=0)
        assert taken is not None and dead is not None
        q.bury(dead, "bad")
        stats = q.stats()
        assert (stats.pending, stats.in_flight, stats.delayed, stats.dead) == (2, 1, 1, 1)
        assert stats.oldest_pending_age is not None and stats.oldest_pending_age >= 0


def test_purge(db_path: Path) -> None:
    with Queue(db_path) as q:
        q.put_many([b"a", b"b", b"c"])
        msg = q.get(timeout=0)
        assert msg is not None
        q.bury(msg, "bad")
        assert q.purge(dead_only=True) == 1
        assert q.purge() == 2
        assert q.purge() == 0
        assert q.get(timeout=0) is None


def test_named_queues_share_a_file_independently(db_path: Path) -> None:
    with Queue(db_path, "emails") as emails, Queue(db_path, "images") as images:
        emails.put(b"e1")
        images.put_many([b"i1", b"i2"])
        assert emails.stats().pending == 1 and images.stats().pending == 2
        msg = emails.get(timeout=0)
        assert msg is not None and msg.payload == b"e1" and msg.queue == "emails"
        assert emails.get(timeout=0) is None
        assert emails.queue_names() == ["emails", "images"]
        images.purge()
        assert emails.stats().in_flight == 1


def test_ids_are_never_reused(db_path: Path) -> None:
    with Queue(db_path) as q:
        first = q.put(b"a")
        msg = q.get(timeout=0)
        assert msg is not None
        q.ack(msg)  # the queue is now empty
    with Queue(db_path) as q, Queue(db_path, "other") as other:
        second = q.put(b"b")
        assert second > first
        q.put_many([b"c", b"d"])
        top = other.put(b"e")
        assert other.purge() == 1  # the highest id goes
        after_purge = q.put(b"f")
        assert after_purge > top
        batch = q.get_many(10, timeout=0)
        q.ack_many(batch)
        assert q.put_many([b"g", b"h"])[0] > after_purge
        assert q.queue_names() == ["default"]


@pytest.mark.parametrize(("durability", "synchronous"), [("full", 2), ("normal", 1), ("off", 0)])
def test_durability_maps_to_synchronous(db_path: Path, durability: str, synchronous: int) -> None:
    with Queue(db_path, durability=durability) as q:
        assert q._db.conn.execute("PRAGMA synchronous").fetchone()[0] == synchronous
    with pytest.raises(InvalidArgument, match="durability"):
        Queue(db_path, durability="paranoid")


def test_closed_queue_raises(db_path: Path) -> None:
    with Queue(db_path) as q:
        q.put(b"a")
    assert q.closed and "closed" in repr(q)
    q.close()
    for call in (lambda: q.put(b"x"), lambda: q.get(timeout=0), q.stats):
        with pytest.raises(Closed):
            call()


def test_locked_file_gives_database_busy_naming_the_file(db_path: Path) -> None:
    with Queue(db_path, lock_timeout=0.2) as q:
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            q._db.conn.execute("PRAGMA busy_timeout = 10")
            with pytest.raises(DatabaseBusy, match=str(db_path)):
                q.put(b"x")
            with pytest.raises(DatabaseBusy):
                q.get(timeout=0)
        finally:
            other.execute("ROLLBACK")
            other.close()
        q.put(b"x")
        assert q.stats().pending == 1


def test_file_size_stays_bounded_under_steady_traffic(db_path: Path) -> None:
    """Behaviour, not the checkpointer's timing: the pages of deleted rows are reused (the
    database file stops growing), and the WAL is reused from its start once checkpointed
    (it does not grow with the traffic). When the background checkpointer runs is left to
    it; the sizes are read after a checkpoint the test asks for."""
    payload = b"x" * 1000

    def traffic(q: Queue, rounds: int) -> None:
        for _ in range(rounds):
            q.put_many([payload] * 40)
            q.put(payload)
            q.ack_many(q.get_many(100, timeout=0))

    with Queue(db_path) as q:
        db_bytes = []
        for rounds in (100, 1400):  # 60 MB go through the queue
            traffic(q, rounds)
            q._db.checkpoint("FULL")  # every committed page is in the database file now
            db_bytes.append(q._db.file_bytes()["db"])
        rows = q._db.conn.execute("SELECT count(*) FROM queue_messages").fetchone()[0]
        assert rows <= 2  # acked rows are deleted (the newest one stays: it keeps its id)
        early, late = db_bytes
        assert late <= max(2 * early, 1 << 20)  # a few rounds' worth of pages, reused
        # Once checkpointed, the next commits overwrite the WAL from its start: the file
        # grows only if the frames since then do not fit in it.
        q._db.checkpoint("RESTART")
        wal = q._db.file_bytes()["wal"]
        traffic(q, 10)
        frames = q._db.checkpoint("PASSIVE")[1]  # frames written since the WAL restarted
        page = q._db.conn.execute("PRAGMA page_size").fetchone()[0]
        assert 0 < frames * (page + 24) < 4 << 20
        assert q._db.file_bytes()["wal"] <= max(wal, 32 + frames * (page + 24))


# -- files that are not queues -------------------------------------------------------------


def test_text_file_is_refused_and_untouched(db_path: Path) -> None:
    db_path.write_bytes(b"not a database\n" * 100)
    before = db_path.read_bytes()
    with pytest.raises(NotAQueueDatabase, match="not an SQLite database"):
        Queue(db_path)
    assert db_path.read_bytes() == before


def test_foreign_sqlite_file_is_refused_and_untouched(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE orders (id INTEGER)")
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(NotAQueueDatabase, match="another application"):
        Queue(db_path)
    assert db_path.read_bytes() == before


def test_corrupt_file_is_refused_and_untouched(db_path: Path) -> None:
    with Queue(db_path) as q:
        q.put(b"a")
        q.compact()
    data = bytearray(db_path.read_bytes())
    data[16:100] = b"\xff" * 84
    db_path.write_bytes(bytes(data))
    with pytest.raises(CorruptDatabase, match="corrupt"):
        Queue(db_path)
    assert db_path.read_bytes() == bytes(data)


def test_newer_schema_is_refused_and_untouched(db_path: Path) -> None:
    Queue(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {_schema.SCHEMA_VERSION + 1}")
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(SchemaTooNew, match="upgrade sqlitequeue"):
        Queue(db_path)
    assert db_path.read_bytes() == before


def test_read_only_file_is_refused_and_untouched(db_path: Path) -> None:
    with Queue(db_path) as q:
        q.put(b"a")
        q.compact()
    before = db_path.read_bytes()
    code = (
        "import sys\nfrom sqlitequeue import Queue, ReadOnlyDatabase\n"
        "try:\n    Queue(sys.argv[1]).put(b'x')\n"
        "except ReadOnlyDatabase as e:\n    print('READONLY', e); sys.exit(0)\n"
        "sys.exit(1)\n"
    )
    result = run_on_read_only_directory(db_path.parent, [sys.executable, "-c", code, str(db_path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "READONLY" in result.stdout and str(db_path) in result.stdout
    assert db_path.read_bytes() == before
