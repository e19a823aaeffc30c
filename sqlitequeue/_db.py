"""Connections, pragmas, schema and migrations, write transactions, and change wake-ups.

Everything that touches ``sqlite3`` directly goes through :class:`Database`:

* opening validates the file *before* changing anything: a file that is not SQLite,
  is corrupt, belongs to another application, or has a newer schema raises a
  :class:`~sqlitequeue.errors.DatabaseError` subclass and is left byte-for-byte as it was;
* write transactions are ``BEGIN IMMEDIATE`` with a bounded retry and back-off, because
  SQLite's busy handler is not invoked in every contended case (WAL recovery, snapshot
  upgrades), so ``database is locked`` never escapes to callers: after ``lock_timeout``
  seconds they get :class:`~sqlitequeue.errors.DatabaseBusy` naming the file;
* WAL checkpoints run on a background thread (one per file per process, with its own
  connection), not inside the COMMIT that crossed SQLite's auto-checkpoint threshold:
  a checkpoint copies pages and fsyncs twice, which on a busy disk takes tens to
  hundreds of milliseconds, and a queue writes several pages per message (put, claim,
  ack), so inline checkpoints stalled producers and consumers many times a second;
* :meth:`Database.wait_for_change` wakes when another connection commits, by polling
  ``PRAGMA data_version`` with an adaptive back-off (sub-millisecond at first, a few
  milliseconds when idle), so blocking reads are fast without burning a core.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlitequeue import _clock, _files, _schema
from sqlitequeue._files import AUTOCHECKPOINT_BACKSTOP
from sqlitequeue._group_commit import GroupCommit
from sqlitequeue.errors import (
    Closed,
    CorruptDatabase,
    DatabaseBusy,
    DatabaseError,
    InvalidArgument,
    NotAQueueDatabase,
    ReadOnlyDatabase,
    SchemaTooNew,
)

T = TypeVar("T")

logger = logging.getLogger("sqlitequeue")

#: Statement parameters, as sqlite3 takes them.
Parameters = Sequence[Any] | Mapping[str, Any]

#: durability name -> PRAGMA synchronous value, and what each risks (see README).
DURABILITY = {
    "full": "FULL",  # fsync on every commit: survives power loss / OS crash.
    "normal": "NORMAL",  # fsync at checkpoints: survives process crash; power loss may lose
    # the last commits (never corrupts).
    "off": "OFF",  # no fsync: survives process crash; power loss may corrupt the file.
}

#: First wait before retrying a statement that found the file locked (then longer per retry,
#: jittered, at most 50 ms): a write lock is held for tens of microseconds.
FIRST_RETRY_DELAY = 0.00005

#: Back-off bounds for :meth:`Database.wait_for_change`, in seconds.
WAIT_MIN_SLEEP = 0.00005
WAIT_MAX_SLEEP = 0.002

#: The WAL file is truncated to this size after a checkpoint (it would otherwise keep its
#: largest size forever).
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024


def _back_off(delay: float) -> float:
    """Sleep about ``delay`` seconds (jittered, so waiting processes spread out) and return
    the next delay: four times longer below 1 ms (a lock still held after a short wait is
    contended: retrying fast then only burns the CPU its holder needs), doubled above, at
    most 50 ms."""
    time.sleep(delay * (0.5 + random.random()))
    return min(delay * (4 if delay < 0.001 else 2), 0.05)


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _is_readonly(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "readonly" in text or "read-only" in text or "unable to open" in text


class Database:
    """One connection to a sqlitequeue file, shared by the queues and streams opened on it.

    ``durability`` is ``"full"``, ``"normal"`` or ``"off"`` (PRAGMA synchronous).
    ``busy_timeout`` is SQLite's own wait per attempt while the file is opened; after
    that, locks held by other connections are retried here with sub-millisecond back-off
    (SQLite's own handler sleeps at least a millisecond per retry: on a busy queue every
    collision of a producer's and a consumer's commits cost a whole millisecond of
    latency). ``lock_timeout`` bounds the total time spent retrying before
    :class:`DatabaseBusy` is raised.
    Raises a :class:`DatabaseError` subclass when the file cannot be used; the file is
    never modified in that case. Thread-safe: calls are serialised by an internal lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: str = "normal",
        busy_timeout: float = 5.0,
        lock_timeout: float = 30.0,
    ) -> None:
        if not isinstance(durability, str) or durability not in DURABILITY:
            raise InvalidArgument(
                f"durability must be one of {sorted(DURABILITY)}, not {durability!r}"
            )
        _files.check_timeout("busy_timeout", busy_timeout)
        self.lock_timeout = _files.check_timeout("lock_timeout", lock_timeout)
        # SQLite's own wait per attempt never outlasts the whole retry budget.
        busy_timeout = min(busy_timeout, lock_timeout)
        self.path = _files.check_path(path)
        self.durability = durability
        self._busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self._closed = False
        self._conn: sqlite3.Connection | None = None
        self._file_key: tuple[int, int] | None = None
        self._checkpointer: _files.Checkpointer | None = None
        # Commits made through this object: PRAGMA data_version only sees other
        # connections' commits, so wait_for_change also watches this counter (a thread
        # blocked in it must wake when another thread commits on the same connection).
        self._local_commits = 0
        # The connection's current PRAGMA synchronous (see _set_sync).
        self._sync = DURABILITY[durability]
        self._full = durability == "full"  # only then do commits switch synchronous
        self._group = GroupCommit()
        self._clock_offset = 0.0  # file time - CLOCK_BOOTTIME (see now())
        _files.track(self)
        try:
            with self._lock:
                self._attach()
        except BaseException:
            self._closed = True
            _files.untrack(self)
            raise

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection; reopened first if a fork closed it. Raises Closed after close()."""
        conn = self._conn
        if conn is None:
            with self._lock:
                conn = self._conn or self._attach()
        return conn

    # -- opening -------------------------------------------------------------------------

    def _attach(self) -> sqlite3.Connection:
        """Open the connection, then validate, set pragmas and migrate (lock held).

        Runs when the Database is made, and again on first use after a fork closed the
        connection (see :mod:`sqlitequeue._files`). Raises Closed after :meth:`close`.
        """
        self._check_open()
        with _files.OPEN_FILES_LOCK:
            _files.check_file_before_open(self.path)
            try:
                conn = sqlite3.connect(
                    os.fsencode(self.path),
                    timeout=self._busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                    cached_statements=256,
                )
            except sqlite3.Error as exc:
                raise _translate_open_error(self.path, exc) from exc
            self._file_key, self._checkpointer = _files.register_open_file(self.path)
        self._conn, self._sync = conn, DURABILITY[self.durability]
        try:
            self._prepare(self._busy_timeout)
            conn.execute("PRAGMA busy_timeout = 0")  # from now on, _retry waits (see above)
        except BaseException:
            self._detach()
            raise
        return conn

    def _detach(self) -> None:
        """Close the connection and count the file as closed (lock held)."""
        conn, key = self._conn, self._file_key
        self._conn, self._file_key, self._checkpointer = None, None, None
        if conn is not None:
            conn.close()
            _files.unregister_open_file(key)

    # -- fork safety (called by sqlitequeue._files around os.fork) -------------------------

    def acquire_for_fork(self) -> None:
        """Take the lock: no thread uses the connection until release_after_fork."""
        self._lock.acquire()

    def detach_for_fork(self) -> tuple[int, int] | None:
        """Close the connection without touching the open-file counts (the fork handler
        does that); return its file key. Keeps a connection inside a transaction."""
        conn, key = self._conn, self._file_key
        if conn is None or conn.in_transaction:
            return None
        self._conn, self._file_key, self._checkpointer = None, None, None
        conn.close()
        return key

    def release_after_fork(self) -> None:
        """Release the lock taken by acquire_for_fork."""
        self._lock.release()

    def _prepare(self, busy_timeout: float) -> None:
        """Validate, set pragmas and migrate, retrying busy errors within lock_timeout.

        Every step is idempotent. Retrying them as a whole is needed because SQLite
        returns ``database is locked`` without calling the busy handler when two
        processes create one file at once (both switching it to WAL, or one reading
        while the other migrates).
        """
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.002
        while True:
            try:
                self._prepare_once(busy_timeout)
                return
            except DatabaseBusy as exc:
                self._rollback()
                if time.monotonic() >= deadline:
                    raise DatabaseBusy(
                        f"{self.path} stayed locked for {self.lock_timeout:g} s while "
                        f"opening ({exc.__cause__ or exc}); look for a process stuck inside "
                        "a transaction, or raise lock_timeout"
                    ) from exc
                delay = _back_off(delay)

    def _prepare_once(self, busy_timeout: float) -> None:
        try:
            self._validate_schema()
            self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self.conn.execute(f"PRAGMA synchronous = {DURABILITY[self.durability]}")
            if self.conn.execute("PRAGMA page_count").fetchone()[0] == 0:
                # Before WAL: switching to WAL writes the first page, which fixes
                # auto_vacuum (older files: see _ensure_incremental_vacuum).
                self.conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            self._ensure_wal()
            self.conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            if self._checkpointer is not None:  # it checkpoints; commits no longer do
                self.conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_BACKSTOP}")
            self._migrate()
            self._ensure_incremental_vacuum()
            # After the VACUUM (which would copy the whole file into memory): a claim of
            # several rows builds a small ephemeral table, and on the default temp store
            # each one costs as much as the claim itself.
            self.conn.execute("PRAGMA temp_store = MEMORY")
            self._clock_offset = self._sync_clock()
        except sqlite3.Error as exc:
            raise _translate_open_error(self.path, exc) from exc

    def _validate_schema(self) -> None:
        """Refuse files that are not ours, or are newer than us, before writing anything.

        The three facts are read in one snapshot: another process may be creating the
        schema right now, and a mix of before and after would look like a foreign file.
        """
        with self.read() as conn:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            ).fetchone()[0]
        if app_id == 0 and tables == 0 and version == 0:
            return  # a new or empty file: ours to initialise
        if app_id != _schema.APPLICATION_ID:
            raise NotAQueueDatabase(
                f"{self.path} is an SQLite database of another application "
                f"(application_id={app_id}, user_version={version}, {tables} tables); "
                "sqlitequeue only opens files stamped with its own application_id and will "
                "not modify it. Use a new file name for the queue."
            )
        if version > _schema.SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self.path} has schema version {version}, but this sqlitequeue understands "
                f"up to {_schema.SCHEMA_VERSION}; upgrade sqlitequeue to open it."
            )

    def _ensure_wal(self) -> None:
        mode = self.conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise DatabaseError(
                    f"{self.path}: could not switch to WAL journal mode (got {mode!r}); "
                    "the file system may not support shared memory (e.g. a network share)."
                )

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version == _schema.SCHEMA_VERSION:
            return
        with self.write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(_schema.MIGRATIONS, start=1):
                if number > version:
                    for statement in _schema.split_statements(script):
                        conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {_schema.APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {_schema.SCHEMA_VERSION}")

    def _ensure_incremental_vacuum(self) -> None:
        """Turn on ``auto_vacuum = INCREMENTAL`` in a file made without it, once.

        Files written before sqlitequeue set it ahead of WAL mode have auto_vacuum NONE,
        and free pages then never leave the file. Only a VACUUM can change that: it
        rewrites the file under the write lock (other processes' writes wait) and needs
        free disk space about the size of the file. When it fails for lack of space the
        file stays as it was and fully usable, and the next open tries again.
        """
        if self.conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 0:
            return
        self.conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        try:
            self.conn.execute("VACUUM")
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise
            error = _translate_runtime_error(self.path, exc)
            logger.warning("%s: auto_vacuum stays off for now: %s", self.path, error)

    def _sync_clock(self) -> float:
        """Return the file clock's offset for this boot, rebasing the file first if
        another boot (a reboot, or another host) set it (see :mod:`sqlitequeue._clock`)."""
        with self.read() as conn:
            offset = _clock.stored_offset(conn)
        if offset is None:
            with self.write() as conn:
                offset = _clock.adopt(conn)
        return offset

    def now(self) -> float:
        """The file's clock in seconds: what stored deadlines (leases, delays) are
        compared with. The same in every process on this host, and never stepped by
        wall-clock changes; it started equal to ``time.time()`` (see
        :mod:`sqlitequeue._clock`)."""
        return _clock.boottime() + self._clock_offset

    # -- transactions --------------------------------------------------------------------

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """Run the block in one ``BEGIN IMMEDIATE`` transaction; commit on success.

        ``durable=False`` allows the commit to be undone by a power loss even under
        ``durability="full"`` (see :meth:`_set_sync`); only for writes whose loss makes
        a message be delivered again, never for writes whose loss would lose one.

        ``BEGIN`` is retried with back-off on busy errors; :class:`DatabaseBusy` is raised
        if the lock cannot be had within ``lock_timeout``. Statements inside the block run
        with the write lock held. Any error rolls the whole transaction back (nothing
        partial is stored); SQLite errors are translated to :class:`DatabaseError`
        subclasses, other exceptions propagate unchanged.
        """
        with self._lock:
            self._check_open()
            self._set_sync(durable)
            self._begin_immediate()
            try:
                yield self.conn
            except sqlite3.Error as exc:
                self._rollback()
                if isinstance(exc, sqlite3.OperationalError) and _is_readonly(exc):
                    raise _readonly_error(self.path, exc) from exc
                raise _translate_runtime_error(self.path, exc) from exc
            except BaseException:
                self._rollback()
                raise
            self._commit()
            self._committed()

    def _set_sync(self, durable: bool) -> None:
        """Under ``durability="full"``, commit at NORMAL when ``durable`` is False.

        In WAL mode a NORMAL commit is not fsynced but stays ordered before the next
        fsync, so a power loss can undo only the most recent such commits, never reorder
        or corrupt. Claims and acks use it: undoing them redelivers messages, which
        at-least-once delivery allows, and it saves one fsync each (get+ack runs several
        times faster). Puts stay FULL, so no acknowledged put is lost. Call outside a
        transaction, with the lock held.
        """
        if self.durability != "full":
            return
        wanted = "FULL" if durable else "NORMAL"
        if wanted != self._sync:
            self.conn.execute(f"PRAGMA synchronous = {wanted}")
            self._sync = wanted

    def _committed(self) -> None:
        self._local_commits += 1
        checkpointer = self._checkpointer
        if checkpointer is not None:
            checkpointer.note_commit()

    def _rollback(self) -> None:
        conn = self._conn
        if conn is not None and conn.in_transaction:
            conn.execute("ROLLBACK")

    def execute_write(
        self, statement: str, parameters: Parameters = (), *, durable: bool = True
    ) -> sqlite3.Cursor:
        """Run one statement that returns no rows as its own (autocommit) transaction.

        The cheapest write: no BEGIN/COMMIT round trips. Returns the finished cursor (for
        ``rowcount`` and ``lastrowid``). Busy errors are retried like :meth:`write` and end
        in :class:`DatabaseBusy`; the statement is atomic, so a failure stores nothing.
        Statements with ``RETURNING`` must use :meth:`execute_returning` instead.
        ``durable`` is as for :meth:`write`.
        """
        with self._lock:
            if self._closed:
                self._check_open()
            if self._full:
                self._set_sync(durable)
            try:
                cursor = (self._conn or self.conn).execute(statement, parameters)
            except sqlite3.OperationalError:
                cursor = self._retry(lambda: self.conn.execute(statement, parameters), "write")
            except sqlite3.DatabaseError as exc:
                raise _translate_runtime_error(self.path, exc) from exc
            self._committed()
            return cursor

    def execute_returning(
        self, statement: str, parameters: Parameters = (), *, durable: bool = True
    ) -> list[Any]:
        """Like :meth:`execute_write` for one statement with ``RETURNING``: return its rows.

        The rows are fetched (and so the autocommit transaction finished) before the
        internal lock is released.
        """
        with self._lock:
            if self._closed:
                self._check_open()
            if self._full:
                self._set_sync(durable)
            try:
                rows = (self._conn or self.conn).execute(statement, parameters).fetchall()
            except sqlite3.OperationalError:
                self._rollback()
                rows = self._retry(
                    lambda: self.conn.execute(statement, parameters).fetchall(), "write"
                )
            except sqlite3.DatabaseError as exc:
                self._rollback()
                raise _translate_runtime_error(self.path, exc) from exc
            self._committed()
            return rows

    def write_grouped(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(conn)`` in a durable write transaction, shared with the concurrent
        ``write_grouped`` calls of other threads (group commit: one COMMIT, one fsync for
        all of them; see :mod:`sqlitequeue._group_commit`). Returns ``work``'s result once
        the transaction that holds it has committed. If any write of the shared transaction
        fails, nothing of it is stored and every caller gets the error."""
        return self._group.run(work, self.write)

    def run_write(self, statement: str, parameters: Parameters = ()) -> list[Any]:
        """Run one statement in its own write transaction and return all its rows."""
        with self.write() as conn:
            return conn.execute(statement, parameters).fetchall()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one read transaction (a consistent snapshot)."""
        with self._lock:
            self._check_open()
            self._retry(self._begin_read, "begin a read")
            try:
                yield self.conn
            finally:
                if self.conn.in_transaction:
                    self.conn.execute("COMMIT")

    def _begin_read(self) -> None:
        """BEGIN, and take the snapshot at once (the first read takes it, and may find the
        file busy: here that is retried, not inside the caller's block)."""
        conn = self.conn
        if conn.in_transaction:  # the last attempt began but could not take its snapshot
            conn.execute("ROLLBACK")
        conn.execute("BEGIN DEFERRED")
        conn.execute("PRAGMA schema_version").fetchone()

    def _begin_immediate(self) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")  # fast path: the lock is usually free
        except sqlite3.Error:
            self._retry(lambda: self.conn.execute("BEGIN IMMEDIATE"), "take the write lock")

    def _commit(self) -> None:
        try:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    # e.g. disk full: SQLite has already rolled back, so a retried COMMIT
                    # would only hide the cause behind "no transaction is active".
                    raise _translate_runtime_error(self.path, exc) from exc
                self._retry(lambda: self.conn.execute("COMMIT"), "commit")
        except BaseException:
            self._rollback()
            raise

    def _retry(self, action: Callable[[], T], what: str) -> T:
        """Call ``action`` until it succeeds and return its result, retrying busy errors
        with jittered back-off for up to ``lock_timeout`` seconds.

        Raises :class:`DatabaseBusy` when the lock stays held that long, and the translated
        :class:`DatabaseError` for any other SQLite error.
        """
        deadline = time.monotonic() + self.lock_timeout
        delay = FIRST_RETRY_DELAY
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if _is_readonly(exc):
                    raise _readonly_error(self.path, exc) from exc
                if not _is_busy(exc):
                    raise _translate_runtime_error(self.path, exc) from exc
                if time.monotonic() >= deadline:
                    raise DatabaseBusy(
                        f"could not {what} on {self.path} within {self.lock_timeout:g} s: "
                        f"another connection holds a lock on it ({exc}). Look for a process "
                        "stuck inside a transaction, or raise lock_timeout."
                    ) from exc
                delay = _back_off(delay)
            except sqlite3.DatabaseError as exc:
                raise _translate_runtime_error(self.path, exc) from exc

    # -- change notification -------------------------------------------------------------

    def data_version(self) -> int:
        """Return ``PRAGMA data_version``: it changes when another connection commits."""
        with self._lock:
            self._check_open()
            return int(self._retry(self._read_data_version, "read the data version"))

    def _read_data_version(self) -> int:
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def change_token(self) -> tuple[int, int]:
        """Return a value that differs once anyone commits to the file (see
        :meth:`wait_for_change`): ``PRAGMA data_version`` plus this object's own commits."""
        with self._lock:
            return self.data_version(), self._local_commits

    def wait_for_change(self, timeout: float | None, since: tuple[int, int] | None = None) -> bool:
        """Block until someone commits, or ``timeout`` seconds pass.

        ``since`` is a :meth:`change_token` taken *before* the caller last looked at the
        data: a commit that landed after that look is then seen at once instead of being
        missed (the lost wake-up). Without it the wait starts from now.
        Returns True when a change was seen, False on timeout (``None`` waits forever).
        Polls ``PRAGMA data_version`` with back-off from 50 µs to 2 ms, so a waiting
        process wakes within about 2 ms and an idle one uses well under 5% of a core.
        """
        start = self.change_token() if since is None else since
        if since is not None and self.change_token() != start:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        sleep = WAIT_MIN_SLEEP
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            pause = sleep if deadline is None else min(sleep, deadline - now)
            time.sleep(pause)
            if self.change_token() != start:
                return True
            sleep = min(sleep * 1.5, WAIT_MAX_SLEEP)

    # -- maintenance ---------------------------------------------------------------------

    def checkpoint(self, mode: str = "PASSIVE") -> tuple[int, int, int]:
        """Run ``PRAGMA wal_checkpoint(mode)``; return (busy, wal_pages, checkpointed).

        A PASSIVE checkpoint does what it can at once. The others (FULL, RESTART, TRUNCATE)
        are retried while another connection's lock or snapshot blocks them, and raise
        :class:`DatabaseBusy` once that lasts ``lock_timeout`` seconds.
        """
        mode = mode.upper() if isinstance(mode, str) else repr(mode)
        if mode not in {"PASSIVE", "FULL", "RESTART", "TRUNCATE"}:
            raise InvalidArgument(f"unknown checkpoint mode {mode!r}")

        def run() -> tuple[int, int, int]:
            row = self.conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            if row[0] and mode != "PASSIVE":
                raise sqlite3.OperationalError("checkpoint busy: a reader or writer is active")
            return int(row[0]), int(row[1]), int(row[2])

        with self._lock:
            self._check_open()
            return self._retry(run, f"checkpoint ({mode})")

    def vacuum_free_pages(self, pages: int = 0) -> None:
        """Return up to ``pages`` free pages to the file system (0 = all of them).

        Needs the write lock: retried like :meth:`write`, :class:`DatabaseBusy` after
        ``lock_timeout`` seconds.
        """
        script = f"PRAGMA incremental_vacuum({int(pages)});"
        with self._lock:
            self._check_open()
            # executescript steps the pragma to the end; execute() frees only one page.
            self._retry(lambda: self.conn.executescript(script), "free pages")
            self._committed()

    def file_bytes(self) -> dict[str, int]:
        """Return the sizes in bytes of the database file and its -wal and -shm files."""
        sizes = {}
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            sizes["db" if not suffix else suffix[1:]] = p.stat().st_size if p.exists() else 0
        return sizes

    # -- life cycle ----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._detach()
        _files.untrack(self)

    def _check_open(self) -> None:
        if self._closed:
            raise Closed(f"{self.path} was closed; open a new Queue or Stream to use it again")

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _readonly_error(path: Path, exc: sqlite3.Error) -> ReadOnlyDatabase:
    return ReadOnlyDatabase(
        f"{path} cannot be written ({exc}); check the permissions of the file and its "
        "directory, and that the file system is not mounted read-only."
    )


def _translate_open_error(path: Path, exc: sqlite3.Error) -> DatabaseError:
    text = str(exc).lower()
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return CorruptDatabase(
            f"{path} is corrupt or not an SQLite database ({exc}); it was not modified. "
            "Restore it from a backup (e.g. `litestream restore`) or use a new file."
        )
    if _is_readonly(exc):
        return _readonly_error(path, exc)
    if _is_busy(exc):
        return DatabaseBusy(f"{path} stayed locked while opening ({exc}); retry later")
    return DatabaseError(f"cannot open {path}: {exc}")


def _translate_runtime_error(path: Path, exc: sqlite3.Error) -> DatabaseError:
    text = str(exc).lower()
    if ("disk" in text and ("full" in text or "i/o" in text)) or "too big" in text:
        return DatabaseError(
            f"{path}: the write failed ({exc}); nothing of this call was stored. "
            "Free disk space (or raise the file-size limit) and retry."
        )
    error = _translate_open_error(path, exc)
    if type(error) is DatabaseError:  # not corrupt, read-only or busy: say what failed
        return DatabaseError(f"{path}: {exc}")
    return error
