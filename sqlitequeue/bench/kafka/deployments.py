"""The Kafka deployments a comparison needs, started on demand and stopped together.

Each Kafka backend runs against one deployment (:data:`DEPLOYMENT_OF`):

* ``single``   one broker, reached over the run's network profile (default loopback): the
  ``kafka`` and ``kafka-confluent`` backends;
* ``managed``  a managed-shaped cluster: 3 brokers one per emulated zone, RF 3,
  ``min.insync.replicas=2``, over the run's network profile, or ``cross-az`` when the run
  names none (a managed cluster always spans zones): the ``kafka-managed`` backend.

A backend label may name its own network: ``kafka-managed@cross-region`` runs the
``kafka-managed`` backend against a managed cluster reached over ``cross-region`` (its own
deployment, ``managed@cross-region``). A deployment that cannot start is reported once (how
to add Kafka) and its backends are skipped; the others still run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.network.profiles import NetworkProfile, load_network

#: Kafka backend -> the deployment it runs against.
DEPLOYMENT_OF = {"kafka": "single", "kafka-confluent": "single", "kafka-managed": "managed"}
#: deployment -> number of brokers
BROKERS = {"single": 1, "managed": 3}
#: the network of a managed-shaped cluster when the run names none
MANAGED_DEFAULT_NETWORK = "cross-az"

Printer = Callable[[str], None]


def split_label(label: str) -> tuple[str, str | None]:
    """``"kafka-managed@cross-az"`` -> ``("kafka-managed", "cross-az")``; else ``(label, None)``."""
    name, sep, network = label.partition("@")
    return name, (network if sep else None)


def network_for(deployment: str, network: NetworkProfile) -> NetworkProfile:
    """The network a deployment is reached over in a run on ``network``."""
    if deployment == "managed" and not network.emulated:
        return load_network(MANAGED_DEFAULT_NETWORK)
    return network


@dataclass
class KafkaDeployments:
    """The deployments of one run; ``given`` pre-started brokers are used and left running."""

    network: NetworkProfile
    printer: Printer
    given: dict[str, Any] = field(default_factory=dict)
    started: dict[str, Any] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    def deployment_of(self, label: str) -> tuple[str, NetworkProfile] | None:
        """The deployment key and network of backend ``label`` (None: not a Kafka backend).

        Raises BenchError for an unknown network after ``@``.
        """
        name, network_name = split_label(label)
        deployment = DEPLOYMENT_OF.get(name)
        if deployment is None:
            return None
        if network_name is None:
            return deployment, network_for(deployment, self.network)
        return f"{deployment}@{network_name}", load_network(network_name)

    def start_for(self, labels: Iterable[str]) -> list[str]:
        """Start every deployment the backends need; return notes on those that failed."""
        notes = []
        for label in labels:
            found = self.deployment_of(label)
            if found is None or self._known(found[0]):
                continue
            key, network = found
            try:
                self.started[key] = self._start(key, network)
            except (BenchError, OSError) as exc:
                self.unavailable[key] = str(exc)
                notes.append(self._unavailable_note(key, exc))
        return notes

    def broker_for(self, label: str) -> Any | None:
        """The started broker backend ``label`` runs against, or None."""
        found = self.deployment_of(label)
        if found is None:
            return None
        return self.given.get(found[0]) or self.started.get(found[0])

    def available(self, label: str) -> bool:
        """False for a Kafka backend whose deployment could not start."""
        found = self.deployment_of(label)
        return found is None or found[0] not in self.unavailable

    def describe(self) -> dict[str, Any]:
        """JSON-ready: each deployment's broker description (with its network) or why not."""
        info: dict[str, Any] = {}
        for key, broker in {**self.given, **self.started}.items():
            info[key] = broker.describe()
        for key, why in self.unavailable.items():
            info[key] = {"unavailable": why}
        return info

    def placement(self, label: str) -> str:
        """Where backend ``label``'s producers, consumers and storage sit, in one sentence."""
        found = self.deployment_of(label)
        if found is None:
            return "producers, consumers and the file on this host, local disk"
        key, network = found
        brokers = BROKERS[key.partition("@")[0]]
        where = "on this host's loopback" if not network.emulated else f"over {network.name}"
        text = f"producers and consumers on this host; {brokers} broker(s) {where}"
        if brokers > 1:
            text += ", one per emulated zone (RF 3, min.insync.replicas=2)"
        return text

    def stop(self) -> None:
        """Stop the deployments started here (given ones are left running)."""
        for broker in self.started.values():
            broker.stop()
        self.started.clear()

    def _known(self, key: str) -> bool:
        return key in self.given or key in self.started or key in self.unavailable

    def _start(self, key: str, network: NetworkProfile) -> Any:
        from sqlitequeue.bench.kafka.broker import KafkaBroker

        brokers = BROKERS[key.partition("@")[0]]
        self.printer(f"starting Kafka ({key}: {brokers} broker(s) over {network.name})…")
        started = time.monotonic()
        mode = "local" if network.emulated else None  # an emulated network is built locally
        broker = KafkaBroker.auto(mode, brokers=brokers, network=network)
        broker.start()
        self.printer(
            f"Kafka {broker.version or ''} ({key}) ready at {broker.bootstrap_servers} "
            f"({time.monotonic() - started:.0f} s)"
        )
        return broker

    def _unavailable_note(self, key: str, exc: Exception) -> str:
        self.printer(
            f"NOTE: Kafka is not available ({key}), so its backends are skipped.\n"
            f"  why: {exc}\n"
            "  to add Kafka: `make setup` (or `python -m sqlitequeue kafka install`) to fetch "
            "its jars for a local broker (needs Java 17+), or point at a cluster with "
            "KAFKA_BOOTSTRAP_SERVERS=host:port, then run the comparison again."
        )
        return f"Kafka ({key}) was not available; its backends were skipped"
