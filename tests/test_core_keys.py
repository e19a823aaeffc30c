"""Keys agree between Queue and Stream: both take str or bytes-like keys.

A Queue returns a key as it was given (str as str, bytes-like as bytes): it is a label. A
Stream hashes its keys to choose a partition (Kafka's murmur2), so a str key is stored, hashed
and read back as its UTF-8 bytes, the bytes Kafka's StringSerializer sends.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlitequeue import InvalidArgument, PayloadTooLarge, Queue, Stream
from sqlitequeue._stream_codec import partition_for_key

LONE_SURROGATE = "user-\ud800"
#: Text, sometimes with a lone surrogate (which UTF-8, and so SQLite, cannot store).
TEXT = st.one_of(st.text(max_size=20), st.text(max_size=20).map(lambda t: t + "\udc80"))
PARTITIONS = 7
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def stream(db_path: Path):
    with Stream(db_path, "t", partitions=PARTITIONS) as s:
        yield s


@pytest.fixture
def queue(db_path: Path):
    with Queue(db_path) as q:
        yield q


# -- Stream --------------------------------------------------------------------------------


def test_a_str_key_is_stored_and_read_back_as_its_utf8_bytes(stream: Stream) -> None:
    offset = stream.append(b"x", key="kunde-7 ü")
    (record,) = stream.read(offset.partition, offset.offset)
    assert record.key == "kunde-7 ü".encode()
    assert offset.partition == partition_for_key("kunde-7 ü".encode(), PARTITIONS)


def test_str_and_bytes_keys_of_the_same_text_share_a_partition(stream: Stream) -> None:
    texts = [f"customer-{i}" for i in range(40)]
    by_str = stream.append_many([b"s"] * len(texts), keys=texts)
    by_bytes = stream.append_many([b"b"] * len(texts), keys=[t.encode() for t in texts])
    assert [o.partition for o in by_str] == [o.partition for o in by_bytes]
    assert len({o.partition for o in by_str}) > 1  # the keys really spread
    one_key = stream.append_many([b"1", b"2"], key="customer-3")
    assert {o.partition for o in one_key} == {by_str[3].partition}


def test_mixed_key_types_in_one_batch(stream: Stream) -> None:
    offsets = stream.append_many([b"a", b"b", b"c", b"d"], keys=["a", b"b", bytearray(b"c"), None])
    keys = [stream.read(o.partition, o.offset, 1)[0].key for o in offsets]
    assert keys == [b"a", b"b", b"c", None]


def test_a_str_key_counts_its_utf8_size_towards_the_limit(db_path: Path) -> None:
    with Stream(db_path, "small", max_payload_size=10) as stream:
        stream.append(b"1234", key="ééé")  # 4 + 6 UTF-8 bytes = 10: fits
        with pytest.raises(PayloadTooLarge, match="record of 11 bytes"):
            stream.append(b"12345", key="ééé")
        assert sum(stream.end_offsets().values()) == 1


def test_a_str_key_with_a_lone_surrogate_is_invalid_and_stores_nothing(stream: Stream) -> None:
    with pytest.raises(InvalidArgument, match=r"key .* lone surrogate"):
        stream.append(b"x", key=LONE_SURROGATE)
    with pytest.raises(InvalidArgument, match="lone surrogate"):
        stream.append_many([b"x", b"y"], keys=["fine", LONE_SURROGATE])
    with pytest.raises(InvalidArgument, match="lone surrogate"):
        stream.append_many([b"x", b"y"], key=LONE_SURROGATE)
    assert sum(stream.end_offsets().values()) == 0


@pytest.mark.parametrize("key", [5, 1.5, ["k"], object()])
def test_other_key_types_are_a_type_error_in_both(
    stream: Stream, queue: Queue, key: object
) -> None:
    with pytest.raises(TypeError, match="key must be str, bytes-like"):
        stream.append(b"x", key=key)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key must be str, bytes-like"):
        stream.append_many([b"x"], keys=[key])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="key must be str, bytes-like"):
        queue.put(b"x", key=key)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key must be str, bytes-like"):
        queue.put_many([b"x"], keys=[key])  # type: ignore[list-item]
    assert sum(stream.end_offsets().values()) == 0
    assert queue.stats().pending == 0


@SETTINGS
@given(text=TEXT)
def test_any_text_key_hashes_like_its_utf8_bytes(stream: Stream, text: str) -> None:
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(InvalidArgument):
            stream.append(b"x", key=text)
        return
    offset = stream.append(b"x", key=text)
    assert offset.partition == partition_for_key(raw, PARTITIONS)
    assert stream.read(offset.partition, offset.offset, 1)[0].key == raw


# -- Queue ---------------------------------------------------------------------------------


def test_queue_returns_a_key_as_it_was_given(queue: Queue) -> None:
    queue.put(b"1", key="text ü")
    queue.put(b"2", key=b"\xff\x00")
    queue.put(b"3", key=bytearray(b"array"))
    queue.put(b"4", key=memoryview(b"view"))
    queue.put_many([b"5", b"6"], keys=(k for k in ["gen", b"gen"]))
    keys = [m.key for m in queue.get_many(10, timeout=0)]
    assert keys == ["text ü", b"\xff\x00", b"array", b"view", "gen", b"gen"]
    assert [type(k) for k in keys] == [str, bytes, bytes, bytes, str, bytes]


def test_a_bytearray_key_is_copied_when_put(queue: Queue) -> None:
    key = bytearray(b"before")
    queue.put(b"x", key=key)
    key[:] = b"after!"
    message = queue.get(timeout=0)
    assert message is not None and message.key == b"before"


@SETTINGS
@given(key=st.one_of(TEXT, st.binary(max_size=20)))
def test_any_queue_key_round_trips(queue: Queue, key: str | bytes) -> None:
    if isinstance(key, str):
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            with pytest.raises(InvalidArgument):
                queue.put(b"x", key=key)
            return
    queue.put(b"x", key=key)
    message = queue.get(timeout=0)
    assert message is not None
    assert message.key == key and type(message.key) is type(key)
    queue.ack(message)
