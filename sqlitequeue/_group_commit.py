"""Group commit: durable writes from many threads share one transaction and one fsync.

Under ``durability="full"`` every commit fsyncs the WAL, so a put costs a whole fsync
however small it is, and threads that put at the same time wait for each other's fsyncs
one after another. With :class:`GroupCommit`, a thread that writes while no commit is under
way becomes the *leader*: it runs its write and every write that is waiting in one write
transaction and commits once (one fsync), then hands each waiting thread its result.
Writes that arrive during that commit wait, and the first of them leads the next batch.
One thread alone pays a transaction of one write, as before.

Guarantees:

* a write returns only after the COMMIT of the transaction that holds it has returned (so
  after its fsync, at ``synchronous=FULL``);
* a batch is all or nothing: when one write in it raises, or the commit fails, the whole
  transaction is rolled back, nothing of the batch is stored, and every write in it raises
  (the leader the error itself, the others a copy of it);
* a thread's own writes keep their order (each waits for the previous one to return);
* fork: a child starts with no batch and no leader (the state is rebuilt in a new process).
"""

from __future__ import annotations

import copy
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from sqlitequeue.errors import DatabaseError

T = TypeVar("T")

#: Opens one write transaction (``Database.write``): commits on exit, rolls back on error.
Transaction = Callable[[], AbstractContextManager[sqlite3.Connection]]


#: A leader waits for the threads that wrote in the last two batches at most this share of
#: the last commit's duration (and at most LINGER_MAX seconds) before it commits.
LINGER_SHARE = 0.5
LINGER_MAX = 0.002


class _Write(Generic[T]):
    """One thread's write: what to run, and (once its batch committed) what came of it.
    A write that waits behind a leader gets ``wake``, a lock held until the write is done
    or its thread is handed the lead."""

    __slots__ = ("done", "error", "result", "thread", "wake", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], T], thread: int) -> None:
        self.work = work
        self.thread = thread
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None
        self.wake: threading.Lock | None = None

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class GroupCommit:
    """Runs concurrent writes in shared transactions (see the module docstring).

    One leader at a time commits a batch; the others wait on their own lock (no thundering
    herd), and when the batch is done the leader wakes its writers and hands the lead to
    the first waiting one. Threads that wrote in the last two batches are likely to write
    again at once (they were waiting for their commit), so a new leader waits a little for
    them (bounded by LINGER_SHARE of the last commit's duration): without it the writers
    split into two alternating halves and each commit carries only half of them. A lone
    thread never waits.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._waiting: list[_Write[Any]] = []
        self._leading = False
        self._expected = 0  # while a leader lingers: how many waiting writes it waits for
        self._last_threads: set[int] = set()
        self._recent_threads: set[int] = set()  # of the last two batches
        self._last_commit = 0.0  # seconds

    def run(self, work: Callable[[sqlite3.Connection], T], transaction: Transaction) -> T:
        """Run ``work(conn)`` inside a transaction opened by ``transaction()``, possibly
        together with other threads' writes; return its result once that transaction has
        committed. Raises what ``work``, another write of the batch or the commit raised
        (nothing of the batch is stored then)."""
        if self._pid != os.getpid():
            self._reset()  # forked: the parent's threads and batch are not here
        write: _Write[T] = _Write(work, threading.get_ident())
        with self._lock:
            self._waiting.append(write)
            if self._leading:
                write.wake = wake = threading.Lock()
                wake.acquire()
                if self._expected and len(self._waiting) >= self._expected:
                    self._arrived.notify()  # the lingering leader has all it waits for
            else:
                self._leading = True
                wake = None
        if wake is not None:
            wake.acquire()
            if write.done:
                return write.outcome()
        batch = self._take_batch()
        started = time.monotonic()
        try:
            _commit(batch, transaction, write)
        finally:
            self._hand_over(batch, write, time.monotonic() - started)
        return write.outcome()

    def _take_batch(self) -> list[_Write[Any]]:
        """As the leader: wait briefly for the recent writers, then take every waiting write."""
        expected = len(self._recent_threads)
        with self._lock:
            if len(self._waiting) < expected:
                self._expected = expected
                deadline = time.monotonic() + min(self._last_commit * LINGER_SHARE, LINGER_MAX)
                while len(self._waiting) < expected:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._arrived.wait(left)
                self._expected = 0
            batch, self._waiting = self._waiting, []
        return batch

    def _hand_over(self, batch: list[_Write[Any]], leader: _Write[Any], took: float) -> None:
        """As the leader, after the commit: wake the batch's writers; the first waiting
        write (if any) leads the next batch."""
        threads = {w.thread for w in batch}
        self._recent_threads = threads | self._last_threads
        self._last_threads = threads
        self._last_commit = took
        with self._lock:
            following = self._waiting[0] if self._waiting else None
            self._leading = following is not None
        for write in batch:
            if write.wake is not None:  # every write but the leader's
                write.wake.release()
        if following is not None and following.wake is not None:
            following.wake.release()  # not done: it takes the lead


def _commit(batch: list[_Write[Any]], transaction: Transaction, leader: _Write[Any]) -> None:
    """Run every write of ``batch`` in one transaction and record each outcome."""
    try:
        with transaction() as conn:
            results = [write.work(conn) for write in batch]
    except BaseException as exc:
        for write in batch:
            write.error = exc if write is leader else _copy_of(exc)
    else:
        for write, result in zip(batch, results, strict=True):
            write.result = result
    for write in batch:
        write.done = True


def _copy_of(exc: BaseException) -> BaseException:
    """A copy of ``exc`` for another thread to raise (one exception object must not be
    raised in several threads at once: each raise rewrites its traceback). An interrupt
    of the leader (KeyboardInterrupt, SystemExit) is the leader's alone: the others get a
    DatabaseError saying their write was not stored."""
    duplicate: BaseException
    if not isinstance(exc, Exception):
        duplicate = DatabaseError(
            f"the write was not stored: the thread committing its batch was interrupted "
            f"({type(exc).__name__}); nothing of that batch was stored"
        )
    else:
        try:
            duplicate = copy.copy(exc)
        except Exception:
            duplicate = DatabaseError(f"the write was not stored: its batch failed ({exc!r})")
    duplicate.__cause__ = exc
    return duplicate.with_traceback(None)
