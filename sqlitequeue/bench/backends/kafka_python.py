"""``kafka``: a real Kafka broker through kafka-python (the design card's client).

Producer: ``KafkaProducer`` with the profile's ``producer.*`` settings (Java names,
translated to kafka-python's keyword arguments: ``linger.ms`` -> ``linger_ms``); each
``send`` attaches ``add_callback``/``add_errback`` to the returned future, so delivery is
reported from kafka-python's I/O thread. Consumer: ``KafkaConsumer`` with
``enable_auto_commit=False``; ``commit()`` is a synchronous commit of the polled position.
Topics are created with ``KafkaAdminClient``. Every kafka-python error is re-raised as
:class:`~sqlitequeue.bench.errors.KafkaError` (broker unreachable) or
:class:`~sqlitequeue.bench.errors.BackendError` (anything else), chained with ``from``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import kafka
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import (
    CommitFailedError,
    FencedInstanceIdError,
    IllegalGenerationError,
    KafkaTimeoutError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
    UnknownMemberIdError,
)
from kafka.errors import KafkaError as ClientError

from sqlitequeue.bench.backends._common import base_description, bootstrap_servers
from sqlitequeue.bench.backends._kafka import (
    client_logger,
    headline_settings,
    kafka_settings,
    section,
    unreachable_message,
)
from sqlitequeue.bench.backends.base import (
    Backend,
    BackendSpec,
    Consumer,
    Delivery,
    DeliveryCallback,
    Producer,
    Received,
)
from sqlitequeue.bench.errors import BackendError, KafkaError


def client_kwargs(
    kind: str, options: Mapping[str, Any], known: Mapping[str, Any]
) -> dict[str, Any]:
    """Translate Java-named ``options`` into kafka-python keyword arguments.

    Raises BackendError naming the setting when kafka-python has no such option.
    """
    kwargs: dict[str, Any] = {}
    for name, value in options.items():
        arg = name.replace(".", "_")
        if arg not in known:
            raise BackendError(f"kafka-python's {kind} has no setting {name!r} ({kind}.{name})")
        if arg == "compression_type" and value in ("none", None):
            value = None
        kwargs[arg] = value
    return kwargs


class KafkaPythonBackend(Backend):
    """Kafka through kafka-python (see the module docstring)."""

    name = "kafka"

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self.settings = kafka_settings(self.name, spec.settings)
        # kafka-python logs through `logging` ("kafka.*"): to the harness's file, when named
        client_logger("kafka", self.settings.pop("log.file", None))
        self.servers = bootstrap_servers(self.name, spec.bootstrap_servers)
        self.timeout = float(self.settings["connect.timeout.s"])
        self._admin: KafkaAdminClient | None = None

    def admin(self) -> KafkaAdminClient:
        """Return a connected admin client; raise KafkaError if the broker is unreachable."""
        if self._admin is None:
            try:
                self._admin = KafkaAdminClient(
                    bootstrap_servers=self.servers,
                    bootstrap_timeout_ms=int(self.timeout * 1000),
                    request_timeout_ms=int(max(self.timeout, 1.0) * 1000),
                )
            except KafkaTimeoutError as exc:
                raise KafkaError(unreachable_message(self.servers, self.timeout, str(exc))) from exc
            except ClientError as exc:
                raise KafkaError(
                    f"kafka-python could not connect to {self.servers}: {exc}"
                ) from exc
        return self._admin

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        """Create ``topic`` with the profile's replication factor and topic configs."""
        configs = {key: str(value) for key, value in section(self.settings, "topic").items()}
        new = NewTopic(
            topic, partitions, int(self.settings["replication.factor"]), topic_configs=configs
        )
        try:
            self.admin().create_topics([new], timeout_ms=int(self.timeout * 1000))
        except TopicAlreadyExistsError:
            return
        except ClientError as exc:
            raise BackendError(f"kafka-python could not create topic {topic!r}: {exc}") from exc

    def producer(self, topic: str) -> Producer:
        """Return a KafkaProducer-backed producer for ``topic``."""
        self.admin()  # a clear error, in bounded time, when the broker is unreachable
        kwargs = client_kwargs(
            "producer", section(self.settings, "producer"), KafkaProducer.DEFAULT_CONFIG
        )
        try:
            client = KafkaProducer(bootstrap_servers=self.servers, **kwargs)
        except ClientError as exc:
            raise BackendError(f"kafka-python could not create a producer: {exc}") from exc
        return KafkaPythonProducer(client, topic)

    def consumer(self, topic: str, group: str) -> Consumer:
        """Return a KafkaConsumer subscribed to ``topic`` in ``group`` (auto commit off)."""
        self.admin()
        kwargs = client_kwargs(
            "consumer", section(self.settings, "consumer"), KafkaConsumer.DEFAULT_CONFIG
        )
        try:
            client = KafkaConsumer(
                bootstrap_servers=self.servers, group_id=group, enable_auto_commit=False, **kwargs
            )
            _await_partitions(client, topic, min(self.timeout, TOPIC_METADATA_WAIT_S))
            client.subscribe([topic])
        except ClientError as exc:
            raise BackendError(f"kafka-python could not create a consumer: {exc}") from exc
        return KafkaPythonConsumer(client)

    def describe(self) -> dict[str, Any]:
        """Return settings, the client version and the bootstrap servers."""
        info = base_description(self.name, self.spec.profile, self.settings)
        info["client"] = f"kafka-python {kafka.__version__}"
        info["bootstrap_servers"] = self.servers
        info.update(headline_settings(self.settings))
        return info

    def close(self) -> None:
        """Close the admin client; safe to call twice."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None


#: how long a consumer waits for its topic's partitions before it joins the group anyway
TOPIC_METADATA_WAIT_S = 10.0


def _await_partitions(client: KafkaConsumer, topic: str, wait_s: float) -> None:
    """Wait until ``client``'s metadata lists ``topic``'s partitions (at most ``wait_s``).

    A member that joins its group before its metadata knows the topic is assigned nothing,
    then rejoins when the metadata arrives; kafka-python 3.0.12 sometimes never completes
    that second join (no assignment, the member times out: 5 of 21 reference runs). Joining
    once the partitions are known avoids the rejoin.
    """
    deadline = time.monotonic() + wait_s
    while not client.partitions_for_topic(topic) and time.monotonic() < deadline:
        time.sleep(0.05)


class KafkaPythonProducer(Producer):
    """Sends through KafkaProducer; delivery is reported by the future's callbacks."""

    def __init__(self, client: KafkaProducer, topic: str) -> None:
        self._client = client
        self._topic = topic
        self._closed = False

    def send(
        self, key: bytes | None, payload: bytes, on_delivery: DeliveryCallback | None = None
    ) -> None:
        """Hand the record to kafka-python's buffer (blocks up to max.block.ms when full)."""
        if self._closed:
            raise BackendError("send() after the producer was closed")
        try:
            future = self._client.send(self._topic, value=payload, key=key)
        except ClientError as exc:
            raise BackendError(f"kafka-python could not send: {exc}") from exc
        if on_delivery is not None:
            future.add_callback(_delivered, on_delivery)
            future.add_errback(_failed, on_delivery)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every record sent so far is acknowledged; BackendError on timeout."""
        try:
            self._client.flush(timeout=timeout)
        except ClientError as exc:
            raise BackendError(f"kafka-python flush failed after {timeout} s: {exc}") from exc

    def close(self) -> None:
        """Flush and close the KafkaProducer; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._client.close(timeout=30)
        except ClientError as exc:
            raise BackendError(f"kafka-python could not close the producer: {exc}") from exc


