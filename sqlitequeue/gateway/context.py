"""What every request handler shares: the file (read and write sides), producer state,
groups and change wake-ups."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlitequeue.gateway.changes import Changes
from sqlitequeue.gateway.groups import Coordinator
from sqlitequeue.gateway.producers import Producers
from sqlitequeue.gateway.storage import Log
from sqlitequeue.gateway.writer import Writer

#: The single node's id; it is every partition's leader and every group's coordinator.
NODE_ID = 0
#: Largest produced batch accepted, as Kafka's message.max.bytes (about 1 MiB).
MAX_BATCH_BYTES = 1048588


@dataclass
class Context:
    """The server's state, handed to every handler. ``log`` is read on the event loop;
    every write goes through ``writer`` (see :mod:`sqlitequeue.gateway.writer`)."""

    log: Log
    writer: Writer
    changes: Changes
    host: str
    port: int
    cluster_id: str
    producers: Producers
    coordinator: Coordinator = field(default_factory=Coordinator)
    #: Topic -> largest batch, from CreateTopics' ``max.message.bytes`` (kept in memory:
    #: after a restart the default applies again).
    max_message_bytes: dict[str, int] = field(default_factory=dict)

    def batch_limit(self, topic: str) -> int:
        """The largest batch ``topic`` accepts."""
        return self.max_message_bytes.get(topic, MAX_BATCH_BYTES)
