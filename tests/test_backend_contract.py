"""One contract, every backend: the behaviour the workbench relies on.

Each test runs once per backend in the registry. The Kafka backends use the session's real
broker (``kafka_bootstrap``); they run in CI, never skip. Where a backend lacks a capability
by design (``memory`` has no storage, ``sqlite-seed`` has no lease and no groups), the test
asserts the class flag that says so *and* the documented behaviour that follows from it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from sqlitequeue.bench.backends import (
    BACKENDS,
    Backend,
    BackendSpec,
    Consumer,
    Delivery,
    Received,
    open_backend,
)
from sqlitequeue.bench.errors import BackendError, KafkaError
from sqlitequeue.bench.profiles import backend_spec

KAFKA_BACKENDS = ("kafka", "kafka-confluent", "kafka-managed")
#: The Kafka clients pointed at `sqlitequeue serve`: each starts its own server on its data dir.
GATEWAY_BACKENDS = ("gateway-confluent", "gateway-kafka-python")
#: backend -> the session fixture with its bootstrap servers
KAFKA_FIXTURES = {"kafka-managed": "kafka_managed_bootstrap"}

#: Test-only settings: short leases so a dead consumer's records come back within seconds.
FAST: dict[str, dict[str, Any]] = {
    "sqlite-queue": {"lease_s": 2.0},
    "sqlite-stream": {"lease_s": 2.0},
    "kafka-managed": {"consumer.session.timeout.ms": 6000, "consumer.heartbeat.interval.ms": 1000},
    # the gateway has no minimum session timeout: a dead member is noticed within 2 s
    **{
        name: {"consumer.session.timeout.ms": 2000, "consumer.heartbeat.interval.ms": 500}
        for name in GATEWAY_BACKENDS
    },
}


def _param(name: str) -> Any:
    marks = [pytest.mark.kafka] if name in KAFKA_BACKENDS else []
    return pytest.param(name, marks=marks, id=name)


ALL = [_param(name) for name in sorted(BACKENDS)]


@pytest.fixture(params=ALL)
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> BackendSpec:
    """A spec for the backend under test (default profile, fast test overrides)."""
    name = request.param
    fixture = KAFKA_FIXTURES.get(name, "kafka_bootstrap")
    servers = request.getfixturevalue(fixture) if name in KAFKA_BACKENDS else None
    return backend_spec(
        name, data_dir=tmp_path, bootstrap_servers=servers, overrides=FAST.get(name, {})
    )


@pytest.fixture
def backend(spec: BackendSpec) -> Iterator[Backend]:
    """The backend under test, closed afterwards."""
    with open_backend(spec) as opened:
        yield opened


@pytest.fixture
def topic(backend: Backend) -> str:
    """A fresh topic (one partition) on the backend under test."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    backend.create_topic(name, 1)
    return name


