"""Shared fixtures: a fresh database path per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sqlitequeue.bench.kafka.broker import KafkaBroker


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A path for a new database file in a fresh temporary directory."""
    return tmp_path / "queue.db"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test fails the run: CI must never pass with Kafka or Litestream tests
    silently skipped (deselecting with -k or -m is not skipping)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == 0:
        reporter.write_line(f"{len(skipped)} test(s) skipped: this suite allows no skips")
        session.exitstatus = 1


# --------------------------------------------------------------------------- Kafka
# One real broker for the whole session (KafkaBroker.auto(): KAFKA_BOOTSTRAP_SERVERS, else a
# local JVM, else testcontainers). If it cannot start, every test using it FAILS with the
# broker's log: Kafka tests never skip.


@pytest.fixture(scope="session")
def kafka_session_broker() -> Iterator[KafkaBroker]:
    """The session's started broker (``.bootstrap_servers``, ``.pid`` for sampling the JVM)."""
    from sqlitequeue.bench.errors import KafkaError
    from sqlitequeue.bench.kafka.broker import KafkaBroker

    try:
        broker = KafkaBroker.auto().start()
    except KafkaError as exc:
        pytest.fail(f"Kafka could not be started for the tests:\n{exc}", pytrace=False)
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_session_broker: KafkaBroker) -> str:
    """Bootstrap servers of the one broker shared by the whole test session."""
    return kafka_session_broker.bootstrap_servers


@pytest.fixture(scope="module")
def kafka_managed_bootstrap() -> Iterator[str]:
    """A managed-shaped cluster for one test module: 3 local brokers across emulated zones
    (RF 3, min.insync.replicas=2, every hop behind Toxiproxy with the cross-az profile).
    Module-scoped: its three JVMs are stopped when the module ends, not left to slow the
    rest of the session on 2 cores."""
    from sqlitequeue.bench.errors import BenchError
    from sqlitequeue.bench.kafka.broker import LocalKafka
    from sqlitequeue.bench.network.profiles import load_network

    cluster = LocalKafka(3, network=load_network("cross-az"))
    try:
        cluster.start()
    except BenchError as exc:
        pytest.fail(f"the managed-shaped cluster could not be started:\n{exc}", pytrace=False)
    yield cluster.bootstrap_servers
    cluster.stop()


@pytest.fixture
def kafka_broker_factory() -> Iterator[Callable[..., KafkaBroker]]:
    """Start extra brokers for one test (e.g. to kill them); all are stopped afterwards.

    ``kafka_broker_factory(brokers=1, mode="local", **options)`` returns a started broker
    (options as for :class:`sqlitequeue.bench.kafka.broker.LocalKafka`, e.g. ``heap="512M"``).
    """
    from sqlitequeue.bench.errors import KafkaError
    from sqlitequeue.bench.kafka.broker import KafkaBroker

    started: list[KafkaBroker] = []

    def make(brokers: int = 1, mode: str = "local", **options: Any) -> KafkaBroker:
        broker = KafkaBroker.auto(mode=mode, brokers=brokers, **options)
        started.append(broker)
        try:
            return broker.start()
        except KafkaError as exc:
            pytest.fail(f"an extra Kafka broker could not be started:\n{exc}", pytrace=False)

    yield make
    for broker in reversed(started):
        broker.stop()