#: Commit failures that mean "the group moved these records to another member".
_MOVED = (
    CommitFailedError,
    RebalanceInProgressError,
    IllegalGenerationError,
    UnknownMemberIdError,
    FencedInstanceIdError,
)


def _delivered(on_delivery: DeliveryCallback, _metadata: object) -> None:
    on_delivery(Delivery(ok=True, published_at=time.time()))


def _failed(on_delivery: DeliveryCallback, exc: BaseException) -> None:
    on_delivery(Delivery(ok=False, published_at=time.time(), error=str(exc)))


class KafkaPythonConsumer(Consumer):
    """Polls a KafkaConsumer; ``commit()`` is a synchronous commit."""

    def __init__(self, client: KafkaConsumer) -> None:
        self._client = client
        self._closed = False

    def poll(self, max_records: int, timeout: float) -> list[Received]:
        """Return up to ``max_records`` records (joining the group on first use)."""
        if self._closed:
            raise BackendError("poll() after the consumer was closed")
        try:
            batches = self._client.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except ClientError as exc:
            raise BackendError(f"kafka-python poll failed: {exc}") from exc
        return [
            Received(key=r.key, payload=r.value, partition=r.partition, offset=r.offset)
            for records in batches.values()
            for r in records
        ]

    def commit(self) -> None:
        """Commit the position after everything polled so far (synchronous)."""
        if self._closed:
            raise BackendError("commit() after the consumer was closed")
        try:
            self._client.commit()
        except _MOVED:
            self.lost_commits += 1  # the group rebalanced: the records go to the new owner
        except ClientError as exc:
            raise BackendError(f"kafka-python commit failed: {exc}") from exc

    def close(self) -> None:
        """Leave the group without committing; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._client.close(autocommit=False)
