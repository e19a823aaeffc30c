"""The failure-recovery lab end to end, at small scale, with real processes, Litestream and Kafka.

Each test re-derives the accounting from the files the trial left behind (the workers'
ledgers and the queue file or Kafka topic), independently of the lab's own arithmetic.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.faults import experiments, kafka_trials, sqlite_trials, workers
from sqlitequeue.bench.faults.lab import (
    FAULT_COLUMNS,
    QUICK,
    Case,
    Lab,
    Trial,
    consumer_config,
    producer_config,
)
from sqlitequeue.bench.faults.ledger import account, decode_ids, encode_ids, read_ledger
from sqlitequeue.bench.results import load
from tests.helpers import REPO

SMALL = QUICK.with_(rate=150.0, before_s=1.0, after_s=1.0, failure_timeout_s=2.0, bin_s=0.25)
KAFKA_SMALL = SMALL.with_(failure_timeout_s=6.0)  # the broker's group.min.session.timeout.ms


def ledger_ids(trial_dir: Path, kind: str) -> list[int]:
    """Every id of every ``kind`` event in every ledger of a trial (repeats kept)."""
    return [
        i
        for ledger in sorted(trial_dir.glob("*.ledger"))
        for event in read_ledger(ledger)
        if event.kind == kind
        for i in event.ids
    ]


def check_accounting(trial: Trial, trial_dir: Path, found: list[int]) -> None:
    """The row's numbers equal what the ledgers and the store say, from ids."""
    row = trial.fault_row()
    acked = set(ledger_ids(trial_dir, "A"))
    present = set(found) | set(ledger_ids(trial_dir, "P"))
    assert row["acknowledged"] == len(acked) > 0
    assert row["recovered"] == len(acked & present)
    assert row["lost"] == len(acked - present) == row["acknowledged"] - row["recovered"]
    assert row["rpo_messages"] == row["lost"]
    assert row["produced"] >= row["acknowledged"]
    assert set(row) == set(FAULT_COLUMNS) - {"run_id"}


def trial_dir_of(lab: Lab, trial: Trial) -> Path:
    return lab.work_dir / f"{trial.case.label.replace('/', '-')}-r{trial.repeat}"


def run_sqlite(
    lab: Lab, fn: Callable[[Lab, Case, int], Trial], experiment: str, durability: str = "normal"
) -> tuple[Trial, Path]:
    trial = fn(lab, Case(experiment, "sqlite-queue", durability), 1)
    return trial, trial_dir_of(lab, trial)


def queue_ids(data_dir: Path) -> list[int]:
    return sqlite_trials.stored_ids(data_dir)


# -- accounting ---------------------------------------------------------------------------


def test_id_ranges_round_trip() -> None:
    ids = [1, 2, 3, 7, 9, 10, 4]
    assert encode_ids(ids) == "1-3,7,9-10,4"
    assert decode_ids(encode_ids(ids)) == ids


def test_accounting_counts_loss_and_duplicates_from_ids() -> None:
    acc = account(
        produced=range(10), acknowledged=range(8), found=[0, 1, 2, 3, 3, 9], delivered=[1, 1]
    )
    assert (acc.acknowledged, acc.recovered, acc.lost) == (8, 4, 4)
    assert acc.lost_ids == [4, 5, 6, 7]
    assert acc.duplicated == 2  # 1 processed twice, 3 stored twice
    assert acc.extra == 1  # 9 was stored but never acknowledged


@given(st.lists(st.integers(min_value=0, max_value=10**9)))
def test_any_id_list_survives_the_ledger_encoding(ids: list[int]) -> None:
    assert decode_ids(encode_ids(ids)) == ids


id_sets = st.sets(st.integers(min_value=0, max_value=200))


@given(id_sets, id_sets, st.lists(st.integers(min_value=0, max_value=200)))
def test_lost_is_always_acknowledged_minus_recovered(
    produced: set[int], acked: set[int], found: list[int]
) -> None:
    acc = account(produced, acked, found)
    assert acc.lost == acc.acknowledged - acc.recovered == len(acked - set(found))
    assert acc.recovered + acc.extra == len(set(found))
    assert acc.produced >= acc.acknowledged


