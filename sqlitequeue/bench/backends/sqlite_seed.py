"""``sqlite-seed``: the seed article's own design, exactly as written, as a backend.

The article ("I Replaced Our Kafka Cluster with a Single SQLite File") shows one ``events``
table, one index, and a claim of one event per transaction::

    CREATE TABLE events (id INTEGER PRIMARY KEY, payload BLOB NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending', created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        locked_at TIMESTAMP);
    CREATE INDEX idx_events_status_created_at ON events (status, created_at);

    BEGIN IMMEDIATE;
    SELECT id FROM events WHERE status='pending' ORDER BY created_at ASC LIMIT 1;
    UPDATE events SET status='processing', locked_at=CURRENT_TIMESTAMP
        WHERE id=? AND status='pending';
    COMMIT;

This backend runs that SQL unchanged, one event per claim, so users see what the article's
design does next to the reference queue. What we had to add, because the article is silent:
publishing is one ``INSERT INTO events (payload)`` per record, each its own transaction,
on a background thread; the payload is read after the claim commits; ``commit()`` marks
the polled events ``status='done'``; a blocked ``BEGIN IMMEDIATE`` ("database is locked")
is retried with back-off, as the article says a worker "simply retries".

Honest limits, which the contract tests assert: there is no lease, so events claimed by a
consumer that dies or closes before committing stay ``'processing'`` forever (stranded,
never redelivered: ``redelivers_uncommitted`` is False); there are no consumer groups (one
group per topic: ``fan_out`` is False); keys are not stored; ``done`` rows are never
deleted, so the file grows without bound; ``created_at`` has one-second resolution (ties
fall back to id order through the index). One file per topic: ``<data_dir>/seed-<topic>.db``.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sqlitequeue.bench.backends._common import (
    BatchingWriter,
    base_description,
    merged_settings,
    safe_name,
    sqlite_description,
)
from sqlitequeue.bench.backends.base import (
    Backend,
    BackendSpec,
    Consumer,
    DeliveryCallback,
    Producer,
    Received,
)
from sqlitequeue.bench.errors import BackendError

DEFAULTS: dict[str, Any] = {
    "synchronous": "NORMAL",
    "busy_timeout_ms": 5000,
    "lock_timeout_s": 30.0,
    "max_buffered": 100_000,
}

#: The article's table and index, verbatim (whitespace aside).
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events ( id INTEGER PRIMARY KEY, payload BLOB NOT NULL,"
    "status TEXT NOT NULL DEFAULT 'pending',-- pending, processing, done, failed\n"
    " created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, locked_at TIMESTAMP);"
    "CREATE INDEX IF NOT EXISTS idx_events_status_created_at ON events (status, created_at);"
)
#: Our one addition: which consumer group owns the topic (the article has no groups).
GROUP_TABLE = "CREATE TABLE IF NOT EXISTS bench_seed_group (grp TEXT NOT NULL)"

CLAIM_SELECT = "SELECT id FROM events WHERE status='pending' ORDER BY created_at ASC LIMIT 1"
CLAIM_UPDATE = (
    "UPDATE events SET status='processing', locked_at =CURRENT_TIMESTAMP "
    "WHERE id = ? AND status='pending'"
)
INSERT = "INSERT INTO events (payload) VALUES (?)"

_SYNCHRONOUS = {"OFF", "NORMAL", "FULL", "EXTRA"}


class SqliteSeedBackend(Backend):
    """The article's ``events`` table and claim (see the module docstring)."""

    name = "sqlite-seed"
    redelivers_uncommitted = False
    fan_out = False
    preserves_keys = False

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self.settings = merged_settings(self.name, DEFAULTS, spec.settings)
        if str(self.settings["synchronous"]).upper() not in _SYNCHRONOUS:
            raise BackendError(
                f"sqlite-seed: synchronous must be one of {sorted(_SYNCHRONOUS)}, "
                f"not {self.settings['synchronous']!r}"
            )

    def path(self, topic: str) -> Path:
        """Return the database file that holds ``topic``'s events table."""
        return Path(self.spec.data_dir) / f"seed-{safe_name(topic)}.db"

    def connect(self, topic: str) -> SeedConnection:
        """Return a new connection to ``topic``'s file (tables created if missing)."""
        return SeedConnection(self.path(topic), self.settings)

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        """Create the file with the article's table and index (partitions are ignored)."""
        self.connect(topic).close()

    def producer(self, topic: str) -> Producer:
        """Return a producer inserting one event per transaction."""
        return SeedProducer(self.connect(topic), self.settings)

    def consumer(self, topic: str, group: str) -> Consumer:
        """Return a consumer claiming one event per transaction.

        Raises BackendError when ``topic`` already belongs to another group: the article's
        table has no consumer groups.
        """
        conn = self.connect(topic)
        try:
            conn.claim_group(group)
        except BaseException:
            conn.close()
            raise
        return SeedConsumer(conn)

    def describe(self) -> dict[str, Any]:
        """Return settings, the SQLite version and effective pragmas."""
        info = base_description(self.name, self.spec.profile, self.settings)
        with tempfile.TemporaryDirectory() as scratch:  # pragmas read back, as opened
            conn = SeedConnection(Path(scratch) / "probe.db", self.settings)
            try:
                info.update(sqlite_description(conn.conn))
            finally:
                conn.close()
        info["claim"] = "article: BEGIN IMMEDIATE; SELECT oldest pending; UPDATE; COMMIT"
        return info


