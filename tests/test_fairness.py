"""bench fairness: Kafka's tools against the broker and the gateway in one run, and its docs."""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import psutil
import pytest

from sqlitequeue.bench.kafka.fairness import Comparison, summary_lines, write_results
from sqlitequeue.bench.profiles import load_profile


def _exits(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.kafka
def test_one_run_measures_the_broker_and_the_gateway_and_the_docs_render_both(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    from tools import render_docs

    comparison = Comparison(
        servers=kafka_bootstrap,
        settings=load_profile("kafka-throughput").settings_for("kafka-confluent"),
        profile="kafka-throughput",
        count=2_000,
        size=1024,
        e2e_count=100,
        rate=200,
        rate_seconds=1.0,
        idle_seconds=0.5,
    )
    lines: list[str] = []
    found = comparison.run(1, progress=lines.append)
    assert len(found.producers) == 3  # the warm-up runs before it are not counted
    assert sum(line.startswith("warm-up:") for line in lines) == 3
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
    assert _exits(comparison.gateway_info["gateway_pid"])  # the gateway stopped with the run
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
