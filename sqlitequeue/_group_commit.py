"""Group commit: durable writes from many threads share one transaction and one fsync.

Under ``durability="full"`` every commit fsyncs the WAL, so a put costs a whole fsync
however small it is, and threads that put at the same time wait for each other's fsyncs
one after another. With :class:`GroupCommit`, a thread that writes while no commit is under
way becomes the *leader*: it waits briefly for the threads that are likely to write next,
then runs its write and every waiting write in one write transaction and commits once
(one fsync); then each waiting thread gets its result.
Writes that arrive during that commit wait, and the first of them leads the next batch.
One thread alone pays a transaction of one write, as before.

Where the time goes (measured on 2 cores with 8 threads, see docs/benchmarks.md): the
fsync releases the GIL, but everything else in a put is Python that runs one thread at a
time, and each waiting thread costs a sleep and a wake-up (a context switch; on a VM often
tens of microseconds). Between two fsyncs the 8 threads each wake, return, put again and
wait again, one after another, and that, not the SQL, is most of the time between commits.
So after a commit the leader wakes only the first writer of its batch, and each writer
wakes the next one as it returns: one woken thread at a time competes for the GIL with the
running one. Woken all at once, most of them would find the GIL taken and sleep a second
time on it, and each SQLite statement of the next leader (which releases the GIL while it
runs) would hand the GIL to one of them and wait to get it back. The leader waits for the
others *before* it begins its transaction, so its statements run while no one competes.

Guarantees:

* a write returns only after the COMMIT of the transaction that holds it has returned (so
  after its fsync, at ``synchronous=FULL``);
* a batch is all or nothing: when one write in it raises, or the commit fails, the whole
  transaction is rolled back, nothing of the batch is stored, and every write in it raises
  (the leader the error itself, the others a copy of it);
* a thread's own writes keep their order (each waits for the previous one to return);
* an interrupt (KeyboardInterrupt) of a waiting thread is raised once its write is done
  and it has passed on the wake-up or the lead it was handed, so no other thread is left
  waiting for it;
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
from itertools import pairwise
from typing import Any, Generic, TypeVar

from sqlitequeue.errors import DatabaseError

T = TypeVar("T")

#: Opens one write transaction (``Database.write``): commits on exit, rolls back on error.
Transaction = Callable[[], AbstractContextManager[sqlite3.Connection]]


#: A leader waits for the threads that wrote in the last two batches at most this share of
#: the last COMMIT's duration (and at most LINGER_MAX seconds) before it commits.
LINGER_SHARE = 0.5
LINGER_MAX = 0.002


class _Write(Generic[T]):
    """One thread's write: what to run, and (once its batch committed) what came of it.
    A write that waits behind a leader gets ``wake``, a lock held until the write is done
    or its thread is handed the lead; ``next`` is the writer it wakes when it is done."""

    __slots__ = ("done", "error", "next", "result", "thread", "wake", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], T], thread: int) -> None:
        self.work = work
        self.thread = thread
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None
        self.wake: threading.Lock | None = None
        self.next: _Write[Any] | None = None

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class GroupCommit:
    """Runs concurrent writes in shared transactions (see the module docstring).

    One leader at a time commits a batch; the others wait on their own lock. Threads that
    wrote in the last two batches are likely to write again at once (they were waiting for
    their commit), so a leader waits a little for them (bounded by LINGER_SHARE of the last
    COMMIT's duration): without it the writers split into two alternating halves and each
    commit carries only half of them. A lone thread never waits.
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
        self._last_commit = 0.0  # seconds the last COMMIT took

    def run(self, work: Callable[[sqlite3.Connection], T], transaction: Transaction) -> T:
        """Run ``work(conn)`` inside a transaction opened by ``transaction()``, possibly
        together with other threads' writes; return its result once that transaction has
        committed. Raises what ``work``, another write of the batch or the commit raised
        (nothing of the batch is stored then)."""
        if self._pid != os.getpid():
            self._reset()  # forked: the parent's threads and batch are not here
        write: _Write[T] = _Write(work, threading.get_ident())
        with self._lock:
            if not self._leading:
                self._leading = True
                self._waiting.append(write)
                wake = None
            else:
                write.wake = wake = threading.Lock()
                wake.acquire()
                self._waiting.append(write)
                if self._expected and len(self._waiting) >= self._expected:
                    self._arrived.notify()  # the lingering leader has all it waits for
        interrupted = None
        if wake is not None:
            interrupted = _wait(wake)
            if write.done:
                if write.next is not None:
                    write.next.wake.release()  # type: ignore[union-attr]
                if interrupted is not None:
                    raise interrupted
                return write.outcome()
        try:
            interrupted = self._lead(write, transaction) or interrupted
        finally:
            if interrupted is not None:
                raise interrupted
        return write.outcome()

    def _lead(self, leader: _Write[Any], transaction: Transaction) -> BaseException | None:
        """As the leader: wait briefly for the recent writers, run every waiting write in
        one transaction, commit, record each outcome, hand over. Returns an interrupt that
        came while it waited (the caller raises it)."""
        batch, interrupted = self._take_batch()
        committing = 0.0
        try:
            with transaction() as conn:
                for write in batch:
                    write.result = write.work(conn)
                committing = time.monotonic()
        except BaseException as exc:
            for write in batch:
                write.result = None
                write.error = exc if write is leader else _copy_of(exc)
        finally:
            for write in batch:
                write.done = True
            took = time.monotonic() - committing if committing else self._last_commit
            self._hand_over(batch, leader, took)
        return interrupted

    def _take_batch(self) -> tuple[list[_Write[Any]], BaseException | None]:
        """Wait (briefly) for the writers of the last two batches, then take every waiting
        write (the leader's own among them). An interrupt ends the wait early; it is
        returned with the batch."""
        expected = len(self._recent_threads)
        interrupted = None
        with self._lock:
            if len(self._waiting) < expected:
                self._expected = expected
                deadline = time.monotonic() + min(self._last_commit * LINGER_SHARE, LINGER_MAX)
                while len(self._waiting) < expected:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        self._arrived.wait(left)
                    except BaseException as exc:  # KeyboardInterrupt: commit the batch first
                        interrupted = exc
                        break
                self._expected = 0
            batch, self._waiting = self._waiting, []
        return batch, interrupted

    def _hand_over(self, batch: list[_Write[Any]], leader: _Write[Any], took: float) -> None:
        """As the leader, after the commit: wake the batch's first writer (each wakes the
        next as it returns); the first waiting write (if any) leads the next batch."""
        threads = {w.thread for w in batch}
        self._recent_threads = threads | self._last_threads
        self._last_threads = threads
        self._last_commit = took
        with self._lock:
            following = self._waiting[0] if self._waiting else None
            self._leading = following is not None
        waiters = [w for w in batch if w is not leader]  # each has a wake lock
        for write, after in pairwise(waiters):
            write.next = after
        if waiters:
            waiters[0].wake.release()  # type: ignore[union-attr]
        if following is not None:
            following.wake.release()  # type: ignore[union-attr]  # not done: it leads


def _wait(wake: threading.Lock) -> BaseException | None:
    """Block until ``wake`` is released; return an interrupt that came meanwhile (raised by
    the caller once it has passed on what it was handed), else None."""
    interrupted = None
    while True:
        try:
            wake.acquire()
            return interrupted
        except BaseException as exc:  # KeyboardInterrupt: finish the hand-off first
            interrupted = exc


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