def test_a_torn_last_ledger_line_is_ignored(tmp_path: Path) -> None:
    ledger = tmp_path / "x.ledger"
    ledger.write_text("1.0 A 1-3\n2.0 A 4-")
    assert [e.ids for e in read_ledger(ledger)] == [(1, 2, 3)]


def test_unknown_experiment_is_a_clear_error() -> None:
    with pytest.raises(BenchError, match="unknown experiment"):
        experiments.select_cases(["meteor-strike"])
    picked = experiments.select_cases(["host-loss:sqlite-queue:full", "consumer-kill"])
    assert [c.label for c, _ in picked] == [
        "consumer-kill/sqlite-queue/normal",
        "consumer-kill/kafka/acks=all",
        "host-loss/sqlite-queue/full",
    ]


def test_cli_lists_every_experiment() -> None:
    from sqlitequeue.bench.commands import faults as command

    assert tuple(sorted(command.EXPERIMENT_NAMES)) == tuple(sorted(experiments.EXPERIMENTS))


# -- worker roles -------------------------------------------------------------------------


def test_worker_configs_survive_the_command_line(tmp_path: Path) -> None:
    lab = Lab(tmp_path, SMALL)
    case = Case("producer-kill", "sqlite-queue", "full")
    target = sqlite_trials.planned(lab, case, tmp_path)
    configs = [
        producer_config(lab, tmp_path, target, "p", on_error=workers.OnError.RETRY, count=5),
        consumer_config(lab, tmp_path, target, "c"),
    ]
    for config in configs:
        argv = workers.command(config)
        assert argv[-2] == config.role
        assert workers.config_from_json(argv[-2], argv[-1]) == config


def test_worker_roles_drive_a_backend_through_the_seam(tmp_path: Path) -> None:
    """A producer and a consumer role, named backend, ledgers that account for every id."""
    lab = Lab(tmp_path, SMALL)
    target = sqlite_trials.deployment(lab, Case("x", "sqlite-queue", "normal"), tmp_path)
    produce = producer_config(lab, tmp_path, target, "producer", rate=0.0, count=45)
    assert workers.run_producer(produce) == 0
    assert ledger_ids(tmp_path, "S") == ledger_ids(tmp_path, "A") == list(range(45))
    assert sorted(queue_ids(tmp_path)) == list(range(45))
    (tmp_path / "stop").touch()
    consume = replace(consumer_config(lab, tmp_path, target, "consumer"), idle_s=0.2)
    assert workers.run_consumer(consume) == 0
    events = read_ledger(tmp_path / "consumer.ledger")
    for kind in "RPC":
        assert sorted(i for e in events if e.kind == kind for i in e.ids) == list(range(45))
    assert queue_ids(tmp_path) == []


def test_a_failed_delivery_is_an_error_event_not_an_ack(tmp_path: Path) -> None:
    # sqlite-queue drops records no group subscribed to, and says so in the delivery report.
    lab = Lab(tmp_path, SMALL)
    target = sqlite_trials.planned(lab, Case("x", "sqlite-queue", "normal"), tmp_path)
    config = producer_config(lab, tmp_path, target, "producer", groups=(), rate=0.0, count=20)
    assert workers.run_producer(config) == 0
    events = read_ledger(tmp_path / "producer.ledger")
    assert ledger_ids(tmp_path, "S") == list(range(20)) and ledger_ids(tmp_path, "A") == []
    errors = [e.error for e in events if e.kind == "E"]
    assert errors and all("no consumer group subscribed" in error for error in errors)


def test_a_producer_that_cannot_open_its_backend_records_why(tmp_path: Path) -> None:
    lab = Lab(tmp_path, SMALL)
    target = sqlite_trials.planned(lab, Case("x", "sqlite-queue", "normal"), tmp_path)
    spec = replace(target.spec, name="no-such-backend")
    config = producer_config(lab, tmp_path, target, "producer", backend=spec)
    assert workers.run_producer(config) == 1
    (event,) = read_ledger(tmp_path / "producer.ledger")
    assert event.kind == "E" and "unknown backend 'no-such-backend'" in event.error


# -- SQLite -------------------------------------------------------------------------------


