"""What every request handler shares: the file, producer state, groups and change wake-ups."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

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

    async def write(self, work: Callable[..., T], *args: object) -> T:
        """Run ``work(*args)`` (a write through :attr:`writer`) on the writer thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, work, *args)

    def batch_limit(self, topic: str) -> int:
        """The largest batch ``topic`` accepts."""
        return self.max_message_bytes.get(topic, MAX_BATCH_BYTES)

    def notify_append(self) -> None:
        """Wake every fetch waiting for new records."""
        self.appended.set()
        self.appended = asyncio.Event()
