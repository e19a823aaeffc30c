"""Every write to the file: small appends on the event loop's thread, the rest on one
worker thread with its own connection.

The event loop reads the file on its own connection (in WAL mode reads never wait for
writers). Writes that may wait for the file's lock (another process's transaction) run on
the writer thread, so that waiting never stalls the loop and the other connections: the
appends that find the lock held or are large, committed offsets, topics and retention.
Appends that arrive while a transaction runs share the next one: one commit for several
connections' produce requests.

The fast path: appends of at most FAST_BYTES commit on the loop's thread, on a connection
of their own that never waits for the lock (nor checkpoints), when nothing runs on the
writer thread: at once when no write is queued either, else as the next transaction once
the running write ended. A small commit in WAL mode takes tens of microseconds; the two
thread hops it saves, to the writer thread and back, cost more than that on a busy machine,
and the writer thread's Python steps wait for the interpreter lock while the loop holds it
(milliseconds at times, a cause of the end-to-end tail). When the lock is held the fast
path gives up at once and the appends go to the writer thread, which waits for it. Only
the oldest waiting appends are ever committed, so offsets follow the order of submission.

Checkpoints never stop the appends. Once appends wrote about CHECKPOINT_PAGES pages to the
WAL, a PASSIVE checkpoint runs on a second thread with its own connection (it copies
megabytes and syncs the file twice, tens of milliseconds: run between two transactions, as
it once was, every produce and offset commit arriving meanwhile waited for it, a stall every
fraction of a second that set the tail of the end-to-end latency). A checkpoint that ran
beside appends leaves their few frames uncopied, so the WAL could not start over; the writer
copies those (a small catch-up, after the acks it owes) so that it can. The writer thread's
commits checkpoint by themselves only past BACKSTOP_PAGES (other writes, which are not
counted), the fast path's never, and the file's background checkpointer still runs as for
any Database.

The first commit after a checkpoint that copied the whole WAL starts the WAL over: SQLite
syncs the new WAL header (and truncates the WAL to the journal size limit) within that
commit. So the next append after such a checkpoint goes to the writer thread, never the
fast path: that sync, once per checkpoint cycle, must not stall the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlitequeue.errors import DatabaseBusy, QueueError
from sqlitequeue.gateway.batches import Batch
from sqlitequeue.gateway.storage import Log

T = TypeVar("T")

#: WAL pages the appends write between two of the writer's checkpoints (SQLite's default
#: auto-checkpoint), estimated as TRANSACTION_PAGES per transaction plus the batches'
#: bytes over PAGE_BYTES (the file's page size; a larger one makes fewer checkpoints).
CHECKPOINT_PAGES = 1000
TRANSACTION_PAGES = 2
PAGE_BYTES = 4096
#: WAL pages past which any commit of the writer checkpoints (the backstop).
BACKSTOP_PAGES = 4 * CHECKPOINT_PAGES

#: Largest appends (bytes of batches) the fast path commits on the event loop's thread;
#: larger ones go to the writer thread, so the loop reads the next requests meanwhile.
FAST_BYTES = 64 * 1024

#: One produce group's writes: (partition global id, batch) pairs.
Writes = list[tuple[int, Batch]]


class Writer:
    """Runs every write to ``log``'s file: small appends on the event loop's thread, on a
    connection of its own, the rest on one worker thread (see the module docstring). Use
    from the event loop only."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlitequeue-write")
        self._appends: list[tuple[Writes, asyncio.Future[list[int]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._unchecked = 0  # WAL pages appended since the last checkpoint (estimated)
        log.checkpoint_after_acks(BACKSTOP_PAGES)
        #: The checkpoints' own thread and connection (see the module docstring).
        self._checkpoints = ThreadPoolExecutor(1, thread_name_prefix="sqlitequeue-checkpoint")
        self._checkpoint_log = Log(log.path)
        self._checkpointing: asyncio.Future[bool] | None = None
        self._catch_up = False  # a background checkpoint ended: copy what it left
        #: A checkpoint copied the whole WAL: the next commit starts it over and syncs its
        #: header, so the next append goes to the writer thread (see the module docstring).
        self._restart_due = False
        self._running = 0  # jobs handed to the writer thread and not yet finished
        #: The fast path's connection (see :meth:`submit`): it never waits for the lock.
        self._fast_log = Log(log.path, lock_timeout=0.0)
        self._fast_log.checkpoint_after_acks(0)  # never a checkpoint on the loop's thread
        #: Called on the loop's thread with the partitions of appends that failed, as they
        #: fail (before any other request is handled): the server forgets their producers'
        #: batches in flight there (see :meth:`Producers.check`), so that a producer's next
        #: batch, checked before the failed one was answered, is not accepted as following it.
        self.on_failure: Callable[[set[int]], None] = lambda pids: None

    async def run(self, work: Callable[..., T], *args: object) -> T:
        """Run ``work(*args)`` (a method of :attr:`log`) on the writer thread. The job
        counts as running until the thread ends it, even if the caller is cancelled."""
        job = asyncio.get_running_loop().run_in_executor(self._executor, work, *args)
        self._running += 1
        job.add_done_callback(self._job_done)
        return await asyncio.shield(job)

    def _job_done(self, _job: object) -> None:
        self._running -= 1

    async def append(self, writes: Writes) -> list[int]:
        """Store batches; return their base offsets once committed (see :meth:`submit`)."""
        return await self.submit(writes)

    def submit(self, writes: Writes) -> asyncio.Future[list[int]]:
        """Queue batches to store at once; the future gives their base offsets once
        committed. It may be done already when this returns: a small append with no write
        queued or running commits on the fast path before it returns (or fails: the
        future then holds the error). Never raises.

        Appends that arrive while a transaction runs share the next one. If a transaction
        fails, each of its appends gets the error (a QueueError, or the unexpected one) and
        nothing of it is stored; so do the appends already waiting for the next one, since
        they may have been accepted as following the failed ones (see
        :meth:`Producers.check`).
        """
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        if self._idle():
            try:
                done = self._commit_here([writes])
            except Exception as exc:  # as in _flush: the caller settles it from the future
                future.set_exception(exc)
                self._failed([writes])
                return future
            if done is not None:
                future.set_result(done[0])
                self._count([writes])
                due = self._unchecked >= CHECKPOINT_PAGES and self._checkpointing is None
                if self._catch_up or due:
                    self._flusher = asyncio.create_task(self._flush())
                return future
        self._appends.append((writes, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return future

    def _idle(self) -> bool:
        """True when no write is queued or running: an append now is the next in order."""
        return (
            not self._appends
            and not self._running
            and (self._flusher is None or self._flusher.done())
        )

    def _commit_here(self, jobs: list[Writes]) -> list[list[int]] | None:
        """Commit ``jobs`` in one transaction on this (the loop's) thread when they are
        small and the file's lock is free; None when not (the writer thread then waits for
        the lock, or the WAL restarts, see the module docstring). Raises QueueError when
        the transaction fails."""
        if self._restart_due:
            return None
        if sum(len(b.data) for writes in jobs for _pid, b in writes) > FAST_BYTES:
            return None
        try:
            return self._fast_log.append_all(jobs)
        except DatabaseBusy:
            return None  # another connection holds the lock

    def _failed(self, jobs: list[Writes]) -> None:
        """Tell :attr:`on_failure` which partitions' appends failed."""
        self.on_failure({pid for writes in jobs for pid, _batch in writes})

    def _count(self, jobs: list[Writes]) -> None:
        """Count the WAL pages of one committed transaction (see CHECKPOINT_PAGES)."""
        size = sum(len(b.data) for writes in jobs for _pid, b in writes)
        self._unchecked += TRANSACTION_PAGES + size // PAGE_BYTES

    async def _flush(self) -> None:
        if not self._appends:  # started after a fast-path append: only the maintenance
            await self._maintain()
        while self._appends:
            jobs, self._appends = self._appends, []
            writes = [w for w, _ in jobs]
            try:  # on the loop's thread when nothing else runs on the writer's
                results = None if self._running else self._commit_here(writes)
                if results is None:
                    results = await self.run(self.log.append_all, writes)
                    self._restart_due = False  # that commit started the WAL over if due
            except Exception as exc:
                jobs, self._appends = jobs + self._appends, []
                for _, future in jobs:
                    if not future.done():
                        future.set_exception(exc)
                self._failed([w for w, _ in jobs])
            else:
                for (_, future), offsets in zip(jobs, results, strict=True):
                    if not future.done():
                        future.set_result(offsets)
                self._count(writes)
            await self._maintain()

    async def _maintain(self) -> None:
        """After the acks: the catch-up checkpoint, or a background one, when due."""
        if self._catch_up:
            self._catch_up = False
            with contextlib.suppress(QueueError):  # busy: the next round, or the backstop
                if await self.run(self.log.checkpoint):
                    self._restart_due = True
        if self._unchecked >= CHECKPOINT_PAGES and self._checkpointing is None:
            self._unchecked = 0
            self._start_checkpoint()

    def _start_checkpoint(self) -> None:
        """Checkpoint on the checkpoints' thread; the appends go on meanwhile."""
        loop = asyncio.get_running_loop()
        self._checkpointing = loop.run_in_executor(
            self._checkpoints, self._checkpoint_log.checkpoint
        )
        self._checkpointing.add_done_callback(self._checkpoint_done)

    def _checkpoint_done(self, done: asyncio.Future[bool]) -> None:
        self._checkpointing = None
        if done.cancelled() or done.exception() is not None:
            return  # busy: the next round, or the backstop
        if done.result():  # copied everything: no catch-up, but the WAL starts over
            self._restart_due = True
        else:
            self._catch_up = True

    def close(self) -> None:
        """Finish the running write and checkpoint, then close the connections."""
        self._executor.shutdown(wait=True)
        self._checkpoints.shutdown(wait=True)
        self._checkpoint_log.close()
        self._fast_log.close()
        self.log.close()
