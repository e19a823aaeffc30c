"""WAL checkpoints run on a background thread, not inside the commit that fills the WAL."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlitequeue import _db
from sqlitequeue._db import Database


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sqlitequeue-checkpoint")]


def test_commits_are_checkpointed_in_the_background(db_path: Path) -> None:
    with Database(db_path) as db:
        assert db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == (
            _db.AUTOCHECKPOINT_BACKSTOP
        )
        db.run_write("CREATE TABLE blobs (b BLOB)")
        before = db_path.stat().st_size
        for _ in range(20):  # ~200 pages: well under the inline backstop
            with db.write() as conn:
                conn.executemany("INSERT INTO blobs VALUES (?)", [(bytes(4000),)] * 10)
        # New pages reach the database file only through a checkpoint; no commit follows,
        # so only the background thread can have copied them.
        deadline = time.monotonic() + 30
        while db_path.stat().st_size < before + 150 * 4096 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db_path.stat().st_size >= before + 150 * 4096
        assert db.conn.execute("SELECT count(*) FROM blobs").fetchone()[0] == 200


def test_one_checkpointer_per_file_stopped_with_the_last_database(db_path: Path) -> None:
    first = Database(db_path)
    second = Database(db_path)
    assert first._checkpointer is second._checkpointer
    first.close()
    assert second._checkpointer is not None and second._checkpointer._thread.is_alive()
    thread = second._checkpointer._thread
    second.close()
    assert not thread.is_alive()
    assert thread not in _checkpoint_threads()
