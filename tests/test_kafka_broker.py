"""The real Kafka broker: round trip, crash and restart, no orphaned JVMs, bad settings, CLI.

Most tests share the session broker (``kafka_bootstrap``); the crash tests start their own
through ``kafka_broker_factory``. Every test that starts a JVM checks that none survives it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sqlitequeue.bench.errors import KafkaError
from sqlitequeue.bench.kafka import distribution
from sqlitequeue.bench.kafka.broker import (
    FAST_FAILURE_DETECTION,
    ContainerKafka,
    ExternalKafka,
    KafkaBroker,
    KafkaCluster,
    LocalKafka,
)
from sqlitequeue.bench.kafka.node import free_port, pid_alive
from sqlitequeue.bench.kafka.readiness import fetch_metadata, parse_bootstrap

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parent.parent
Factory = Callable[..., Any]
#: Generous bounds: "fails within a bounded time", not a speed test (CPU may be shared).
QUICK = 30.0


# --------------------------------------------------------------------------- helpers


def _topic() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for i, value in enumerate(values):
            producer.send(topic, key=str(i % 3).encode(), value=value)
        producer.flush(timeout=60)
    finally:
        producer.close()


def _consume(bootstrap: str, topic: str, count: int, timeout: float = 60.0) -> list[bytes]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
    )
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(record.value for record in records)
    finally:
        consumer.close()
    return got


def _jvms_using(path: Path) -> list[int]:
    """Pids of live processes whose command line mentions ``path`` (our JVMs' data dir)."""
    needle = str(path).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and b"java" in cmdline and pid_alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def cached_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SQLITEQUEUE_CACHE that reuses this machine's downloaded jars (no download)."""
    real = distribution.kafka_home()
    distribution.install()
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / real.name).symlink_to(real)
    monkeypatch.setenv("SQLITEQUEUE_CACHE", str(cache))
    return cache


@pytest.fixture
def java_only_path(tmp_path: Path) -> str:
    """A PATH holding only ``java`` (no ``mvn``)."""
    bin_dir = tmp_path / "java-only-bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(distribution.find_java())
    return str(bin_dir)


def _fake_java(tmp_path: Path, version_line: str) -> Path:
    home = tmp_path / "fake-jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return home


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sqlitequeue", "kafka", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
        env=env,
        check=False,
    )


# --------------------------------------------------------------------------- the session broker


def test_round_trip_with_kafka_python(kafka_bootstrap: str) -> None:
    topic = _topic()
    sent = [f"message {i}".encode() for i in range(20)]
    _produce(kafka_bootstrap, topic, sent)
    assert sorted(_consume(kafka_bootstrap, topic, len(sent))) == sorted(sent)


def test_a_kafka_python_consumer_joins_knowing_its_topics_partitions(kafka_bootstrap: str) -> None:
    """Joining before the metadata lists the topic leads to a rejoin kafka-python can miss."""
    from sqlitequeue.bench.backends import open_backend
    from sqlitequeue.bench.profiles import backend_spec

    topic = _topic()
    with open_backend(backend_spec("kafka", bootstrap_servers=kafka_bootstrap)) as backend:
        backend.create_topic(topic, partitions=3)
        consumer = backend.consumer(topic, f"group-{topic}")
        try:
            client = consumer._client  # type: ignore[attr-defined]
            assert client._client.cluster.partitions_for_topic(topic) == {0, 1, 2}
        finally:
            consumer.close()


def test_broker_answers_metadata_and_exposes_its_jvm(kafka_session_broker: KafkaBroker) -> None:
    host, port = parse_bootstrap(kafka_session_broker.bootstrap_servers)[0]
    meta = fetch_metadata(host, port)
    assert len(meta.brokers) >= 1 and meta.cluster_id
    if isinstance(kafka_session_broker, LocalKafka):  # what CI runs
        assert kafka_session_broker.version == distribution.KAFKA_VERSION
        pid = kafka_session_broker.pid
        assert pid is not None and b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert kafka_session_broker.describe()["bootstrap"] == kafka_session_broker.bootstrap_servers


# --------------------------------------------------------------------------- crashes and clean-up


