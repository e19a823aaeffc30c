"""Schema version 3: the queue's table rebuilt for a cheaper claim and ack (issue 15, "Faster").

A file written by version 2 (made here from the old DDL, with messages in every state) is
migrated when opened and keeps every guarantee: delivery order (priority, then id), held
leases (their tokens still ack), expired leases (redelivered, attempts kept), delays, dead
letters, and ids never reused. Then the new ack: an acked row is deleted in bulk later, and
nobody ever sees it again meanwhile, in this process or another.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from sqlitequeue import LeaseLost, Queue, _schema
from sqlitequeue.queue import Message

V2_COLUMNS = (
    "(id, queue, state, priority, available_at, attempts, lease_token, enqueued_at, payload)"
)
HELD_TOKEN = 4242


def make_v2_file(path: Path) -> dict[str, int]:
    """A file as sqlitequeue 2's schema wrote it: one row per v2 state; returns their ids."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    for script in _schema.MIGRATIONS[:2]:
        for statement in _schema.split_statements(script):
            conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {_schema.APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 2")
    now = time.time()  # the file clock starts at the wall clock when first adopted
    rows = {  # v2 states: 0 ready, 1 delayed, 2 leased, 3 dead, 4 tombstone
        "ready_low": (1, "default", 0, 0, now, 0, None, now, b"low"),
        "ready_high": (2, "default", 0, 5, now, 0, None, now, b"high"),
        "held": (3, "default", 2, 0, now + 600, 1, HELD_TOKEN, now, b"held"),
        "expired": (4, "default", 2, 0, now - 1, 2, 777, now, b"expired"),
        "delayed": (5, "default", 1, 0, now + 600, 0, None, now, b"later"),
        "due": (6, "default", 1, 0, now - 1, 0, None, now, b"due"),
        "dead": (7, "default", 3, 0, now, 5, None, now, b"dead"),
        "other_queue": (8, "other", 0, 0, now, 0, None, now, b"other"),
        "tombstone": (20, "default", 4, 0, 0, 0, None, 0, b""),
    }
    for row in rows.values():
        conn.execute(f"INSERT INTO queue_messages {V2_COLUMNS} VALUES (?,?,?,?,?,?,?,?,?)", row)
    conn.execute("COMMIT")
    conn.close()
    return {name: row[0] for name, row in rows.items()}


def test_a_version_2_file_is_migrated_and_keeps_every_guarantee(db_path: Path) -> None:
    ids = make_v2_file(db_path)
    with Queue(db_path) as q:
        assert q._db.conn.execute("PRAGMA user_version").fetchone()[0] == _schema.SCHEMA_VERSION
        stats = q.stats()  # settles first: the due delayed row and the expired lease are ready
        assert (stats.pending, stats.in_flight, stats.delayed, stats.dead) == (4, 1, 1, 1)
        got = [q.get(timeout=0) for _ in range(4)]
        assert [m.payload for m in got if m] == [b"high", b"low", b"expired", b"due"]
        assert [m.attempts for m in got if m] == [1, 1, 3, 1]
        assert q.get(timeout=0) is None  # the held lease and the delay still hold
        held = Message(ids["held"], b"held", None, 0, 1, 0.0, None, "default", HELD_TOKEN)
        q.ack(held)  # its lease survived the migration
        assert [m.payload for m in q.dead_letters()] == [b"dead"]
        assert q.put(b"new") > ids["tombstone"]  # ids are never reused
        assert Queue(db_path, "other").get(timeout=0).payload == b"other"  # type: ignore[union-attr]


def test_a_migrated_file_has_one_index_for_the_queue(db_path: Path) -> None:
    make_v2_file(db_path)
    Queue(db_path).close()
    conn = sqlite3.connect(db_path)
    indexes = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'queue_messages'"
        )
    }
    conn.close()
    assert indexes == {"queue_order"}
    conn = sqlite3.connect(db_path)
    assert (
        conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()[0] == 0
    )
    conn.close()


