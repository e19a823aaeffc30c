"""Monthly cost projections: managed Kafka, self-managed Kafka, and one VM + SQLite + Litestream.

The model is deliberately small and fully visible. Every price and sizing constant comes from
``cost_parameters.yaml`` (value, unit, source, date), which any caller can override with a
YAML file or a dict (:func:`load_parameters`). Inputs are a :class:`Traffic`: peak and
average rate, message size, retention, consumer fan-out, replication.

Rules of the model (see docs/cost-and-decision.md for the long form):

* Capacity (brokers, partitions, eCKUs) is sized for the **peak** rate; usage charges
  (bytes in/out, cross-AZ transfer, PUT requests) follow the **average** rate; storage holds
  ``average rate x message size x retention``.
* Kafka brokers = max(minimum brokers, peak ingress / per-broker ingress, partition replicas /
  max partitions per broker), rounded up to a multiple of the availability zones. Per-broker
  ingress is AWS's published heuristic (12.5 MiB/s per m5.large, headroom and replication
  included) or, when given, a measured single-broker rate x CPU headroom / replication factor.
* Litestream uploads one object per sync interval that saw a write: with Poisson arrivals at
  the average rate ``r`` and interval ``s``, ``month / s x (1 - exp(-r s))`` PUTs, plus one per
  snapshot.

Returns are plain dataclasses; :func:`sweep` and :func:`break_even_points` return pandas
DataFrames; chart functions take that data and return matplotlib figures (no file I/O).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlitequeue.errors import BenchError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

GB = 1e9
GIB = float(2**30)
MIB = float(2**20)

#: architecture id -> label, in display order
ARCHITECTURES: dict[str, str] = {
    "msk": "Amazon MSK provisioned",
    "msk-serverless": "Amazon MSK Serverless",
    "confluent-basic": "Confluent Cloud Basic",
    "kafka-vms": "Self-managed Kafka on VMs",
    "sqlite-s3": "1 VM + SQLite + Litestream to S3",
    "sqlite-r2": "1 VM + SQLite + Litestream to R2",
    "sqlite-b2": "1 VM + SQLite + Litestream to B2",
}
KAFKA_ARCHITECTURES = ("msk", "msk-serverless", "confluent-basic", "kafka-vms")
SQLITE_ARCHITECTURES = ("sqlite-s3", "sqlite-r2", "sqlite-b2")
#: parameter families whose members a user may add (e.g. ``ec2_hour.c7g.large``)
OPEN_FAMILIES = ("msk_broker_hour.", "ec2_hour.")


# ------------------------------------------------------------------------------ parameters


@dataclass(frozen=True)
class Parameter:
    """One price or sizing constant with where it came from."""

    name: str
    value: Any
    unit: str
    source: str
    date: str
    note: str = ""


@dataclass(frozen=True)
class Parameters:
    """All parameters by name.

    ``params["x"]`` returns the value; ``params.entry("x")`` the full record.
    """

    entries: Mapping[str, Parameter]

    def __getitem__(self, name: str) -> Any:
        return self.entry(name).value

    def entry(self, name: str) -> Parameter:
        """Return the full record for ``name``; raise BenchError naming it if unknown."""
        try:
            return self.entries[name]
        except KeyError:
            raise BenchError(
                f"cost parameter {name!r} is not defined; add it with --params "
                "(a YAML file of `name: value`)"
            ) from None

    def overridden(self) -> list[Parameter]:
        """Return the entries a user overrode."""
        return [p for p in self.entries.values() if p.source.startswith("user override")]

    def override(self, overrides: Mapping[str, Any], origin: str = "dict") -> Parameters:
        """Return a copy with ``overrides`` (``name: value`` or ``name: {value: ...}``) applied.

        Raises BenchError naming the parameter when a name is unknown (typo guard; new
        members of ``msk_broker_hour.*`` and ``ec2_hour.*`` are allowed), a record has no
        value, or a value's type does not match the default's.
        """
        entries = dict(self.entries)
        today = dt.date.today().isoformat()
        for name, spec in overrides.items():
            rec = dict(spec) if isinstance(spec, Mapping) else {"value": spec}
            if "value" not in rec:
                raise BenchError(f"cost parameter override {name!r} in {origin} has no 'value'")
            old = entries.get(name)
            if old is None and not name.startswith(OPEN_FAMILIES):
                raise BenchError(
                    f"unknown cost parameter {name!r} in {origin}; "
                    "see `sqlitequeue bench cost --list-params` for the names"
                )
            value = rec["value"]
            if old is not None and not _same_kind(old.value, value):
                raise BenchError(
                    f"cost parameter {name!r} in {origin} must be like {old.value!r}, got {value!r}"
                )
            entries[name] = Parameter(
                name,
                value,
                str(rec.get("unit", old.unit if old else "")),
                str(rec.get("source", f"user override ({origin})")),
                str(rec.get("date", today)),
                str(rec.get("note", "")),
            )
        return Parameters(entries)

    def table(self) -> list[dict[str, Any]]:
        """Return every parameter as a dict row (name, value, unit, source, date, note)."""
        return [vars(p).copy() for p in self.entries.values()]


def _read_yaml(text: str, where: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BenchError(f"{where} is not valid YAML: {exc}") from exc


def default_parameters() -> Parameters:
    """Return the bundled parameters (``sqlitequeue/bench/cost_parameters.yaml``)."""
    text = resources.files("sqlitequeue.bench").joinpath("cost_parameters.yaml").read_text()
    raw = _read_yaml(text, "cost_parameters.yaml")
    entries = {}
    for name, rec in raw.items():
        if name.startswith("_"):
            continue
        entries[name] = Parameter(
            name,
            rec["value"],
            str(rec["unit"]),
            str(rec["source"]),
            str(rec["date"]),
            str(rec.get("note", "")),
        )
    return Parameters(entries)


def load_parameters(
    overrides: Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> Parameters:
    """Return the bundled parameters with ``overrides`` applied.

    ``overrides`` is a dict or a YAML file path holding ``name: value`` or
    ``name: {value: ..., source: ..., date: ...}``. Raises BenchError as
    :meth:`Parameters.override` does, or when the file is missing or not a mapping.
    """
    params = default_parameters()
    if overrides is None:
        return params
    if isinstance(overrides, Mapping):
        return params.override(overrides)
    path = Path(overrides)
    if not path.exists():
        raise BenchError(f"parameters file {path} does not exist")
    loaded = _read_yaml(path.read_text(), str(path)) or {}
    if not isinstance(loaded, Mapping):
        raise BenchError(f"{path} must hold a mapping of parameter names to values")
    return params.override(loaded, origin=str(path))


def _same_kind(old: Any, new: Any) -> bool:
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, (int, float)):
        return isinstance(new, (int, float))
    return isinstance(new, type(old))


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


def format_table(projections: Iterable[Projection]) -> str:
    """Return a plain-text table: architecture, monthly total, biggest line items."""
    rows = [("architecture", "USD/month", "main charges")]
    for p in projections:
        top = sorted(p.items, key=lambda i: -i.monthly_usd)[:3]
        charges = "; ".join(f"{i.name} ${i.monthly_usd:,.2f}" for i in top)
        total = f"{p.total:,.2f}" + ("" if p.feasible else " (over capacity)")
        rows.append((p.label, total, charges))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]}" for r in rows)


# ------------------------------------------------------------------------------ sweeps


def sweep(
    traffic: Traffic,
    rates: Sequence[float],
    params: Parameters | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Project every architecture at each peak rate in ``rates``.

    The average keeps ``traffic``'s average/peak ratio. Returns a DataFrame with columns
    ``peak_rate, architecture, label, total, feasible``. ``kwargs`` go to :func:`project`.
    """
    import pandas as pd

    params = params or load_parameters()
    ratio = traffic.average / traffic.peak_rate
    rows = []
    for rate in rates:
        t = replace(traffic, peak_rate=float(rate), average_rate=float(rate) * ratio)
        for p in project(t, params, **kwargs):
            rows.append(
                {
                    "peak_rate": float(rate),
                    "architecture": p.architecture,
                    "label": p.label,
                    "total": p.total,
                    "feasible": p.feasible,
                }
            )
    return pd.DataFrame(rows)


