"""A real Apache Kafka for the workbench: an existing cluster, a local JVM, or a container.

:meth:`KafkaBroker.auto` picks one, in this order (or the one named by ``mode`` /
``$SQLITEQUEUE_KAFKA_MODE``)::

    external        KAFKA_BOOTSTRAP_SERVERS is set: use that cluster (start/stop do nothing)
    local           Java 17+ found: KRaft node(s) from Apache Kafka's Maven Central jars
    testcontainers  a Docker daemon answers: testcontainers' KafkaContainer in KRaft mode

and raises :class:`~sqlitequeue.bench.errors.KafkaError` saying how to get each when none fits.

Example::

    with KafkaBroker.auto() as kafka:
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers)

    with KafkaCluster(brokers=3) as cluster:   # RF=3, min.insync.replicas=2
        cluster.nodes[0].kill()                 # one broker crashes
        cluster.restart_node(0)                 # and comes back with its data
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from sqlitequeue.bench.errors import KafkaError
from sqlitequeue.bench.kafka import distribution
from sqlitequeue.bench.kafka.node import (
    HOST,
    KafkaNode,
    check_port_free,
    format_storage,
    free_port,
    new_cluster_id,
)
from sqlitequeue.bench.kafka.readiness import fetch_metadata, wait_for_metadata
from sqlitequeue.bench.network import topology
from sqlitequeue.bench.network.profiles import NetworkProfile, load_network
from sqlitequeue.bench.network.toxiproxy import ToxiproxyServer

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
MODE_ENV = "SQLITEQUEUE_KAFKA_MODE"
IMAGE_ENV = "SQLITEQUEUE_KAFKA_IMAGE"
MODES = ("auto", "external", "local", "testcontainers")
#: Optional ``settings`` for tests and failure experiments: the controller fences a dead or
#: restarted node after 2 s instead of Kafka's default 9 s (``broker.session.timeout.ms``), so a
#: restart after ``kill()`` is ready ~8 s sooner. Failover measurements should state which they use.
FAST_FAILURE_DETECTION = {
    "broker.session.timeout.ms": "2000",
    "broker.heartbeat.interval.ms": "500",
}
#: Default start-up budget: a warm start takes ~10 s, but CPU may be shared.
START_TIMEOUT = 120.0


class KafkaBroker(ABC):
    """A Kafka cluster the workbench can connect to; use as a context manager.

    ``start()`` returns only once a Metadata request succeeds; ``stop()`` releases everything
    the broker owns and is safe to call twice.
    """

    mode: ClassVar[str]

    @property
    @abstractmethod
    def bootstrap_servers(self) -> str:
        """``host:port[,host:port]`` for clients; raises KafkaError before ``start()``."""

    @property
    def version(self) -> str | None:
        """The Kafka version when known (local: the jars' version), else None."""
        return None

    @property
    def pids(self) -> list[int]:
        """Process ids of the broker JVMs on this machine (empty for external/containers)."""
        return []

    @property
    def pid(self) -> int | None:
        """The (first) broker JVM's process id, for CPU/memory sampling; None if not local."""
        pids = self.pids
        return pids[0] if pids else None

    @abstractmethod
    def start(self) -> KafkaBroker:
        """Start (or check) the broker; return self once it answers Metadata requests.

        Raises KafkaError with the reason (and the broker's log, for a local one).
        """

    @abstractmethod
    def stop(self) -> None:
        """Shut down cleanly (SIGKILL after a timeout) and release its files; idempotent."""

    def kill(self) -> None:
        """SIGKILL the broker (a crash, for failure experiments); data stays for ``restart()``."""
        raise KafkaError(f"a {self.mode} Kafka cannot be killed by sqlitequeue")

    def restart(self) -> None:
        """Start again after ``kill()`` or ``stop()``-less crash: same data, same ports."""
        raise KafkaError(f"a {self.mode} Kafka cannot be restarted by sqlitequeue")

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary to record with benchmark results."""
        return {"mode": self.mode, "version": self.version, "bootstrap": self.bootstrap_servers}

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @staticmethod
    def auto(mode: str | None = None, brokers: int = 1, **options: Any) -> KafkaBroker:
        """Return an (unstarted) broker of the chosen ``mode`` (see the module docstring).

        ``mode`` defaults to ``$SQLITEQUEUE_KAFKA_MODE`` or "auto"; ``brokers`` (1 or 3) and
        ``options`` go to :class:`LocalKafka`. Raises KafkaError for an unknown mode, or when
        no way to get Kafka is available (the message says how to get each).
        """
        return choose_broker(mode, brokers, **options)


# --------------------------------------------------------------------------- external


class ExternalKafka(KafkaBroker):
    """An existing cluster named by its bootstrap servers; never started or stopped by us."""

    mode = "external"

    def __init__(self, bootstrap_servers: str | None = None, connect_timeout: float = 10.0):
        servers = bootstrap_servers or os.environ.get(BOOTSTRAP_ENV, "")
        if not servers.strip():
            raise KafkaError(f"no bootstrap servers: set {BOOTSTRAP_ENV}=host:port[,host:port]")
        self._servers = servers.strip()
        self.connect_timeout = connect_timeout

    @property
    def bootstrap_servers(self) -> str:
        return self._servers

    def start(self) -> ExternalKafka:
        """Check the cluster answers within ``connect_timeout`` s; raise KafkaError if not."""
        try:
            wait_for_metadata(self._servers, self.connect_timeout)
        except KafkaError as exc:
            raise KafkaError(
                f"{exc}. Check {BOOTSTRAP_ENV}={self._servers!r}, or unset it to let sqlitequeue "
                "start a local broker"
            ) from exc
        return self

    def stop(self) -> None:
        """Nothing to do: the cluster is not ours."""


# --------------------------------------------------------------------------- local JVM


@dataclass(frozen=True)
class NodePorts:
    """Where one node listens, and where the others reach it (a proxy's port when emulated).

    ``replication``/``advertised_replication`` are None without a separate replication
    listener (no emulated network, or a single node).
    """

    client: int
    controller: int
    advertised_client: int
    replication: int | None = None
    advertised_replication: int | None = None


def broker_properties(
    node_id: int,
    ports: NodePorts,
    voters: str,
    kraft_dir: Path,
    brokers: int,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The ``server.properties`` of one combined broker+controller node bound to 127.0.0.1.

    Clients are told (advertised) the ``advertised_*`` ports, so behind an emulated network
    they reconnect through the proxies, never around them; replication then has a listener
    of its own (``REPLICATION``) whose advertised address is its proxy. Replication follows
    the cluster size: RF=1 for one node; RF=3 and min.insync.replicas=2 for three (the
    OpenMessaging Benchmark setting), for user topics and internal topics.
    """
    rf = min(3, brokers)
    isr = 2 if brokers >= 3 else 1
    listeners = {"PLAINTEXT": ports.client, "CONTROLLER": ports.controller}
    advertised = {"PLAINTEXT": ports.advertised_client}
    if ports.replication is not None and ports.advertised_replication is not None:
        listeners["REPLICATION"] = ports.replication
        advertised["REPLICATION"] = ports.advertised_replication
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "listeners": ",".join(f"{name}://{HOST}:{port}" for name, port in listeners.items()),
        "advertised.listeners": ",".join(f"{n}://{HOST}:{p}" for n, p in advertised.items()),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "REPLICATION" if "REPLICATION" in listeners else "PLAINTEXT",
        "listener.security.protocol.map": ",".join(f"{name}:PLAINTEXT" for name in listeners),
        "log.dirs": str(kraft_dir),
        "num.partitions": "1",
        "default.replication.factor": str(rf),
        "min.insync.replicas": str(isr),
        "offsets.topic.replication.factor": str(rf),
        "transaction.state.log.replication.factor": str(rf),
        "transaction.state.log.min.isr": str(isr),
        "share.coordinator.state.topic.replication.factor": str(rf),
        "share.coordinator.state.topic.min.isr": str(isr),
        # Not in the stock file: without it the first consumer group waits 3 s to rebalance.
        "group.initial.rebalance.delay.ms": "0",
    }
    props.update(overrides or {})
    return props


_DIRS_TO_REMOVE: set[Path] = set()


@atexit.register
def _remove_temp_dirs() -> None:
    for path in list(_DIRS_TO_REMOVE):
        shutil.rmtree(path, ignore_errors=True)


class LocalKafka(KafkaBroker):
    """KRaft node(s) on this machine's Java, from Apache Kafka's jars (downloaded on first use).

    Every node is broker and controller; ``brokers=3`` makes a 3-voter quorum with RF=3 and
    min.insync.replicas=2, each node killable on its own (``nodes[i].kill()``).

    ``port`` fixes the first node's client port (default: free ports); ``heap`` is the JVM heap
    (default 1G for one node, 512M each for three: ample for the workbench on 24 GiB);
    ``settings`` override broker properties; ``data_dir`` keeps data somewhere chosen (else a
    temp dir removed by ``stop()``); ``detached`` leaves the JVMs running after Python exits
    (used by ``sqlitequeue kafka start``). ``network`` (default loopback) puts every hop
    behind a Toxiproxy proxy with that profile's delays (see
    :mod:`sqlitequeue.bench.network.topology`); the proxy server starts and stops with the
    nodes.

    Owned JVMs die with the thread that started them (``PR_SET_PDEATHSIG``): start the broker
    from a thread that outlives it, such as the main thread.
    """

    mode = "local"

    def __init__(
        self,
        brokers: int = 1,
        *,
        port: int | None = None,
        heap: str | None = None,
        settings: Mapping[str, str] | None = None,
        data_dir: str | Path | None = None,
        version: str = distribution.KAFKA_VERSION,
        start_timeout: float = START_TIMEOUT,
        detached: bool = False,
        network: NetworkProfile | None = None,
    ) -> None:
        if brokers < 1:
            raise KafkaError(f"brokers must be >= 1, got {brokers}")
        self.brokers = brokers
        self.port = port
        self.heap = heap or ("1G" if brokers == 1 else "512M")
        self.settings = dict(settings or {})
        self._version = version
        self.start_timeout = start_timeout
        self.detached = detached
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._owns_data_dir = data_dir is None
        self.nodes: list[KafkaNode] = []
        self.network = network or load_network(None)
        self.proxy: ToxiproxyServer | None = None
        self._client_ports: dict[int, int] = {}

    # ------------------------------------------------------------------ properties

    @property
    def bootstrap_servers(self) -> str:
        if not self.nodes:
            raise KafkaError("the local Kafka is not started: call start() first")
        return ",".join(f"{HOST}:{self._client_ports[node.node_id]}" for node in self.nodes)

    @property
    def version(self) -> str:
        return self._version

    @property
    def data_dir(self) -> Path | None:
        """The directory holding every node's data and logs (None before ``start()``)."""
        return self._data_dir

    @property
    def pids(self) -> list[int]:
        return [pid for pid in (node.pid for node in self.nodes) if pid is not None]

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(brokers=self.brokers, heap=self.heap, settings=self.settings)
        info["network"] = topology.describe(self.network, self.brokers)
        if self.nodes:  # the effective broker configuration, minus per-node addresses and paths
            per_node = {"node.id", "listeners", "advertised.listeners", "log.dirs"}
            per_node.add("controller.quorum.voters")
            props = self.nodes[0].properties
            info["broker_properties"] = {k: v for k, v in props.items() if k not in per_node}
        return info

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalKafka:
        """Download jars if needed, format storage, launch the JVM(s), wait until ready.

        Raises KafkaError (Java missing/too old, mvn missing, port in use, or the broker's log
        tail when it does not come up within ``start_timeout`` s); nothing is left running.
        """
        if self.nodes and all(node.running for node in self.nodes):
            return self
        dist = distribution.ensure(self._version)
        if not self.nodes:
            self.nodes = self._make_nodes(dist)
        try:
            for node in self.nodes:
                if not node.running:  # fail fast, before the StorageTool JVM runs
                    check_port_free(node.port)
                    check_port_free(node.controller_port)
            format_storage(self.nodes)
            for node in self.nodes:
                node.launch(detached=self.detached)
            self._wait_ready(self.nodes)
        except BaseException:
            self.kill()
            self._stop_proxy()
            raise
        return self

    def restart(self) -> None:
        """Stop the nodes still running (cleanly) and start all again: same data, same ports."""
        if not self.nodes:
            raise KafkaError("restart() needs a broker that was started")
        self._stop_nodes()
        self.start()

    def restart_node(self, index: int) -> None:
        """(Re)start ``nodes[index]`` (e.g. after ``nodes[index].kill()``); wait until ready."""
        node = self.nodes[index]
        if node.running:
            node.stop()
        node.launch(detached=self.detached)
        self._wait_ready([node])

    def kill(self) -> None:
        """SIGKILL every node (no clean shutdown); the data stays for ``restart()``."""
        for node in self.nodes:
            node.kill()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every node cleanly (SIGKILL after ``timeout`` s) and remove a temp data dir."""
        self._stop_nodes(timeout)
        self._stop_proxy()
        if self._owns_data_dir and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            _DIRS_TO_REMOVE.discard(self._data_dir)
            self._data_dir = None
            self.nodes = []

    def _stop_nodes(self, timeout: float = 30.0) -> None:
        for node in self.nodes:  # all at once: a lone survivor would wait for a lost quorum
            node.signal(signal.SIGTERM)
        for node in self.nodes:
            node.wait(timeout)

    def _stop_proxy(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None

    # ------------------------------------------------------------------ helpers

    def _make_nodes(self, dist: distribution.KafkaDist) -> list[KafkaNode]:
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="sqlitequeue-kafka-"))
            if not self.detached:
                _DIRS_TO_REMOVE.add(self._data_dir)
        ids = range(1, self.brokers + 1)
        ports = {i: self._node_ports(i) for i in ids}
        voters = ",".join(f"{i}@{HOST}:{self._controller_address(i, ports[i])}" for i in ids)
        cluster_id = new_cluster_id()
        nodes = []
        for i in ids:
            node_dir = self._data_dir / f"node-{i}"
            props = broker_properties(
                i, ports[i], voters, node_dir / "kraft", self.brokers, self.settings
            )
            nodes.append(
                KafkaNode(
                    dist,
                    node_dir,
                    i,
                    ports[i].client,
                    ports[i].controller,
                    props,
                    cluster_id,
                    self.heap,
                )
            )
        self._client_ports = {i: ports[i].advertised_client for i in ids}
        return nodes

    def _node_ports(self, node_id: int) -> NodePorts:
        """Pick node ``node_id``'s ports; put proxies in front of them on an emulated network."""
        fixed = self.port if node_id == 1 and self.port else None
        if not self.network.emulated:
            client = fixed or free_port()
            return NodePorts(client, free_port(), client)
        proxy = self._proxy_server()
        client, controller = free_port(), free_port()
        hop = topology.client_hop(self.network, node_id, self.brokers)
        advertised = proxy.add_proxy(
            f"client-{node_id}", client, hop.rtt_ms, hop.jitter_ms, listen_port=fixed or 0
        )
        if self.brokers == 1:
            return NodePorts(client, controller, advertised)
        replication, between = free_port(), topology.cluster_hop()
        advertised_replication = proxy.add_proxy(
            f"replication-{node_id}", replication, between.rtt_ms, between.jitter_ms
        )
        return NodePorts(client, controller, advertised, replication, advertised_replication)

    def _controller_address(self, node_id: int, ports: NodePorts) -> int:
        """The port the quorum reaches a controller on: a cross-zone proxy in a cluster."""
        if not self.network.emulated or self.brokers == 1:
            return ports.controller
        between = topology.cluster_hop()
        return self._proxy_server().add_proxy(
            f"controller-{node_id}", ports.controller, between.rtt_ms, between.jitter_ms
        )

    def _proxy_server(self) -> ToxiproxyServer:
        if self.proxy is None:
            assert self._data_dir is not None
            log = self._data_dir / "toxiproxy.log"
            self.proxy = ToxiproxyServer(log, detached=self.detached).start()
        return self.proxy

    def _wait_ready(self, nodes: list[KafkaNode]) -> None:
        """Wait until each of ``nodes`` answers Metadata listing every live node of the cluster."""
        deadline = time.monotonic() + self.start_timeout
        pending = list(nodes)
        last = ""
        while pending:
            node = pending[0]
            code = node.exit_code()
            if code is not None or not node.running:
                raise KafkaError(self._failure(f"node {node.node_id} exited (status {code})"))
            expected = sum(1 for n in self.nodes if n.running)
            try:
                meta = fetch_metadata(HOST, node.port, timeout=2.0)
                if len(meta.brokers) >= expected:
                    pending.pop(0)
                    continue
                last = f"node {node.node_id} sees {len(meta.brokers)} of {expected} brokers"
            except (OSError, KafkaError) as exc:
                last = f"node {node.node_id}: {exc}"
            if time.monotonic() > deadline:
                raise KafkaError(
                    self._failure(f"not ready within {self.start_timeout:.0f} s ({last})")
                )
            time.sleep(0.1)

    def _failure(self, what: str) -> str:
        logs = "\n".join(node.log_tail() for node in self.nodes)
        return f"the local Kafka {self._version} did not start: {what}\n{logs}"


class KafkaCluster(LocalKafka):
    """Three local KRaft nodes (RF=3, min.insync.replicas=2) for failover experiments."""

    def __init__(self, brokers: int = 3, **options: Any) -> None:
        super().__init__(brokers, **options)


# --------------------------------------------------------------------------- testcontainers


class ContainerKafka(KafkaBroker):
    """testcontainers' KafkaContainer in KRaft mode (needs a reachable Docker daemon).

    The image defaults to testcontainers' own (a Confluent cp-kafka image); set
    ``$SQLITEQUEUE_KAFKA_IMAGE`` to choose another cp-kafka tag (>= 7.0.0 for KRaft).
    """

    mode = "testcontainers"

    def __init__(self, image: str | None = None, start_timeout: float = START_TIMEOUT) -> None:
        self.start_timeout = start_timeout
        self._bootstrap: str | None = None
        self._container = _make_container(image or os.environ.get(IMAGE_ENV))

    @property
    def bootstrap_servers(self) -> str:
        if self._bootstrap is None:
            raise KafkaError("the Kafka container is not started: call start() first")
        return self._bootstrap

    @property
    def version(self) -> str | None:
        return str(self._container.image)

    def start(self) -> ContainerKafka:
        """Start the container and wait for its broker; raise KafkaError on failure."""
        if self._bootstrap is not None:
            return self
        try:
            self._container.start(timeout=int(self.start_timeout))
            self._bootstrap = self._container.get_bootstrap_server()
            wait_for_metadata(self._bootstrap, self.start_timeout)
        except Exception as exc:
            with contextlib.suppress(Exception):
                self._container.stop()
            raise KafkaError(f"the Kafka container did not start: {exc}") from exc
        return self

    def stop(self) -> None:
        """Stop and remove the container; idempotent."""
        if self._bootstrap is not None:
            self._bootstrap = None
            with contextlib.suppress(Exception):
                self._container.stop()

    def kill(self) -> None:
        """SIGKILL the broker inside the container (``restart()`` is not supported)."""
        with contextlib.suppress(Exception):
            self._container.get_wrapped_container().kill()


def _make_container(image: str | None) -> Any:
    try:
        try:
            from testcontainers.community.kafka import KafkaContainer
        except ImportError:
            from testcontainers.kafka import KafkaContainer
    except ImportError as exc:
        raise KafkaError(
            "testcontainers is not installed: pip install 'sqlitequeue[docker]'"
        ) from exc
    try:
        container = KafkaContainer(image) if image else KafkaContainer()
        return container.with_kraft()
    except Exception as exc:  # docker.errors.DockerException when no daemon answers
        raise KafkaError(f"Docker is not reachable for testcontainers: {exc}") from exc


def docker_problem() -> str | None:
    """Return None when a Docker daemon answers a ping within 3 s, else the reason."""
    try:
        import docker
    except ImportError:
        return "the docker package is missing (pip install 'sqlitequeue[docker]')"
    try:
        client = docker.from_env(timeout=3)
        client.ping()
        client.close()
    except Exception as exc:
        return f"no Docker daemon answers ({type(exc).__name__}: {exc})"
    return None


# --------------------------------------------------------------------------- choice


def local_problem(version: str = distribution.KAFKA_VERSION) -> str | None:
    """Return None when a local broker can run (Java 17+, jars cached or mvn found), else why."""
    try:
        distribution.require_java()
    except KafkaError as exc:
        return str(exc)
    if not distribution.is_installed(version) and shutil.which("mvn") is None:
        return "Kafka's jars are not cached and Maven (`mvn`) is not on PATH to download them"
    return None


def choose_broker(mode: str | None = None, brokers: int = 1, **options: Any) -> KafkaBroker:
    """Implementation of :meth:`KafkaBroker.auto`."""
    mode = (mode or os.environ.get(MODE_ENV) or "auto").strip().lower()
    if mode not in MODES:
        raise KafkaError(f"unknown Kafka mode {mode!r} (from {MODE_ENV}?): use one of {MODES}")
    connect_timeout = float(options.pop("connect_timeout", 10.0))  # external mode only
    network = options.get("network")
    if mode == "external" or (mode == "auto" and os.environ.get(BOOTSTRAP_ENV, "").strip()):
        if network is not None and network.emulated:
            raise KafkaError(
                f"the {network.name} network is emulated in front of a local broker, not an "
                f"external cluster: unset {BOOTSTRAP_ENV} (or {MODE_ENV}=local), or use the "
                "loopback network"
            )
        return ExternalKafka(connect_timeout=connect_timeout)
    if mode == "local" or (network is not None and network.emulated):
        return _local(brokers, **options)  # an emulated network is built around local nodes
    if mode == "testcontainers":
        return _container_or_error(brokers)
    why_local = local_problem(options.get("version", distribution.KAFKA_VERSION))
    if why_local is None:
        return _local(brokers, **options)
    why_docker = docker_problem()
    if why_docker is None and brokers == 1:
        return ContainerKafka()
    raise KafkaError(
        "no way to get a Kafka broker here:\n"
        f"  external: {BOOTSTRAP_ENV} is not set (set it to an existing cluster's host:port)\n"
        f"  local: {why_local}\n"
        f"  testcontainers: {why_docker or 'only one broker is supported in a container'}"
    )


def _local(brokers: int, **options: Any) -> LocalKafka:
    return KafkaCluster(brokers, **options) if brokers > 1 else LocalKafka(brokers, **options)


def _container_or_error(brokers: int) -> ContainerKafka:
    if brokers != 1:
        raise KafkaError("testcontainers mode runs one broker; use mode='local' for brokers=3")
    return ContainerKafka()
