"""Retention by age and size: prefix deletes per partition, resets reported, offsets kept."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from sqlitequeue import Retention, Stream
from sqlitequeue import _stream_log as log
from sqlitequeue import stream as stream_module


def test_size_retention_keeps_the_newest_bytes_per_partition(db_path: Path) -> None:
    with Stream(db_path, "t", partitions=2) as stream:
        stream.append_many([b"0123456789"] * 100)  # 50 records of 10 bytes per partition
    with Stream(db_path, "t", retention=Retention(max_bytes=100)) as stream:
        assert stream.apply_retention() == {0: 40, 1: 40}
        assert stream.earliest_offsets() == {0: 40, 1: 40}
        assert stream.end_offsets() == {0: 50, 1: 50}
        (info,) = stream.topics()
        assert info.bytes == 200 and info.records == 20
        assert info.retention == Retention(max_bytes=100)
        assert stream.apply_retention() == {}


def test_age_retention_deletes_old_records_only(db_path: Path) -> None:
    with Stream(db_path, "t", retention=Retention(max_age=0.3)) as stream:
        stream.append_many([b"old"] * 5)
        time.sleep(0.5)
        stream.append(b"new")
        assert stream.apply_retention() == {0: 5}
        assert [r.payload for r in stream.read(0, 0)] == [b"new"]


def test_retention_runs_while_appending(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "RETENTION_INTERVAL", 0.0)
    with Stream(db_path, "t", retention=Retention(max_bytes=30)) as stream:
        for _ in range(10):
            stream.append(b"0123456789")
        assert stream.earliest_offsets() == {0: 7}


def test_retention_deletes_in_chunks(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log, "RETENTION_CHUNK", 7)
    with Stream(db_path, "t") as stream:
        stream.append_many([b"x"] * 30)
    with Stream(db_path, "t", retention=Retention(max_bytes=5)) as stream:
        assert stream.apply_retention() == {0: 25}
        assert stream.earliest_offsets() == {0: 25}


def test_offsets_are_not_reused_after_everything_expired(db_path: Path) -> None:
    with Stream(db_path, "t", retention=Retention(max_age=0.0)) as stream:
        stream.append_many([b"x"] * 3)
        stream.apply_retention()
        assert stream.earliest_offsets() == {0: 3} and stream.end_offsets() == {0: 3}
        assert stream.read(0, 0) == []
    with Stream(db_path, "t") as stream:
        assert stream.append(b"y").offset == 3


def test_lagging_group_resets_to_earliest_with_a_report(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Stream(db_path, "t", retention=Retention(max_bytes=50)) as stream:
        stream.append_many([b"0123456789"] * 3)
        consumer = stream.consumer("slow")
        assert len(consumer.poll(1, timeout=0)) == 1
        consumer.commit()  # committed offset 1
        stream.append_many([b"0123456789"] * 10)  # 13 records; only the last 5 are kept
        stream.apply_retention()
        with caplog.at_level(logging.WARNING, logger="sqlitequeue.stream"):
            records = consumer.poll(100, timeout=0)
        assert [r.offset for r in records] == list(range(8, 13))
        (reset,) = consumer.resets
        assert (reset.partition, reset.from_offset, reset.to_offset) == (0, 1, 8)
        assert "deleted by retention" in reset.reason
        assert "deleted by retention" in caplog.text
        (group,) = stream.groups()
        assert group.partitions[0].committed == 1 and group.lag == 5
        consumer.commit()
        assert stream.groups()[0].lag == 0


def test_group_that_rejoins_behind_retention_resets_at_once(db_path: Path) -> None:
    with Stream(db_path, "t", retention=Retention(max_bytes=20)) as stream:
        stream.consumer("g").close()  # the group's offset is stored: 0
        stream.append_many([b"0123456789"] * 6)
        stream.apply_retention()
        consumer = stream.consumer("g")
        assert consumer.position() == {0: 4}
        assert [(r.from_offset, r.to_offset) for r in consumer.resets] == [(0, 4)]
        assert consumer.lag() == {0: 2}


def test_changing_retention_is_stored(db_path: Path) -> None:
    Stream(db_path, "t", retention=Retention(max_age=60)).close()
    with Stream(db_path, "t") as stream:
        assert stream.retention == Retention(max_age=60)
    with Stream(db_path, "t", retention=Retention()) as stream:
        assert stream.retention is None
