"""The gateway behind an emulated network: its client listener behind a Toxiproxy proxy."""

from __future__ import annotations

import re
from pathlib import Path

import psutil
import pytest

from sqlitequeue.bench.backends import BackendSpec, open_backend
from sqlitequeue.bench.backends.gateway import on_network
from sqlitequeue.bench.kafka.readiness import fetch_metadata
from sqlitequeue.bench.network.profiles import load_network
from tests.helpers import wait_gone
from tests.test_network import TEST_RTT_MS, _produce_round_trip_ms, adds_the_rtt


def test_gateway_round_trip_grows_by_the_profiles_rtt_and_nothing_is_left_running(
    tmp_path: Path,
) -> None:
    custom = load_network("custom", rtt_ms=TEST_RTT_MS)
    with open_backend(BackendSpec("gateway-confluent", data_dir=str(tmp_path / "near"))) as near:
        baseline = _produce_round_trip_ms(near.gateway.bootstrap)
    far_dir = tmp_path / "far"
    spec = on_network(BackendSpec("gateway-confluent", data_dir=str(far_dir)), custom)
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="the test body failed"), open_backend(spec) as far:
        server = psutil.Process(far.gateway.server_pid)
        pids = [server.pid, *(child.pid for child in server.children(recursive=True))]
        assert len(pids) == 2  # the server and its toxiproxy-server
        assert "over custom" in far.describe()["placement"]
        added = _produce_round_trip_ms(far.gateway.bootstrap) - baseline
        assert adds_the_rtt(added), added
        # bootstrapping at the server's own port: Metadata sends the client to the proxy
        found = re.search(r"on 127\.0\.0\.1:(\d+)", (far_dir / "gateway.log").read_text())
        assert found is not None
        proxy_port = int(far.gateway.bootstrap.rsplit(":", 1)[1])
        advertised = fetch_metadata("127.0.0.1", int(found.group(1))).brokers
        assert [broker.port for broker in advertised] == [proxy_port]
        raise RuntimeError("the test body failed")
    assert pids and wait_gone(pids)
    assert on_network(BackendSpec("sqlite-stream"), custom) == BackendSpec("sqlite-stream")


def test_a_gateway_backend_takes_its_labels_network_else_the_runs() -> None:
    from sqlitequeue.bench.backends.gateway import NETWORK_SETTING, PLACEMENT, placement
    from sqlitequeue.bench.compare import _gateway_network

    cross_az = load_network("cross-az")
    assert _gateway_network("gateway-confluent@cross-region", cross_az).name == "cross-region"
    assert _gateway_network("gateway-kafka-python", cross_az) == cross_az
    spec = on_network(BackendSpec("gateway-kafka-python"), cross_az)
    assert spec.settings[NETWORK_SETTING] == cross_az.to_dict()
    assert on_network(BackendSpec("gateway-confluent"), load_network(None)).settings == {}
    assert placement(cross_az).endswith("over cross-az") and placement(None) == PLACEMENT
