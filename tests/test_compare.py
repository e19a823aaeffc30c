"""The main job end to end (SQLite + a real Kafka), the bench CLI, and trace capture."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from sqlitequeue.bench import compare
from sqlitequeue.bench.results import load
from sqlitequeue.cli import main

ALL_BACKENDS = ["sqlite-queue", "sqlite-stream", "sqlite-seed", "kafka-confluent", "kafka"]


@pytest.mark.kafka
@pytest.mark.slow
def test_compare_quick_runs_sqlite_and_kafka_and_writes_the_report(
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)  # auto() picks it up
    monkeypatch.setattr(compare, "SELFCHECK_SECONDS", 2.0)
    monkeypatch.setattr(compare, "KAFKA_WARMUP_SECONDS", 1.5)
    folder = compare.run_compare(
        quick=True,
        backends=ALL_BACKENDS,
        workloads=["seed-clickstream"],
        duration=3,
        out=tmp_path,
    )
    out = capsys.readouterr().out
    assert "harness self-check: memory backend sustained" in out
    assert "max sustainable rate at e2e p99" in out
    res = load(folder)
    assert res.meta["kafka"]["bootstrap"] == kafka_bootstrap
    assert res.meta["failures"] == []
    assert set(res.meta["backends"]) == set(ALL_BACKENDS)
    assert res.meta["git_commit"] and res.meta["versions"]["sqlite"]
    for backend in ALL_BACKENDS:
        assert backend in out
        sent = res.scalar(backend, "sent")
        assert sent and sent > 100
        assert res.scalar(backend, "received") == sent  # every message arrived once
        assert res.scalar(backend, "lost") == 0
    assert (folder / "report" / "index.html").exists()


def test_without_kafka_a_note_says_how_to_add_it_and_sqlite_still_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("SQLITEQUEUE_KAFKA_MODE", "external")  # nothing to connect to
    code = main(
        ["bench", "compare", "--backends", "sqlite-seed,kafka", "--workloads", "steady-1kb",
         "--duration", "2", "--out", str(tmp_path), "--no-selfcheck"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "Kafka is not available" in out and "to add Kafka" in out
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    res = load(folder)
    assert set(res.metrics.backend) == {"sqlite-seed"}
    assert res.meta["setup_notes"]


def test_an_omb_workload_file_runs_unchanged_with_a_shorter_duration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_workload import OMB_FILE

    omb = tmp_path / "1-topic-1-partition-1kb.yaml"
    omb.write_text(OMB_FILE.replace("producerRate: 50000", "producerRate: 2000"))
    code = main(
        ["bench", "run", "--workload", str(omb), "--backend", "memory", "--duration", "2",
         "--out", str(tmp_path / "results")]
    )  # fmt: skip
    assert code == 0
    (folder,) = (tmp_path / "results").iterdir()
    res = load(folder)
    sent = res.scalar("memory", "sent")
    assert sent is not None and sent > 1000
    assert res.scalar("memory", "received") == sent
    assert res.meta["workloads"]["1 topic / 1 partition / 1Kb"]["producer_rate"] == 2000


def test_unknown_names_are_errors_that_list_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "compare", "--backends", "sqlite-nope"]) == 1
    assert "sqlite-queue" in capsys.readouterr().err
    assert main(["bench", "run", "--workload", "nope", "--backend", "memory"]) == 1
    assert "seed-clickstream" in capsys.readouterr().err


def test_list_shows_the_bundled_suite_and_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "list"]) == 0
    out = capsys.readouterr().out
    assert "seed-clickstream" in out and "max-rate-1kb" in out
    assert main(["bench", "list", "--fields"]) == 0
    out = capsys.readouterr().out
    for field in ("producerRate", "keyDistributor", "rateShape", "trace", "p99TargetMs"):
        assert field in out


@pytest.mark.kafka
def test_capture_records_a_trace_that_replays(kafka_bootstrap: str, tmp_path: Path) -> None:
    from kafka import KafkaProducer

    from sqlitequeue.bench.kafka.capture import capture_trace
    from sqlitequeue.bench.workload import load_workload, schedule

    topic = f"capture-{tmp_path.name}"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for i in range(20):
        producer.send(topic, key=f"user-{i % 3}".encode(), value=b"x" * (100 + i))
    producer.flush()
    producer.close()
    trace = tmp_path / "trace.jsonl"
    count = capture_trace(kafka_bootstrap, topic, trace, idle=2.0, payloads=True)
    assert count == 20
    first = json.loads(trace.read_text().splitlines()[0])
    assert first["size"] == 100 and first["key"] == "user-0" and first["payload"]
    spec = tmp_path / "replay.yaml"
    spec.write_text(
        textwrap.dedent(
            """\
            name: replay
            trace: {file: trace.jsonl, speed: 2}
            testDurationSeconds: 60
            """
        )
    )
    sends = list(schedule(load_workload(spec)))
    assert sorted(s.size for s in sends) == [100 + i for i in range(20)]
    assert {s.key for s in sends} == {b"user-0", b"user-1", b"user-2"}
