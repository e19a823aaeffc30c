"""The main job end to end (SQLite + a real Kafka), the bench CLI, and trace capture."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from sqlitequeue.bench import compare
from sqlitequeue.bench.backends import base
from sqlitequeue.bench.backends.base import Producer
from sqlitequeue.bench.backends.memory import MemoryBackend
from sqlitequeue.bench.compare import harness
from sqlitequeue.bench.compare.repeats import combine, spread
from sqlitequeue.bench.report import workloads as workload_report
from sqlitequeue.bench.results import load
from sqlitequeue.bench.runner import RunResult
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
    monkeypatch.setattr(harness, "SELFCHECK_SECONDS", 2.0)
    monkeypatch.setattr(harness, "CEILING_SECONDS", 3.0)
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


def test_without_kafka_the_run_fails_loudly_saying_how_to_add_it_and_sqlite_still_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("SQLITEQUEUE_KAFKA_MODE", "external")  # nothing to connect to
    code = main(
        ["bench", "compare", "--backends", "sqlite-seed,kafka", "--workloads", "steady-1kb",
         "--duration", "2", "--out", str(tmp_path), "--no-selfcheck"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1  # a skipped backend is a failure the user must see
    assert "Kafka is not available" in out and "to add Kafka" in out
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert "PROBLEMS" in out and f"log: {folder / 'logs' / 'kafka.log'}" in out
    res = load(folder)
    assert set(res.metrics.backend) == {"sqlite-seed"}
    assert res.meta["setup_notes"]
    assert res.meta["failures"][0].startswith("kafka / every workload: skipped")
    assert res.meta["logs"]["kafka"] == "logs/kafka.log"
    assert "to add Kafka" in (folder / "logs" / "kafka.log").read_text()


@pytest.mark.slow
def test_compare_exits_non_zero_with_the_log_path_when_kafka_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    code = main(
        ["bench", "compare", "--quick", "--backends", "sqlite-stream,kafka-confluent",
         "--workloads", "steady-1kb", "--duration", "2", "--out", str(tmp_path),
         "--no-selfcheck"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    log = folder / "logs" / "kafka-confluent.log"
    assert f"log: {log}" in captured.out
    assert "127.0.0.1:9" in log.read_text()
    assert "%3|" not in captured.out + captured.err  # librdkafka's lines stay out of sight
    meta = load(folder).meta
    assert meta["indicative"] is True and meta["repeats"] == 1
    (detail,) = meta["failure_details"]
    assert detail["backend"] == "kafka-confluent" and detail["log"] == "logs/kafka-confluent.log"


class BrokenBackend(MemoryBackend):
    """The memory backend whose producers cannot start (a test backend)."""

    name = "test-broken"

    def producer(self, topic: str) -> Producer:
        raise RuntimeError("no producer today (test-broken)")


@pytest.mark.slow
def test_a_failed_run_exits_non_zero_keeps_its_traceback_in_its_log_and_repeats_are_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlitequeue.bench import profiles

    spec_of = profiles.backend_spec
    monkeypatch.setattr(  # the test backend has no settings profile
        profiles,
        "backend_spec",
        lambda name, *a, **kw: (
            base.BackendSpec(name) if name == "test-broken" else spec_of(name, *a, **kw)
        ),
    )
    base.BACKENDS["test-broken"] = "tests.test_compare:BrokenBackend"
    try:
        code = main(
            ["bench", "run", "--workload", "steady-1kb", "--backend", "memory,test-broken",
             "--duration", "2", "--repeats", "2", "--out", str(tmp_path)]
        )  # fmt: skip
    finally:
        del base.BACKENDS["test-broken"]
    out = capsys.readouterr().out
    assert code == 1
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    log = folder / "logs" / "test-broken.log"
    assert f"log: {log}" in out and "PROBLEMS" in out
    assert "RuntimeError: no producer today" in log.read_text()  # the child's traceback
    res = load(folder)
    assert [d["repeat"] for d in res.meta["failure_details"]] == [1, 2]
    assert res.meta["repeats"] == 2 and res.meta["indicative"] is False
    repeats = res.tables["repeats"]
    sent = repeats[(repeats.backend == "memory") & (repeats.metric == "sent")]
    assert sorted(sent.repeat) == [1, 2]
    assert res.scalar("memory", "sent") == sent.value.median()
    (row,) = res.spread("sent").itertuples()
    assert (row.backend, row.n, row.min, row.max) == (
        "memory",
        2,
        sent.value.min(),
        sent.value.max(),
    )
    assert "median [min-max] over 2 repeats:" in out


@pytest.mark.slow
def test_the_self_check_verifies_the_search_top_and_a_search_at_it_names_the_harness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(harness, "SELFCHECK_SECONDS", 2.0)
    monkeypatch.setattr(harness, "CEILING_SECONDS", 3.0)
    low_top = tmp_path / "low-top.yaml"
    low_top.write_text(
        "name: low-top\nmessageSize: 1024\nproducerRate: 0\nproducerStartRate: 1000\n"
        "producerMaxRate: 2000\nrampStepSeconds: 2\np99TargetMs: 50\n"
        "testDurationSeconds: 12\nwarmupDurationSeconds: 1\n"
    )
    finished: list[compare.RunProgress] = []
    folder = compare.run_compare(
        backends=["memory"],
        workloads=[str(low_top)],
        out=tmp_path / "r",
        repeats=1,
        on_run=finished.append,
    )
    out = capsys.readouterr().out
    assert [(p.done, p.total, p.backend, p.status) for p in finished] == [(1, 1, "memory", "ok")]
    assert "max sustainable" in finished[0].line  # the line a progress bar can show
    rates = workload_report.max_rate_table(load(folder)).set_index("backend")
    assert rates.loc["memory", "search ended"] == "harness ceiling"
    meta = load(folder).meta
    check = meta["selfcheck"]
    assert check["ok"] and check["verified_ceiling"] == 2000
    assert [c["rate"] for c in check["ceilings"]] == [2000]
    assert "at the top of low-top's max-rate search, 2,000 msg/s" in out
    assert meta["harness_limited"] == {"memory / low-top": {"top": 2000, "repeats": 1}}
    assert "the harness, not the backend, was the limit" in out


def _result(p99: float, lost: float, note: str) -> RunResult:
    scalars = {"e2e_latency_ms.p99": p99, "lost": lost, "sent": 100 * p99}
    return RunResult("b", "w", 1.0, {}, scalars=scalars, notes=[note])


def test_repeats_combine_into_medians_keep_the_worst_loss_and_every_note() -> None:
    results = [(1, _result(9.0, 0, "a")), (2, _result(1.0, 5, "b")), (3, _result(4.0, 0, "c"))]
    repeat, combined = combine(results)
    assert repeat == 3  # the median repeat's series and histograms are the ones kept
    assert combined.scalars["e2e_latency_ms.p99"] == 4.0
    assert combined.scalars["sent"] == 400.0
    assert combined.scalars["lost"] == 5  # a loss in any repeat is never hidden
    assert combined.notes == ["repeat 1: a", "repeat 2: b", "repeat 3: c"]
    assert spread([3.0, 1.0, 2.0]) == {
        "median": 2.0, "min": 1.0, "max": 3.0, "q1": 1.5, "q3": 2.5, "n": 3.0
    }  # fmt: skip


def test_librdkafka_logs_to_the_run_log_not_the_terminal(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from sqlitequeue.bench.backends.base import BackendSpec
    from sqlitequeue.bench.backends.kafka_confluent import KafkaConfluentBackend
    from sqlitequeue.bench.errors import KafkaError

    log = tmp_path / "kafka-confluent.log"
    settings = {"log.file": str(log), "connect.timeout.s": 1.5}
    backend = KafkaConfluentBackend(
        BackendSpec("kafka-confluent", settings, bootstrap_servers="127.0.0.1:9")
    )
    assert "log.file" not in backend.describe()["settings"]
    with pytest.raises(KafkaError):
        backend.producer("t")
    captured = capfd.readouterr()
    assert "%3|" not in captured.err and "%3|" not in captured.out


def test_quick_suite_durations_keep_a_warm_up_and_full_ones_ten_measured_seconds() -> None:
    for w in compare.build_suite("default", None, None, None):
        assert w.warmup_seconds >= 5 and w.duration_seconds - w.warmup_seconds >= 10
    for w in compare.build_suite("quick", None, None, None):
        assert w.warmup_seconds >= 1


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
    profiles = Path(__file__).resolve().parent.parent / "examples" / "profiles"
    team = ["--team", str(profiles / "bigg.yaml")]  # checked before anything runs
    assert main(["bench", "compare", "--backends", "memory", *team]) == 1
    assert f"did you mean {str(profiles / 'big.yaml')!r}" in capsys.readouterr().err


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
