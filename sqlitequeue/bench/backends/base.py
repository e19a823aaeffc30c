"""The one small protocol every backend implements (after OpenMessaging Benchmark's driver API).

A backend is built in whichever process needs it from a picklable :class:`BackendSpec`
(name, settings from a profile YAML, where its data lives, Kafka's bootstrap servers), so
the runner can start producers and consumers in separate processes.

Timing is the framework's job, not the backend's: the runner stamps its own send time into
the payload, the producer's delivery callback reports when the write was confirmed, and the
consumer hands back the payload untouched.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from sqlitequeue.bench.errors import BackendError


@dataclass(frozen=True)
class Delivery:
    """What a producer reports for each send once the backend has confirmed (or failed) it.

    ``published_at`` is ``time.time()`` when the confirmation arrived.
    """

    ok: bool
    published_at: float
    error: str | None = None


class Received(NamedTuple):
    """One record handed to a consumer: the payload exactly as sent.

    A NamedTuple rather than a frozen dataclass: one is built per record on every consumer's
    hot path, and a frozen dataclass costs several times more to build.
    """

    key: bytes | None
    payload: bytes
    partition: int = 0
    offset: int = -1


DeliveryCallback = Callable[[Delivery], None]

#: Told ``("assigned" | "revoked", partitions)`` when a group changes a member's partitions.
RebalanceListener = Callable[[str, list[int]], None]


class Producer(ABC):
    """Publishes to one topic."""

    @abstractmethod
    def send(
        self, key: bytes | None, payload: bytes, on_delivery: DeliveryCallback | None = None
    ) -> None:
        """Queue one record for publishing without waiting for it to be stored.

        ``on_delivery`` is called exactly once, from the producer's own thread or from a
        later ``send``/``flush`` call, with a :class:`Delivery`. May block briefly for
        back-pressure when the backend's buffer is full.
        """

    @abstractmethod
    def flush(self, timeout: float = 30.0) -> None:
        """Block until every record sent so far is confirmed; raise BackendError on timeout."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release resources; safe to call twice."""


class Consumer(ABC):
    """Reads one topic as a member of one consumer group."""

    #: Commits that found the records already handed to another member (a rebalance, an
    #: expired lease): not an error under at-least-once; those records are delivered again.
    lost_commits: int = 0

    @abstractmethod
    def poll(self, max_records: int, timeout: float) -> list[Received]:
        """Return up to ``max_records`` records; an empty list if none arrive within ``timeout``."""

    @abstractmethod
    def commit(self) -> None:
        """Acknowledge every record returned by ``poll`` so far (at-least-once boundary).

        Records polled but not committed are delivered again to the group after this
        consumer dies or closes without committing. When the group already moved those
        records to another member (rebalance, expired lease), ``commit`` does not raise: it
        adds one to ``lost_commits`` and the records are delivered again (duplicates).
        Raises BackendError for any other failure.
        """

    def on_rebalance(self, listener: RebalanceListener) -> None:  # noqa: B027 - optional hook
        """Have ``listener`` told each time the group assigns or revokes this member's partitions.

        Optional: a backend whose groups hand out partitions calls ``listener("assigned",
        partitions)`` / ``listener("revoked", partitions)`` from inside ``poll`` (the
        failure lab logs them to see a rebalance happen). The default ignores the listener:
        a backend without partition assignment never calls it.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Leave the group without committing; safe to call twice."""


@dataclass(frozen=True)
class BackendSpec:
    """Everything needed to build a backend in any process (picklable)."""

    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    data_dir: str = "."
    bootstrap_servers: str | None = None
    profile: str | None = None


class Backend(ABC):
    """A message system under test: topics, producers, consumers."""

    #: Registry name, e.g. "sqlite-queue".
    name: ClassVar[str]
    #: False for backends where every group is a work queue fed at publish time
    #: (consumers of a group must subscribe before records are produced).
    replays_history: ClassVar[bool] = True
    #: False when records polled but not committed are NOT delivered again after the
    #: consumer dies or closes (no storage, or no lease: see the backend's docstring).
    redelivers_uncommitted: ClassVar[bool] = True
    #: False when a group's committed position does not survive a consumer restart.
    commits_survive_restart: ClassVar[bool] = True
    #: False when only one consumer group per topic is supported.
    fan_out: ClassVar[bool] = True
    #: False when record keys are not stored (``Received.key`` is then None).
    preserves_keys: ClassVar[bool] = True

    def __init__(self, spec: BackendSpec) -> None:
        self.spec = spec

    @abstractmethod
    def create_topic(self, topic: str, partitions: int = 1) -> None:
        """Create ``topic`` with ``partitions`` partitions; a no-op if it already exists."""

    @abstractmethod
    def producer(self, topic: str) -> Producer:
        """Return a new producer for ``topic``."""

    @abstractmethod
    def consumer(self, topic: str, group: str) -> Consumer:
        """Return a new consumer subscribed to ``topic`` as a member of ``group``."""

    @classmethod
    def server_pids(cls, spec: BackendSpec) -> list[int]:
        """Return the pids of processes the backend of ``spec`` runs besides its clients.

        For the runner's resource samples (e.g. a server the backend started); none by
        default. Never raises.
        """
        return []

    def describe(self) -> dict[str, Any]:
        """Return versions and effective settings, recorded with every result."""
        return {"backend": self.name, "settings": dict(self.spec.settings)}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release shared resources; producers and consumers must be closed first."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Registry: backend name -> "module:Class", imported lazily so optional extras stay optional.
BACKENDS: dict[str, str] = {
    "memory": "sqlitequeue.bench.backends.memory:MemoryBackend",
    "sqlite-queue": "sqlitequeue.bench.backends.sqlite_queue:SqliteQueueBackend",
    "sqlite-stream": "sqlitequeue.bench.backends.sqlite_stream:SqliteStreamBackend",
    "sqlite-seed": "sqlitequeue.bench.backends.sqlite_seed:SqliteSeedBackend",
    "kafka": "sqlitequeue.bench.backends.kafka_python:KafkaPythonBackend",
    "kafka-confluent": "sqlitequeue.bench.backends.kafka_confluent:KafkaConfluentBackend",
    "kafka-managed": "sqlitequeue.bench.backends.kafka_confluent:KafkaManagedBackend",
    "gateway-confluent": "sqlitequeue.bench.backends.gateway:GatewayConfluentBackend",
    "gateway-kafka-python": "sqlitequeue.bench.backends.gateway:GatewayKafkaPythonBackend",
}


def open_backend(spec: BackendSpec) -> Backend:
    """Build the backend named by ``spec.name``; raise BackendError if it is unknown.

    Raises BackendError naming the extra to install when its client library is missing.
    """
    target = BACKENDS.get(spec.name)
    if target is None:
        import difflib

        close = difflib.get_close_matches(spec.name, sorted(BACKENDS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise BackendError(
            f"unknown backend {spec.name!r}; {hint}choose one of: {', '.join(sorted(BACKENDS))}"
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise BackendError(
            f"backend {spec.name!r} needs a package that is not installed ({exc.name}); "
            "install it with: pip install 'sqlitequeue[kafka]'"
        ) from exc
    backend_class = getattr(module, class_name)
    backend: Backend = backend_class(spec)
    return backend
