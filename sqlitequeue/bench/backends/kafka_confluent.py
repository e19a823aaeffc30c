"""``kafka-confluent``: a real Kafka broker through confluent-kafka (librdkafka).

The fast client, so Kafka is not handicapped by a slow Python client. Producer:
``confluent_kafka.Producer`` with the profile's ``producer.*`` settings (Java names; the two
librdkafka spells differently are translated: ``max.request.size`` -> ``message.max.bytes``,
``fetch.max.wait.ms`` -> ``fetch.wait.max.ms``). librdkafka runs delivery callbacks only
inside ``poll()``/``flush()``, so a background thread calls ``poll()`` continuously: the
callback (and its ``published_at``) follows the broker's acknowledgement even when the
caller is idle between sends. A full local queue (``BufferError``) is back-pressure: ``send``
waits and retries. Consumer: ``confluent_kafka.Consumer`` with ``enable.auto.commit=false``;
``commit()`` is ``commit(asynchronous=False)``. Client errors are re-raised as
:class:`~sqlitequeue.bench.errors.KafkaError` (broker unreachable) or
:class:`~sqlitequeue.bench.errors.BackendError` (anything else), chained with ``from``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import confluent_kafka
from confluent_kafka import Consumer as ClientConsumer
from confluent_kafka import KafkaException
from confluent_kafka import Producer as ClientProducer
from confluent_kafka.admin import AdminClient, NewTopic

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
    RebalanceListener,
    Received,
)
from sqlitequeue.bench.errors import BackendError, KafkaError

#: Java client name -> librdkafka name, where they differ.
ALIASES = {"max.request.size": "message.max.bytes", "fetch.max.wait.ms": "fetch.wait.max.ms"}

#: librdkafka defaults that differ from the Java client's and kafka-python's behaviour:
#: both set TCP_NODELAY; librdkafka leaves Nagle on unless told, which adds up to ~40 ms
#: (delayed ACK) to small requests. A profile may still override it.
CLIENT_DEFAULTS: dict[str, Any] = {"socket.nagle.disable": True}


def client_config(options: Mapping[str, Any]) -> dict[str, Any]:
    """Translate Java-named ``options`` into a librdkafka configuration dict."""
    config: dict[str, Any] = dict(CLIENT_DEFAULTS)
    for name, value in options.items():
        config[ALIASES.get(name, name)] = value
    return config


class KafkaConfluentBackend(Backend):
    """Kafka through confluent-kafka (see the module docstring)."""

    name = "kafka-confluent"

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self.settings = kafka_settings(self.name, spec.settings)
        #: librdkafka logs to stderr unless given a logger: the harness names a file
        self.logger = client_logger("confluent_kafka", self.settings.pop("log.file", None))
        self.servers = bootstrap_servers(self.name, spec.bootstrap_servers)
        self.timeout = float(self.settings["connect.timeout.s"])
        self._admin: AdminClient | None = None

    def _logging(self, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` with the ``logger`` librdkafka's log lines go to (when a file is set)."""
        return config if self.logger is None else {**config, "logger": self.logger}

    def admin(self) -> AdminClient:
        """Return an admin client that reached the broker; raise KafkaError otherwise."""
        if self._admin is None:
            admin = AdminClient(self._logging({"bootstrap.servers": self.servers}))
            try:
                admin.list_topics(timeout=self.timeout)
            except KafkaException as exc:
                raise KafkaError(unreachable_message(self.servers, self.timeout, str(exc))) from exc
            self._admin = admin
        return self._admin

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        """Create ``topic`` with the profile's replication factor and topic configs."""
        configs = {key: str(value) for key, value in section(self.settings, "topic").items()}
        new = NewTopic(
            topic,
            num_partitions=partitions,
            replication_factor=int(self.settings["replication.factor"]),
            config=configs,
        )
        future = self.admin().create_topics([new], operation_timeout=self.timeout)[topic]
        try:
            future.result(timeout=self.timeout + 5)
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
                return
            raise BackendError(f"confluent-kafka could not create topic {topic!r}: {exc}") from exc

    def producer(self, topic: str) -> Producer:
        """Return a librdkafka producer for ``topic`` with a delivery-callback thread."""
        self.admin()  # a clear error, in bounded time, when the broker is unreachable
        config = client_config(section(self.settings, "producer"))
        config["bootstrap.servers"] = self.servers
        try:
            client = ClientProducer(self._logging(config))
        except KafkaException as exc:
            raise BackendError(f"confluent-kafka could not create a producer: {exc}") from exc
        return ConfluentProducer(client, topic)

    def consumer(self, topic: str, group: str) -> Consumer:
        """Return a librdkafka consumer subscribed to ``topic`` in ``group`` (auto commit off)."""
        self.admin()
        config = client_config(section(self.settings, "consumer"))
        config.update(
            {"bootstrap.servers": self.servers, "group.id": group, "enable.auto.commit": False}
        )
        try:
            client = ClientConsumer(self._logging(config))
            consumer = ConfluentConsumer(client)
            client.subscribe([topic], **consumer.rebalance_callbacks())
        except KafkaException as exc:
            raise BackendError(f"confluent-kafka could not create a consumer: {exc}") from exc
        return consumer

    def describe(self) -> dict[str, Any]:
        """Return settings, client and librdkafka versions and the bootstrap servers."""
        info = base_description(self.name, self.spec.profile, self.settings)
        info["client"] = f"confluent-kafka {confluent_kafka.__version__}"
        info["librdkafka"] = confluent_kafka.libversion()[0]
        info["bootstrap_servers"] = self.servers
        info.update(headline_settings(self.settings))
        return info


