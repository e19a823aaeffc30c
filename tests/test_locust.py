"""Locust load tests (loadtests/): real headless runs in subprocesses, the CSV converter.

Locust is never imported in this process (``import locust`` monkey-patches it with gevent);
every run goes through :mod:`sqlitequeue.bench.locust.run`, which starts a subprocess.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.locust import run as locust_run
from sqlitequeue.bench.locust.convert import import_runs, percentile
from sqlitequeue.bench.report import workloads as workload_report
from sqlitequeue.bench.report.page import write_report as write_page
from sqlitequeue.bench.results import load

RUN_SECONDS = 10
#: Kafka runs last longer: kafka-python's consumer-group join alone can take several seconds
#: on a busy 2-core machine, and the run must still see consumed records after it.
KAFKA_RUN_SECONDS = 20
NAMES = ("publish", "consume", "end-to-end")


def _stats(prefix: Path) -> dict[str, dict[str, str]]:
    with open(f"{prefix}_stats.csv", newline="") as fh:
        return {row["Name"]: row for row in csv.DictReader(fh)}


def _failures(prefix: Path) -> list[dict[str, str]]:
    with open(f"{prefix}_failures.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _headless(backend: str, tmp_path: Path, env: dict[str, str] | None = None) -> Path:
    prefix = tmp_path / "csv" / backend
    done = locust_run.run_locust(
        backend,
        "steady-1kb",
        run_time=KAFKA_RUN_SECONDS if backend.startswith("kafka") else RUN_SECONDS,
        csv_prefix=prefix,
        env=env or dict(os.environ),
        timeout=120,
    )
    assert done.returncode == 0, done.output[-4000:]
    stats = _stats(prefix)
    for name in NAMES:
        assert name in stats, f"no {name} requests:\n{done.output[-3000:]}"
        assert stats[name]["Type"] == backend
        assert int(stats[name]["Request Count"]) > 0
        assert int(stats[name]["Failure Count"]) == 0
    assert _failures(prefix) == []
    # every confirmed publish after the warm-up was received and reported
    assert int(stats["end-to-end"]["Request Count"]) >= 0.9 * int(stats["publish"]["Request Count"])
    return prefix


def _converted_loads_in_report(prefixes: list[Path], out: Path) -> None:
    folder = import_runs(prefixes, out=out, run_id="locust-test")
    res = load(folder)
    assert res.meta["kind"] == "locust"
    table = workload_report.summary_table(res)
    backends = {p.name for p in prefixes}
    assert set(table.backend) == backends
    for backend in backends:
        assert (res.scalar(backend, "sent") or 0) > 0
        assert res.scalar(backend, "errors") == 0
        assert (res.scalar(backend, "e2e_latency_ms.p99") or 0) > 0
        assert res.scalar(backend, "target_rate") == 1000
        assert not res.series("publish_rate").empty
    assert {"publish", "e2e"} <= set(res.tables["latency_hist"].kind)
    assert set(res.tables["locust_stats"].Name) >= set(NAMES)
    assert "steady-1kb" in workload_report.terminal_summary(folder)


def test_sqlite_headless_runs_convert_into_a_report(tmp_path: Path) -> None:
    """10-second runs against both SQLite backends; their CSVs load in the report."""
    prefixes = [_headless(b, tmp_path) for b in ("sqlite-queue", "sqlite-stream")]
    _converted_loads_in_report(prefixes, tmp_path / "results")
    index = write_page(tmp_path / "results" / "locust-test")
    assert Path(index).exists()


def test_gateway_headless_runs_convert_into_a_report(tmp_path: Path) -> None:
    """Both Kafka clients against `sqlitequeue serve`, which each run starts on its own file."""
    prefixes = [_headless(b, tmp_path) for b in ("gateway-confluent", "gateway-kafka-python")]
    _converted_loads_in_report(prefixes, tmp_path / "results")


@pytest.mark.kafka
def test_kafka_headless_runs_convert_into_a_report(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Runs of KAFKA_RUN_SECONDS against the session's Kafka with both clients."""
    env = {**os.environ, locust_run.BOOTSTRAP_ENV: kafka_bootstrap}
    prefixes = [_headless(b, tmp_path, env) for b in ("kafka-confluent", "kafka")]
    _converted_loads_in_report(prefixes, tmp_path / "results")


def _locust(
    args: list[str], tmp_path: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != locust_run.BOOTSTRAP_ENV}
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        check=False,
    )


def test_bad_workload_stops_before_any_user_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nmessageSize: 5\nproducerRate: 100\n")
    cmd = locust_run.locust_command(
        "sqlite-queue", "steady-1kb", run_time=RUN_SECONDS, csv_prefix=tmp_path / "bad"
    )
    cmd[cmd.index("--workload") + 1] = str(bad)
    done = _locust(cmd[1:], tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "field 'messageSize'" in out and str(bad) in out
    assert "Ramping to" not in out and "spawn jobs" not in out


def test_the_wrong_gevent_patching_is_refused_with_the_way_out(tmp_path: Path) -> None:
    """Plain `locust` turns threads into greenlets: refused for the SQLite users."""
    locust = Path(sys.executable).with_name("locust")
    cmd = [str(locust), "-f", str(locust_run.LOCUSTFILE), "--headless", "-t", "5s"]
    done = subprocess.run(
        [*cmd, "SqliteQueueUser"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "loadtests/run_locust.py" in done.stderr


def test_one_user_per_process_and_kafka_needs_bootstrap(tmp_path: Path) -> None:
    cmd = locust_run.locust_command(
        "kafka-confluent", "fanout-3-groups", run_time=5, csv_prefix=None
    )
    assert cmd[cmd.index("-u") + 1] == "4"  # three groups + one producer
    assert cmd[cmd.index("--processes") + 1] == "4"
    assert cmd[-1] == "KafkaConfluentUser"
    done = _locust(cmd[1:], tmp_path)
    assert done.returncode != 0
    assert "KAFKA_BOOTSTRAP_SERVERS" in done.stderr


def test_kafka_managed_has_its_own_user_and_deployment(tmp_path: Path) -> None:
    from sqlitequeue.bench.kafka.deployments import KafkaDeployments
    from sqlitequeue.bench.network.profiles import load_network

    cmd = locust_run.locust_command("kafka-managed", "steady-1kb", run_time=5, csv_prefix=None)
    assert cmd[-1] == "KafkaManagedUser"
    done = _locust(cmd[1:], tmp_path)  # the class exists: Locust gets as far as our check
    assert done.returncode != 0
    assert "kafka-managed needs KAFKA_BOOTSTRAP_SERVERS" in done.stderr
    # `bench locust --network NAME` starts the managed cluster over NAME (cross-az by default)
    for given, expected in (("loopback", "cross-az"), ("cross-region", "cross-region")):
        deployments = KafkaDeployments(load_network(given), printer=print)
        found = deployments.deployment_of("kafka-managed")
        assert found is not None
        assert (found[0], found[1].name) == ("managed", expected)


def test_converter_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="does not exist"):
        import_runs([tmp_path / "nothing"], out=tmp_path / "results")
    assert percentile([(0.25, 2), (0.5, 1), (3.0, 1)], 50) == 0.25
    assert percentile([(0.25, 2), (0.5, 1), (3.0, 1)], 99) == 3.0
    assert percentile([], 99) == 0.0
