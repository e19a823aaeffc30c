"""Schema version 4: a stream row may hold a whole Kafka record batch (issue 14).

A file written by version 3 (the stream's rows as today's Stream wrote them) is migrated
when opened: every record, offset, committed offset and header survives, and appends go on
from the same end offsets. Batch rows (as ``sqlitequeue serve`` stores them) are read by
``Stream.read`` and consumers record by record, with the producer's keys, headers and
timestamps, interleaved with ordinary rows; offsets stay contiguous and retention never
splits a batch.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from kafka.record.default_records import DefaultRecordBatchBuilder

from sqlitequeue import Retention, Stream, _schema
from sqlitequeue import _stream_log as log
from sqlitequeue._db import Database


def make_v3_file(path: Path) -> None:
    """A file made by schema version 3 with a 2-partition topic, records and a group."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    for script in _schema.MIGRATIONS[:3]:
        for statement in _schema.split_statements(script):
            conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {_schema.APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 3")
    now = time.time()
    conn.execute(
        "INSERT INTO stream_topics (name, partitions, created_at) VALUES ('t', 2, ?)", (now,)
    )
    conn.execute("INSERT INTO stream_partitions (topic_id, partition) VALUES (1, 0), (1, 1)")
    blob = bytes.fromhex("0001") + b"\x00\x01h" + (1).to_bytes(4, "big") + b"v"
    for pid in (1, 2):
        for offset in range(3):
            conn.execute(
                "INSERT INTO stream_records (id, ts, cum_bytes, key, headers, payload)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                ((pid << 47) + offset, now, 3 * (offset + 1), b"k", blob, b"p%d" % offset),
            )
    conn.execute(
        "INSERT INTO stream_offsets (grp, pid, committed, committed_at) VALUES ('g', 1, 2, ?)",
        (now,),
    )
    conn.execute("COMMIT")
    conn.close()


def kafka_batch(values: list[bytes], ts_ms: int) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for i, value in enumerate(values):
        builder.append(i, timestamp=ts_ms + i, key=b"key", value=value, headers=[("h", b"x")])
    return bytes(builder.build())


def append_batch(path: Path, partition: int, values: list[bytes], ts_ms: int) -> int:
    with Database(path) as db, db.write() as conn:
        row = log.load_topic(conn, "t")
        assert row is not None
        return log.append_batch(
            conn, row.pids[partition], kafka_batch(values, ts_ms), len(values), time.time()
        )


def test_a_version_3_file_is_migrated_with_every_record_and_offset(db_path: Path) -> None:
    make_v3_file(db_path)
    with Stream(db_path, "t") as stream:
        assert stream.end_offsets() == {0: 3, 1: 3}
        records = stream.read(0, 0)
        assert [(r.offset, r.key, r.payload, dict(r.headers)) for r in records] == [
            (i, b"k", b"p%d" % i, {"h": b"v"}) for i in range(3)
        ]
        assert stream.append(b"next", key=b"k").offset == 3
        assert stream.groups()[0].partitions[0].committed == 2
        version = stream._db.conn.execute("PRAGMA user_version").fetchone()[0]
        assert version == _schema.SCHEMA_VERSION == 4


def test_batch_rows_are_read_record_by_record_between_ordinary_rows(db_path: Path) -> None:
    with Stream(db_path, "t") as stream:
        stream.append(b"a")
        ts_ms = int(time.time() * 1000) - 5000
        assert append_batch(db_path, 0, [b"b", b"c", b"d"], ts_ms) == 1
        assert stream.append(b"e").offset == 4
        assert stream.end_offsets() == {0: 5}
        assert [(r.offset, r.payload) for r in stream.read(0, 0)] == list(
            enumerate([b"a", b"b", b"c", b"d", b"e"])
        )
        middle = stream.read(0, 2, max_records=2)
        assert [r.offset for r in middle] == [2, 3]
        assert middle[0].key == b"key" and dict(middle[0].headers) == {"h": b"x"}
        assert middle[0].timestamp == (ts_ms + 1) / 1000
        consumer = stream.consumer("g")
        polled = consumer.poll(timeout=1)
        assert [r.payload for r in polled] == [b"a", b"b", b"c", b"d", b"e"]
        consumer.commit()
        assert consumer.committed() == {0: 5}


def test_retention_deletes_whole_batch_rows_only(db_path: Path) -> None:
    with Stream(db_path, "t") as stream:
        append_batch(db_path, 0, [b"x" * 100] * 4, int(time.time() * 1000))
        append_batch(db_path, 0, [b"y" * 100] * 4, int(time.time() * 1000))
    with Stream(db_path, "t", retention=Retention(max_bytes=300)) as stream:
        stream.apply_retention()
        assert stream.earliest_offsets() == {0: 4}
        assert [r.payload[:1] for r in stream.read(0, 0)] == [b"y"] * 4
