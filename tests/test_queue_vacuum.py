"""The file gives space back: auto_vacuum is INCREMENTAL, for new and for older files
(issue 15, defect 6). Sizes are measured on disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlitequeue import Queue, Stream, _schema

PAYLOAD = b"p" * 200


def fill_purge_compact(path: Path) -> tuple[int, int]:
    """Put 10k messages, purge, compact; return the file size before and after (bytes)."""
    with Queue(path) as q:
        for _ in range(10):
            q.put_many([PAYLOAD] * 1000)
        full = q.compact()["db"]
        assert q.purge() >= 10_000
        return full, q.compact()["db"]


def test_new_file_uses_incremental_auto_vacuum(db_path: Path) -> None:
    Queue(db_path).close()
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL
    conn.close()


def test_file_shrinks_after_a_purge(db_path: Path) -> None:
    full, after = fill_purge_compact(db_path)
    assert full > 2_000_000
    assert after < full / 10, (full, after)
    assert db_path.stat().st_size == after


def test_compact_shrinks_after_the_messages_are_acked(db_path: Path) -> None:
    with Queue(db_path) as q:
        q.put_many([PAYLOAD] * 10_000)
        full = q.compact()["db"]
        while batch := q.get_many(1000, timeout=0):
            q.ack_many(batch)
        after = q.compact()["db"]
    assert after < full / 10, (full, after)


def make_old_file(path: Path) -> None:
    """A file as sqlitequeue wrote it before this fix: WAL switched on first, so
    auto_vacuum stayed NONE; schema version 1."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    for statement in _schema.split_statements(_schema.MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {_schema.APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("COMMIT")
    conn.execute(
        "INSERT INTO queue_messages (queue, state, priority, available_at, enqueued_at, payload)"
        " VALUES ('default', 0, 0, 0, 0, x'61')"
    )
    conn.close()
    assert sqlite3.connect(path).execute("PRAGMA auto_vacuum").fetchone()[0] == 0


def test_an_older_file_is_migrated_once_and_keeps_its_messages(db_path: Path) -> None:
    make_old_file(db_path)
    full, after = fill_purge_compact(db_path)  # purges the old message too
    assert after < full / 10, (full, after)
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    conn.close()


def test_an_older_file_keeps_its_data_through_the_migration(db_path: Path) -> None:
    make_old_file(db_path)
    with Queue(db_path) as q:
        message = q.get(timeout=0)
        assert message is not None and message.payload == b"a"
    with Stream(db_path, "t") as s:
        s.append(b"r")
        assert [r.payload for r in s.read(0, 0)] == [b"r"]
