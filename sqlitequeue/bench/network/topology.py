"""Which Kafka hop gets which delay: brokers spread over availability zones, clients in one.

Nodes sit one per zone (``az-a``, ``az-b``, ``az-c``, then round again); clients sit in
``az-a``. Under an emulated profile every hop goes through its own Toxiproxy proxy:

* client -> broker: the profile's round trip, except that in a multi-zone cluster the broker
  in the clients' own zone is reached over ``same-az`` (unless the clients are out of the
  region: ``cross-region`` or ``custom``);
* broker -> broker (replication) and the KRaft controller links: ``cross-az``, as in a
  managed cluster that spans a region's zones.

``loopback`` adds no proxy at all. :func:`describe` records the hops with every result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlitequeue.bench.network.profiles import NetworkProfile, load_network

ZONES = ("az-a", "az-b", "az-c")
CLIENT_ZONE = ZONES[0]
#: Profiles whose clients sit outside the cluster's region: every broker is that far.
OUT_OF_REGION = ("cross-region", "custom")


@dataclass(frozen=True)
class Hop:
    """One emulated link: what it joins and the round trip it adds."""

    profile: str
    rtt_ms: int
    jitter_ms: int

    @classmethod
    def of(cls, profile: NetworkProfile) -> Hop:
        """The hop a profile describes."""
        return cls(profile.name, profile.rtt_ms, profile.jitter_ms)


def zone_of(node_id: int) -> str:
    """The zone of node ``node_id`` (1-based): one per zone, round robin."""
    return ZONES[(node_id - 1) % len(ZONES)]


def client_hop(network: NetworkProfile, node_id: int, brokers: int) -> Hop:
    """The hop from the clients to node ``node_id`` of a ``brokers``-node cluster."""
    local = brokers > 1 and zone_of(node_id) == CLIENT_ZONE
    if local and network.name not in OUT_OF_REGION:
        return Hop.of(load_network("same-az"))
    return Hop.of(network)


def cluster_hop() -> Hop:
    """The hop between two nodes (replication, controller quorum): across zones."""
    return Hop.of(load_network("cross-az"))


def describe(network: NetworkProfile, brokers: int) -> dict[str, Any]:
    """A JSON-ready account of where clients and nodes sit and what each hop adds."""
    nodes = range(1, brokers + 1)
    info: dict[str, Any] = {
        "profile": network.to_dict(),
        "clients": "this host" if not network.emulated else f"this host, as zone {CLIENT_ZONE}",
    }
    if network.emulated:
        info["nodes"] = {
            str(n): {"zone": zone_of(n), "client_hop": vars(client_hop(network, n, brokers))}
            for n in nodes
        }
        if brokers > 1:
            info["cluster_hop"] = vars(cluster_hop())
    return info
