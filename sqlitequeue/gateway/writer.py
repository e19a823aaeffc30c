"""Every write to the file, on one worker thread with its own connection.

The event loop reads the file on its own connection (in WAL mode reads never wait for
writers); writes (produced batches, committed offsets, topics, retention) run here, so a
write waiting for the file's lock (another process's transaction, a checkpoint) never
stalls the loop and the other connections. Appends that arrive while a transaction runs
share the next one: one commit for several connections' produce requests.

Checkpoints never stop the appends. Once appends wrote about CHECKPOINT_PAGES pages to the
WAL, a PASSIVE checkpoint runs on a second thread with its own connection (it copies
megabytes and syncs the file twice, tens of milliseconds: run between two transactions, as
it once was, every produce and offset commit arriving meanwhile waited for it, a stall every
fraction of a second that set the tail of the end-to-end latency). A checkpoint that ran
beside appends leaves their few frames uncopied, so the WAL could not start over; the writer
copies those (a small catch-up, after the acks it owes) so that it can. Commits checkpoint by
themselves only past BACKSTOP_PAGES (other writes, which are not counted), and the file's
background checkpointer still runs as for any Database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlitequeue.errors import QueueError
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

#: One produce group's writes: (partition global id, batch) pairs.
Writes = list[tuple[int, Batch]]


class Writer:
    """Runs writes through ``log`` on one worker thread. Use from the event loop only."""

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
        self._checkpointing: asyncio.Future[None] | None = None
        self._catch_up = False  # a background checkpoint ended: copy what it left

    async def run(self, work: Callable[..., T], *args: object) -> T:
        """Run ``work(*args)`` (a method of :attr:`log`) on the writer thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    async def append(self, writes: Writes) -> list[int]:
        """Store batches; return their base offsets once committed (see :meth:`submit`)."""
        return await self.submit(writes)

    def submit(self, writes: Writes) -> asyncio.Future[list[int]]:
        """Queue batches to store at once; the future gives their base offsets once
        committed.

        Appends that arrive while a transaction runs share the next one. If a transaction
        fails, each of its appends gets the error (a QueueError) and nothing of it is
        stored; so do the appends already waiting for the next one, since they may have
        been accepted as following the failed ones (see :meth:`Producers.check`).
        """
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._appends.append((writes, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return future

    async def _flush(self) -> None:
        while self._appends:
            jobs, self._appends = self._appends, []
            try:
                results = await self.run(self.log.append_all, [w for w, _ in jobs])
            except Exception as exc:
                jobs, self._appends = jobs + self._appends, []
                for _, future in jobs:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for (_, future), offsets in zip(jobs, results, strict=True):
                    if not future.done():
                        future.set_result(offsets)
                size = sum(len(b.data) for w, _ in jobs for _pid, b in w)
                self._unchecked += TRANSACTION_PAGES + size // PAGE_BYTES
            if self._catch_up:
                self._catch_up = False
                with contextlib.suppress(QueueError):  # busy: the next round, or the backstop
                    await self.run(self.log.checkpoint)
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

    def _checkpoint_done(self, done: asyncio.Future[None]) -> None:
        self._checkpointing = None
        if done.cancelled() or done.exception() is not None:
            return  # busy: the next round, or the backstop
        self._catch_up = True

    def close(self) -> None:
        """Finish the running write and checkpoint, then close the connections."""
        self._executor.shutdown(wait=True)
        self._checkpoints.shutdown(wait=True)
        self._checkpoint_log.close()
        self.log.close()
