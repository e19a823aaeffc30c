"""The database layer: validation before modification, schema versioning, write retries."""

from __future__ import annotations

import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from sqlitequeue import _db, _schema
from sqlitequeue.errors import (
    Closed,
    CorruptDatabase,
    InvalidArgument,
    NotAQueueDatabase,
    SchemaTooNew,
)
from tests.helpers import run_on_read_only_directory


def test_new_file_gets_wal_schema_and_application_id(db_path: Path) -> None:
    with _db.Database(db_path) as db:
        conn = db.conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA application_id").fetchone()[0] == _schema.APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == _schema.SCHEMA_VERSION


def test_reopen_is_idempotent(db_path: Path) -> None:
    _db.Database(db_path).close()
    with _db.Database(db_path, durability="full") as db:
        assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_text_file_is_refused_and_untouched(db_path: Path) -> None:
    db_path.write_bytes(b"hello, not a database\n" * 100)
    before = db_path.read_bytes()
    with pytest.raises(NotAQueueDatabase, match="not an SQLite database"):
        _db.Database(db_path)
    assert db_path.read_bytes() == before


def test_foreign_sqlite_file_is_refused_and_untouched(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE users (id INTEGER)")
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(NotAQueueDatabase, match="another application"):
        _db.Database(db_path)
    assert db_path.read_bytes() == before


def test_corrupt_file_is_refused_and_untouched(db_path: Path) -> None:
    _db.Database(db_path).close()
    data = bytearray(db_path.read_bytes())
    data[16:100] = b"\xff" * 84  # smash the header's page size and counters
    db_path.write_bytes(bytes(data))
    with pytest.raises(CorruptDatabase):
        _db.Database(db_path)
    assert db_path.read_bytes() == bytes(data)


def test_newer_schema_is_refused(db_path: Path) -> None:
    _db.Database(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {_schema.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew, match="upgrade sqlitequeue"):
        _db.Database(db_path)


def test_read_only_file_is_refused_and_untouched(db_path: Path) -> None:
    _db.Database(db_path).close()
    before = db_path.read_bytes()
    code = (
        "import sys; from sqlitequeue import _db\n"
        "try:\n    _db.Database(sys.argv[1])\n"
        "except _db.ReadOnlyDatabase as e:\n    print('READONLY', e); sys.exit(0)\n"
        "sys.exit(1)\n"
    )
    result = run_on_read_only_directory(db_path.parent, [sys.executable, "-c", code, str(db_path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "READONLY" in result.stdout
    assert db_path.read_bytes() == before


def test_bad_durability_is_refused(db_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="durability"):
        _db.Database(db_path, durability="sometimes")


def test_write_rolls_back_on_error(db_path: Path) -> None:
    with _db.Database(db_path) as db:
        db.conn.execute("CREATE TEMP TABLE t (x)")
        with pytest.raises(RuntimeError), db.write() as conn:
            conn.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")
        assert db.conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_wait_for_change_sees_other_connection(db_path: Path) -> None:
    with _db.Database(db_path) as a, _db.Database(db_path) as b:
        assert a.wait_for_change(0.01) is False
        insert = (
            "INSERT INTO queue_messages (queue, payload, enqueued_at, rank) "
            "VALUES ('q', x'00', 0, 0)"
        )
        timer = threading.Timer(0.05, lambda: b.run_write(insert))
        timer.start()
        try:
            assert a.wait_for_change(10) is True
        finally:
            timer.join()


def test_closed_database_raises(db_path: Path) -> None:
    db = _db.Database(db_path)
    db.close()
    db.close()
    with pytest.raises(Closed):
        db.data_version()


def test_wait_for_change_since_a_token_sees_a_commit_made_before_the_wait(
    db_path: Path,
) -> None:
    with _db.Database(db_path) as waiter, _db.Database(db_path) as writer:
        token = waiter.change_token()
        with writer.write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
        # The commit happened before the wait began: it must still count.
        assert waiter.wait_for_change(30.0, since=token) is True


def test_full_durability_relaxes_only_non_durable_commits(db_path: Path) -> None:
    with _db.Database(db_path, durability="full") as db:
        sync = "PRAGMA synchronous"
        with db.write(durable=False) as conn:
            assert conn.execute(sync).fetchone()[0] == 1  # NORMAL
        with db.write() as conn:
            assert conn.execute(sync).fetchone()[0] == 2  # FULL again
    with _db.Database(db_path, durability="normal") as db, db.write() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1