def produce(backend: Backend, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None:
    """Send ``records``, flush, close; assert every delivery was confirmed exactly once."""
    deliveries: list[Delivery] = []
    producer = backend.producer(topic)
    try:
        for key, payload in records:
            producer.send(key, payload, deliveries.append)
        producer.flush(60)
    finally:
        producer.close()
    assert len(deliveries) == len(records)
    assert all(d.ok for d in deliveries), [d.error for d in deliveries if not d.ok][:3]
    assert all(d.published_at > 0 for d in deliveries)


def drain(consumer: Consumer, count: int, timeout: float = 60.0) -> list[Received]:
    """Poll until ``count`` records arrived or ``timeout`` passed; return what arrived."""
    received: list[Received] = []
    deadline = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        received += consumer.poll(count - len(received), 0.5)
    return received


def quiet(consumer: Consumer, seconds: float = 1.0) -> list[Received]:
    """Poll for ``seconds`` and return whatever arrives (expected: nothing)."""
    received: list[Received] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        received += consumer.poll(100, 0.2)
    return received


def numbered(count: int, keys: int = 1) -> list[tuple[bytes | None, bytes]]:
    """``count`` records spread over ``keys`` keys; the payload names key and sequence."""
    records: list[tuple[bytes | None, bytes]] = []
    for seq in range(count):
        key = f"k{seq % keys}".encode()
        records.append((key, key + b":" + str(seq).encode()))
    return records


def payloads(received: list[Received]) -> list[bytes]:
    return [r.payload for r in received]


# --------------------------------------------------------------------------- behaviour


def test_round_trip(backend: Backend, topic: str) -> None:
    consumer = backend.consumer(topic, "g1")
    records = numbered(20, keys=3)
    produce(backend, topic, records)
    received = drain(consumer, 20)
    consumer.commit()
    consumer.close()
    assert sorted(payloads(received)) == sorted(p for _, p in records)
    if backend.preserves_keys:
        assert sorted((r.key, r.payload) for r in received) == sorted(records)
    else:
        assert all(r.key is None for r in received)


def test_order_per_key(backend: Backend) -> None:
    topic = f"t-{uuid.uuid4().hex[:12]}"
    backend.create_topic(topic, 2)
    consumer = backend.consumer(topic, "g1")
    records = numbered(60, keys=4)
    produce(backend, topic, records)
    received = drain(consumer, 60)
    consumer.close()
    assert len(received) == 60
    by_key: dict[bytes, list[int]] = {}
    for payload in payloads(received):
        key, seq = payload.split(b":")
        by_key.setdefault(key, []).append(int(seq))
    assert len(by_key) == 4
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), f"key {key!r} out of order: {seqs}"


def test_redelivery_after_close_without_commit(backend: Backend, topic: str) -> None:
    first = backend.consumer(topic, "g1")
    records = numbered(10)
    produce(backend, topic, records)
    assert len(drain(first, 10)) == 10
    first.close()  # no commit
    second = backend.consumer(topic, "g1")
    try:
        if backend.redelivers_uncommitted:
            again = drain(second, 10)
            assert sorted(payloads(again)) == sorted(p for _, p in records)
        else:
            assert backend.name in ("memory", "sqlite-seed")  # the flag is off on purpose
            assert quiet(second) == []  # polled-but-uncommitted records are gone
    finally:
        second.close()


def _poll_then_hang(spec: BackendSpec, topic: str, count: int, conn: Any) -> None:
    """Child process: join group g1, poll ``count`` records without committing, then hang."""
    backend = open_backend(spec)
    consumer = backend.consumer(topic, "g1")
    conn.send(len(drain(consumer, count)))
    time.sleep(600)


@pytest.mark.slow
def test_redelivery_after_consumer_is_killed(
    backend: Backend, spec: BackendSpec, topic: str
) -> None:
    if backend.name == "memory":
        # No storage: nothing could survive the consumer's process. The flag says so.
        assert not backend.redelivers_uncommitted
        assert not backend.commits_survive_restart
        return
    if not backend.replays_history:
        backend.consumer(topic, "g1").close()  # subscribe the group before producing
    records = numbered(10)
    produce(backend, topic, records)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_poll_then_hang, args=(spec, topic, 10, child), daemon=True)
    process.start()
    try:
        assert parent.poll(90), "the child consumer never reported"
        assert parent.recv() == 10
    finally:
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        process.join(10)
    survivor = backend.consumer(topic, "g1")
    try:
        if backend.redelivers_uncommitted:
            again = drain(survivor, 10, timeout=60)
            assert sorted(payloads(again)) == sorted(p for _, p in records)
        else:
            assert backend.name == "sqlite-seed"  # no lease: the article's known gap
            assert quiet(survivor, 2.0) == []
            path = backend.path(topic)  # type: ignore[attr-defined]
            with sqlite3.connect(path) as conn:
                stranded = conn.execute(
                    "SELECT count(*) FROM events WHERE status='processing'"
                ).fetchone()[0]
            assert stranded == 10
    finally:
        survivor.close()