def break_even_points(
    sweep_df: pd.DataFrame,
    reference: str = "sqlite-s3",
    against: Sequence[str] = KAFKA_ARCHITECTURES,
) -> pd.DataFrame:
    """Return the peak rates at which ``reference`` and each of ``against`` swap places.

    Crossings are interpolated between swept rates (log-linear). One row per crossing with
    columns ``architecture, label, peak_rate, cost, cheaper_below, cheaper_above``; an
    architecture that never crosses gets one row with ``peak_rate`` NaN and the one that is
    cheaper throughout in both ``cheaper_*`` columns. Infeasible ``reference`` points are
    ignored: over its measured capacity it is not an option at any price.
    """
    import pandas as pd

    ref = sweep_df[(sweep_df.architecture == reference) & sweep_df.feasible]
    ref = ref.set_index("peak_rate").total
    rows = []
    for arch in against:
        other = sweep_df[sweep_df.architecture == arch].set_index("peak_rate").total
        diff = (ref - other).dropna().sort_index()
        found = False
        for (r0, d0), (r1, d1) in zip(diff.items(), list(diff.items())[1:], strict=False):
            if (d0 < 0) == (d1 < 0):
                continue
            frac = d0 / (d0 - d1)
            rate = 10 ** (math.log10(r0) + frac * (math.log10(r1) - math.log10(r0)))
            cost = float(ref[r0] + frac * (ref[r1] - ref[r0]))
            below, above = (reference, arch) if d0 < 0 else (arch, reference)
            rows.append((arch, ARCHITECTURES[arch], rate, cost, below, above))
            found = True
        if not found and not diff.empty:
            cheaper = reference if diff.iloc[0] < 0 else arch
            rows.append((arch, ARCHITECTURES[arch], float("nan"), float("nan"), cheaper, cheaper))
    columns = ["architecture", "label", "peak_rate", "cost", "cheaper_below", "cheaper_above"]
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------------------ charts


