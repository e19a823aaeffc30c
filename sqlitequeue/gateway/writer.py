"""Every write to the file, on one worker thread with its own connection.

The event loop reads the file on its own connection (in WAL mode reads never wait for
writers); writes (produced batches, committed offsets, topics, retention) run here, so a
write waiting for the file's lock (another process's transaction, a checkpoint) never
stalls the loop and the other connections. Appends that arrive while a transaction runs
share the next one: one commit for several connections' produce requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlitequeue.gateway.batches import Batch
from sqlitequeue.gateway.storage import Log

T = TypeVar("T")

#: One produce group's writes: (partition global id, batch) pairs.
Writes = list[tuple[int, Batch]]


class Writer:
    """Runs writes through ``log`` on one worker thread. Use from the event loop only."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlitequeue-write")
        self._appends: list[tuple[Writes, asyncio.Future[list[int]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, work: Callable[..., T], *args: object) -> T:
        """Run ``work(*args)`` (a method of :attr:`log`) on the writer thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    async def append(self, writes: Writes) -> list[int]:
        """Store batches; return their base offsets once committed.

        Appends that arrive while a transaction runs share the next one; if it fails, each
        of them gets the error (a QueueError) and nothing of it is stored.
        """
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._appends.append((writes, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._appends:
            jobs, self._appends = self._appends, []
            try:
                results = await self.run(self.log.append_all, [w for w, _ in jobs])
            except Exception as exc:
                for _, future in jobs:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for (_, future), offsets in zip(jobs, results, strict=True):
                    if not future.done():
                        future.set_result(offsets)

    def close(self) -> None:
        """Finish the running write, then close the connection."""
        self._executor.shutdown(wait=True)
        self.log.close()
