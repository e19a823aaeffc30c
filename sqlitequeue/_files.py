"""The files behind each Database: checks before opening, which files this process has
open, one background checkpointer per open file, and fork safety.

POSIX locks belong to a process, not to a descriptor, and closing *any* descriptor of a
file drops every lock the process holds on it (SQLite's included). Everything here exists
so that this process never does that to a file it has open, never blocks on a file
SQLite cannot use, and never carries SQLite's state across ``fork()``.

Fork: SQLite keeps per-process state about each open file (which locks "this process"
holds, the shared-memory index, its own mutexes). A forked child inherits that state but
not the POSIX locks it describes, so a child that opens the same file believes it holds
locks it does not: the parent's ``close()`` then sees no other user, checkpoints and
deletes the WAL the child is still writing to (data loss). And a mutex held by another
thread at the moment of the fork (the checkpointer's, inside ``sqlite3_open``) is held
forever in the child (a hang). So before every ``os.fork()`` (multiprocessing's "fork"
start method included) this module waits until no thread of ours is inside SQLite: it
takes every Database's lock, stops the checkpointer threads, and closes every
connection. Parent and child both reopen their connections on next use, each with its
own, real locks. ``subprocess`` and the "spawn" and "forkserver" start methods exec a
new program and need none of this.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
import weakref
from math import inf
from pathlib import Path
from typing import Protocol

from sqlitequeue import _clock
from sqlitequeue.errors import (
    CorruptDatabase,
    InvalidArgument,
    NotAQueueDatabase,
    ReadOnlyDatabase,
)

SQLITE_HEADER = b"SQLite format 3\x00"

#: The background checkpointer aims to checkpoint about every this many WAL frames (half
#: SQLite's default auto-checkpoint size, so it normally runs before the inline backstop)
#: and at least every CHECKPOINT_MAX_GAP seconds while this process commits.
CHECKPOINT_TARGET_FRAMES = 500
CHECKPOINT_MAX_GAP = 1.0

#: Inline auto-checkpoint threshold kept as a backstop, in WAL frames. A PASSIVE checkpoint
#: never blocks writers, so a writer that never pauses keeps the background one from
#: catching up, and the WAL only restarts from its beginning once fully checkpointed; the
#: backstop (run by a writer between its transactions) then bounds the WAL as before.
AUTOCHECKPOINT_BACKSTOP = 2 * CHECKPOINT_TARGET_FRAMES


#: Files this process has open through a Database: (st_dev, st_ino) -> how many. POSIX
#: locks belong to the process, and closing *any* descriptor of a file drops every lock the
#: process holds on it, SQLite's included; another process may then believe it is the last
#: user, checkpoint and delete the WAL while we still use it (two diverging copies of the
#: data). So the header check, which opens and closes the file, is skipped while this
#: process already has the file open (it was checked then).
_OPEN_FILES: dict[tuple[int, int] | None, int] = {}
OPEN_FILES_LOCK = threading.Lock()
#: The background checkpointer of each file this process has open (see Checkpointer).
_CHECKPOINTERS: dict[tuple[int, int], Checkpointer] = {}


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on one file from a daemon thread.

    It has its own connection, so a checkpoint (page copies and two fsyncs) never holds
    a Database's lock or delays a commit. Commits call :meth:`note_commit` (cheap); the
    thread wakes once enough commits happened to have written about
    ``CHECKPOINT_TARGET_FRAMES`` WAL frames (estimated from the last checkpoint), or
    ``CHECKPOINT_MAX_GAP`` seconds after a commit. Failures (busy, disk full) are left
    for the next round: checkpoints are never needed for correctness. It also refreshes
    the file clock's anchor (see :mod:`sqlitequeue._clock`) at most every
    ``ANCHOR_INTERVAL`` seconds while this process commits.
    """

    def __init__(self, path: Path) -> None:
        self.pid = os.getpid()
        self._path = str(path)
        self._commits = 0
        self._threshold = 1
        self._stopping = False
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"sqlitequeue-checkpoint {path.name}", daemon=True
        )
        self._thread.start()

    def note_commit(self) -> None:
        """Count one commit on the file; wake the thread when a checkpoint is due."""
        self._commits += 1
        if self._commits >= self._threshold:
            self._wake.set()

    @property
    def running(self) -> bool:
        """True until :meth:`stop` was called (or a fork left it behind)."""
        return not self._stopping and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread (after its current checkpoint) and close its connection."""
        self._stopping = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @staticmethod
    def _refresh_anchor(conn: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):  # busy: the next round tries again
            _clock.refresh_anchor(conn)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(
                os.fsencode(self._path), timeout=0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error:
            return  # the file's own connections still checkpoint (the backstop)
        anchor_due = time.monotonic() + _clock.ANCHOR_INTERVAL
        try:
            while not self._stopping:
                self._wake.wait(CHECKPOINT_MAX_GAP)
                self._wake.clear()
                commits, self._commits = self._commits, 0
                if self._stopping or not commits:
                    continue
                if time.monotonic() >= anchor_due:
                    anchor_due = time.monotonic() + _clock.ANCHOR_INTERVAL
                    self._refresh_anchor(conn)
                try:
                    frames = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
                except sqlite3.Error:
                    continue  # busy or disk full: try again after the next commits
                if frames >= AUTOCHECKPOINT_BACKSTOP:
                    # The WAL did not restart: writers never paused long enough. Stand
                    # aside (until CHECKPOINT_MAX_GAP) so the backstop, run by a writer
                    # between its own transactions, is not skipped as busy because of us.
                    self._threshold = 1 << 62
                elif frames > 0:  # frames written since the WAL last restarted
                    self._threshold = max(1, CHECKPOINT_TARGET_FRAMES * commits // frames)
        finally:
            conn.close()


def file_key(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def register_open_file(
    path: Path,
) -> tuple[tuple[int, int] | None, Checkpointer | None]:
    """Count one more open Database on ``path`` (call with OPEN_FILES_LOCK held).

    Returns the file's key and its background checkpointer (started with the first
    Database on the file; None if the file cannot be identified).
    """
    key = file_key(path)
    if key is None:
        return None, None
    _OPEN_FILES[key] = _OPEN_FILES.get(key, 0) + 1
    checkpointer = _CHECKPOINTERS.get(key)
    if checkpointer is None or not checkpointer.running:  # none, or stopped for a fork
        checkpointer = _CHECKPOINTERS[key] = Checkpointer(path)
    return key, checkpointer


def unregister_open_file(key: tuple[int, int] | None) -> None:
    """Count one Database fewer on the file; stop its checkpointer after the last one."""
    with OPEN_FILES_LOCK:
        checkpointer = _forget_open_file(key)
    if checkpointer is not None:
        checkpointer.stop()


def _forget_open_file(key: tuple[int, int] | None) -> Checkpointer | None:
    """Count one Database fewer (OPEN_FILES_LOCK held); return the checkpointer to stop."""
    if key is None or key not in _OPEN_FILES:
        return None
    _OPEN_FILES[key] -= 1
    if _OPEN_FILES[key]:
        return None
    del _OPEN_FILES[key]
    return _CHECKPOINTERS.pop(key, None)


# -- fork safety ------------------------------------------------------------------------------


class ForkSafe(Protocol):
    """What a Database offers the fork handlers (each called by the forking thread)."""

    def acquire_for_fork(self) -> None:
        """Wait until no thread uses the connection, and keep it so (takes the lock)."""

    def detach_for_fork(self) -> tuple[int, int] | None:
        """Close the connection (lock held) and return its file key. None when nothing
        was closed: no connection, or the forking thread itself is inside a transaction
        on it (that one crosses the fork; nothing can be done about it)."""

    def release_after_fork(self) -> None:
        """Release what :meth:`acquire_for_fork` took; the connection reopens on next use."""


#: Every Database of this process that may hold a connection.
_DATABASES: weakref.WeakSet[ForkSafe] = weakref.WeakSet()
_DATABASES_LOCK = threading.Lock()
#: The Databases held by the fork in progress (acquired in _before_fork).
_HELD: list[ForkSafe] = []


def track(database: ForkSafe) -> None:
    """Have ``database`` closed before every fork (call before it opens its connection)."""
    with _DATABASES_LOCK:
        _DATABASES.add(database)


def untrack(database: ForkSafe) -> None:
    """Stop tracking a closed ``database`` (call without holding its lock)."""
    with _DATABASES_LOCK:
        _DATABASES.discard(database)


def _before_fork() -> None:
    """Quiesce SQLite: every Database's lock taken, checkpointers stopped, connections
    closed. Lock order: the registry, each Database, OPEN_FILES_LOCK (as everywhere)."""
    _DATABASES_LOCK.acquire()
    for database in list(_DATABASES):
        database.acquire_for_fork()
        _HELD.append(database)
    OPEN_FILES_LOCK.acquire()
    for checkpointer in _CHECKPOINTERS.values():
        checkpointer.stop(timeout=60.0)
    _CHECKPOINTERS.clear()
    for database in _HELD:
        _forget_open_file(database.detach_for_fork())


def _after_fork(*, child: bool) -> None:
    if child:
        _OPEN_FILES.clear()  # the child holds no lock on any file
    OPEN_FILES_LOCK.release()
    while _HELD:
        _HELD.pop().release_after_fork()
    _DATABASES_LOCK.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=lambda: _after_fork(child=False),
        after_in_child=lambda: _after_fork(child=True),
    )


def check_timeout(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < inf:
        raise InvalidArgument(f"{what} must be a finite number of seconds >= 0, not {value!r}")
    return float(value)


def check_path(path: object) -> Path:
    """Return ``path`` as a Path if the file system can name it; raise InvalidArgument."""
    if not isinstance(path, str | os.PathLike):
        raise InvalidArgument(f"the path must be a str or path-like, not {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise InvalidArgument(f"the path must be text, not {type(text).__name__}")
    if "\x00" in text:
        raise InvalidArgument(f"the path {text!r} holds a NUL byte, which no file name can hold")
    try:
        os.fsencode(text)
    except UnicodeEncodeError as exc:
        raise InvalidArgument(
            f"the path {text!r} holds a character the file system encoding cannot write "
            f"({exc.reason}); use a path of plain text"
        ) from None
    return Path(text)


def check_file_before_open(path: Path) -> None:
    """Reject what SQLite would otherwise happily modify, half-open or block on.

    Only a regular file (or nothing yet) is opened: reading a FIFO would block forever.
    The header is read only while this process does not have the file open (see
    :data:`_OPEN_FILES`); call with :data:`OPEN_FILES_LOCK` held.
    """
    try:
        mode: int | None = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise InvalidArgument(f"{path} is a directory; give the path of a database file")
    if mode is not None and not stat.S_ISREG(mode):
        raise InvalidArgument(
            f"{path} is not a regular file (a FIFO, socket or device); sqlitequeue will not "
            "open it. Give the path of a database file."
        )
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.exists():
        raise InvalidArgument(f"directory {directory} does not exist; create it first")
    if mode is not None:
        header = SQLITE_HEADER
        if file_key(path) not in _OPEN_FILES:
            with open(path, "rb") as fh:
                header = fh.read(len(SQLITE_HEADER))
        if header and header != SQLITE_HEADER[: len(header)]:
            raise NotAQueueDatabase(
                f"{path} is not an SQLite database (its first bytes are {header[:16]!r}); "
                "sqlitequeue will not touch it. Use a new file name for the queue."
            )
        if 0 < len(header) < len(SQLITE_HEADER):
            raise CorruptDatabase(f"{path} is truncated ({path.stat().st_size} bytes)")
        if not os.access(path, os.W_OK):
            raise ReadOnlyDatabase(
                f"{path} is read-only; sqlitequeue needs write access to the file "
                "(and to its directory for the -wal and -shm files). Fix the permissions "
                "or copy the file somewhere writable."
            )
    if not os.access(directory, os.W_OK):
        raise ReadOnlyDatabase(
            f"directory {directory} is not writable; SQLite needs to create {path.name}-wal "
            "and -shm beside the database. Fix the permissions or choose another directory."
        )
