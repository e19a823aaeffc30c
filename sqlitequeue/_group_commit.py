"""Group commit: durable writes from many threads share one transaction and one fsync.

Under ``durability="full"`` every commit fsyncs the WAL, so a put costs a whole fsync
however small it is, and threads that put at the same time wait for each other's fsyncs
one after another. With :class:`GroupCommit`, writes that arrive while no batch is being
committed gather in the next batch, and the thread whose write completes it (every thread
that wrote in the last two batches is in) runs the whole batch in one write transaction
and commits once (one fsync); then each waiting thread gets its result. The first write of
a batch waits for the others at most one and a half times as long as the last complete
batch took to gather and commit; if they do not all come, it commits what is there. It
does not wait for threads that are not on their way back from a commit (their writes have
returned: they are busy elsewhere, or gone). Writes that arrive during a commit gather
in the next batch. One thread alone commits at once, a transaction of one write, as before.

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
  and sleep a second time on it;
* the first writer's wait outlasts the whole batch (see LINGER_SHARE), so it does not
  run out, for nothing, during the commit;
* the batch's puts (:class:`RowInsert`) are inserted with a few multi-row INSERTs (of 2**k
  rows), not one statement each.

Measured side by side on 2 cores and rejected, because each was slower for 8 threads
(issue 15): overlapping the fsync with the next batch. Committing each batch at NORMAL and
making it durable with an ``fdatasync`` of the WAL outside the write lock (shared by every
batch committed before it started; as durable as FULL, since the WAL only grows between
checkpoints that sync it) lets the next batch be written during the sync, but then two
threads are runnable at once: every statement and every wake-up releases the GIL to the
other, each hand-off becomes a contended one, the write transactions take about twice as
long, and the syncs cover about half a batch each. A background thread that commits and
syncs for everyone, and one ``fdatasync`` per put left to the kernel to merge, lost the
same way; an ``executemany`` of the batch's rows saved too little to see (one multi-row
INSERT does save: about a quarter of the batch's statement time). Opening the batch's
transaction at its first write and letting each write insert its own row as it arrives (so
only the COMMIT is left when the last one comes) lost the same way: each INSERT hands the
GIL to the next woken writer and must win it back. One thread running at a time, with the
fsync alone in parallel, is what this interpreter does fastest. A batch then pays one fsync
for all its puts, and 8 writers' wake-ups and Python one after another: the slower the fsync
compared with those, the closer 8 threads get to 8 times one thread.

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

#: Row inserts of a batch run as multi-row INSERTs of 2**k rows (at most this many), so a
#: connection's statement cache holds a few of them, not one per batch size.
MAX_ROWS_PER_INSERT = 64


#: The first write of a batch waits for the threads that wrote in the last two batches at
#: most this share of the last complete batch's gathering plus the last transaction (and at
#: most LINGER_MAX seconds). The wait must outlast the whole batch: when it runs out during
#: the commit that already holds the write (its batch was completed by another thread), the
#: waiting thread wakes for nothing and takes the interpreter lock in the middle of the
#: commit; measured on 2 cores with 8 threads, that one spurious wake-up per batch cost over
#: a tenth of the throughput (LINGER_SHARE 1.0 of the COMMIT alone did that). Too short a wait
#: splits the batch: the writers' wake-ups come one after another and do not get faster
#: with the disk. (Where a batch takes over LINGER_MAX / LINGER_SHARE, a slow disk, the cap
#: wins and the wait runs out during the commit again; there, one wake-up is a small share.)
LINGER_SHARE = 1.5
LINGER_MAX = 0.002


class RowInsert:
    """A write that inserts one row: ``statement`` is an ``INSERT ... VALUES (?, ...)`` of
    one row, ``row`` its parameters. Called with a connection, it inserts the row and
    returns its rowid. In a batch, consecutive row inserts with the same statement run as
    multi-row INSERTs (of 2**k rows, one statement instead of one each), and each write's
    rowid is worked out from the last: rows of one INSERT into a table with an INTEGER
    PRIMARY KEY get consecutive rowids while the largest stays below 2**63 - 1, which no
    count of inserts reaches (``put_many`` relies on the same; past it SQLite picks rowids
    at random, and ids would neither increase nor be unique over time anyway)."""

    __slots__ = ("row", "statement")

    def __init__(self, statement: str, row: tuple[Any, ...]) -> None:
        self.statement = statement
        self.row = row

    def __call__(self, conn: sqlite3.Connection) -> int:
        return conn.execute(self.statement, self.row).lastrowid  # type: ignore[return-value]


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
    commit), so a batch waits a little for them (bounded by LINGER_SHARE of how long the
    last complete batch took to gather and commit): without it the writers split into two
    alternating halves and each commit carries only half of them. A batch is complete once
    no thread is on its way back from a commit (every committed write has returned), so a
    lone thread, or threads that put now and then, do not wait for each other.
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
        # Threads whose write was taken into a batch and has not returned yet (set.add and
        # set.discard are atomic, so a returning thread need not take the lock).
        self._returning: set[int] = set()
        self._gathering_since: float | None = None  # a first write began waiting for others
        self._last_gather = 0.0  # seconds the last complete batch's first write waited
        self._last_transaction = 0.0  # seconds the last transaction took, BEGIN to COMMIT

    def run(self, work: Callable[[sqlite3.Connection], T], transaction: Transaction) -> T:
        """Run ``work(conn)`` inside a transaction opened by ``transaction()``, possibly
        together with other threads' writes; return its result once that transaction has
        committed. Raises what ``work``, another write of the batch or the commit raised
        (nothing of the batch is stored then)."""
        if self._pid != os.getpid():
            self._reset()  # forked: the parent's threads and batch are not here
        write: _Write[T] = _Write(work, threading.get_ident())
        try:
            with self._lock:
                waiting = self._waiting
                waiting.append(write)
                if self._committing or (
                    len(waiting) < len(self._recent_threads) and self._returning
                ):
                    write.wake = threading.Lock()
                    write.wake.acquire()
                    deadline = None
                    if not self._committing and len(waiting) == 1:
                        deadline = self._start_gathering()
                    batch = None
                else:
                    batch = self._take()
            if batch is None:
                return self._wait(write, deadline, transaction)
            return self._commit(batch, write, transaction)
        finally:
            self._returning.discard(write.thread)

    def _start_gathering(self) -> float:
        """The first write of a batch starts waiting for the others: return until when
        (lock held)."""
        now = self._gathering_since = time.monotonic()
        linger = (self._last_gather + self._last_transaction) * LINGER_SHARE
        return now + min(linger, LINGER_MAX)

    def _take(self) -> list[_Write[Any]]:
        """Take the waiting writes as the batch to commit now (lock held)."""
        batch, self._waiting = self._waiting, []
        self._committing = True
        threads = set()
        for write in batch:
            write.taken = True
            threads.add(write.thread)
        since, self._gathering_since = self._gathering_since, None
        if len(threads) >= len(self._recent_threads):  # complete: every recent thread came
            self._last_gather = time.monotonic() - since if since is not None else 0.0
        self._recent_threads = threads | self._last_threads
        self._last_threads = threads
        self._returning.update(threads)
        return batch

    def _wait(self, write: _Write[T], deadline: float | None, transaction: Transaction) -> T:
        """Wait until ``write``'s batch is done, then wake the next writer and return its
        outcome; or, as the first write of a batch whose wait for the others ran out at
        ``deadline`` (or that was handed the batch after a commit), commit the batch. An
        interrupt is raised once that is done."""
        wake: threading.Lock = write.wake  # type: ignore[assignment]
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
                if deadline is None:  # handed the batch after a commit: wait for the rest
                    deadline = self._start_gathering()
                complete = len(self._waiting) >= len(self._recent_threads) or not self._returning
                if not complete and time.monotonic() < deadline and interrupted is None:
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

    def _commit(self, batch: list[_Write[Any]], me: _Write[T], transaction: Transaction) -> T:
        """Run every write of ``batch`` in one transaction and commit; record each outcome,
        wake the batch's first waiting writer (each wakes the next) and hand the next batch,
        if writes wait for it, to its first write. Returns (or raises) ``me``'s outcome."""
        waiters = [w for w in batch if w is not me]
        for write, after in pairwise(waiters):
            write.next = after  # read by each waiter only once its write is done
        began = time.monotonic()
        took = 0.0
        try:
            with transaction() as conn:
                _run_writes(conn, batch)
            took = time.monotonic() - began
        except BaseException as exc:
            for write in batch:
                write.result = None
                write.error = exc if write is me else _copy_of(exc)
        finally:
            for write in batch:
                write.done = True
            if waiters:
                _signal(waiters[0].wake)
            with self._lock:
                self._committing = False
                self._returning.discard(me.thread)  # on its way back, not to be waited for
                if took:
                    self._last_transaction = took
                following = self._waiting[0] if self._waiting else None
            if following is not None:
                _signal(following.wake)
        return me.outcome()


