"""Settings shared by the two Kafka backends (Java client names; each backend translates).

Settings are flat keys: ``producer.<java name>``, ``consumer.<java name>``,
``topic.<topic config>``, plus ``replication.factor``, ``connect.timeout.s`` and ``log.file``
(where the client library logs; set by the harness, see :func:`client_logger`). The names
are the Java client's, so a profile reads like Kafka's documentation and the same values
can be handed to Kafka's own ProducerPerformance (see ``sqlitequeue bench fairness``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlitequeue.bench.errors import BackendError

#: Defaults (OpenMessaging Benchmark's Kafka driver, adapted to one broker).
KAFKA_DEFAULTS: dict[str, Any] = {
    "replication.factor": 1,
    "connect.timeout.s": 10.0,
    "topic.max.message.bytes": 4 * 1024 * 1024,
    "producer.acks": "all",
    "producer.linger.ms": 1,
    "producer.batch.size": 131072,
    "producer.enable.idempotence": True,
    "producer.compression.type": "none",
    "producer.max.request.size": 4 * 1024 * 1024,
    "consumer.auto.offset.reset": "earliest",
    "consumer.session.timeout.ms": 6000,
    "consumer.heartbeat.interval.ms": 1000,
    "consumer.max.partition.fetch.bytes": 10 * 1024 * 1024,
}

#: Keys a profile may not set: the backend owns them.
RESERVED = {
    "producer.bootstrap.servers",
    "consumer.bootstrap.servers",
    "consumer.group.id",
    "consumer.enable.auto.commit",
}
_TOP_LEVEL = {"replication.factor", "connect.timeout.s", "log.file"}
#: marks the handlers :func:`client_logger` installs, so a later call replaces them
_HANDLER_MARK = "_sqlitequeue_log_file"
_SECTIONS = ("producer.", "consumer.", "topic.")


def kafka_settings(backend: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """Return the defaults updated with ``given``; raise BackendError for a bad key.

    Any ``producer.``/``consumer.``/``topic.`` key is accepted here (the client checks
    it); other keys must be ``replication.factor``, ``connect.timeout.s`` or ``log.file``.
    """
    bad = sorted(
        key
        for key in given
        if key in RESERVED or (key not in _TOP_LEVEL and not key.startswith(_SECTIONS))
    )
    if bad:
        raise BackendError(
            f"backend {backend!r} cannot take setting(s) {', '.join(bad)}: use "
            "producer.<name>, consumer.<name>, topic.<name>, replication.factor or "
            f"connect.timeout.s (bootstrap servers, group id and auto commit are set by "
            "the backend)"
        )
    settings = dict(KAFKA_DEFAULTS)
    settings.update(given)
    return settings


def section(settings: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Return the keys under ``prefix`` ("producer", "consumer", "topic") without it."""
    start = prefix + "."
    return {key[len(start) :]: value for key, value in settings.items() if key.startswith(start)}


def java_producer_properties(settings: Mapping[str, Any]) -> list[str]:
    """Return ``name=value`` strings for Kafka's Java producer (e.g. ProducerPerformance)."""
    return [f"{key}={_java_value(value)}" for key, value in section(settings, "producer").items()]


def _java_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def headline_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return the settings a results table shows first: acks, linger, batch size, RF."""
    return {
        "acks": settings.get("producer.acks"),
        "linger_ms": settings.get("producer.linger.ms"),
        "batch_size": settings.get("producer.batch.size"),
        "idempotence": settings.get("producer.enable.idempotence"),
        "compression": settings.get("producer.compression.type"),
        "replication_factor": settings.get("replication.factor"),
    }


def unreachable_message(servers: str, timeout: float, detail: str) -> str:
    """Return the error text for a broker that did not answer within ``timeout``."""
    return (
        f"cannot reach Kafka at {servers} within {timeout:g} s ({detail}); start one with "
        "`sqlitequeue kafka start`, or set KAFKA_BOOTSTRAP_SERVERS to a running cluster"
    )


def client_logger(name: str, log_file: str | None) -> logging.Logger | None:
    """Return the logger ``name`` writing to ``log_file`` only (None when no file is given).

    The client library's log lines (librdkafka's ``%3|...|FAIL|...``, kafka-python's
    logging) then go to that file instead of the terminal: the logger does not propagate,
    and a handler this function installed before (an earlier run in this process) is
    replaced. The file is opened on the first line logged.
    """
    if not log_file:
        return None
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        if getattr(handler, _HANDLER_MARK, None) is not None:
            logger.removeHandler(handler)
            handler.close()
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, delay=True)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    )
    setattr(handler, _HANDLER_MARK, log_file)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
