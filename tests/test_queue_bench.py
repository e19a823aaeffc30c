"""`sqlitequeue bench queue`: the tables, ratios and verdicts are produced (never timings);
every subject round-trips through the seam; the raw loops issue only the library's SQL."""

from __future__ import annotations

import ast
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import sqlitequeue
from sqlitequeue.bench.backends.base import BACKENDS, Delivery
from sqlitequeue.bench.microbench import raw, timing
from sqlitequeue.bench.microbench import run as microbench
from sqlitequeue.bench.microbench.patterns import GROUP, TOPIC
from sqlitequeue.bench.microbench.run import PATTERNS, Sizes
from sqlitequeue.bench.microbench.subject import (
    QUEUE_SUBJECTS,
    SUBJECTS,
    Subject,
    open_subject,
    subject_class,
    subject_spec,
)
from sqlitequeue.cli import build_parser, main

TINY = Sizes(
    puts=40,
    puts_full=10,
    puts_threads=40,
    batch_rows=2_000,
    get_acks=40,
    get_acks_full=10,
    claim_rows=300,
    latency_seconds=0.3,
    drain_messages=200,
    stream_rows=300,
    cap_seconds=10.0,
    peer_cap_seconds=2.0,
    drain_cap_seconds=10.0,
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> microbench.Report:
    directory = tmp_path_factory.mktemp("bench")
    return microbench.run_benchmark(TINY, repeats=1, directory=directory)


def test_every_pattern_has_a_table_with_ours_the_raw_loop_and_the_peers(
    report: microbench.Report,
) -> None:
    text = microbench.format_report(report)
    for pattern in PATTERNS:
        assert pattern.title in text
    labels = {(m.pattern, m.impl) for m in report.measurements}
    for pattern in PATTERNS:
        assert (pattern.key, "ours") in labels
        reference = "1-thread" if pattern.key == "put_threads" else "raw"  # group commit: 8 vs 1
        assert (pattern.key, reference) in labels
    assert ("put", "persist-queue") in labels
    assert ("get_ack", "litequeue") in labels
    for key in ("put", "get_ack", "latency_1000"):  # the anchor and the new peers
        assert {(key, "minimal"), (key, "honker")} <= labels
    assert {("put", "huey"), ("get_ack", "huey")} <= labels
    assert "PASS" in text or "FAIL" in text


def test_the_anchor_and_group_commit_carry_the_issue_15_targets(
    report: microbench.Report,
) -> None:
    targets = {(c.pattern, c.what): c.target for c in report.checks}
    assert targets[("put", "ours/minimal")] == ">= 0.8"
    assert targets[("get_ack", "ours/minimal")] == ">= 0.8"
    assert targets[("put_threads", "ours/1-thread")] == ">= 4"
    assert not any(c.what in ("ours/honker", "ours/huey") for c in report.checks)


def test_the_header_says_what_waking_a_thread_costs(report: microbench.Report) -> None:
    """Group commit's floor is the machine's: the report measures it beside the rows."""
    assert report.environment["thread_handoff_us"] > 0
    header = microbench.format_report(report).splitlines()[0]
    assert "waking a thread takes" in header and "µs" in header


def test_the_header_says_what_an_fsync_costs(report: microbench.Report) -> None:
    """Group commit's gain grows with the fsync: the report measures it beside the rows."""
    assert report.environment["fsync_us"] > 0
    header = microbench.format_report(report).splitlines()[0]
    assert "an fsync takes" in header


def test_the_docs_render_the_fsync_from_a_report_and_do_without_it(
    report: microbench.Report, tmp_path: Path
) -> None:
    """render_docs reads the figure the header writes; an older reference lacks it."""
    from tools import render_docs

    text = microbench.format_report(report)
    (tmp_path / "reference-queue.txt").write_text(text, encoding="utf-8")
    assert "An fsync took at least" in render_docs.queue_bench_reading(tmp_path)
    older = re.sub(r"; an fsync takes [^;\n]*", "", text)
    (tmp_path / "reference-queue.txt").write_text(older, encoding="utf-8")
    assert "An fsync took" not in render_docs.queue_bench_reading(tmp_path)


def test_fsync_is_left_out_where_the_file_system_refuses_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refuse(fd: int) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(timing.os, "fdatasync", refuse)
    assert timing.fsync_us(tmp_path, samples=2) is None


def test_every_measured_row_has_a_sample_and_no_errors(report: microbench.Report) -> None:
    for m in report.measurements:
        if m.skipped:
            continue
        assert m.samples, f"{m.pattern}/{m.durability}/{m.impl} measured nothing: {m.notes}"
        assert m.median() is not None and m.median() > 0  # type: ignore[operator]
        assert not any("ERROR" in note for note in m.notes), m.notes


def test_ratios_and_targets_are_computed_at_equal_durability(
    report: microbench.Report,
) -> None:
    checks = {(c.pattern, c.durability, c.what): c for c in report.checks}
    put_full = checks[("put", "full", "ours/persist-queue")]
    assert put_full.value is not None and put_full.passed is not None
    assert put_full.target == ">= 1.5"
    get_normal = checks[("get_ack", "normal", "ours/litequeue")]
    assert get_normal.target == ">= 10"
    raw = checks[("get_many", "normal", "ours/raw")]
    ours = next(
        m for m in report.measurements if (m.pattern, m.impl) == ("get_many", "ours")
    ).median()
    theirs = next(
        m for m in report.measurements if (m.pattern, m.impl) == ("get_many", "raw")
    ).median()
    assert raw.value == pytest.approx(ours / theirs)  # type: ignore[operator]
    assert ("latency_1000", "normal", "p99 ms") in checks
    assert ("latency_1000", "normal", "p50 ms") in checks
    assert ("latency_1000", "normal", "idle cpu %") in checks
    assert ("lifecycle", "normal", "records/s") in checks
    # no peer is ever compared at another durability than its own
    assert ("put", "normal", "ours/persist-queue") not in checks
    assert ("put", "full", "ours/litequeue") not in checks


def test_latency_rows_have_percentiles_in_order(report: microbench.Report) -> None:
    for m in report.measurements:
        if m.pattern.startswith("latency_") and m.samples:
            s = m.samples[0]
            assert 0 <= s["p50"] <= s["p95"] <= s["p99"] <= s["max"]
            assert s["idle_cpu"] >= 0  # % of a core while blocked with nothing to get


def test_json_output_is_plain_data(report: microbench.Report, tmp_path: Path) -> None:
    data = json.loads(json.dumps(microbench.report_to_json(report)))
    assert data["kind"] == "queue-bench"
    assert data["payload_bytes"] == 64
    assert {m["pattern"] for m in data["measurements"]} == {p.key for p in PATTERNS}


def test_cli_parses_its_options() -> None:
    args = build_parser().parse_args(
        ["bench", "queue", "--quick", "--repeats", "2", "--json", "x.json", "--only", "put"]
    )
    assert (args.quick, args.repeats, args.json, args.only) == (True, 2, "x.json", ["put"])


def test_cli_rejects_bad_repeats_and_unknown_patterns(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "queue", "--repeats", "0"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["bench", "queue", "--only", "nope"])
    assert exc.value.code == 2
    with pytest.raises(microbench.BenchError):
        microbench.plan(TINY, only=["nope"])


# -- the subjects, through the seam of bench/backends/base.py ----------------------------


def _subject(name: str, directory: Path, durability: str = "normal") -> Subject:
    cls = subject_class(name)
    if cls.package is not None:
        pytest.importorskip(cls.package.replace("-", ""))
    if durability not in cls.durabilities:
        durability = cls.durabilities[0]
    return open_subject(subject_spec(name, directory, durability))


@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_every_subject_round_trips_through_send_flush_poll_commit(
    name: str, tmp_path: Path
) -> None:
    deliveries: list[Delivery] = []
    with _subject(name, tmp_path) as subject:
        subject.create_topic("t")
        consumer = subject.consumer("t", "g")
        producer = subject.producer("t")
        producer.send(None, b"one", deliveries.append)
        producer.flush()  # one record: put / append
        for payload in (b"two", b"three"):
            producer.send(None, payload, deliveries.append)
        assert len(deliveries) == 1  # nothing is written before flush
        producer.flush()  # several: put_many / append_many, one transaction
        got: list[bytes] = []
        while records := consumer.poll(100 if subject.batched else 1, 0.5):
            got += [r.payload for r in records]
            consumer.commit()
        assert got == [b"one", b"two", b"three"]
        assert [d.ok for d in deliveries] == [True] * 3
        assert consumer.poll(1, 0) == [] and consumer.lost_commits == 0
        consumer.close()
        producer.close()


def test_subjects_declare_what_the_plan_skips() -> None:
    rows = {(j.pattern, j.durability, j.impl): j.skipped for j in microbench.plan(TINY)}
    assert rows[("put_many", "normal", "litequeue")] == "no batch API"
    assert rows[("drain", "normal", "persist-queue")] == "not multi-process safe (its docs)"
    assert ("put", "normal", "persist-queue") not in rows  # persist-queue runs at FULL only
    assert not subject_class(QUEUE_SUBJECTS["ours"]).fan_out  # a queue has one group
    assert not set(SUBJECTS) & set(BACKENDS)  # subjects are not `bench compare` backends


# -- the raw loops issue the library's SQL, never a drifting copy -------------------------

LIBRARY_MODULES = (
    "queue.py",
    "_queue_sql.py",
    "stream.py",
    "_stream_log.py",
    "_stream_consumer.py",
)
CONTROL = re.compile(r"(BEGIN|COMMIT|ROLLBACK|PRAGMA)\b")


def _library_statements() -> set[str]:
    """Every string literal of the library modules that issue the queue's and stream's SQL
    (implicitly concatenated literals are one constant in the AST)."""
    root = Path(sqlitequeue.__file__).parent
    found: set[str] = set()
    for module in LIBRARY_MODULES:
        for node in ast.walk(ast.parse((root / module).read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


class RecordingConnection:
    """A sqlite3 connection that records the SQL text of every execute/executemany."""

    def __init__(self, conn: sqlite3.Connection, issued: list[str]) -> None:
        self._conn = conn
        self.issued = issued

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self.issued.append(sql)
        return self._conn.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self.issued.append(sql)
        return self._conn.executemany(sql, *args)

    def close(self) -> None:
        self._conn.close()


@pytest.mark.parametrize(("name", "durability"), [("raw-queue", "full"), ("raw-stream", "normal")])
def test_the_raw_loops_issue_only_the_librarys_own_statements(
    name: str, durability: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued: list[str] = []
    connect = raw.raw_connect

    def recording_connect(path: Path, durability: str) -> tuple[Any, float]:
        conn, clock_offset = connect(path, durability)
        return RecordingConnection(conn, issued), clock_offset

    monkeypatch.setattr(raw, "raw_connect", recording_connect)
    with _subject(name, tmp_path, durability) as subject:
        producer = subject.producer(TOPIC)
        fill_items = [b"a", b"b", b"c", b"d"]
        producer.send(None, fill_items[0])
        producer.flush()  # one record
        for payload in fill_items[1:]:
            producer.send(None, payload)
        producer.flush()  # a batch
        first = subject.consumer(TOPIC, GROUP)
        assert len(first.poll(1, 0)) == 1
        first.commit()  # one record
        assert len(first.poll(10, 0)) == 3
        first.commit()  # a batch
        assert first.poll(1, 0.01) == []  # waits for a change, none comes
        subject.consumer(TOPIC, GROUP)  # the group exists: a rejoin (streams)
    statements = {sql for sql in issued if not CONTROL.match(sql)}
    assert len(statements) >= 4
    copies = statements - _library_statements()
    assert not copies, f"the raw loop issues SQL the library does not have: {copies}"


def test_the_raw_queue_loop_takes_the_queues_statements_themselves() -> None:
    from sqlitequeue import _queue_sql, queue

    assert raw.QUEUE_SQL == (
        _queue_sql.INSERT,
        _queue_sql.FORGET_ACKED,
        _queue_sql.DROP_ACKED,
        _queue_sql.PROMOTE,
        _queue_sql.CLAIM_ONE,
        _queue_sql.CLAIM,
        _queue_sql.ACK,
        _queue_sql.ACK_SETTLED,
        _queue_sql.ACK_MANY,
        _queue_sql.ACK_MANY_TOP,
    )
    assert raw.QUEUE_SETTLE_INTERVAL == queue._SETTLE_INTERVAL
