"""The on-disk schema: one application id, one version number, and the migrations.

Migration ``n`` takes a file from schema version ``n - 1`` to ``n``; :mod:`sqlitequeue._db`
applies the missing ones inside one write transaction when a file is opened. Never edit a
migration once released: add a new one and bump :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

#: PRAGMA application_id of every sqlitequeue file ("SQQU").
APPLICATION_ID = 0x53515155

#: Tables of the work queue (sqlitequeue.queue).
QUEUE_TABLES = """
CREATE TABLE queue_messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids never reused
    queue            TEXT    NOT NULL,
    payload          BLOB    NOT NULL,
    key              TEXT,
    priority         INTEGER NOT NULL DEFAULT 0,
    enqueued_at      REAL    NOT NULL,
    available_at     REAL    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_token      INTEGER,
    lease_expires_at REAL,
    last_error       TEXT
);
"""

#: Tables of the log (sqlitequeue.stream).
STREAM_TABLES = """
CREATE TABLE stream_topics (
    topic      TEXT    PRIMARY KEY,
    partitions INTEGER NOT NULL
);
"""

MIGRATIONS: list[str] = [QUEUE_TABLES + STREAM_TABLES]

SCHEMA_VERSION = len(MIGRATIONS)


def split_statements(script: str) -> list[str]:
    """Split a migration script into statements (on semicolons at line ends)."""
    statements, current = [], []
    for line in script.splitlines():
        current.append(line)
        if line.rstrip().endswith(";"):
            text = "\n".join(current).strip()
            if text.strip(";").strip():
                statements.append(text)
            current = []
    rest = "\n".join(current).strip()
    if rest:
        statements.append(rest)
    return statements
