"""Monthly cost projections: managed Kafka, self-managed Kafka, and one VM + SQLite + Litestream.

The model is deliberately small and fully visible. Every price and sizing constant comes from
:mod:`~sqlitequeue.bench.cost.parameters` (value, unit, source, date), which any caller can
override with a YAML file or a dict (:func:`load_parameters`). Inputs are a :class:`Traffic`:
peak and average rate, message size, retention, consumer fan-out, replication.

Rules of the model (see docs/cost-and-decision.md for the long form):

* Capacity (brokers, partitions, eCKUs) is sized for the **peak** rate; usage charges
  (bytes in/out, cross-AZ transfer, PUT requests) follow the **average** rate; storage holds
  ``average rate x message size x retention``.
* Kafka brokers = max(minimum brokers, peak ingress / per-broker ingress, partition replicas /
  max partitions per broker), rounded up to a multiple of the availability zones. Per-broker
  ingress is AWS's published heuristic (12.5 MiB/s per m5.large, headroom and replication
  included) or, when given, a measured single-broker rate x CPU headroom / replication factor.
  The minimum cluster is the shape ``bench compare`` measures as ``kafka-managed`` (one broker
  per AZ, RF 3, min.insync.replicas=2, acks=all): :func:`managed_shape_note` says so.
* Litestream uploads one object per sync interval that saw a write: with Poisson arrivals at
  the average rate ``r`` and interval ``s``, ``month / s x (1 - exp(-r s))`` PUTs, plus one per
  snapshot.

Returns are plain dataclasses; sweeps over many rates, break-even points and charts are in
:mod:`~sqlitequeue.bench.cost.projections`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlitequeue.bench.errors import BenchError

if TYPE_CHECKING:
    pass

from sqlitequeue.bench.cost.parameters import (
    ARCHITECTURES,
    GB,
    GIB,
    MIB,
    Parameters,
    load_parameters,
)

# ------------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class Traffic:
    """What a team pushes through the log.

    ``average_rate`` defaults to ``peak_rate``; ``replication_factor`` and ``partitions``
    default to the parameters' sizing rules. Raises BenchError naming the field when a value
    is out of range.
    """

    peak_rate: float
    average_rate: float | None = None
    message_bytes: int = 1024
    retention_hours: float = 168.0
    consumer_groups: int = 1
    replication_factor: int | None = None
    partitions: int | None = None

    def __post_init__(self) -> None:
        checks = {
            "peak_rate": self.peak_rate > 0,
            "average_rate": self.average_rate is None or 0 <= self.average_rate <= self.peak_rate,
            "message_bytes": self.message_bytes > 0,
            "retention_hours": self.retention_hours >= 0,
            "consumer_groups": self.consumer_groups >= 0,
            "replication_factor": self.replication_factor is None or self.replication_factor >= 1,
            "partitions": self.partitions is None or self.partitions >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise BenchError(f"traffic field {name!r} is out of range: {getattr(self, name)!r}")

    @property
    def average(self) -> float:
        """The average rate (msg/s)."""
        return self.peak_rate if self.average_rate is None else self.average_rate


# ------------------------------------------------------------------------------ outputs


@dataclass(frozen=True)
class LineItem:
    """One charge: ``monthly_usd`` = ``quantity`` x ``unit_price`` (quantity in ``unit``)."""

    name: str
    quantity: float
    unit: str
    unit_price: float
    monthly_usd: float
    category: str = "other"


@dataclass(frozen=True)
class KafkaSizing:
    """Broker and partition counts and the rule that decided each."""

    brokers: int
    partitions: int
    broker_rule: str
    per_broker_mib_s: float
    peak_ingress_mib_s: float
    by_rule: dict[str, int]


@dataclass
class Projection:
    """A monthly bill for one architecture, with its assumptions."""

    architecture: str
    items: list[LineItem]
    assumptions: list[str] = field(default_factory=list)
    feasible: bool = True
    sizing: KafkaSizing | None = None

    @property
    def label(self) -> str:
        """Human-readable architecture name."""
        return ARCHITECTURES[self.architecture]

    @property
    def total(self) -> float:
        """Total USD per month."""
        return sum(i.monthly_usd for i in self.items)


#: line-item categories, in chart order
CATEGORIES = ("compute", "storage", "data transfer", "requests")


def _item(name: str, quantity: float, unit: str, price: float) -> LineItem:
    lowered = name.lower()
    if "storage" in lowered or "disk" in lowered:
        category = "storage"
    elif "put" in lowered:
        category = "requests"
    elif "data" in lowered or "across" in lowered:
        category = "data transfer"
    else:
        category = "compute"
    return LineItem(name, quantity, unit, price, quantity * price, category)


# ------------------------------------------------------------------------------ quantities


def _month_s(params: Parameters) -> float:
    return float(params["hours_per_month"]) * 3600.0


def monthly_bytes_in(traffic: Traffic, params: Parameters) -> float:
    """Bytes produced per month at the average rate."""
    return traffic.average * traffic.message_bytes * _month_s(params)


def retained_bytes(traffic: Traffic) -> float:
    """Bytes held for the retention period at the average rate (one copy)."""
    return traffic.average * traffic.message_bytes * traffic.retention_hours * 3600.0


def _rf(traffic: Traffic, params: Parameters) -> int:
    return int(traffic.replication_factor or params["replication_factor"])


def kafka_sizing(
    traffic: Traffic, params: Parameters, measured_broker_mib_s: float | None = None
) -> KafkaSizing:
    """Return brokers and partitions for ``traffic`` under the published sizing rules.

    ``measured_broker_mib_s`` is a single broker's measured maximum ingress (at 100% of the
    machine it ran on); when given it replaces the published per-broker heuristic and is
    derated by the CPU headroom and the replication factor. Raises BenchError if it is not > 0.
    """
    rf = _rf(traffic, params)
    peak_mib_s = traffic.peak_rate * traffic.message_bytes / MIB
    partitions = max(
        int(params["kafka_min_partitions"]),
        math.ceil(peak_mib_s / float(params["partition_producer_mib_s"])),
        math.ceil(peak_mib_s / float(params["partition_consumer_mib_s"])),
        traffic.partitions or 0,
    )
    if measured_broker_mib_s is not None:
        if measured_broker_mib_s <= 0:
            raise BenchError(f"measured per-broker rate must be > 0, got {measured_broker_mib_s}")
        per_broker = measured_broker_mib_s * float(params["broker_cpu_headroom"]) / rf
        throughput_rule = "measured per-broker capacity"
    else:
        per_broker = float(params["broker_ingress_mib_s"])
        throughput_rule = "published ingress per broker"
    by_rule = {
        "minimum brokers": int(params["kafka_min_brokers"]),
        throughput_rule: math.ceil(peak_mib_s / per_broker),
        "partitions per broker": math.ceil(
            partitions * rf / int(params["max_partitions_per_broker"])
        ),
    }
    rule = max(by_rule, key=lambda k: by_rule[k])  # first wins on ties: the minimum
    azs = int(params["availability_zones"])
    brokers = math.ceil(by_rule[rule] / azs) * azs
    return KafkaSizing(brokers, partitions, rule, per_broker, peak_mib_s, by_rule)


def litestream_puts_per_month(average_rate: float, params: Parameters) -> float:
    """PUT requests per month: one per sync interval that saw a write, plus snapshots.

    With Poisson arrivals at ``average_rate`` an interval of ``s`` seconds sees a write with
    probability ``1 - exp(-rate * s)``.
    """
    interval = float(params["litestream_sync_interval_s"])
    if interval <= 0:
        raise BenchError("cost parameter 'litestream_sync_interval_s' must be > 0")
    syncs = _month_s(params) / interval * (1.0 - math.exp(-average_rate * interval))
    snapshots = float(params["hours_per_month"]) / float(params["litestream_snapshot_interval_h"])
    return syncs + snapshots


# ------------------------------------------------------------------------------ projections


def managed_shape_note(sizing: KafkaSizing, params: Parameters, rf: int) -> str:
    """Where this sizing meets the measured ``kafka-managed`` shape (a sentence for the notes)."""
    azs = int(params["availability_zones"])
    shape = (
        f"one broker per AZ across {azs} AZs, RF {rf}, min.insync.replicas=2, acks=all, "
        "clients in one AZ"
    )
    if sizing.brokers == 3 and azs == 3 and rf == 3:
        return f"this is the cluster `bench compare` measures as kafka-managed ({shape})"
    return (
        f"latency measured on the 3-broker kafka-managed shape ({shape}); "
        f"{sizing.brokers} brokers spread the same way"
    )


def _client_cross_az(traffic: Traffic, params: Parameters) -> LineItem:
    bytes_in = monthly_bytes_in(traffic, params)
    gb = bytes_in * (1 + traffic.consumer_groups) * float(params["client_cross_az_fraction"]) / GB
    return _item("client traffic across AZs", gb, "GB", 2 * float(params["cross_az_gb_each_way"]))


def project_msk(
    traffic: Traffic, params: Parameters, measured_broker_mib_s: float | None = None
) -> Projection:
    """Amazon MSK provisioned: brokers, broker storage (x RF), client cross-AZ transfer."""
    sizing = kafka_sizing(traffic, params, measured_broker_mib_s)
    instance = str(params["msk_broker_instance"])
    hours = float(params["hours_per_month"])
    rf = _rf(traffic, params)
    stored_gb = retained_bytes(traffic) * rf * float(params["kafka_disk_headroom"]) / GB
    items = [
        _item(
            f"{sizing.brokers} x {instance} brokers",
            sizing.brokers * hours,
            "broker-hours",
            float(params[f"msk_broker_hour.{instance}"]),
        ),
        _item("broker storage", stored_gb, "GB-month", float(params["msk_storage_gb_month"])),
        _client_cross_az(traffic, params),
    ]
    assumptions = [
        f"{sizing.brokers} brokers ({sizing.broker_rule} decides), RF {rf}, "
        f"{sizing.partitions} partitions",
        "replication traffic between MSK brokers is not charged",
        managed_shape_note(sizing, params, rf),
    ]
    return Projection("msk", items, assumptions, sizing=sizing)


def project_msk_serverless(
    traffic: Traffic, params: Parameters, measured_broker_mib_s: float | None = None
) -> Projection:
    """Amazon MSK Serverless: cluster-hours, partition-hours, GiB in/out, GiB-month stored."""
    sizing = kafka_sizing(traffic, params, measured_broker_mib_s)
    hours = float(params["hours_per_month"])
    bytes_in = monthly_bytes_in(traffic, params)
    items = [
        _item("cluster", hours, "cluster-hours", float(params["msk_serverless_cluster_hour"])),
        _item(
            f"{sizing.partitions} partitions",
            sizing.partitions * hours,
            "partition-hours",
            float(params["msk_serverless_partition_hour"]),
        ),
        _item("data in", bytes_in / GIB, "GiB", float(params["msk_serverless_in_gib"])),
        _item(
            "data out",
            bytes_in * traffic.consumer_groups / GIB,
            "GiB",
            float(params["msk_serverless_out_gib"]),
        ),
        _item(
            "storage",
            retained_bytes(traffic) / GIB,
            "GiB-month",
            float(params["msk_serverless_storage_gib_month"]),
        ),
    ]
    return Projection(
        "msk-serverless",
        items,
        [f"{sizing.partitions} partitions; storage billed once (not per replica)"],
        sizing=sizing,
    )


def confluent_eckus(traffic: Traffic, params: Parameters) -> int:
    """eCKUs needed for the peak ingress and egress (at least one)."""
    peak_mb_s = traffic.peak_rate * traffic.message_bytes / 1e6
    return max(
        1,
        math.ceil(peak_mb_s / float(params["confluent_ecku_ingress_mb_s"])),
        math.ceil(
            peak_mb_s * traffic.consumer_groups / float(params["confluent_ecku_egress_mb_s"])
        ),
    )


def project_confluent_basic(traffic: Traffic, params: Parameters) -> Projection:
    """Confluent Cloud Basic: eCKU-hours beyond the free ones, GB in/out, GB-month stored."""
    eckus = confluent_eckus(traffic, params)
    billable = max(0, eckus - int(params["confluent_basic_free_eckus"]))
    bytes_in = monthly_bytes_in(traffic, params)
    items = [
        _item(
            f"{eckus} eCKU ({billable} billable)",
            billable * float(params["hours_per_month"]),
            "eCKU-hours",
            float(params["confluent_basic_ecku_hour"]),
        ),
        _item("data in", bytes_in / GB, "GB", float(params["confluent_basic_in_gb"])),
        _item(
            "data out",
            bytes_in * traffic.consumer_groups / GB,
            "GB",
            float(params["confluent_basic_out_gb"]),
        ),
        _item(
            "storage",
            retained_bytes(traffic) / GB,
            "GB-month",
            float(params["confluent_basic_storage_gb_month"]),
        ),
    ]
    return Projection(
        "confluent-basic",
        items,
        [
            f"{eckus} eCKU sized for peak ingress/egress "
            "(eCKU capacity is an assumption: verify with Confluent)",
            "storage billed before replication",
        ],
    )


def project_kafka_vms(
    traffic: Traffic, params: Parameters, measured_broker_mib_s: float | None = None
) -> Projection:
    """Self-managed Kafka on VMs: broker VMs, gp3 disks (x RF), cross-AZ replication + clients."""
    sizing = kafka_sizing(traffic, params, measured_broker_mib_s)
    instance = str(params["kafka_vm_instance"])
    rf = _rf(traffic, params)
    stored_gb = retained_bytes(traffic) * rf * float(params["kafka_disk_headroom"]) / GB
    replicated_gb = monthly_bytes_in(traffic, params) * (rf - 1) / GB
    items = [
        _item(
            f"{sizing.brokers} x {instance} VMs",
            sizing.brokers * float(params["hours_per_month"]),
            "instance-hours",
            float(params[f"ec2_hour.{instance}"]),
        ),
        _item("gp3 disks", stored_gb, "GB-month", float(params["ebs_gp3_gb_month"])),
        _item(
            "replication across AZs",
            replicated_gb,
            "GB",
            2 * float(params["cross_az_gb_each_way"]),
        ),
        _client_cross_az(traffic, params),
    ]
    assumptions = [
        f"{sizing.brokers} brokers ({sizing.broker_rule} decides), RF {rf}, one broker per AZ "
        "slot; KRaft controllers run combined on the brokers",
        "no operator time counted",
        managed_shape_note(sizing, params, rf),
    ]
    return Projection("kafka-vms", items, assumptions, sizing=sizing)


def project_sqlite(
    traffic: Traffic,
    params: Parameters,
    store: str = "s3",
    sqlite_capacity: float | None = None,
) -> Projection:
    """One VM + SQLite + Litestream to ``store`` (s3, r2 or b2).

    ``sqlite_capacity`` is a measured maximum sustainable rate (msg/s); when the peak rate
    exceeds it the projection is marked infeasible (one file, one writer: it does not scale
    out). Raises BenchError for an unknown store.
    """
    if store not in ("s3", "r2", "b2"):
        raise BenchError(f"unknown object store {store!r}; choose s3, r2 or b2")
    vm_exists = bool(params["vm_exists"])
    instance = str(params["sqlite_vm_instance"])
    hours = float(params["hours_per_month"])
    retained_gb = retained_bytes(traffic) / GB
    replica_gb = retained_gb + (
        traffic.average
        * traffic.message_bytes
        * float(params["sqlite_write_amplification"])
        * float(params["litestream_replica_retention_h"])
        * 3600.0
        / GB
    )
    puts = litestream_puts_per_month(traffic.average, params)
    items = []
    if not vm_exists:
        disk_gb = max(float(params["sqlite_disk_min_gb"]), retained_gb)
        items += [
            _item(
                f"1 x {instance} VM", hours, "instance-hours", float(params[f"ec2_hour.{instance}"])
            ),
            _item("gp3 disk", disk_gb, "GB-month", float(params["ebs_gp3_gb_month"])),
        ]
    items += [
        _item(
            f"{store.upper()} PUT requests",
            puts / 1000,
            "1,000 requests",
            float(params[f"{store}_put_per_1000"]),
        ),
        _item(
            f"{store.upper()} storage",
            replica_gb,
            "GB-month",
            float(params[f"{store}_storage_gb_month"]),
        ),
    ]
    assumptions = [
        "the VM already exists and has the disk space (only replication is charged)"
        if vm_exists
        else f"a dedicated {instance} VM",
        f"Litestream syncs every {params['litestream_sync_interval_s']} s "
        f"({puts:,.0f} PUTs/month at {traffic.average:g} msg/s average); "
        "compaction uploads and restore GETs not counted",
        "producers and consumers in the VM's AZ: no transfer charges",
    ]
    feasible = sqlite_capacity is None or traffic.peak_rate <= sqlite_capacity
    if sqlite_capacity is not None:
        assumptions.append(f"measured SQLite capacity {sqlite_capacity:,.0f} msg/s")
    return Projection(f"sqlite-{store}", items, assumptions, feasible=feasible)


def project(
    traffic: Traffic,
    params: Parameters | None = None,
    *,
    architectures: Sequence[str] | None = None,
    measured_broker_mib_s: float | None = None,
    sqlite_capacity: float | None = None,
) -> list[Projection]:
    """Return one :class:`Projection` per architecture (default: all of :data:`ARCHITECTURES`).

    Raises BenchError for an unknown architecture name.
    """
    params = params or load_parameters()
    chosen = list(architectures or ARCHITECTURES)
    unknown = [a for a in chosen if a not in ARCHITECTURES]
    if unknown:
        raise BenchError(f"unknown architecture(s) {unknown}; choose from {list(ARCHITECTURES)}")
    out = []
    for arch in chosen:
        if arch == "msk":
            out.append(project_msk(traffic, params, measured_broker_mib_s))
        elif arch == "msk-serverless":
            out.append(project_msk_serverless(traffic, params, measured_broker_mib_s))
        elif arch == "confluent-basic":
            out.append(project_confluent_basic(traffic, params))
        elif arch == "kafka-vms":
            out.append(project_kafka_vms(traffic, params, measured_broker_mib_s))
        else:
            out.append(project_sqlite(traffic, params, arch.split("-", 1)[1], sqlite_capacity))
    return out


def common_assumptions(traffic: Traffic, params: Parameters) -> list[str]:
    """Assumptions that hold for every projection (inputs, prices, overrides)."""
    lines = [
        f"peak {traffic.peak_rate:g} msg/s, average {traffic.average:g} msg/s, "
        f"{traffic.message_bytes} B messages, {traffic.retention_hours:g} h retention, "
        f"{traffic.consumer_groups} consumer group(s)",
        f"USD, AWS us-east-1 on-demand list prices, {params['hours_per_month']} h/month; "
        "capacity sized for the peak, usage charged at the average",
        "no operator time, support plans, discounts or free tiers (except Confluent's free eCKU)",
    ]
    lines += [f"override: {p.name} = {p.value!r} ({p.source})" for p in params.overridden()]
    return lines