class ConfluentProducer(Producer):
    """Produces through librdkafka; a thread serves delivery callbacks."""

    def __init__(self, client: ClientProducer, topic: str) -> None:
        self._client = client
        self._topic = topic
        self._closed = False
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._serve, name="rdkafka-poll", daemon=True)
        self._poller.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._client.poll(0.05)

    def send(
        self, key: bytes | None, payload: bytes, on_delivery: DeliveryCallback | None = None
    ) -> None:
        """Queue the record in librdkafka; wait while its local queue is full."""
        if self._closed:
            raise BackendError("send() after the producer was closed")
        callback = None if on_delivery is None else _callback(on_delivery)
        while True:
            try:
                self._client.produce(self._topic, value=payload, key=key, on_delivery=callback)
                return
            except BufferError:
                time.sleep(0.0005)  # back-pressure: the poller thread drains the queue
            except KafkaException as exc:
                raise BackendError(f"confluent-kafka could not send: {exc}") from exc

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every record sent so far is acknowledged; BackendError on timeout."""
        left = self._client.flush(timeout)
        if left:
            raise BackendError(
                f"flush timed out after {timeout} s with {left} record(s) unconfirmed"
            )

    def close(self) -> None:
        """Flush and stop the callback thread; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            self._stop.set()
            self._poller.join()


#: Commit error codes that mean "the group moved these records to another member".
_MOVED = {
    confluent_kafka.KafkaError.REBALANCE_IN_PROGRESS,
    confluent_kafka.KafkaError.ILLEGAL_GENERATION,
    confluent_kafka.KafkaError.UNKNOWN_MEMBER_ID,
    confluent_kafka.KafkaError.FENCED_INSTANCE_ID,
    confluent_kafka.KafkaError._ASSIGNMENT_LOST,
    confluent_kafka.KafkaError._STATE,
}


def _callback(on_delivery: DeliveryCallback) -> Any:
    def delivered(err: Any, _msg: Any) -> None:
        if err is None:
            on_delivery(Delivery(ok=True, published_at=time.time()))
        else:
            on_delivery(Delivery(ok=False, published_at=time.time(), error=str(err)))

    return delivered


class ConfluentConsumer(Consumer):
    """Consumes through librdkafka; ``commit()`` is synchronous."""

    def __init__(self, client: ClientConsumer) -> None:
        self._client = client
        self._closed = False
        self._uncommitted = False
        self._listeners: list[RebalanceListener] = []

    def on_rebalance(self, listener: RebalanceListener) -> None:
        """Tell ``listener`` of every assignment and revocation (called inside ``poll``)."""
        self._listeners.append(listener)

    def rebalance_callbacks(self) -> dict[str, Any]:
        """Return librdkafka's ``on_assign``/``on_revoke`` for ``subscribe``.

        They tell this consumer's listeners; librdkafka then applies the assignment itself.
        """

        def told(kind: str) -> Any:
            def callback(_client: Any, partitions: Any) -> None:
                numbers = [p.partition for p in partitions]
                for listener in self._listeners:
                    listener(kind, numbers)

            return callback

        return {"on_assign": told("assigned"), "on_revoke": told("revoked")}

    def poll(self, max_records: int, timeout: float) -> list[Received]:
        """Return up to ``max_records`` records (joining the group on first use)."""
        if self._closed:
            raise BackendError("poll() after the consumer was closed")
        # consume(n, timeout) waits for n messages or the whole timeout, which would add up
        # to `timeout` of latency; poll() returns at the first message, then consume(..., 0)
        # takes what librdkafka has already fetched.
        try:
            first = self._client.poll(timeout)
            messages = [] if first is None else [first]
            if first is not None and max_records > 1:
                messages += self._client.consume(num_messages=max_records - 1, timeout=0)
        except KafkaException as exc:
            raise BackendError(f"confluent-kafka poll failed: {exc}") from exc
        records = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                    continue
                raise BackendError(f"confluent-kafka consumer error: {error}")
            records.append(
                Received(
                    key=message.key(),
                    payload=message.value() or b"",
                    partition=message.partition() or 0,
                    offset=message.offset() or 0,
                )
            )
        self._uncommitted = self._uncommitted or bool(records)
        return records

    def commit(self) -> None:
        """Commit the position after everything polled so far (synchronous)."""
        if self._closed:
            raise BackendError("commit() after the consumer was closed")
        if not self._uncommitted:
            return  # librdkafka raises _NO_OFFSET when there is nothing to commit
        try:
            self._client.commit(asynchronous=False)
        except KafkaException as exc:
            if not (exc.args and exc.args[0].code() in _MOVED):
                raise BackendError(f"confluent-kafka commit failed: {exc}") from exc
            self.lost_commits += 1  # the group rebalanced: the records go to the new owner
        self._uncommitted = False

    def close(self) -> None:
        """Leave the group without committing; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._client.close()


class KafkaManagedBackend(KafkaConfluentBackend):
    """``kafka-managed``: confluent-kafka against a managed-shaped cluster.

    Three brokers, one per emulated availability zone, replication factor 3 with
    ``min.insync.replicas=2`` (broker side) and ``acks=all``, reached over an emulated network
    from clients in one zone (see :mod:`sqlitequeue.bench.network.topology`). Its profile uses
    the client settings teams commonly run with (``kafka-managed``). The cluster itself is
    started by the caller (``bench compare`` starts one per network profile).
    """

    name = "kafka-managed"
