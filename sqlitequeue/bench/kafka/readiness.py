"""A dependency-free Kafka Metadata request, to tell whether a broker really serves clients.

An open TCP port is not a ready broker: a KRaft broker accepts connections before it has
joined the cluster. :func:`fetch_metadata` sends a real Metadata request (version 4: supported
by every broker from Kafka 1.0 to 4.x, which removed versions 0-3) and returns the brokers
and cluster id the broker reports.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

from sqlitequeue.bench.errors import KafkaError

_METADATA = 3
_METADATA_VERSION = 4
_CLIENT_ID = b"sqlitequeue-probe"


@dataclass(frozen=True)
class BrokerInfo:
    """One broker as listed in a Metadata response."""

    node_id: int
    host: str
    port: int


@dataclass(frozen=True)
class ClusterMetadata:
    """What a broker says about its cluster."""

    cluster_id: str | None
    controller_id: int
    brokers: tuple[BrokerInfo, ...]


def parse_bootstrap(bootstrap_servers: str) -> list[tuple[str, int]]:
    """Split ``"host:port,host:port"`` into pairs; raise KafkaError on a malformed entry."""
    pairs = []
    for entry in bootstrap_servers.split(","):
        entry = entry.strip()
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise KafkaError(
                f"bad bootstrap server {entry!r} in {bootstrap_servers!r}: expected host:port[,...]"
            )
        pairs.append((host.strip("[]"), int(port)))
    if not pairs:
        raise KafkaError(f"no bootstrap server in {bootstrap_servers!r}: expected host:port[,...]")
    return pairs


def fetch_metadata(host: str, port: int, timeout: float = 5.0) -> ClusterMetadata:
    """Send one Metadata request to ``host:port`` and return the answer.

    Raises OSError (refused, timed out, reset) or KafkaError (the peer does not speak Kafka).
    Never takes longer than about ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(_metadata_request(correlation_id=1))
        size = struct.unpack(">i", _read_exact(sock, 4, deadline))[0]
        if not 8 <= size <= 64 * 1024 * 1024:
            raise KafkaError(f"{host}:{port} answered with a non-Kafka frame (size {size})")
        return _parse_metadata(_read_exact(sock, size, deadline), host, port)


def wait_for_metadata(
    bootstrap_servers: str, timeout: float, min_brokers: int = 1
) -> ClusterMetadata:
    """Poll the bootstrap servers until one lists at least ``min_brokers`` brokers.

    Returns the metadata; raises KafkaError naming the last failure after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while True:
        for host, port in parse_bootstrap(bootstrap_servers):
            remaining = max(0.2, min(5.0, deadline - time.monotonic()))
            try:
                meta = fetch_metadata(host, port, remaining)
            except (OSError, KafkaError) as exc:
                last = f"{host}:{port}: {exc}"
                continue
            if len(meta.brokers) >= min_brokers:
                return meta
            last = f"{host}:{port} lists {len(meta.brokers)} of {min_brokers} brokers"
        if time.monotonic() >= deadline:
            raise KafkaError(
                f"no Kafka broker answered a Metadata request at {bootstrap_servers} within "
                f"{timeout:.0f} s (last: {last})"
            )
        time.sleep(0.1)


def _metadata_request(correlation_id: int) -> bytes:
    header = struct.pack(">hhih", _METADATA, _METADATA_VERSION, correlation_id, len(_CLIENT_ID))
    body = struct.pack(">ib", 0, 0)  # no topics (brokers only), allow_auto_topic_creation=false
    payload = header + _CLIENT_ID + body
    return struct.pack(">i", len(payload)) + payload


def _read_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ConnectionResetError("connection closed in the middle of a response")
        chunks += chunk
    return bytes(chunks)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def string(self) -> str | None:
        length = self.take(">h")
        if length < 0:
            return None
        text = self.data[self.pos : self.pos + length].decode("utf-8")
        self.pos += length
        return text


def _parse_metadata(data: bytes, host: str, port: int) -> ClusterMetadata:
    try:
        reader = _Reader(data)
        reader.take(">i")  # correlation id
        reader.take(">i")  # throttle_time_ms
        brokers = []
        for _ in range(reader.take(">i")):
            node_id = reader.take(">i")
            broker_host = reader.string() or ""
            broker_port = reader.take(">i")
            reader.string()  # rack
            brokers.append(BrokerInfo(node_id, broker_host, broker_port))
        cluster_id = reader.string()
        controller_id = reader.take(">i")
    except (struct.error, UnicodeDecodeError) as exc:
        raise KafkaError(f"{host}:{port} sent a response that is not Kafka metadata") from exc
    return ClusterMetadata(cluster_id, controller_id, tuple(sorted(brokers, key=_node_id)))


def _node_id(broker: BrokerInfo) -> int:
    return broker.node_id
