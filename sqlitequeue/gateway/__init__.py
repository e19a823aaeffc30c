"""``sqlitequeue serve``: Kafka's wire protocol over a sqlitequeue file (the ``gateway`` extra).

Unchanged Kafka clients and tools (``bootstrap.servers`` pointed at the server) produce to
and consume from the file's Stream topics; see docs/gateway.md. The modules, one job each:

* :mod:`.server`          the asyncio listener, connections, start/stop (``serve``)
* :mod:`.wire`            supported APIs and versions; frame decoding and encoding
* :mod:`.dispatch`        API key -> handler
* :mod:`.handlers`        data and cluster APIs (Produce, Fetch, Metadata, ...)
* :mod:`.group_handlers`  consumer group APIs (JoinGroup, OffsetCommit, ...)
* :mod:`.groups`          the classic group protocol's coordinator
* :mod:`.producers`       producer ids and idempotent produce
* :mod:`.batches`         record batch checks, decompression and encoding
* :mod:`.storage`         the file as Kafka sees it (topics, batches, committed offsets)
* :mod:`.writer`          every write, on one thread; appends share commits
* :mod:`.changes`         waking long-polling fetches when records arrive
* :mod:`.context`         the state every handler shares
* :mod:`.cli`             the ``serve`` command
"""

from __future__ import annotations

from sqlitequeue.errors import QueueError

try:
    import crc32c  # noqa: F401
    import kafka.protocol  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise QueueError(
        f"sqlitequeue serve needs the gateway extra ({exc.name} is missing): "
        "pip install 'sqlitequeue[gateway]'"
    ) from exc

from sqlitequeue.gateway.server import Server, serve

__all__ = ["Server", "serve"]