@pytest.mark.slow
def test_sqlite_consumer_kill_redelivers_held_messages_after_the_lease(tmp_path: Path) -> None:
    lab = Lab(tmp_path, SMALL)
    trial, d = run_sqlite(lab, sqlite_trials.consumer_kill, "consumer-kill")
    check_accounting(trial, d, queue_ids(d))
    assert trial.row["lost"] == 0
    assert trial.row["rto_s"] >= SMALL.failure_timeout_s * 0.9  # the lease had to run out
    processed = ledger_ids(d, "P")
    assert trial.row["duplicated"] == len(processed) - len(set(processed))


@pytest.mark.slow
def test_sqlite_producer_kill_keeps_everything_acknowledged(tmp_path: Path) -> None:
    lab = Lab(tmp_path, SMALL)
    trial, d = run_sqlite(lab, sqlite_trials.producer_kill, "producer-kill")
    check_accounting(trial, d, queue_ids(d))
    assert trial.row["lost"] == 0 and trial.row["duplicated"] == 0
    assert trial.row["rto_s"] > 0


@pytest.mark.litestream
@pytest.mark.parametrize("durability", ["normal", "full"])
def test_sqlite_host_loss_restores_from_litestream(tmp_path: Path, durability: str) -> None:
    lab = Lab(tmp_path, SMALL)
    trial, d = run_sqlite(lab, sqlite_trials.host_loss, "host-loss", durability)
    check_accounting(trial, d, queue_ids(d / "data"))
    row = trial.row
    assert row["rto_s"] > 0
    # Litestream ships every monitor + sync interval: at most a few seconds are exposed.
    assert 0 <= row["rpo_s"] < SMALL.before_s + 1
    assert (row["lost"] == 0) == (row["rpo_s"] == 0)
    assert [e[0] for e in trial.events] == ["host lost", "restored and reopened"]


@pytest.mark.litestream
def test_lab_detects_loss_when_litestream_died_before_the_host(tmp_path: Path) -> None:
    lab = Lab(tmp_path, SMALL.with_(before_s=2.0, litestream_down_s=1.5))
    trial, d = run_sqlite(lab, sqlite_trials.host_loss_litestream_down, "host-loss-litestream-down")
    check_accounting(trial, d, queue_ids(d / "data"))
    # Everything acknowledged after Litestream died is gone: ~1.5 s at 150 msg/s.
    assert trial.row["lost"] >= 100
    assert trial.row["rpo_s"] >= 1.0


@pytest.mark.slow
def test_disk_full_gives_a_queue_error_and_loses_nothing(tmp_path: Path) -> None:
    lab = Lab(tmp_path, SMALL)
    trial = experiments.run_case(
        lab, Case("disk-full", "sqlite-queue", "normal"), sqlite_trials.disk_full, 1
    )
    if os.geteuid() != 0:
        assert trial.row["notes"].startswith("unavailable: needs root")
        return
    d = trial_dir_of(lab, trial)
    check_accounting(trial, d, queue_ids(d / "saved"))
    assert trial.row["lost"] == 0
    assert "producer got DatabaseError" in trial.row["notes"]
    assert trial.row["rto_s"] is not None  # writes resumed once space was freed


@pytest.mark.slow
def test_read_only_storage_gives_a_queue_error_and_loses_nothing(tmp_path: Path) -> None:
    lab = Lab(tmp_path, SMALL)
    trial = experiments.run_case(
        lab, Case("read-only", "sqlite-queue", "normal"), sqlite_trials.read_only, 1
    )
    if os.geteuid() != 0:
        assert trial.row["notes"].startswith("unavailable: needs root")
        return
    d = trial_dir_of(lab, trial)
    check_accounting(trial, d, queue_ids(d / "data"))
    assert trial.row["lost"] == 0
    assert "producer got ReadOnlyDatabase" in trial.row["notes"]


# -- Kafka --------------------------------------------------------------------------------


def kafka_found(bootstrap: str, d: Path) -> list[int]:
    return kafka_trials.topic_ids(bootstrap, (d / "topic").read_text())


def run_kafka(lab: Lab, fn: Callable[[Lab, Case, int], Trial], experiment: str) -> Any:
    trial = fn(lab, Case(experiment, "kafka", "acks=all"), 1)
    return trial, trial_dir_of(lab, trial)


