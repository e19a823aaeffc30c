"""`sqlitequeue serve` with unchanged Python Kafka clients: kafka-python and confluent-kafka.

One file, two interfaces: what a Kafka client produces, Stream reads with key, value,
headers and timestamp intact; what Stream appends, Kafka consumers fetch; a Kafka group
and a Stream group of the same name share committed offsets.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer as ConfluentConsumer
from confluent_kafka import KafkaError
from confluent_kafka import Producer as ConfluentProducer
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin import NewTopic as ConfluentNewTopic
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka import codec as codecs
from kafka.admin import NewTopic

from sqlitequeue import Stream
from sqlitequeue.gateway import Server, serve


@pytest.fixture
def server(db_path: Path) -> Iterator[Server]:
    with serve(db_path) as running:
        yield running


def consume_confluent(bootstrap: str, topic: str, group: str, count: int) -> list[tuple]:
    consumer = ConfluentConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got: list[tuple] = []
    deadline = time.monotonic() + 30
    try:
        while len(got) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            got.append((message.partition(), message.offset(), message.key(), message.value()))
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return got


def test_kafka_python_records_are_read_by_stream_with_everything_intact(
    server: Server, db_path: Path
) -> None:
    producer = KafkaProducer(bootstrap_servers=server.bootstrap)
    sent_ms = int(time.time() * 1000) - 60_000
    for i in range(20):
        producer.send(
            "orders",
            key=b"k%d" % i,
            value=b"v%d" % i,
            headers=[("h", b"%d" % i)],
            timestamp_ms=sent_ms + i,
        )
    producer.flush()
    producer.close()
    with Stream(db_path, "orders") as stream:
        records = stream.read(0, 0)
    assert [(r.offset, r.key, r.payload) for r in records] == [
        (i, b"k%d" % i, b"v%d" % i) for i in range(20)
    ]
    assert [dict(r.headers) for r in records] == [{"h": b"%d" % i} for i in range(20)]
    assert [r.timestamp for r in records] == [(sent_ms + i) / 1000 for i in range(20)]


def test_stream_appends_are_fetched_by_kafka_python_and_offsets_are_shared(
    server: Server, db_path: Path
) -> None:
    with Stream(db_path, "events", partitions=2) as stream:
        stream.append_many([b"s%d" % i for i in range(10)], keys=[b"k%d" % i for i in range(10)])
    consumer = KafkaConsumer(
        "events",
        bootstrap_servers=server.bootstrap,
        group_id="shared",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    got = []
    for message in consumer:
        got.append(message)
        if len(got) == 10:
            break
    consumer.commit()
    consumer.close()
    assert sorted(m.value for m in got) == sorted(b"s%d" % i for i in range(10))
    with Stream(db_path, "events") as stream:
        ends = stream.end_offsets()
        member = stream.consumer("shared")
        assert member.committed() == ends  # the Kafka group's commits, seen by Stream
        assert member.poll(timeout=0.2) == []
        stream.append(b"after", key=b"k0")
        (record,) = member.poll(timeout=2)
        member.commit()
        member.close()
    probe = KafkaConsumer(bootstrap_servers=server.bootstrap, group_id="shared")
    partition = TopicPartition("events", record.partition)
    assert probe.committed(partition) == record.offset + 1  # Stream's commit, seen by Kafka
    probe.close()


def test_confluent_kafka_produces_and_consumes_through_the_gateway(
    server: Server, db_path: Path
) -> None:
    producer = ConfluentProducer({"bootstrap.servers": server.bootstrap, "linger.ms": 5})
    for i in range(50):
        producer.produce("c", key=b"k%d" % (i % 5), value=b"v%d" % i, headers={"n": b"%d" % i})
    assert producer.flush(10) == 0
    got = consume_confluent(server.bootstrap, "c", "cg", 50)
    assert sorted(v for *_, v in got) == sorted(b"v%d" % i for i in range(50))
    with Stream(db_path, "c") as stream:
        assert [r.payload for r in stream.read(0, 0, 100)] == [b"v%d" % i for i in range(50)]
        assert stream.groups()[0].lag == 0


@pytest.mark.parametrize("compression", ["gzip", "lz4", "zstd", "snappy"])
def test_compressed_batches_are_stored_or_refused_with_the_protocols_error(
    server: Server, db_path: Path, compression: str
) -> None:
    """gzip always works; lz4, zstd and snappy when kafka-python finds their package, else
    the producer gets UNSUPPORTED_COMPRESSION_TYPE and nothing is stored."""
    available = getattr(codecs, f"has_{compression}")()
    producer = ConfluentProducer(
        {"bootstrap.servers": server.bootstrap, "compression.type": compression, "retries": 0}
    )
    errors = []
    for i in range(30):
        producer.produce(
            "z", value=b"payload %d " % i * 20, on_delivery=lambda err, _m: errors.append(err)
        )
    assert producer.flush(10) == 0
    with Stream(db_path, "z") as stream:
        stored = [r.payload for r in stream.read(0, 0, 100)]
    if available:
        assert stored == [b"payload %d " % i * 20 for i in range(30)]
        assert errors == [None] * 30
    else:
        assert stored == []
        assert {e.code() for e in errors} == {KafkaError.UNSUPPORTED_COMPRESSION_TYPE}


def test_kafka_and_stream_see_the_same_records_at_the_same_offsets(
    server: Server, db_path: Path
) -> None:
    """Appends through both interfaces, interleaved: every reader sees one sequence."""
    producer = KafkaProducer(bootstrap_servers=server.bootstrap, linger_ms=0)
    with Stream(db_path, "mixed") as stream:
        for i in range(6):
            if i % 2:
                stream.append_many([b"stream-%d-%d" % (i, j) for j in range(3)])
            else:
                for j in range(3):
                    producer.send("mixed", b"kafka-%d-%d" % (i, j))
                producer.flush()
        from_stream = [(r.offset, r.payload) for r in stream.read(0, 0, 100)]
    producer.close()
    consumer = KafkaConsumer(
        "mixed",
        bootstrap_servers=server.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    from_kafka = [(m.offset, m.value) for m in consumer]
    consumer.close()
    assert (
        from_kafka
        == from_stream
        == list(
            enumerate(
                b"%s-%d-%d" % (b"stream" if i % 2 else b"kafka", i, j)
                for i in range(6)
                for j in range(3)
            )
        )
    )


def test_admin_creates_and_deletes_topics(server: Server, db_path: Path) -> None:
    admin = KafkaAdminClient(bootstrap_servers=server.bootstrap)
    admin.create_topics([NewTopic("made", num_partitions=3, replication_factor=1)])
    with Stream(db_path, "made", create=False) as stream:
        assert stream.partitions == 3
    admin.delete_topics(["made"])
    admin.close()
    with Stream(db_path, "other") as stream:
        assert [t.name for t in stream.topics()] == ["other"]


def test_a_topic_created_with_a_larger_max_message_bytes_takes_larger_records(
    server: Server, db_path: Path
) -> None:
    admin = AdminClient({"bootstrap.servers": server.bootstrap})
    config = {"max.message.bytes": str(4 * 1024 * 1024)}
    admin.create_topics([ConfluentNewTopic("large", 1, 1, config=config)])["large"].result(10)
    big = os.urandom(1024 * 1024)
    errors: list[object] = []
    producer = ConfluentProducer(
        {"bootstrap.servers": server.bootstrap, "message.max.bytes": 4 * 1024 * 1024}
    )
    producer.produce("large", big, on_delivery=lambda err, _m: errors.append(err))
    assert producer.flush(10) == 0 and errors == [None]
    with Stream(db_path, "large") as stream:
        assert [r.payload for r in stream.read(0, 0)] == [big]


def test_concurrent_producers_share_commits_and_lose_nothing(server: Server, db_path: Path) -> None:
    """Several producers (several connections) at once: their appends may share a
    transaction; every record is stored once and each producer's order is kept."""

    def send(name: bytes) -> None:
        producer = ConfluentProducer(
            {"bootstrap.servers": server.bootstrap, "linger.ms": 1, "enable.idempotence": True}
        )
        for i in range(400):
            producer.produce("busy", key=name, value=b"%s-%d" % (name, i))
            producer.poll(0)
        assert producer.flush(20) == 0

    with Stream(db_path, "busy"):
        pass
    threads = [threading.Thread(target=send, args=(b"p%d" % n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with Stream(db_path, "busy") as stream:
        records = stream.read(0, 0, 10_000)
    assert [r.offset for r in records] == list(range(1600))
    for n in range(4):
        mine = [r.payload for r in records if r.key == b"p%d" % n]
        assert mine == [b"p%d-%d" % (n, i) for i in range(400)]
