"""Stream basics: appending, reading through groups, offsets, seeking, introspection."""

from __future__ import annotations

import time
from pathlib import Path

from sqlitequeue import Offset, Record, Stream
from sqlitequeue._stream_codec import murmur2, partition_for_key
from sqlitequeue.stream import groups, topics


def drain(consumer, max_records: int = 1000) -> list[Record]:
    """Poll until nothing more arrives right away."""
    out: list[Record] = []
    while batch := consumer.poll(max_records, timeout=0):
        out += batch
    return out


def test_append_returns_offsets_and_poll_returns_records(db_path: Path) -> None:
    with Stream(db_path, "events") as stream:
        first = stream.append(b"one", key=b"k", headers={"trace": b"42"})
        second = stream.append(bytearray(b"two"), key=b"k")
        assert first == Offset(0, 0) and second == Offset(0, 1)
        consumer = stream.consumer("g")
        records = consumer.poll(10, timeout=0)
    assert [(r.partition, r.offset, r.key, r.payload) for r in records] == [
        (0, 0, b"k", b"one"),
        (0, 1, b"k", b"two"),
    ]
    assert records[0].headers == {"trace": b"42"} and records[1].headers == {}
    assert records[0].topic == "events" and abs(records[0].timestamp - time.time()) < 60


def test_append_many_spreads_keyless_records_round_robin(db_path: Path) -> None:
    with Stream(db_path, "t", partitions=4) as stream:
        offsets = stream.append_many([b"%d" % i for i in range(8)])
        assert sorted(o.partition for o in offsets) == [0, 0, 1, 1, 2, 2, 3, 3]
        assert stream.end_offsets() == {0: 2, 1: 2, 2: 2, 3: 2}


