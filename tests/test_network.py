"""Emulated networks: named profiles, a real Toxiproxy, and every Kafka hop behind a proxy."""

from __future__ import annotations

import socket
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.kafka.broker import LocalKafka
from sqlitequeue.bench.kafka.readiness import fetch_metadata
from sqlitequeue.bench.network import topology
from sqlitequeue.bench.network.profiles import load_network, network_names
from sqlitequeue.bench.network.toxiproxy import ToxiproxyServer
from tests.helpers import wait_gone

#: Round trip of the custom profile the timing tests use: large against scheduling noise.
TEST_RTT_MS = 20
#: The share of TEST_RTT_MS an added round trip must reach: the two medians it is the
#: difference of are taken at different moments, so scheduling noise can shave a little.
RTT_TOLERANCE = 0.8


def adds_the_rtt(added_ms: float) -> bool:
    """True when ``added_ms`` (a median round trip minus a baseline's) is TEST_RTT_MS, give
    or take the noise of two medians taken at different moments."""
    return RTT_TOLERANCE * TEST_RTT_MS <= added_ms < TEST_RTT_MS + 15


def test_bundled_profiles_load_with_their_sources() -> None:
    names = network_names()
    assert {"loopback", "same-az", "cross-az", "cross-region", "custom"} <= set(names)
    for name in names[:-1]:
        profile = load_network(name)
        assert profile.name == name and profile.source and profile.rtt_ms >= 0
    assert not load_network(None).emulated and load_network("cross-az").emulated


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("cross_az", {}, "did you mean 'cross-az'"),
        ("custom", {}, "needs --rtt-ms"),
        ("cross-az", {"rtt_ms": 3}, "go with --network custom"),
        ("custom", {"rtt_ms": -1}, "whole number of milliseconds"),
    ],
)
def test_bad_network_choices_say_what_to_do(
    name: str, options: dict[str, int], message: str
) -> None:
    with pytest.raises(BenchError, match=message):
        load_network(name, **options)


def test_a_multi_zone_cluster_reaches_the_clients_zone_over_same_az() -> None:
    cross_az = load_network("cross-az")
    assert topology.client_hop(cross_az, 1, brokers=3).profile == "same-az"
    assert topology.client_hop(cross_az, 2, brokers=3).profile == "cross-az"
    assert topology.client_hop(cross_az, 1, brokers=1).profile == "cross-az"
    assert topology.client_hop(load_network("cross-region"), 1, brokers=3).profile == "cross-region"


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(4096):
            conn.sendall(data)


def _median_round_trip_ms(port: int, count: int = 15) -> float:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for _ in range(count):
            start = time.perf_counter()
            sock.sendall(b"ping")
            sock.recv(16)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def test_a_proxy_adds_the_round_trip_and_its_server_stops(tmp_path: Path, echo_port: int) -> None:
    with ToxiproxyServer(tmp_path / "toxiproxy.log") as server:
        port = server.add_proxy("echo", echo_port, TEST_RTT_MS)
        pid = server.pid
        added = _median_round_trip_ms(port) - _median_round_trip_ms(echo_port)
    assert adds_the_rtt(added), added
    assert pid is not None and wait_gone([pid])


def _produce_round_trip_ms(bootstrap: str, count: int = 15) -> float:
    """Median time of one acknowledged produce (acks=1, no batching) by a plain client."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 0})
    topic = f"rtt-{uuid.uuid4().hex[:8]}"
    producer.produce(topic, b"warm-up")  # topic auto-creation and connections, not timed
    producer.flush(30)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        producer.produce(topic, b"x")
        producer.flush(30)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


@pytest.mark.kafka
def test_kafka_round_trip_grows_by_the_profiles_rtt_and_nothing_is_left_running(
    kafka_bootstrap: str,
) -> None:
    custom = load_network("custom", rtt_ms=TEST_RTT_MS)
    baseline = _produce_round_trip_ms(kafka_bootstrap)  # the session's loopback broker
    pids: list[int] = []
    with (
        pytest.raises(RuntimeError, match="the test body failed"),
        LocalKafka(network=custom) as kafka,
    ):
        assert kafka.proxy is not None and kafka.proxy.pid is not None
        pids = [*kafka.pids, kafka.proxy.pid]
        added = _produce_round_trip_ms(kafka.bootstrap_servers) - baseline
        assert adds_the_rtt(added), added
        # bootstrapping at the broker's own port: the client reconnects to the advertised proxy
        bypass = _produce_round_trip_ms(f"127.0.0.1:{kafka.nodes[0].port}") - baseline
        assert bypass >= RTT_TOLERANCE * TEST_RTT_MS, bypass
        raise RuntimeError("the test body failed")
    assert pids and wait_gone(pids)


@pytest.mark.kafka
@pytest.mark.slow
def test_clients_cannot_bypass_the_proxies_and_replication_is_proxied_too() -> None:
    with LocalKafka(3, network=load_network("cross-az")) as cluster:
        assert cluster.proxy is not None
        proxies = cluster.proxy.proxies()
        raw = {node.port for node in cluster.nodes}
        for node in cluster.nodes:  # what any client learns, asked on a broker's own port
            advertised = {b.port for b in fetch_metadata("127.0.0.1", node.port).brokers}
            assert advertised == {
                int(p.rsplit(":", 1)[1]) for p in cluster.bootstrap_servers.split(",")
            }
            assert not advertised & raw
        kinds = {name.split("-")[0] for name in proxies}
        assert kinds == {"client", "replication", "controller"}
        props = cluster.nodes[1].properties
        assert props["inter.broker.listener.name"] == "REPLICATION"
        assert all(
            f":{p}" not in props["controller.quorum.voters"]
            for p in (n.controller_port for n in cluster.nodes)
        )


def test_the_seed_claim_and_the_network_block_read_a_results_folder(tmp_path: Path) -> None:
    from sqlitequeue.bench.report.seed_claim import seed_claim_sentence
    from sqlitequeue.bench.results import RunWriter, load
    from tools import render_docs

    figures = {"sqlite-stream": (0.5, 3.0), "kafka-managed@cross-az": (45.0, 80.0)}
    with RunWriter(tmp_path, "reference-network", kind="bench") as w:
        w.metadata(
            backend_order=list(figures),
            placement={"kafka-managed@cross-az": "3 broker(s) over cross-az"},
            command=["sqlitequeue", "bench", "compare"],
            created="2026-01-01T00:00:00+00:00",
            finished="2026-01-01T00:05:00+00:00",
        )
        for backend, (p50, p99) in figures.items():
            for workload in ("seed-clickstream", "steady-1kb"):
                w.metric(backend, workload, "e2e_latency_ms.p50", p50)
                w.metric(backend, workload, "e2e_latency_ms.p99", p99)
                w.metric(backend, workload, "publish_latency_ms.p50", p50 / 2)
                w.metric(backend, workload, "publish_latency_ms.p99", p99 / 2)
    sentence = seed_claim_sentence(load(tmp_path / "reference-network"))
    assert "under 1 ms for SQLite holds (sqlite-stream: e2e p50 0.50 ms" in sentence
    assert "kafka-managed@cross-az measures e2e p50 45.0 ms" in sentence
    assert "the seed's 40-50 ms appears at the median" in sentence
    block = render_docs.reference_network(tmp_path)
    assert "| seed-clickstream | kafka-managed@cross-az | 22.5 ms | 40.0 ms | 45.0 ms |" in block
    assert "- `kafka-managed@cross-az`: 3 broker(s) over cross-az." in block
    assert block.endswith(f"**Seed claim.** {sentence}")
    assert "make reference" in render_docs.reference_network(tmp_path / "none")
