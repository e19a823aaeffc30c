"""The cost model: hand-computed bills, sizing thresholds, parameters and overrides, charts."""

from __future__ import annotations

import math

import pytest
import yaml

from sqlitequeue.bench import cost
from sqlitequeue.bench.cost import Traffic, load_parameters, project
from sqlitequeue.bench.errors import BenchError

#: 1 MB/s steady (1,000 msg/s of 1,000 B), 24 h retention, one consumer group
STEADY = Traffic(peak_rate=1000, average_rate=1000, message_bytes=1000, retention_hours=24)


def _total(arch: str, traffic: Traffic = STEADY, **overrides: object) -> float:
    params = load_parameters(overrides or None)
    return project(traffic, params, architectures=[arch])[0].total


def test_sqlite_on_a_dedicated_vm_with_s3() -> None:
    """1 MB/s steady, 24 h retention, Litestream to S3 every 1 s, dedicated t4g.small.

    VM:        730 h x $0.0168                                         = 12.264
    disk:      max(8, 86.4 GB retained) x $0.08                        =  6.912
    PUTs:      (2,628,000 s / 1 s x (1 - e^-1000) + 730/24 snapshots)
               = 2,628,030.4167 / 1,000 x $0.005                       = 13.14015
    S3 stored: 86.4 GB db + 1 MB/s x 2 (amplification) x 86,400 s
               = 259.2 GB x $0.023                                     =  5.9616
    total                                                              = 38.27775
    """
    assert _total("sqlite-s3") == pytest.approx(38.27775, abs=0.001)


def test_msk_provisioned() -> None:
    """Same traffic on MSK provisioned: the 3-broker minimum decides.

    brokers:  3 x 730 h x $0.21                                 = 459.90
    storage:  86.4 GB x RF 3 = 259.2 GB x $0.10                 =  25.92
    clients:  2,628 GB in + 2,628 GB out (1 group) = 5,256 GB
              x 0.6667 across AZs x ($0.01 + $0.01)             =  70.0835
    total                                                       = 555.9035
    """
    assert _total("msk") == pytest.approx(555.9035, abs=0.001)


def test_self_managed_kafka_on_vms() -> None:
    """Same traffic on 3 x m5.large VMs with RF 3 across 3 AZs.

    VMs:          3 x 730 h x $0.096                  = 210.24
    gp3:          259.2 GB x $0.08                    =  20.736
    replication:  2,628 GB x (RF-1 = 2) x $0.02       = 105.12
    clients:      as for MSK                          =  70.0835
    total                                             = 406.1795
    """
    assert _total("kafka-vms") == pytest.approx(406.1795, abs=0.001)


def test_msk_serverless() -> None:
    """Same traffic on MSK Serverless (GiB = 2^30 B).

    cluster:     730 h x $0.75                               = 547.50
    partitions:  3 x 730 h x $0.0015                         =   3.285
    in:          2.628e12 B / 2^30 = 2,447.5157 GiB x $0.10  = 244.7516
    out:         2,447.5157 GiB x $0.05                      = 122.3758
    storage:     86.4e9 / 2^30 = 80.4663 GiB x $0.10         =   8.0466
    total                                                    = 925.9590
    """
    assert _total("msk-serverless") == pytest.approx(925.9590, abs=0.001)


def test_confluent_basic() -> None:
    """Same traffic on Confluent Cloud Basic: 1 MB/s fits the free eCKU.

    eCKU:     1 needed, 1 free                     =   0
    in/out:   2,628 GB x $0.05 each                = 262.80
    storage:  86.4 GB x $0.08                      =   6.912
    total                                          = 269.712
    """
    assert _total("confluent-basic") == pytest.approx(269.712, abs=0.001)


