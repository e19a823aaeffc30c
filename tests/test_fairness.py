"""bench fairness: Kafka's tools against the broker and the gateway in one run, and its docs."""

from __future__ import annotations

import csv
import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.kafka import distribution
from sqlitequeue.bench.kafka.fairness import Comparison, summary_lines, write_results
from sqlitequeue.bench.profiles import load_profile
from tests.helpers import wait_gone


@pytest.mark.kafka
def test_one_run_measures_the_broker_and_the_gateway_and_the_docs_render_both(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    from tools import render_docs

    comparison = Comparison(
        servers=kafka_bootstrap,
        settings=load_profile("kafka-throughput").settings_for("kafka-confluent"),
        profile="kafka-throughput",
        count=1_000,
        size=1024,
        e2e_count=50,
        rate=200,
        rate_seconds=1.0,
        idle_seconds=0.5,
        warm_up=False,  # counted or not: test_warm_up_runs_are_not_counted
    )
    lines: list[str] = []
    found = comparison.run(1, progress=lines.append)
    assert len(found.producers) == 3
    assert {(r["target"], r["tool"]) for r in found.producers} == {
        ("broker", "ProducerPerformance"),
        ("broker", "kafka-confluent"),
        ("gateway", "ProducerPerformance"),
    }
    assert all(r["records_per_s"] > 0 for r in found.producers)
    assert {(r["target"], r["tool"]) for r in found.latency} == {
        (target, tool)
        for target in ("broker", "gateway")
        for tool in ("EndToEndLatency", "confluent-kafka@200/s")
    }
    assert found.process["rss_bytes.peak"] > 0
    assert set(found.process) == {
        "rss_bytes.peak",
        "cpu_percent.idle",
        "cpu_percent.idle_one_consumer",
    }
    assert wait_gone([comparison.gateway_info["gateway_pid"]])  # stopped with the run
    assert any("ProducerPerformance -> gateway" in line for line in lines)

    summary = "\n".join(summary_lines(comparison, found))
    assert "gateway/broker" in summary and "server peak RSS MB" in summary

    folder = write_results(str(tmp_path / "out"), comparison, found, {"mode": "external"})
    with open(folder / "latency.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 4
    shutil.move(folder, tmp_path / "reference-fairness")
    block = render_docs.fairness(tmp_path)
    assert "| ProducerPerformance records/s |" in block
    assert "| server idle CPU %, alone | - |" in block
    assert "Through `sqlitequeue serve`" in render_docs._fairness_sentence(
        tmp_path / "reference-fairness"
    )


def test_bad_fairness_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from sqlitequeue.cli import main

    assert main(["bench", "fairness", "--against", "brokr"]) == 2
    assert "--against takes broker and/or gateway, not brokr" in capsys.readouterr().out
    assert main(["bench", "fairness", "--rate-seconds", "0"]) == 2


def test_warm_up_runs_are_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each producer step runs once before the measured runs, and only the measured runs
    are rows (the steps measured here are stand-ins: no JVM, no server)."""
    measured: list[tuple[str, str]] = []

    def fake_open(self: Comparison, stack: ExitStack, logs: Path, progress: Any) -> Any:
        return {"broker": "broker:9092", "gateway": "gateway:9092"}, None, None

    def fake_measure(self: Comparison, *args: Any) -> dict[str, Any]:
        _dist, _logs, _bootstrap, target, tool, _backend = args
        measured.append((target, tool))
        if tool in ("EndToEndLatency", "e2e-confluent"):
            figures = {"received": 1.0, "mean": 1.0, "p50": 1.0, "p99": 1.0}
            return self._latency_row(target, tool, figures)
        return self._row(tool, 1.0, 1.0, 0.0, target)

    monkeypatch.setattr(distribution, "ensure", lambda progress: None)
    monkeypatch.setattr(Comparison, "_open", fake_open)
    monkeypatch.setattr(Comparison, "_measure", fake_measure)
    found = {}
    for warm_up in (True, False):
        measured.clear()
        lines: list[str] = []
        comparison = Comparison("broker:9092", {}, "p", 10, 10, warm_up=warm_up)
        found[warm_up] = (comparison.run(1, lines.append), list(measured), lines)
    (warm, warm_steps, warm_lines), (cold, cold_steps, cold_lines) = found[True], found[False]
    producers = [
        ("broker", "ProducerPerformance"),
        ("broker", "kafka-confluent"),
        ("gateway", "ProducerPerformance"),
    ]
    assert warm_steps == producers + cold_steps  # the warm-up first, then the measured run
    assert warm.producers == cold.producers and len(warm.producers) == 3
    assert warm.latency == cold.latency and len(warm.latency) == 4
    assert sum(line.startswith("warm-up:") for line in warm_lines) == 3
    assert not any(line.startswith("warm-up:") for line in cold_lines)


def test_a_comparison_against_the_broker_without_its_address_says_what_to_do() -> None:
    comparison = Comparison(None, {}, "p", 10, 10, against=("broker",))
    with ExitStack() as stack, pytest.raises(BenchError, match="pass servers="):
        comparison._open(stack, Path("."), print)


def _one_target_run(root: Path, against: tuple[str, ...]) -> Path:
    """A results folder of a fairness run against ``against`` alone (stand-in figures)."""
    from sqlitequeue.bench.kafka.fairness import Measurements

    servers = "broker:9092" if "broker" in against else None
    comparison = Comparison(servers, {}, "kafka-throughput", 1_000, 100, against=against)
    found = Measurements()
    for target in against:
        found.producers.append(comparison._row("ProducerPerformance", 1.0, 1_000.0, 0.5, target))
    if "broker" in against:
        found.producers.append(comparison._row("kafka-confluent", 2.0, 500.0, 0.5, "broker"))
    folder = write_results(str(root / "out"), comparison, found, None)
    shutil.move(folder, root / "reference-fairness")
    return root / "reference-fairness"


def test_the_fairness_blocks_read_a_run_against_one_target(tmp_path: Path) -> None:
    from tools import render_docs

    broker = _one_target_run(tmp_path / "broker", ("broker",))
    block = render_docs.fairness(broker.parent)
    assert "| the kafka-confluent backend | 500 |" in block
    assert "measured no gateway (`--against broker`)" in block and "predates" not in block
    assert "ratio 2.00x" in render_docs._fairness_sentence(broker)

    gateway = _one_target_run(tmp_path / "gateway", ("gateway",))
    assert "The gateway (`sqlitequeue serve` on a fresh file) alone" in render_docs.fairness(
        gateway.parent
    )
    sentence = render_docs._fairness_sentence(gateway)
    assert "measured only the gateway" in sentence and "ran at 1,000 records/s" in sentence