def test_an_acked_message_is_never_seen_again_before_its_row_is_deleted(db_path: Path) -> None:
    with Queue(db_path, lease=0.05) as q, Queue(db_path, lease=0.05) as other:
        q.put_many([b"a", b"b"])
        first = q.get(timeout=0)
        assert first is not None
        q.ack(first)
        assert q._acked == [first.id]  # the row is still there, acked
        with pytest.raises(LeaseLost):
            q.ack(first)  # a second ack finds no lease
        with pytest.raises(LeaseLost):
            q.nack(first)
        assert other.stats().in_flight == 0
        time.sleep(0.1)  # the lease would have expired: the row is dropped, not redelivered
        second = other.get(timeout=0)
        assert second is not None and second.payload == b"b"
        other.ack(second)
        assert other.get(timeout=0) is None
        assert q.stats().pending == 0 and q.queue_names() == []
    conn = sqlite3.connect(db_path)
    live = "SELECT count(*) FROM queue_messages WHERE state <> 1 OR lease_token IS NOT NULL"
    assert conn.execute(live).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM queue_messages").fetchone()[0] == 1  # the newest
    conn.close()


def test_acked_rows_are_deleted_by_the_next_claim_and_on_close(db_path: Path) -> None:
    def rows() -> int:
        conn = sqlite3.connect(db_path)
        try:
            return int(conn.execute("SELECT count(*) FROM queue_messages").fetchone()[0])
        finally:
            conn.close()

    with Queue(db_path) as q:
        q.put_many([b"x"] * 3)
        for _ in range(2):
            message = q.get(timeout=0)
            assert message is not None
            q.ack(message)
        assert rows() == 3
        time.sleep(0.01)
        third = q.get(timeout=0)  # a claim settles first: the two acked rows go
        assert third is not None
        assert rows() == 1
        q.ack(third)
    assert rows() == 1  # closed: the newest stays, acked, and keeps its id from reuse


def test_ids_are_never_reused_whichever_way_the_newest_message_goes(db_path: Path) -> None:
    """No statement deletes the row with the highest id: ack, ack_many, a late ack after the
    lease expired, purge and purge of dead letters all leave it (unseen) in place."""

    def newest_goes(q: Queue, how: str) -> None:
        if how == "purge":
            q.purge()
            return
        if how == "purge dead":
            message = q.get(timeout=0)
            assert message is not None
            q.bury(message, "no")
            assert q.purge(dead_only=True) == 1
            return
        message = q.get(timeout=0, lease=0.01 if how == "late ack" else 30)
        assert message is not None
        if how == "late ack":
            time.sleep(0.02)  # the lease expired, nobody claimed it since
            q.ack(message)
        elif how == "ack_many":
            q.ack_many([message])
        else:
            q.ack(message)

    with Queue(db_path) as q:
        last = 0
        for how in ("ack", "ack_many", "late ack", "purge", "purge dead", "ack"):
            new = q.put(b"x")
            assert new > last, how
            newest_goes(q, how)
            assert q.stats().pending == 0 and q.queue_names() == [], how
            last = new
        assert q.put(b"y") > last


@pytest.mark.parametrize("how", ["ack", "ack_many", "late ack"])
def test_a_blocked_get_sleeps_beside_the_acked_row_that_keeps_the_newest_id(
    db_path: Path, how: str
) -> None:
    """The newest message's acked row is kept (its id is the highest); it never falls due,
    so a get blocked on the empty queue waits instead of spinning."""
    with Queue(db_path, lease=0.05) as q:
        q.put(b"x")
        message = q.get(timeout=0)
        assert message is not None
        if how == "late ack":
            time.sleep(0.1)
        q.ack_many([message]) if how == "ack_many" else q.ack(message)
        time.sleep(0.1)  # the kept row's lease (had it been one) is over
        cpu = time.process_time()
        assert q.get(timeout=0.5) is None
        assert time.process_time() - cpu < 0.25  # a spinning wait burns the whole 0.5 s