class SeedConnection:
    """One sqlite3 connection to a seed file, with the article's SQL and a busy retry."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = path
        self.lock_timeout = float(settings["lock_timeout_s"])
        self.busy_retries = 0
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=0
            )
            self.conn.execute(f"PRAGMA busy_timeout = {int(settings['busy_timeout_ms'])}")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute(f"PRAGMA synchronous = {str(settings['synchronous']).upper()}")
            self._retry(lambda: self.conn.executescript(SCHEMA + ";" + GROUP_TABLE))
        except sqlite3.Error as exc:
            raise BackendError(f"sqlite-seed: cannot open {path}: {exc}") from exc

    def _retry(self, action: Any) -> Any:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.0005
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                with contextlib.suppress(sqlite3.Error):
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                if time.monotonic() > deadline:
                    raise BackendError(
                        f"sqlite-seed: {self.path} stayed locked for {self.lock_timeout} s"
                    ) from exc
                self.busy_retries += 1
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.05)

    def claim_group(self, group: str) -> None:
        """Record ``group`` as the topic's only group; raise BackendError for another one."""

        def claim() -> str:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                row = self.conn.execute("SELECT grp FROM bench_seed_group").fetchone()
                if row is None:
                    self.conn.execute("INSERT INTO bench_seed_group (grp) VALUES (?)", (group,))
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            return str(row[0]) if row else group

        owner = self._retry(claim)
        if owner != group:
            raise BackendError(
                f"sqlite-seed: {self.path} is consumed by group {owner!r}; the article's "
                "events table has no consumer groups, so a second group cannot read it "
                "(use sqlite-queue or sqlite-stream for several groups)"
            )

    def insert(self, payload: bytes) -> None:
        """Insert one pending event in its own transaction."""
        with self._lock:
            self._retry(lambda: self.conn.execute(INSERT, (payload,)))

    def claim_one(self) -> tuple[int, bytes] | None:
        """Run the article's claim once; return (id, payload) or None when none is pending."""
        with self._lock:
            event_id = self._retry(self._claim_transaction)
            if event_id is None:
                return None
            row = self.conn.execute("SELECT payload FROM events WHERE id = ?", (event_id,))
            return event_id, bytes(row.fetchone()[0])

    def _claim_transaction(self) -> int | None:
        while True:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                row = self.conn.execute(CLAIM_SELECT).fetchone()
                claimed = row is not None and self.conn.execute(CLAIM_UPDATE, (row[0],)).rowcount
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            if row is None:
                return None
            if claimed == 1:
                return int(row[0])
            # zero rows updated: another worker won the race; "the worker simply retries"

    def mark_done(self, ids: list[int]) -> None:
        """Set ``status='done'`` for ``ids`` in one transaction."""

        def update() -> None:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    self.conn.execute(
                        f"UPDATE events SET status='done' WHERE id IN ({marks})", chunk
                    )
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

        with self._lock:
            self._retry(update)

    def data_version(self) -> int:
        """Return PRAGMA data_version (changes when another connection commits)."""
        with self._lock:
            return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        with self._lock:
            self.conn.close()


class SeedProducer(Producer):
    """One INSERT per record, each its own transaction, on a background thread."""

    def __init__(self, conn: SeedConnection, settings: dict[str, Any]) -> None:
        self._conn = conn
        self._writer = BatchingWriter(
            self._write, max_batch=1, max_buffered=int(settings["max_buffered"]), name="seed"
        )
        self._closed = False

    def _write(self, records: list[tuple[bytes | None, bytes]]) -> None:
        for _, payload in records:
            self._conn.insert(payload)

    def send(
        self, key: bytes | None, payload: bytes, on_delivery: DeliveryCallback | None = None
    ) -> None:
        """Buffer one event (the key is not stored: the article's table has no key)."""
        self._writer.send(key, bytes(payload), on_delivery)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every event sent so far is inserted; raise BackendError on timeout."""
        self._writer.flush(timeout)

    def close(self) -> None:
        """Flush, stop the writer and close the connection; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.close()
        finally:
            self._conn.close()


class SeedConsumer(Consumer):
    """Claims one event per transaction; commit marks the polled events done."""

    def __init__(self, conn: SeedConnection) -> None:
        self._conn = conn
        self._uncommitted: list[int] = []
        self._closed = False

    def poll(self, max_records: int, timeout: float) -> list[Received]:
        """Claim up to ``max_records`` events one by one; wait up to ``timeout`` for the first."""
        if self._closed:
            raise BackendError("poll() after the consumer was closed")
        deadline = time.monotonic() + timeout
        records: list[Received] = []
        sleep = 0.00005
        while len(records) < max_records:
            version = self._conn.data_version()
            claimed = self._conn.claim_one()
            if claimed is not None:
                self._uncommitted.append(claimed[0])
                records.append(Received(key=None, payload=claimed[1], offset=claimed[0]))
                continue
            if records or time.monotonic() >= deadline:
                break
            while self._conn.data_version() == version and time.monotonic() < deadline:
                time.sleep(sleep)
                sleep = min(sleep * 2, 0.002)
        return records

    def commit(self) -> None:
        """Mark every event polled so far ``status='done'``."""
        if self._closed:
            raise BackendError("commit() after the consumer was closed")
        if self._uncommitted:
            self._conn.mark_done(self._uncommitted)
            self._uncommitted = []

    def close(self) -> None:
        """Close without committing: claimed events stay 'processing' (stranded). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._conn.close()