@pytest.mark.kafka
def test_kafka_consumer_kill_rebalances_and_redelivers(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    lab = Lab(tmp_path, KAFKA_SMALL, kafka_bootstrap=kafka_bootstrap)
    trial, d = run_kafka(lab, kafka_trials.consumer_kill, "consumer-kill")
    check_accounting(trial, d, [])
    assert trial.row["lost"] == 0
    logs = "\n".join(f"{p.name}:\n{p.read_text()}" for p in sorted(d.glob("consumer*.log")))
    assert trial.row["rto_s"] is not None, f"{trial.row['notes']}\n{logs}"
    assert trial.row["rto_s"] >= KAFKA_SMALL.failure_timeout_s * 0.9, logs  # session timeout
    # Redelivery, re-derived from the ledgers: the victim was frozen mid-batch, so what it
    # received after its last commit was uncommitted; the survivor processed all of it.
    t_fault = trial.events[0][2]
    victim = read_ledger(d / "consumer1.ledger")
    last_commit = max((e.at for e in victim if e.kind == "C"), default=0.0)
    held = {i for e in victim if e.kind == "R" and e.at > last_commit for i in e.ids}
    survivor = read_ledger(d / "consumer2.ledger")
    after = {i for e in survivor if e.kind == "P" and e.at > t_fault for i in e.ids}
    assert held and held <= after, (len(held), len(held - after), logs)
    assert set(kafka_found(kafka_bootstrap, d)) >= set(ledger_ids(d, "A"))


@pytest.mark.kafka
def test_kafka_producer_kill_keeps_everything_acknowledged(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    lab = Lab(tmp_path, KAFKA_SMALL, kafka_bootstrap=kafka_bootstrap)
    trial, d = run_kafka(lab, kafka_trials.producer_kill, "producer-kill")
    check_accounting(trial, d, kafka_found(kafka_bootstrap, d))
    assert trial.row["lost"] == 0


@pytest.mark.kafka
def test_kafka_single_broker_kill_and_restart(
    tmp_path: Path, kafka_broker_factory: Callable[..., Any]
) -> None:
    broker = kafka_broker_factory(heap="512M")
    lab = Lab(tmp_path, KAFKA_SMALL.with_(before_s=0.5, after_s=0.5), kafka_broker=broker)
    trial, d = run_kafka(lab, kafka_trials.broker_kill, "broker-kill")
    check_accounting(trial, d, kafka_found(broker.bootstrap_servers, d))
    assert trial.row["lost"] == 0  # acks=all: the log survived the SIGKILL (page cache)
    events = [e[0] for e in trial.events]
    assert events == ["broker SIGKILL", "broker restarted", "first ack after the kill"]
    assert trial.row["rto_s"] >= trial.events[1][1] * 0.9  # no ack while it was down


@pytest.mark.kafka
def test_kafka_leader_failover_on_three_brokers_loses_nothing(
    tmp_path: Path, kafka_broker_factory: Callable[..., Any]
) -> None:
    # A shorter KRaft broker session (default 9 s) only to keep the test quick; the lab
    # itself measures the defaults.
    fast = {"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"}
    cluster = kafka_broker_factory(brokers=3, heap="384M", settings=fast)
    lab = Lab(
        tmp_path,
        KAFKA_SMALL.with_(rate=100.0, before_s=0.5, after_s=0.5),
        kafka_cluster=cluster,
    )
    trial, d = run_kafka(lab, kafka_trials.leader_failover, "leader-failover")
    check_accounting(trial, d, kafka_found(cluster.bootstrap_servers, d))
    assert trial.row["lost"] == 0
    assert trial.row["rto_s"] > 0
    assert sum(1 for node in cluster.nodes if node.running) == 2


# -- the whole command --------------------------------------------------------------------


@pytest.mark.slow
def test_cli_writes_a_faults_results_folder(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "sqlitequeue", "bench", "faults", "--quick"]
    cmd += ["--experiment", "producer-kill:sqlite-queue", "--out", str(tmp_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=REPO, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[1/1] producer-kill/sqlite-queue/normal repeat 1" in result.stdout
    assert "rto_median_s" in result.stdout
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    results = load(folder)
    assert results.meta["kind"] == "faults"
    table = results.tables["faults"]
    assert tuple(table.columns) == FAULT_COLUMNS
    assert table.loc[0, "lost"] == 0
    series = results.series("publish_rate")
    assert set(series.workload) == {"producer-kill"}
    assert series.t.min() < 0 < series.t.max()  # around the fault
    assert set(results.tables["fault_events"].event) >= {"producer SIGKILL"}
