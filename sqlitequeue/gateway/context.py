"""What every request handler shares: the file, producer state, groups and change wake-ups."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlitequeue.gateway.groups import Coordinator
from sqlitequeue.gateway.producers import Producers
from sqlitequeue.gateway.storage import Log

#: The single node's id; it is every partition's leader and every group's coordinator.
NODE_ID = 0
#: Largest produced batch accepted, as Kafka's message.max.bytes (about 1 MiB).
MAX_BATCH_BYTES = 1048588


@dataclass
class Context:
    """The server's state, handed to every handler."""

    log: Log
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

    def batch_limit(self, topic: str) -> int:
        """The largest batch ``topic`` accepts."""
        return self.max_message_bytes.get(topic, MAX_BATCH_BYTES)

    def notify_append(self) -> None:
        """Wake every fetch waiting for new records."""
        self.appended.set()
        self.appended = asyncio.Event()