def _run_writes(conn: sqlite3.Connection, batch: list[_Write[Any]]) -> None:
    """Run the batch's writes in order and record each result; consecutive row inserts with
    one statement run as multi-row INSERTs (see :class:`RowInsert`)."""
    inserts: list[tuple[_Write[Any], RowInsert]] = []
    for write in batch:
        work = write.work
        if type(work) is RowInsert:
            if inserts and inserts[0][1].statement != work.statement:
                _insert_rows(conn, inserts)
                inserts = []
            inserts.append((write, work))
            continue
        if inserts:
            _insert_rows(conn, inserts)
            inserts = []
        write.result = work(conn)
    if inserts:
        _insert_rows(conn, inserts)


def _insert_rows(conn: sqlite3.Connection, inserts: list[tuple[_Write[Any], RowInsert]]) -> None:
    """Insert the rows of ``inserts`` (row inserts with one statement), in order, in
    INSERTs of 2**k rows; record each write's rowid."""
    statement = inserts[0][1].statement
    done = 0
    while done < len(inserts):
        rows = min(MAX_ROWS_PER_INSERT, 1 << (len(inserts) - done).bit_length() - 1)
        chunk = inserts[done : done + rows]
        if rows == 1:
            write, insert = chunk[0]
            write.result = insert(conn)
        else:
            values = [value for _, insert in chunk for value in insert.row]
            cursor = conn.execute(_multi_row(statement, rows), values)
            first = cursor.lastrowid - rows + 1  # type: ignore[operator]
            for rowid, (write, _) in enumerate(chunk, start=first):
                write.result = rowid
        done += rows


_MULTI_ROW: dict[tuple[str, int], str] = {}


def _multi_row(statement: str, rows: int) -> str:
    """``statement`` (an INSERT of one row ending in its ``VALUES (?, ...)``) for ``rows``
    rows."""
    key = (statement, rows)
    multi = _MULTI_ROW.get(key)
    if multi is None:
        values = statement[statement.rindex("(") :]
        multi = _MULTI_ROW[key] = statement + f", {values}" * (rows - 1)
    return multi


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
