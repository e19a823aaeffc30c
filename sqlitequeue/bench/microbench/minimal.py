"""``minimal``: the *minimal correct design* of a SQLite work queue, the anchor of the queue rows.

Issue 15 ("Faster, against the right anchor"): comparing ``Queue`` with a raw loop issuing
*our own* SQL measures only the Python layer and hides a slow SQL design. This subject is
the least a correct claim-and-delete queue needs, written by hand on ``sqlite3``:

* the seed article's ``events`` table with ``status INTEGER`` (0 pending, 1 claimed) and a
  partial index on ``id WHERE status = 0``;
* put: one autocommit ``INSERT``;
* claim: ``UPDATE ... SET status = 1, locked_at = ? WHERE id = (SELECT id ... WHERE status = 0
  ORDER BY id LIMIT 1) RETURNING id, payload``, one autocommit statement;
* ack: ``DELETE ... WHERE id = ?``;
* WAL, ``synchronous=NORMAL``, autocommit.

What it leaves out is what ``Queue`` adds on top and must pay for within 0.8 of this
design's rates: leases that expire and come back (``locked_at`` is never read here),
lease tokens, attempts and dead letters, priorities, delays, ids never reused (SQLite
reuses the highest rowid once its row is deleted). A ``database is locked`` is retried
with back-off, as any user must. A blocking poll waits on ``PRAGMA data_version`` with the
library's back-off, so the latency rows compare like with like.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlitequeue.bench.backends.base import BackendSpec, Consumer, Producer, Received
from sqlitequeue.bench.microbench.subject import BufferedProducer, Subject, retry_locked
from sqlitequeue.internals import WAIT_MAX_SLEEP, WAIT_MIN_SLEEP

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id         INTEGER PRIMARY KEY,
    payload    BLOB    NOT NULL,
    status     INTEGER NOT NULL DEFAULT 0,  -- 0 pending, 1 claimed
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    locked_at  REAL
);
CREATE INDEX IF NOT EXISTS events_pending ON events (id) WHERE status = 0;
"""
INSERT = "INSERT INTO events (payload) VALUES (?)"
CLAIM = (
    "UPDATE events SET status = 1, locked_at = ? WHERE id = (SELECT id FROM events "
    "WHERE status = 0 ORDER BY id LIMIT 1) RETURNING id, payload"
)
ACK = "DELETE FROM events WHERE id = ?"


class MinimalQueue(Subject):
    """The minimal correct design (see the module docstring); one connection per process,
    one table per file (the topic is ignored)."""

    name = "minimal-queue"
    key = "minimal"
    title = "minimal design"
    durabilities = ("normal",)
    batched = False  # one claim per statement; put_many would be the raw loop's
    fan_out = False
    file_name = "minimal.db"

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self.conn = sqlite3.connect(
            str(self.path), isolation_level=None, timeout=5.0, check_same_thread=False
        )
        retry_locked(lambda: self.conn.execute("PRAGMA journal_mode = WAL"))
        self.conn.execute("PRAGMA synchronous = NORMAL")
        retry_locked(lambda: self.conn.executescript(SCHEMA))

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        """Nothing to do: the table was created when the subject was opened."""

    def producer(self, topic: str) -> Producer:
        conn = self.conn

        def put(payload: bytes) -> None:
            retry_locked(lambda: conn.execute(INSERT, (payload,)))

        def put_in_one_transaction(payloads: list[bytes]) -> None:
            """Only used to fill the queue before a timed read."""
            retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
            conn.executemany(INSERT, [(p,) for p in payloads])
            conn.execute("COMMIT")

        return BufferedProducer(put, put_in_one_transaction)

    def consumer(self, topic: str, group: str) -> Consumer:
        return _MinimalConsumer(self.conn)

    def describe(self) -> dict[str, Any]:
        value = self.conn.execute("PRAGMA synchronous").fetchone()[0]
        return {**super().describe(), "synchronous": {1: "NORMAL", 2: "FULL"}.get(value, value)}

    def close(self) -> None:
        self.conn.close()


class _MinimalConsumer(Consumer):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._pending: list[int] = []

    def _claim(self) -> list[Received]:
        conn = self._conn
        row = retry_locked(lambda: conn.execute(CLAIM, (time.time(),)).fetchone())
        if row is None:
            return []
        self._pending.append(row[0])
        return [Received(None, row[1], 0, row[0])]

    def poll(self, max_records: int, timeout: float) -> list[Received]:
        """One claim (``max_records`` is ignored: the design claims one row per statement);
        an empty queue is watched through ``PRAGMA data_version`` until ``timeout``."""
        records = self._claim()
        if records or timeout <= 0:
            return records
        deadline = time.monotonic() + timeout
        while True:
            sleep = WAIT_MIN_SLEEP
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            records = self._claim()
            if records:
                return records
            while self._conn.execute("PRAGMA data_version").fetchone()[0] == version:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                time.sleep(min(sleep, left))
                sleep = min(sleep * 1.5, WAIT_MAX_SLEEP)

    def commit(self) -> None:
        """``DELETE`` each message polled since the last commit."""
        pending, self._pending = self._pending, []
        conn = self._conn
        for message_id in pending:
            retry_locked(lambda: conn.execute(ACK, (message_id,)))  # noqa: B023 - called at once