def test_same_key_same_partition_in_order(db_path: Path) -> None:
    with Stream(db_path, "t", partitions=4) as stream:
        keys = [b"user-%d" % (i % 5) for i in range(50)]
        offsets = stream.append_many([b"%d" % i for i in range(50)], keys=keys)
        for key, offset in zip(keys, offsets, strict=True):
            assert offset.partition == partition_for_key(key, 4)
        records = drain(stream.consumer("g"))
    by_key: dict[bytes | None, list[int]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(int(r.payload))
    assert sum(map(len, by_key.values())) == 50
    assert all(seq == sorted(seq) for seq in by_key.values())


def test_key_hash_is_kafkas_murmur2() -> None:
    # Vectors from Kafka's own partitioner tests: same key -> same partition as Kafka.
    assert murmur2(b"21") == -973932308 & 0xFFFFFFFF
    assert murmur2(b"foobar") == -790332482 & 0xFFFFFFFF
    assert murmur2(b"") == 275646681


def test_two_groups_read_every_record_independently(db_path: Path) -> None:
    with Stream(db_path, "t", partitions=3) as stream:
        stream.append_many([b"%d" % i for i in range(30)])
        a, b = stream.consumer("analytics"), stream.consumer("archiver")
        got_a = drain(a)
        a.commit()
        got_b = drain(b)
        assert sorted(r.payload for r in got_a) == sorted(r.payload for r in got_b)
        assert len(got_a) == 30
        stream.append(b"late")
        assert [r.payload for r in drain(a)] == [b"late"]
        assert [r.payload for r in drain(b)] == [b"late"]


def test_committed_offsets_survive_restart_and_uncommitted_are_redelivered(
    db_path: Path,
) -> None:
    with Stream(db_path, "t") as stream:
        stream.append_many([b"%d" % i for i in range(10)])
        consumer = stream.consumer("g")
        assert len(consumer.poll(4, timeout=0)) == 4
        consumer.commit()
        assert len(consumer.poll(3, timeout=0)) == 3  # polled, never committed
    with Stream(db_path, "t") as stream:
        records = drain(stream.consumer("g"))
    assert [r.offset for r in records] == list(range(4, 10))


def test_commit_with_explicit_offsets(db_path: Path) -> None:
    with Stream(db_path, "t", partitions=2) as stream:
        stream.append_many([b"x"] * 10)
        consumer = stream.consumer("g")
        drain(consumer)
        consumer.commit({0: 2, 1: 1})
        assert consumer.committed() == {0: 2, 1: 1}
        consumer.commit([Offset(0, 3)])
        consumer.close()
        records = drain(stream.consumer("g"))
    assert sorted((r.partition, r.offset) for r in records) == [
        (0, 3),
        (0, 4),
        (1, 1),
        (1, 2),
        (1, 3),
        (1, 4),
    ]


def test_replay_after_seek(db_path: Path) -> None:
    with Stream(db_path, "t") as stream:
        stream.append_many([b"%d" % i for i in range(5)])
        consumer = stream.consumer("g")
        drain(consumer)
        consumer.seek(0, 2)
        assert consumer.position() == {0: 2}
        assert [r.offset for r in drain(consumer)] == [2, 3, 4]
        consumer.seek_to_beginning()
        assert len(drain(consumer)) == 5
        consumer.seek_to_end()
        assert drain(consumer) == []


def test_seek_to_timestamp(db_path: Path) -> None:
    with Stream(db_path, "t") as stream:
        stream.append_many([b"old1", b"old2"])
        time.sleep(0.05)
        middle = time.time()
        time.sleep(0.05)
        stream.append(b"new")
        consumer = stream.consumer("g")
        assert consumer.seek_to_timestamp(middle) == {0: 2}
        assert [r.payload for r in drain(consumer)] == [b"new"]
        assert consumer.seek_to_timestamp(0) == {0: 0}
        assert consumer.seek_to_timestamp(time.time() + 60) == {0: 3}
        assert stream.offsets_for_timestamp(middle) == {0: 2}


def test_start_latest_skips_history_and_is_stored(db_path: Path) -> None:
    with Stream(db_path, "t") as stream:
        stream.append_many([b"old"] * 3)
        consumer = stream.consumer("g", start="latest")
        assert consumer.position() == {0: 3}
        consumer.close()
        stream.append(b"new")
        # The group's starting offset was stored at once, so "new" is not skipped.
        assert [r.payload for r in drain(stream.consumer("g", start="latest"))] == [b"new"]


def test_offsets_strictly_increase_across_restarts(db_path: Path) -> None:
    offsets: dict[int, list[int]] = {0: [], 1: []}
    for _ in range(3):
        with Stream(db_path, "t", partitions=2) as stream:
            for o in [*stream.append_many([b"x"] * 4), stream.append(b"y", key=b"k")]:
                offsets[o.partition].append(o.offset)
    for sequence in offsets.values():
        assert sequence == list(range(len(sequence)))


def test_lag_position_and_assignment(db_path: Path) -> None:
    with Stream(db_path, "t", partitions=2) as stream:
        stream.append_many([b"x"] * 6)
        consumer = stream.consumer("g")
        assert consumer.assignment() == [0, 1]
        assert consumer.lag() == {0: 3, 1: 3}
        consumer.poll(2, timeout=0)
        assert sum(consumer.lag().values()) == 4
        assert sum(consumer.position().values()) == 2


def test_topics_and_groups_introspection(db_path: Path) -> None:
    with Stream(db_path, "orders", partitions=2) as stream:
        stream.append_many([b"abc"] * 4)
        consumer = stream.consumer("billing")
        consumer.poll(1, timeout=0)
        consumer.commit()
        Stream(db_path, "audit").close()
        assert [t.name for t in topics(db_path)] == ["audit", "orders"]
        info = {t.name: t for t in stream.topics()}
        assert info["orders"].records == 4 and info["orders"].bytes == 12
        assert [p.end for p in info["orders"].partitions] == [2, 2]
        assert info["audit"].records == 0
        (group,) = groups(db_path, topic="orders")
        assert group.group == "billing" and group.members == (consumer.member,)
        assert group.lag == 3
        assert sorted(p.committed for p in group.partitions) == [0, 1]
        assert all(p.owner == consumer.member for p in group.partitions)
        consumer.close()
        (group,) = stream.groups()
        assert group.members == () and all(p.owner is None for p in group.partitions)


def test_reset_offsets(db_path: Path) -> None:
    with Stream(db_path, "t") as stream:
        stream.append_many([b"x"] * 5)
        consumer = stream.consumer("g")
        drain(consumer)
        consumer.commit()
        consumer.close()
        assert stream.reset_offsets("g", to="earliest") == {0: 0}
        assert stream.reset_offsets("g", to=3, dry_run=True) == {0: 3}
        assert stream.groups()[0].partitions[0].committed == 0
        assert stream.reset_offsets("g", to="latest") == {0: 5}
        assert stream.reset_offsets("g", timestamp=0) == {0: 0}
        assert len(drain(stream.consumer("g"))) == 5


def test_topics_share_a_file_with_queues_and_each_other(db_path: Path) -> None:
    from sqlitequeue.queue import Queue

    with Stream(db_path, "a") as a, Stream(db_path, "b", partitions=3) as b:
        a.append(b"to a")
        b.append(b"to b")
        assert [r.payload for r in drain(a.consumer("g"))] == [b"to a"]
        assert [r.payload for r in drain(b.consumer("g"))] == [b"to b"]
        with Queue(db_path) as queue:
            queue.put(b"job")
            message = queue.get(timeout=0)
            assert message is not None and message.payload == b"job"


def test_read_without_group(db_path: Path) -> None:
    with Stream(db_path, "t") as stream:
        stream.append_many([b"%d" % i for i in range(5)])
        assert [r.offset for r in stream.read(0, 3)] == [3, 4]
        assert [r.offset for r in stream.read(0, 0, max_records=2)] == [0, 1]
        assert stream.read(0, 99) == []
        assert stream.groups() == []