def test_kill_and_restart_keep_data_and_ports(kafka_broker_factory: Factory) -> None:
    broker = kafka_broker_factory(heap="512M", settings=FAST_FAILURE_DETECTION)
    assert isinstance(broker, LocalKafka) and broker.pid is not None and broker.data_dir
    bootstrap, old_pid, data_dir = broker.bootstrap_servers, broker.pid, broker.data_dir
    topic = _topic()
    sent = [f"before crash {i}".encode() for i in range(10)]
    _produce(bootstrap, topic, sent)

    broker.kill()
    assert not pid_alive(old_pid)
    with pytest.raises(OSError):
        fetch_metadata(*parse_bootstrap(bootstrap)[0], timeout=2)

    broker.restart()
    assert broker.bootstrap_servers == bootstrap
    assert broker.pid not in (None, old_pid)
    assert sorted(_consume(bootstrap, topic, len(sent))) == sorted(sent)

    broker.stop()
    assert broker.pids == []
    assert _jvms_using(data_dir) == []
    assert not data_dir.exists()


def test_python_killed_takes_its_jvm_along(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: SIGKILL of the owning Python process leaves no orphaned JVM."""
    data_dir = tmp_path / "kafka"
    script = (
        "import sys, time\n"
        "from sqlitequeue.bench.kafka.broker import LocalKafka\n"
        "broker = LocalKafka(heap='256M', data_dir=sys.argv[1]).start()\n"
        "print(broker.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir)], stdout=subprocess.PIPE, cwd=REPO
    )
    assert owner.stdout is not None
    try:
        ready, _, _ = select.select([owner.stdout], [], [], 180)
        assert ready, "the broker did not start within 180 s"
        jvm = int(owner.stdout.readline())
        assert pid_alive(jvm)
        owner.kill()
        owner.wait()
        assert _wait_until(lambda: not pid_alive(jvm), 15), f"JVM {jvm} outlived its owner"
    finally:
        owner.kill()
        owner.wait()
        for pid in _jvms_using(data_dir):
            os.kill(pid, signal.SIGKILL)
    assert _jvms_using(data_dir) == []


@pytest.mark.slow
def test_three_node_cluster_survives_one_killed_node(kafka_broker_factory: Factory) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    cluster = kafka_broker_factory(brokers=3, heap="384M", settings=FAST_FAILURE_DETECTION)
    assert isinstance(cluster, KafkaCluster) and len(cluster.nodes) == 3
    topic = _topic()
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])
    finally:
        admin.close()
    first = [f"all up {i}".encode() for i in range(10)]
    _produce(cluster.bootstrap_servers, topic, first)

    killed = cluster.nodes[0].pid
    assert killed is not None
    cluster.nodes[0].kill()
    assert not pid_alive(killed) and len(cluster.pids) == 2
    second = [f"one down {i}".encode() for i in range(10)]  # acks=all, min.insync.replicas=2
    _produce(cluster.bootstrap_servers, topic, second)

    cluster.restart_node(0)
    assert len(cluster.pids) == 3
    assert sorted(_consume(cluster.bootstrap_servers, topic, 20)) == sorted(first + second)
    data_dir = cluster.data_dir
    assert data_dir is not None
    cluster.stop()
    assert _jvms_using(data_dir) == []


def test_broker_that_cannot_start_raises_with_its_log(tmp_path: Path) -> None:
    broker = LocalKafka(heap="1m")  # the JVM refuses a 1 MiB heap after storage is formatted
    started = time.monotonic()
    with pytest.raises(KafkaError) as caught:
        broker.start()
    assert time.monotonic() - started < 120
    message = str(caught.value)
    assert "did not start" in message and "heap" in message  # the JVM's output
    data_dir = broker.data_dir
    assert data_dir is not None and _jvms_using(data_dir) == []
    broker.stop()


# --------------------------------------------------------------------------- bad settings


def test_unknown_mode_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KafkaError, match="unknown Kafka mode 'zookeeper'"):
        KafkaBroker.auto(mode="zookeeper")
    monkeypatch.setenv("SQLITEQUEUE_KAFKA_MODE", "bogus")
    with pytest.raises(KafkaError, match="unknown Kafka mode 'bogus'"):
        KafkaBroker.auto()


def test_unreachable_bootstrap_servers_fail_within_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    monkeypatch.delenv("SQLITEQUEUE_KAFKA_MODE", raising=False)
    broker = KafkaBroker.auto(connect_timeout=2)
    assert isinstance(broker, ExternalKafka)
    started = time.monotonic()
    with pytest.raises(KafkaError, match="KAFKA_BOOTSTRAP_SERVERS"):
        broker.start()
    assert time.monotonic() - started < QUICK


def test_external_broker_is_used_as_is(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.delenv("SQLITEQUEUE_KAFKA_MODE", raising=False)
    with KafkaBroker.auto() as broker:
        assert broker.mode == "external" and broker.bootstrap_servers == kafka_bootstrap
        assert broker.pid is None
        with pytest.raises(KafkaError, match="cannot be killed"):
            broker.kill()


@pytest.mark.parametrize("servers", ["localhost", "host:port", ",", "127.0.0.1:"])
def test_malformed_bootstrap_servers_are_rejected(servers: str) -> None:
    with pytest.raises(KafkaError, match="host:port"):
        ExternalKafka(servers, connect_timeout=1).start()


def test_missing_java_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KafkaError, match=r"no Java found.*Java 17"):
        LocalKafka().start()


@pytest.mark.parametrize(
    "version_line", ['openjdk version "11.0.22" 2024-01-16', 'java version "1.8.0_392"']
)
def test_old_java_is_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, version_line: str
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(_fake_java(tmp_path, version_line)))
    with pytest.raises(KafkaError, match=r"Java (11|8) .* too old: Kafka 4.x needs Java 17"):
        LocalKafka().start()


def test_missing_maven_is_reported_when_jars_are_not_cached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, java_only_path: str
) -> None:
    monkeypatch.setenv("SQLITEQUEUE_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", java_only_path)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(KafkaError, match=r"Maven \(`mvn`\) is not on PATH"):
        LocalKafka().start()


def test_port_in_use_is_reported_before_starting(cached_cache: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = LocalKafka(port=port)
        started = time.monotonic()
        with pytest.raises(KafkaError, match=f"port {port} on 127.0.0.1 is in use"):
            broker.start()
        assert time.monotonic() - started < QUICK
        assert broker.pids == []
        broker.stop()


def test_no_way_to_get_kafka_says_how_to_get_each(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "SQLITEQUEUE_KAFKA_MODE", "JAVA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    started = time.monotonic()
    with pytest.raises(KafkaError) as caught:
        KafkaBroker.auto()
    assert time.monotonic() - started < QUICK
    message = str(caught.value)
    for way in ("external: KAFKA_BOOTSTRAP_SERVERS", "local: no Java", "testcontainers:"):
        assert way in message


def test_testcontainers_without_docker_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(KafkaError, match="Docker is not reachable"):
        KafkaBroker.auto(mode="testcontainers")
    with pytest.raises(KafkaError, match="one broker"):
        KafkaBroker.auto(mode="testcontainers", brokers=3)
    assert ContainerKafka.mode == "testcontainers"


# --------------------------------------------------------------------------- the jar cache


@pytest.mark.slow
def test_first_install_downloads_then_reuses_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SQLITEQUEUE_CACHE", str(tmp_path / "cache"))
    messages: list[str] = []
    libs = distribution.install(progress=messages.append)
    assert distribution.is_installed()
    assert any("downloading" in m for m in messages)
    assert (libs / f"kafka_2.13-{distribution.KAFKA_VERSION}.jar").exists()
    assert (libs / f"kafka-tools-{distribution.KAFKA_VERSION}.jar").exists()
    assert list(libs.glob("log4j-slf4j-impl-*.jar")), "the slf4j binding the tarball adds"
    again: list[str] = []
    assert distribution.install(progress=again.append) == libs
    assert again == []


# --------------------------------------------------------------------------- CLI


def test_cli_install_is_idempotent_without_maven(cached_cache: Path, java_only_path: str) -> None:
    env = {**os.environ, "PATH": java_only_path}
    env.pop("JAVA_HOME", None)
    for _ in range(2):
        result = _cli("install", env=env)
        assert result.returncode == 0, result.stderr
        assert f"Apache Kafka {distribution.KAFKA_VERSION} jars" in result.stdout
        assert "downloading" not in result.stderr


def test_cli_start_status_stop(cached_cache: Path) -> None:
    env = dict(os.environ)
    state_file = cached_cache / "kafka-broker.json"
    try:
        started = _cli("start", "--heap", "256M", env=env)  # returns: the JVM is detached
        assert started.returncode == 0, started.stderr
        export = started.stdout.strip().splitlines()[-1]
        assert export.startswith("export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:")
        state = json.loads(state_file.read_text())
        assert export.endswith(state["bootstrap"])
        assert all(pid_alive(pid) for pid in state["pids"])

        status = _cli("status", env=env)
        assert status.returncode == 0 and "answering: 1 broker(s)" in status.stdout

        again = _cli("start", env=env)
        assert (
            again.returncode == 0 and export in again.stdout and "already running" in again.stderr
        )

        stopped = _cli("stop", env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert not any(pid_alive(pid) for pid in state["pids"])
        assert not Path(state["data_dir"]).exists() and not state_file.exists()
        assert _cli("status", env=env).returncode == 3
        assert _cli("stop", env=env).returncode == 3
    finally:
        if state_file.exists():
            for pid in json.loads(state_file.read_text())["pids"]:
                if pid_alive(pid):
                    os.killpg(pid, signal.SIGKILL)