def plot_cost_vs_throughput(
    sweep_df: pd.DataFrame,
    break_even: pd.DataFrame | None = None,
    sqlite_capacity: float | None = None,
) -> Figure:
    """Line chart of monthly cost against peak rate, one line per architecture (log-log).

    Infeasible points are left out; break-even rates and the measured SQLite capacity are
    drawn as vertical markers when given.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    for arch, group in sweep_df.groupby("architecture", sort=False):
        ok = group[group.feasible]
        style = "--" if str(arch).startswith("sqlite") else "-"
        ax.plot(ok.peak_rate, ok.total, style, marker=".", label=ARCHITECTURES[str(arch)])
    if sqlite_capacity:
        ax.axvline(sqlite_capacity, color="grey", linestyle=":", label="measured SQLite capacity")
    if break_even is not None:
        points = break_even.dropna(subset=["peak_rate"])
        ax.scatter(points.peak_rate, points.cost, color="black", zorder=5, label="break-even")
        for _, row in points.iterrows():
            ax.annotate(
                f"{row.peak_rate:,.0f}/s",
                (row.peak_rate, row.cost),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("peak rate (msg/s)")
    ax.set_ylabel("USD per month")
    ax.set_title("Monthly cost vs throughput")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_breakdown(projections: Sequence[Projection]) -> Figure:
    """Stacked horizontal bars: each architecture's monthly bill split by charge category.

    Categories are :data:`CATEGORIES` (compute, storage, data transfer, requests); the total
    is written at the end of each bar.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 0.5 * len(projections) + 1.8))
    ax = fig.subplots()
    labels = [p.label + ("" if p.feasible else " (over capacity)") for p in projections]
    left = [0.0] * len(projections)
    for category in CATEGORIES:
        widths = [
            sum(i.monthly_usd for i in p.items if i.category == category) for p in projections
        ]
        ax.barh(range(len(projections)), widths, left=left, label=category)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for y, p in enumerate(projections):
        ax.text(left[y], y, f" ${p.total:,.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(projections)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("USD per month")
    ax.set_xlim(0, max(left, default=1.0) * 1.2 or 1.0)
    ax.set_title("Cost breakdown")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def default_rates(peak_rate: float) -> list[float]:
    """A log-spaced sweep from 1 msg/s to well past ``peak_rate`` (at least 100k msg/s)."""
    top = max(100_000.0, peak_rate * 10)
    n = math.ceil(math.log10(top)) * 4
    return [round(10 ** (i / 4), 3) for i in range(n + 1)]
