"""Bad arguments give clear errors, and nothing partial is ever stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlitequeue import (
    Closed,
    InvalidArgument,
    NotPartitionOwner,
    OffsetOutOfRange,
    PayloadTooLarge,
    Retention,
    Stream,
)


@pytest.fixture
def stream(db_path: Path):
    with Stream(db_path, "t", partitions=2, max_payload_size=100) as s:
        yield s


@pytest.mark.parametrize("payload", ["text", 42, None, [b"x"]])
def test_payload_must_be_bytes_like(stream: Stream, payload: object) -> None:
    with pytest.raises(TypeError, match="payload must be bytes-like"):
        stream.append(payload)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="payload #1 must be bytes-like"):
        stream.append_many([b"ok", payload])  # type: ignore[list-item]
    assert stream.end_offsets() == {0: 0, 1: 0}


def test_text_payload_error_says_how_to_fix(stream: Stream) -> None:
    with pytest.raises(TypeError, match=r"encode text first"):
        stream.append("hello")  # type: ignore[arg-type]


def test_key_and_headers_types(stream: Stream) -> None:
    with pytest.raises(TypeError, match="key must be str, bytes-like or None"):
        stream.append(b"x", key=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="header names must be str"):
        stream.append(b"x", headers={1: b"v"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="header 'h' must be bytes-like"):
        stream.append(b"x", headers={"h": "text"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="headers must be a dict"):
        stream.append(b"x", headers=[("h", b"v")])  # type: ignore[arg-type]
    assert stream.end_offsets() == {0: 0, 1: 0}


def test_payload_too_large_stores_nothing(stream: Stream) -> None:
    with pytest.raises(PayloadTooLarge, match="over the maximum of 100 bytes"):
        stream.append(b"x" * 101)
    with pytest.raises(PayloadTooLarge):
        stream.append_many([b"small", b"x" * 101])
    with pytest.raises(PayloadTooLarge):
        stream.append(b"x" * 90, key=b"k" * 20)  # key counts towards the size
    assert stream.end_offsets() == {0: 0, 1: 0}


def test_append_many_argument_mismatches(stream: Stream) -> None:
    with pytest.raises(InvalidArgument, match="keys has 1 items for 2 payloads"):
        stream.append_many([b"a", b"b"], keys=[b"k"])
    with pytest.raises(InvalidArgument, match=r"either key= .* or keys="):
        stream.append_many([b"a"], key=b"k", keys=[b"k"])
    with pytest.raises(InvalidArgument, match="headers has 1 items"):
        stream.append_many([b"a", b"b"], headers=[{"h": b"v"}])
    assert stream.append_many([]) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"partitions": 0}, "partitions must be >= 1"),
        ({"partitions": "4"}, "partitions must be an int"),
        ({"retention": 3600}, "retention must be a sqlitequeue.stream.Retention"),
        ({"durability": "fast"}, "durability must be one of"),
        ({"max_payload_size": 0}, "max_payload_size must be >= 1"),
    ],
)
def test_bad_stream_arguments(db_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        Stream(db_path, "t", **kwargs)


@pytest.mark.parametrize("topic", ["", "has space", "a/b", None, "x" * 250])
def test_bad_topic_names(db_path: Path, topic: object) -> None:
    with pytest.raises(InvalidArgument, match="topic must be"):
        Stream(db_path, topic)  # type: ignore[arg-type]


def test_partition_count_mismatch_and_missing_topic(db_path: Path) -> None:
    Stream(db_path, "t", partitions=4).close()
    with pytest.raises(InvalidArgument, match="has 4 partitions, not 2"):
        Stream(db_path, "t", partitions=2)
    with Stream(db_path, "t") as stream:
        assert stream.partitions == 4
    with pytest.raises(InvalidArgument, match="has no topic 'missing'; its topics are: t"):
        Stream(db_path, "missing", create=False)


def test_bad_retention_values() -> None:
    with pytest.raises(InvalidArgument, match="max_age must be >= 0"):
        Retention(max_age=-1)
    with pytest.raises(InvalidArgument, match="max_bytes must be an int"):
        Retention(max_bytes=1.5)  # type: ignore[arg-type]


def test_bad_consumer_arguments(stream: Stream) -> None:
    with pytest.raises(InvalidArgument, match="start must be 'earliest' or 'latest'"):
        stream.consumer("g", start="beginning")
    with pytest.raises(InvalidArgument, match="group must be a non-empty str"):
        stream.consumer("")
    with pytest.raises(InvalidArgument, match="lease must be > 0"):
        stream.consumer("g", lease=0)
    consumer = stream.consumer("g")
    with pytest.raises(InvalidArgument, match="max_records must be >= 1"):
        consumer.poll(0)
    with pytest.raises(InvalidArgument, match="timeout must be >= 0"):
        consumer.poll(1, timeout=-1)


def test_unknown_partition_and_bad_offsets(stream: Stream) -> None:
    stream.append_many([b"x"] * 4)
    consumer = stream.consumer("g")
    with pytest.raises(InvalidArgument, match=r"partitions 0\.\.1; there is no partition 2"):
        consumer.seek(2, 0)
    with pytest.raises(InvalidArgument, match="offset must be >= 0"):
        consumer.seek(0, -1)
    with pytest.raises(InvalidArgument, match="partition must be an int"):
        consumer.seek("0", 0)  # type: ignore[arg-type]
    with pytest.raises(OffsetOutOfRange, match="offset 3 is outside partition 0"):
        consumer.seek(0, 3)
    with pytest.raises(OffsetOutOfRange):
        consumer.commit({0: 99})
    with pytest.raises(InvalidArgument, match="no partition 5"):
        consumer.commit({5: 0})
    with pytest.raises(InvalidArgument, match="offsets must be a dict"):
        consumer.commit(7)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="offset must be >= 0"):
        stream.read(0, -5)
    with pytest.raises(InvalidArgument, match="no partition 9"):
        stream.read(9, 0)
    with pytest.raises(OffsetOutOfRange):
        stream.reset_offsets("other", to=10)
    with pytest.raises(InvalidArgument, match="exactly one of to= and timestamp="):
        stream.reset_offsets("other")
    with pytest.raises(InvalidArgument, match="timestamp must be a number"):
        consumer.seek_to_timestamp("yesterday")  # type: ignore[arg-type]


def test_seek_on_partition_owned_by_another_member(stream: Stream) -> None:
    first = stream.consumer("g", lease=5)
    second = stream.consumer("g", lease=5)
    # first owned both partitions; the second waits until first hands one over.
    assert first.assignment() == [0, 1] and second.assignment() == []
    with pytest.raises(NotPartitionOwner, match="not assigned to member"):
        second.seek(0, 0)


def test_reset_refused_while_group_has_live_members(stream: Stream) -> None:
    stream.consumer("g")
    with pytest.raises(Exception, match="has 1 live member"):
        stream.reset_offsets("g", to="earliest")


def test_use_after_close(stream: Stream) -> None:
    consumer = stream.consumer("g")
    consumer.close()
    consumer.close()
    with pytest.raises(Closed, match="was closed"):
        consumer.poll(1, timeout=0)
    with pytest.raises(Closed):
        consumer.commit()
    stream.close()
    with pytest.raises(Closed):
        stream.append(b"x")