def test_under_five_dollars_needs_an_existing_vm_and_cheap_puts() -> None:
    """The seed's "under $5": 100 msg/s of 1 KiB, 24 h retention, the VM already paid for.

    stored:  100 x 1,024 x 86,400 = 8.84736 GB db + 2 x 8.84736 replicated = 26.54208 GB
    B2:      PUTs free; 26.54208 GB x $0.00695                        = 0.18447   (< $5)
    S3 1 s:  2,628,030.4 PUTs -> $13.14015 + 26.54208 x $0.023        = 13.75062  (> $5)
    S3 10 s: 262,830.4 PUTs   -> $1.31415  + 0.61047                  = 1.92462   (< $5)
    On a dedicated t4g.small the VM alone is $12.26: never under $5.
    """
    seed = Traffic(peak_rate=300, average_rate=100, message_bytes=1024, retention_hours=24)
    assert _total("sqlite-b2", seed, vm_exists=True) == pytest.approx(0.18447, abs=1e-4)
    assert _total("sqlite-s3", seed, vm_exists=True) == pytest.approx(13.75062, abs=1e-4)
    slower = _total("sqlite-s3", seed, vm_exists=True, litestream_sync_interval_s=10.0)
    assert slower == pytest.approx(1.92462, abs=1e-4)
    assert _total("sqlite-b2", seed) > 12.26
    projection = project(seed, load_parameters({"vm_exists": True}), architectures=["sqlite-b2"])
    assert any("already exists" in a for a in projection[0].assumptions)


def test_puts_follow_the_write_probability_per_sync_interval() -> None:
    params = load_parameters()
    snapshots = 730 / 24
    assert cost.litestream_puts_per_month(0, params) == pytest.approx(snapshots)
    expected = 2_628_000 * (1 - math.exp(-0.01)) + snapshots
    assert cost.litestream_puts_per_month(0.01, params) == pytest.approx(expected)
    assert cost.litestream_puts_per_month(1e6, params) == pytest.approx(2_628_000 + snapshots)


@pytest.mark.parametrize(
    ("peak", "brokers", "rule"),
    [
        (38_400, 3, "minimum brokers"),  # 37.5 MiB/s = 3 x 12.5 exactly
        (38_401, 6, "published ingress per broker"),  # 4 needed, rounded up to 3 AZs
        (115_200, 9, "published ingress per broker"),  # 112.5 MiB/s = 9 x 12.5
    ],
)
def test_broker_count_follows_published_ingress_per_broker(
    peak: int, brokers: int, rule: str
) -> None:
    sizing = cost.kafka_sizing(Traffic(peak, message_bytes=1024), load_parameters())
    assert (sizing.brokers, sizing.broker_rule) == (brokers, rule)


@pytest.mark.parametrize(("partitions", "brokers"), [(1000, 3), (1001, 6)])
def test_broker_count_follows_partitions_per_broker(partitions: int, brokers: int) -> None:
    """1,000 partitions x RF 3 = 3,000 replicas fit 3 brokers at 1,000 each; 1,001 do not."""
    sizing = cost.kafka_sizing(Traffic(10, partitions=partitions), load_parameters())
    assert sizing.brokers == brokers
    assert sizing.partitions == partitions
    if brokers > 3:
        assert sizing.broker_rule == "partitions per broker"


def test_measured_broker_capacity_replaces_the_heuristic() -> None:
    """Measured 50 MiB/s at 100% CPU -> x 0.6 headroom / RF 3 = 10 MiB/s per broker.

    3 brokers carry 30 MiB/s = 30,720 msg/s of 1 KiB; one more message per second needs 6.
    """
    params = load_parameters()
    at = cost.kafka_sizing(Traffic(30_720, message_bytes=1024), params, measured_broker_mib_s=50)
    over = cost.kafka_sizing(Traffic(30_721, message_bytes=1024), params, measured_broker_mib_s=50)
    assert at.brokers == 3 and at.per_broker_mib_s == pytest.approx(10)
    assert (over.brokers, over.broker_rule) == (6, "measured per-broker capacity")
    with pytest.raises(BenchError, match="measured"):
        cost.kafka_sizing(Traffic(10), params, measured_broker_mib_s=0)


def test_partitions_follow_per_partition_throughput() -> None:
    """55 MiB/s peak / 10 MiB/s per producer partition -> 6 partitions (above the minimum 3)."""
    traffic = Traffic(55 * 1024, message_bytes=1024)
    assert cost.kafka_sizing(traffic, load_parameters()).partitions == 6