def test_two_groups_each_see_everything(backend: Backend, topic: str) -> None:
    first = backend.consumer(topic, "g1")
    if not backend.fan_out:
        assert backend.name == "sqlite-seed"  # the article's table has no groups
        with pytest.raises(BackendError, match="no consumer groups"):
            backend.consumer(topic, "g2")
        first.close()
        return
    second = backend.consumer(topic, "g2")
    records = numbered(15, keys=2)
    produce(backend, topic, records)
    expected = sorted(p for _, p in records)
    try:
        assert sorted(payloads(drain(first, 15))) == expected
        assert sorted(payloads(drain(second, 15))) == expected
    finally:
        first.close()
        second.close()


def test_members_of_one_group_share_the_records(backend: Backend) -> None:
    topic = f"t-{uuid.uuid4().hex[:12]}"
    backend.create_topic(topic, 2)
    members = [backend.consumer(topic, "g1"), backend.consumer(topic, "g1")]
    records = numbered(30, keys=6)
    produce(backend, topic, records)
    seen: set[bytes] = set()
    deadline = time.monotonic() + 60
    try:
        while len(seen) < 30 and time.monotonic() < deadline:
            for member in members:
                seen.update(payloads(member.poll(30, 0.2)))
                member.commit()
    finally:
        for member in members:
            member.close()
    assert seen == {p for _, p in records}


@pytest.mark.parametrize("name", ["sqlite-queue", "sqlite-stream"])
def test_commit_after_records_moved_is_counted_not_raised(name: str, tmp_path: Path) -> None:
    spec = backend_spec(name, data_dir=tmp_path, overrides={"lease_s": 0.5})
    with open_backend(spec) as backend:
        backend.create_topic("moved", 1)
        slow = backend.consumer("moved", "g1")
        produce(backend, "moved", numbered(5))
        assert len(drain(slow, 5)) == 5
        time.sleep(1.0)  # the slow member's lease runs out
        fast = backend.consumer("moved", "g1")
        assert len(drain(fast, 5, timeout=30)) == 5  # delivered again, to the live member
        slow.commit()
        assert slow.lost_commits == 1
        fast.commit()
        assert fast.lost_commits == 0
        slow.close()
        fast.close()


def test_commit_survives_consumer_restart(backend: Backend, topic: str) -> None:
    first = backend.consumer(topic, "g1")
    produce(backend, topic, numbered(10))
    assert len(drain(first, 10)) == 10
    first.commit()
    first.close()
    if not backend.commits_survive_restart:
        assert backend.name == "memory"
        # No storage: with no live member, records have nowhere to go and say so.
        deliveries: list[Delivery] = []
        producer = backend.producer(topic)
        producer.send(b"k", b"lost", deliveries.append)
        producer.close()
        assert [d.ok for d in deliveries] == [False]
        return
    later = [(b"k", f"later:{n}".encode()) for n in range(5)]
    produce(backend, topic, later)
    second = backend.consumer(topic, "g1")
    try:
        got = drain(second, 5)
        got += quiet(second, 0.5)
        assert sorted(payloads(got)) == sorted(p for _, p in later)
    finally:
        second.close()


def test_large_and_empty_payloads(backend: Backend, topic: str) -> None:
    consumer = backend.consumer(topic, "g1")
    big = os.urandom(1024 * 1024)
    produce(backend, topic, [(b"big", big), (b"empty", b""), (None, b"x")])
    received = drain(consumer, 3)
    consumer.close()
    assert sorted(payloads(received), key=len) == [b"", b"x", big]


def test_clean_close_twice(backend: Backend, topic: str) -> None:
    consumer = backend.consumer(topic, "g1")
    producer = backend.producer(topic)
    producer.send(None, b"one")
    producer.flush(30)
    producer.close()
    producer.close()
    with pytest.raises(BackendError):
        producer.send(None, b"after close")
    consumer.close()
    consumer.close()
    with pytest.raises(BackendError):
        consumer.poll(1, 0.0)
    backend.close()
    backend.close()


