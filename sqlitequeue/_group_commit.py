"""Group commit: durable writes from many threads share one transaction and one fsync.

Under ``durability="full"`` every commit fsyncs the WAL, so a put costs a whole fsync
however small it is, and threads that put at the same time wait for each other's fsyncs
one after another. With :class:`GroupCommit`, writes that arrive while no batch is being
committed gather in the next batch, and the thread whose write completes it (every thread
that wrote in the last two batches is in) runs the whole batch in one write transaction
and commits once (one fsync); then each waiting thread gets its result. The first write of
a batch waits for the others at most as long as the last COMMIT took; if they do not all
come, it commits what is there. Writes that arrive during a commit gather in the
next batch. One thread alone commits at once, a transaction of one write, as before.

Where the time goes (measured on 2 cores with 8 threads, see docs/benchmarks.md): the
fsync releases the GIL, but everything else in a put is Python that runs one thread at a
time, and each waiting thread costs a sleep and a wake-up (a context switch; on a VM often
tens of microseconds). Between two fsyncs the 8 threads each wake, return, put again and
wait again, one after another, and that, not the SQL, is most of the time between commits.
So the design keeps the wake-ups on that path few:

* the thread that completes a batch commits it itself, so no sleeping leader has to be
  woken before the transaction begins (and the statements run while no woken writer
  competes for the GIL);
* after the commit the committing thread wakes only the first writer of its batch, and
  each writer wakes the next one as it returns: one woken thread at a time competes for
  the GIL with the running one. Woken all at once, most of them would find the GIL taken
  and sleep a second time on it.

Measured side by side on 2 cores and rejected, because each was slower for 8 threads
(issue 15): overlapping the fsync with the next batch. Committing each batch at NORMAL and
making it durable with an ``fdatasync`` of the WAL outside the write lock (shared by every
batch committed before it started; as durable as FULL, since the WAL only grows between
checkpoints that sync it) lets the next batch be written during the sync, but then two
threads are runnable at once: every statement and every wake-up releases the GIL to the
other, each hand-off becomes a contended one, the write transactions take about twice as
long, and the syncs cover about half a batch each. A background thread that commits and
syncs for everyone, and one ``fdatasync`` per put left to the kernel to merge, lost the
same way; an ``executemany`` of the batch's rows saved too little to see. One thread
running at a time, with the fsync alone in parallel, is what this interpreter does fastest.

Guarantees:

* a write returns only after the COMMIT of the transaction that holds it has returned (so
  after its fsync, at ``synchronous=FULL``);
* a batch is all or nothing: when one write in it raises, or the commit fails, the whole
  transaction is rolled back, nothing of the batch is stored, and every write in it raises
  (the committing thread the error itself, the others a copy of it);
* a thread's own writes keep their order (each waits for the previous one to return);
* an interrupt (KeyboardInterrupt) of a waiting thread is raised once its write is done
  and it has passed on the wake-up it was handed, so no other thread is left waiting for
  it; an interrupted first write stops waiting for the others and commits its batch first;
* fork: a child starts with no batch and no waiting writes (the state is rebuilt in a new
  process).
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


#: The first write of a batch waits for the threads that wrote in the last two batches at
#: most this share of the last COMMIT's duration (and at most LINGER_MAX seconds). Their
#: wake-ups come one after another and do not get faster with the disk: with half a commit
#: on a disk with fast fsyncs, the wait ran out before the last of 8 writers came in
#: several percent of the batches, which then split into two commits.
LINGER_SHARE = 1.0
LINGER_MAX = 0.002


class _Write(Generic[T]):
    """One thread's write: what to run, and (once its batch committed) what came of it.
    A write that waits gets ``wake``, a lock held until it is signalled (its batch is done,
    or it was handed the next batch); ``next`` is the writer it wakes when it is done;
    ``taken`` is set once a batch holding it is being committed."""

    __slots__ = ("done", "error", "next", "result", "taken", "thread", "wake", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], T], thread: int) -> None:
        self.work = work
        self.thread = thread
        self.done = False
        self.taken = False
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

    One batch at a time is committed, by the thread whose write completed it (or whose
    wait for the others ran out); the others wait on their own lock. Threads that wrote in
    the last two batches are likely to write again at once (they were waiting for their
    commit), so a batch waits a little for them (bounded by LINGER_SHARE of the last
    COMMIT's duration): without it the writers split into two alternating halves and each
    commit carries only half of them. A lone thread never waits.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._waiting: list[_Write[Any]] = []  # the next batch, in arrival order
        self._committing = False  # a thread is running a batch's transaction
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
            waiting = self._waiting
            waiting.append(write)
            if self._committing or len(waiting) < len(self._recent_threads):
                write.wake = threading.Lock()
                write.wake.acquire()
                first = not self._committing and len(waiting) == 1
                batch = None
            else:
                batch = self._take()
        if batch is None:
            return self._wait(write, first, transaction)
        return self._commit(batch, write, transaction)

    def _take(self) -> list[_Write[Any]]:
        """Take the waiting writes as the batch to commit now (lock held)."""
        batch, self._waiting = self._waiting, []
        self._committing = True
        threads = set()
        for write in batch:
            write.taken = True
            threads.add(write.thread)
        self._recent_threads = threads | self._last_threads
        self._last_threads = threads
        return batch

    def _wait(self, write: _Write[T], first: bool, transaction: Transaction) -> T:
        """Wait until ``write``'s batch is done, then wake the next writer and return its
        outcome; or, as the first write of a batch whose wait for the others ran out (or
        that was handed the batch after a commit), commit the batch. An interrupt is
        raised once that is done."""
        wake: threading.Lock = write.wake  # type: ignore[assignment]
        deadline = time.monotonic() + self._linger() if first else None
        interrupted: BaseException | None = None
        while True:
            try:
                if deadline is None:
                    wake.acquire()
                else:
                    wake.acquire(timeout=max(0.0, deadline - time.monotonic()))
            except BaseException as exc:  # KeyboardInterrupt: finish the write first
                interrupted = exc
            if write.done:
                break
            with self._lock:
                if write.taken or self._committing or self._waiting[0] is not write:
                    deadline = None  # signalled when its batch is done, or handed the next
                    continue
                now = time.monotonic()
                if deadline is None:  # handed the batch after a commit: wait for the rest
                    deadline = now + self._linger()
                complete = len(self._waiting) >= len(self._recent_threads)
                if not complete and now < deadline and interrupted is None:
                    continue
                batch = self._take()
            try:
                return self._commit(batch, write, transaction)
            finally:
                if interrupted is not None:
                    raise interrupted  # the interrupt came first
        after = write.next
        if after is not None:
            _signal(after.wake)
        if interrupted is not None:
            raise interrupted
        return write.outcome()

    def _linger(self) -> float:
        return min(self._last_commit * LINGER_SHARE, LINGER_MAX)

    def _commit(self, batch: list[_Write[Any]], me: _Write[T], transaction: Transaction) -> T:
        """Run every write of ``batch`` in one transaction and commit; record each outcome,
        wake the batch's first waiting writer (each wakes the next) and hand the next batch,
        if writes wait for it, to its first write. Returns (or raises) ``me``'s outcome."""
        waiters = [w for w in batch if w is not me]
        for write, after in pairwise(waiters):
            write.next = after  # read by each waiter only once its write is done
        committing = 0.0
        try:
            with transaction() as conn:
                for write in batch:
                    write.result = write.work(conn)
                committing = time.monotonic()
        except BaseException as exc:
            for write in batch:
                write.result = None
                write.error = exc if write is me else _copy_of(exc)
        finally:
            for write in batch:
                write.done = True
            if waiters:
                _signal(waiters[0].wake)
            took = time.monotonic() - committing if committing else self._last_commit
            with self._lock:
                self._committing = False
                self._last_commit = took
                following = self._waiting[0] if self._waiting else None
            if following is not None:
                _signal(following.wake)
        return me.outcome()


def _signal(wake: threading.Lock | None) -> None:
    """Wake the thread waiting on ``wake``. A write may be signalled twice (handed the next
    batch, then done) before it wakes: it checks its state on every wake-up, so the second
    signal is not needed and is dropped."""
    try:  # noqa: SIM105 (on every put: contextlib.suppress costs more than the release)
        wake.release()  # type: ignore[union-attr]
    except RuntimeError:  # already released: the waiter has a wake-up pending
        pass


def _copy_of(exc: BaseException) -> BaseException:
    """A copy of ``exc`` for another thread to raise (one exception object must not be
    raised in several threads at once: each raise rewrites its traceback). An interrupt
    of the committing thread (KeyboardInterrupt, SystemExit) is its own: the others get a
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