def test_confluent_ecku_count_follows_ingress_and_egress() -> None:
    params = load_parameters()
    assert cost.confluent_eckus(Traffic(25_000, message_bytes=1000), params) == 1
    assert cost.confluent_eckus(Traffic(25_001, message_bytes=1000), params) == 2
    fanout = Traffic(18_751, message_bytes=1000, consumer_groups=4)  # 75.004 MB/s out
    assert cost.confluent_eckus(fanout, params) == 2


def test_sqlite_over_measured_capacity_is_infeasible() -> None:
    params = load_parameters()
    (ok,) = project(Traffic(900), params, architectures=["sqlite-s3"], sqlite_capacity=1000)
    (over,) = project(Traffic(1100), params, architectures=["sqlite-s3"], sqlite_capacity=1000)
    assert ok.feasible and not over.feasible
    assert "over capacity" in cost.format_table([over])


def test_every_bundled_parameter_has_value_unit_source_and_date() -> None:
    params = cost.default_parameters()
    assert len(params.entries) > 30
    for p in params.entries.values():
        assert p.value is not None and p.unit and p.source and p.date, p.name


def test_overrides_from_a_dict_and_a_yaml_file(tmp_path) -> None:
    params = load_parameters({"s3_put_per_1000": 0.004})
    assert params["s3_put_per_1000"] == 0.004
    assert params.entry("s3_put_per_1000").source.startswith("user override")
    assert params.entry("s3_put_per_1000").date == "not dated"  # not today: same on any day
    path = tmp_path / "prices.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "ec2_hour.c7g.large": {"value": 0.0725, "source": "my quote", "date": "2026-11"},
                "sqlite_vm_instance": "c7g.large",
            }
        )
    )
    params = load_parameters(path)
    assert params.entry("ec2_hour.c7g.large").date == "2026-11"
    (p,) = project(Traffic(10), params, architectures=["sqlite-s3"])
    assert p.items[0].unit_price == 0.0725
    assert any("c7g.large" in line for line in cost.common_assumptions(Traffic(10), params))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"s3_put_per_100": 1.0}, "s3_put_per_100"),
        ({"hours_per_month": "many"}, "hours_per_month"),
        ({"vm_exists": 1}, "vm_exists"),
        ({"s3_storage_gb_month": {"unit": "x"}}, "s3_storage_gb_month"),
    ],
)
def test_bad_overrides_name_the_parameter(overrides: dict, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        load_parameters(overrides)


def test_bad_traffic_names_the_field() -> None:
    with pytest.raises(BenchError, match="average_rate"):
        Traffic(peak_rate=10, average_rate=20)
    with pytest.raises(BenchError, match="peak_rate"):
        Traffic(peak_rate=0)


def test_sweep_break_even_and_charts() -> None:
    seed = Traffic(peak_rate=300, average_rate=100, message_bytes=1024, retention_hours=24)
    rates = cost.default_rates(seed.peak_rate)
    df = cost.sweep(seed, rates, sqlite_capacity=20_000)
    assert set(df.architecture) == set(cost.ARCHITECTURES)
    assert not df[(df.architecture == "sqlite-s3") & (df.peak_rate > 20_000)].feasible.any()
    points = cost.break_even_points(df)
    confluent = points[points.architecture == "confluent-basic"].iloc[0]
    # Confluent's usage pricing is cheaper at a trickle and dearer at volume.
    assert confluent.cheaper_below == "confluent-basic" and confluent.cheaper_above == "sqlite-s3"
    lo = df[(df.architecture == "confluent-basic") & (df.peak_rate < confluent.peak_rate)]
    assert lo.total.max() < confluent.cost * 1.01
    fig = cost.plot_cost_vs_throughput(df, points, sqlite_capacity=20_000)
    assert len(fig.axes[0].get_lines()) >= len(cost.ARCHITECTURES)
    bars = cost.plot_breakdown(project(seed))
    assert len(bars.axes[0].get_yticklabels()) == len(cost.ARCHITECTURES)


def test_docs_list_every_parameter_and_profile_field() -> None:
    from pathlib import Path

    from sqlitequeue.bench.decide.team_profile import FIELDS

    doc = (Path(__file__).resolve().parent.parent / "docs" / "cost-and-decision.md").read_text()
    names = [*cost.default_parameters().entries, *FIELDS]
    missing = [n for n in names if f"`{n}`" not in doc]
    assert not missing, f"missing from docs/cost-and-decision.md: {missing}"
