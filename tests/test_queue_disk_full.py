"""A full disk gives the producer a clear error and loses nothing acknowledged."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.helpers import run_on_small_file_system

CHILD = r"""
import sys
from sqlitequeue import Queue, QueueError
path = sys.argv[1]
acked = []
with Queue(path) as q:
    try:
        for i in range(100_000):
            acked.append(q.put(b"x" * 4000))
    except QueueError as exc:
        print("ERROR", type(exc).__name__, exc)
# Claiming writes too, so read what is stored with a plain read-only connection.
import sqlite3
conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
stored = [row[0] for row in conn.execute("SELECT id FROM queue_messages")]
print("ACKED", len(acked), "MISSING", len(set(acked) - set(stored)))
"""


def test_disk_full_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    result = run_on_small_file_system(
        mount, "2m", [sys.executable, "-c", CHILD, str(mount / "q.db")]
    )
    assert result.returncode == 0, result.stderr
    assert "ERROR DatabaseError" in result.stdout, result.stdout
    assert "Free disk space" in result.stdout
    assert "MISSING 0" in result.stdout
    assert "ACKED 0 " not in result.stdout
