"""What every request handler shares: the file, producer state, groups and change wake-ups."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from sqlitequeue.gateway.batches import Batch
from sqlitequeue.gateway.groups import Coordinator
from sqlitequeue.gateway.producers import Producers
from sqlitequeue.gateway.storage import Log

T = TypeVar("T")

#: The single node's id; it is every partition's leader and every group's coordinator.
NODE_ID = 0
#: Largest produced batch accepted, as Kafka's message.max.bytes (about 1 MiB).
MAX_BATCH_BYTES = 1048588


@dataclass
class Context:
    """The server's state, handed to every handler.

    ``log`` is read on the event loop's thread (reads never wait for writers in WAL mode);
    ``writer`` is a second connection that only :meth:`write` uses, on one worker thread,
    so that a write waiting for the file's lock (another process's transaction, a
    checkpoint) never stalls the loop and the other connections.
    """

    log: Log
    writer: Log
    host: str
    port: int
    cluster_id: str
    producers: Producers
    coordinator: Coordinator = field(default_factory=Coordinator)
    #: Topic -> largest batch, from CreateTopics' ``max.message.bytes`` (kept in memory:
    #: after a restart the default applies again).
    max_message_bytes: dict[str, int] = field(default_factory=dict)
    #: Set (and replaced) whenever records are appended: wakes long-polling fetches.
    appended: asyncio.Event = field(default_factory=asyncio.Event)

    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="sqlitequeue-write")
    )

    #: Appends waiting for the writer thread (see :meth:`append`), and whether a flush runs.
    appends: list[tuple[list[tuple[int, Batch]], asyncio.Future[list[int]]]] = field(
        default_factory=list
    )
    flusher: asyncio.Task[None] | None = None

    async def append(self, writes: list[tuple[int, Batch]]) -> list[int]:
        """Store batches through the writer; return their base offsets once committed.

        Appends of several connections that arrive while a transaction runs share the
        next one (one commit for all of them); if it fails, each of them gets the error.
        """
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self.appends.append((writes, future))
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush_appends())
        return await future

    async def _flush_appends(self) -> None:
        while self.appends:
            jobs, self.appends = self.appends, []
            try:
                results = await self.write(self.writer.append_all, [w for w, _ in jobs])
            except Exception as exc:
                for _, future in jobs:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for (_, future), offsets in zip(jobs, results, strict=True):
                    if not future.done():
                        future.set_result(offsets)

    async def write(self, work: Callable[..., T], *args: object) -> T:
        """Run ``work(*args)`` (a write through :attr:`writer`) on the writer thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, work, *args)

    def batch_limit(self, topic: str) -> int:
        """The largest batch ``topic`` accepts."""
        return self.max_message_bytes.get(topic, MAX_BATCH_BYTES)

    #: Fetches waiting in :meth:`wait_for_change`, and the task that watches the file
    #: for them (one for all of them, so idle consumers cost little CPU).
    waiting: int = 0
    watcher: asyncio.Task[None] | None = None

    async def wait_for_change(
        self, event: asyncio.Event, token: tuple[int, int], timeout: float
    ) -> None:
        """Wait until ``event`` is set (an append here) or the file changed since ``token``
        (a commit by anyone: one watcher polls PRAGMA data_version for every waiting
        fetch, from every 2 ms after a change to every 50 ms when idle), or ``timeout``."""
        if self.log.change_token() != token:
            return
        self.waiting += 1
        if self.watcher is None or self.watcher.done():
            self.watcher = asyncio.create_task(self._watch(token))
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self.waiting -= 1

    async def _watch(self, token: tuple[int, int]) -> None:
        pause = 0.002
        while self.waiting:
            await asyncio.sleep(pause)
            now = self.log.change_token()
            if now != token:
                token, pause = now, 0.002
                self.notify_append()
            else:
                pause = min(pause * 2, 0.05)

    def notify_append(self) -> None:
        """Wake every fetch waiting for new records."""
        self.appended.set()
        self.appended = asyncio.Event()