def test_describe_records_versions_and_settings(backend: Backend) -> None:
    info = backend.describe()
    assert info["backend"] == backend.name
    assert info["profile"]
    assert info["settings"]
    if backend.name.startswith("sqlite"):
        assert info["sqlite_version"] == sqlite3.sqlite_version
        assert info["synchronous"] in ("OFF", "NORMAL", "FULL")
    if backend.name in KAFKA_BACKENDS + GATEWAY_BACKENDS:
        assert info["client"]
        assert info["settings"]["producer.acks"] == info["acks"] == "all"
        assert info["linger_ms"] == (5 if backend.name == "kafka-managed" else 1)
    if backend.name in GATEWAY_BACKENDS:
        assert "sqlitequeue serve" in info["system"]
        assert info["placement"].endswith("local disk")
        assert info["bootstrap_servers"].startswith("127.0.0.1:")
        assert Path(info["gateway_file"]).exists()


@pytest.mark.parametrize("name", GATEWAY_BACKENDS)
def test_gateway_backends_share_one_server_that_the_last_close_stops(
    name: str, tmp_path: Path
) -> None:
    spec = backend_spec(name, data_dir=tmp_path)
    first = open_backend(spec)
    second = open_backend(spec)
    servers = first.describe()["bootstrap_servers"]
    assert second.describe()["bootstrap_servers"] == servers
    assert type(first).server_pids(spec) == [first.describe()["gateway_pid"]]  # sampled by runs
    first.close()
    with socket.create_connection(("127.0.0.1", int(servers.rpartition(":")[2])), timeout=5):
        pass  # still served for the second user
    second.close()
    second.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(servers.rpartition(":")[2])), timeout=5)
    assert type(first).server_pids(spec) == []


def _open_then_hang(spec: BackendSpec, conn: Any) -> None:
    """Child process: open the backend (starting its server), report the address, hang."""
    conn.send(open_backend(spec).describe()["bootstrap_servers"])
    time.sleep(600)


def test_gateway_server_stops_once_every_user_process_died(tmp_path: Path) -> None:
    spec = backend_spec("gateway-confluent", data_dir=tmp_path)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_open_then_hang, args=(spec, child), daemon=True)
    process.start()
    try:
        assert parent.poll(60), "the child never opened the backend"
        port = int(parent.recv().rpartition(":")[2])
    finally:
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)  # never closes: the server notices on its own
        process.join(10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the server kept running after its only user was killed")
    assert not (tmp_path / "gateway.addr").exists()


# --------------------------------------------------------------------------- bad settings


def test_unknown_backend_lists_the_names() -> None:
    with pytest.raises(BackendError) as excinfo:
        open_backend(BackendSpec("rabbitmq"))
    for name in BACKENDS:
        assert name in str(excinfo.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("name", KAFKA_BACKENDS)
@pytest.mark.parametrize(
    "action",
    [lambda b: b.create_topic("t"), lambda b: b.producer("t"), lambda b: b.consumer("t", "g")],
    ids=["create_topic", "producer", "consumer"],
)
def test_unreachable_bootstrap_fails_fast(name: str, action: Callable[[Backend], Any]) -> None:
    servers = f"127.0.0.1:{_closed_port()}"
    spec = backend_spec(name, bootstrap_servers=servers, overrides={"connect.timeout.s": 2})
    started = time.monotonic()
    with pytest.raises(KafkaError, match="cannot reach Kafka") as excinfo:
        action(open_backend(spec))
    assert time.monotonic() - started < 30
    assert servers in str(excinfo.value)


@pytest.mark.parametrize("name", KAFKA_BACKENDS)
def test_missing_bootstrap_says_how_to_set_it(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    with pytest.raises(BackendError, match="KAFKA_BOOTSTRAP_SERVERS"):
        open_backend(BackendSpec(name))
