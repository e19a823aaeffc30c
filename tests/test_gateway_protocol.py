"""The gateway's answers at the protocol level, with raw requests no client library would
send: an idempotent retry, an out-of-order sequence, a corrupt batch, fetches out of range,
ListOffsets, transactions refused, an unsupported API version, an oversized frame."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pytest
from kafka.protocol.consumer import (
    FetchRequest,
    FetchResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
)
from kafka.protocol.metadata import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.producer import (
    InitProducerIdRequest,
    InitProducerIdResponse,
    ProduceRequest,
    ProduceResponse,
)
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

from sqlitequeue import Stream
from sqlitequeue.gateway import Server, serve
from tests.gateway_wire import RawConnection

PRODUCE_V = 9
CORRUPT_MESSAGE = 2
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
OFFSET_OUT_OF_RANGE = 1
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53


@pytest.fixture
def server(db_path: Path) -> Iterator[Server]:
    with Stream(db_path, "t"):
        pass  # the topic exists before any produce
    with serve(db_path) as running:
        yield running


@pytest.fixture
def conn(server: Server) -> Iterator[RawConnection]:
    connection = RawConnection(server.bootstrap)
    yield connection
    connection.close()


def batch(values: list[bytes], producer_id: int = -1, sequence: int = -1) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=producer_id,
        producer_epoch=0 if producer_id >= 0 else -1,
        base_sequence=sequence,
        batch_size=1 << 20,
    )
    now = int(time.time() * 1000)
    for i, value in enumerate(values):
        builder.append(i, timestamp=now, key=None, value=value, headers=[])
    return bytes(builder.build())


def produce_request(records: bytes, topic: str = "t") -> ProduceRequest:
    return ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout_ms=5000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name=topic,
                partition_data=[
                    ProduceRequest.TopicProduceData.PartitionProduceData(index=0, records=records)
                ],
            )
        ],
    )


def produce(conn: RawConnection, records: bytes, topic: str = "t") -> tuple[int, int]:
    """Produce one batch with acks=all; return (error code, base offset)."""
    request = produce_request(records, topic)
    response = conn.request(request, PRODUCE_V, ProduceResponse)
    part = response.responses[0].partition_responses[0]
    return part.error_code, part.base_offset


def payloads(db_path: Path) -> list[bytes]:
    with Stream(db_path, "t") as stream:
        return [r.payload for r in stream.read(0, 0, 1000)]


def test_an_idempotent_retry_is_acknowledged_once_and_a_gap_is_refused(
    conn: RawConnection, db_path: Path
) -> None:
    init = conn.request(
        InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000),
        4,
        InitProducerIdResponse,
    )
    assert init.error_code == 0 and init.producer_id >= 0
    pid = init.producer_id
    first = batch([b"a", b"b"], pid, 0)
    assert produce(conn, first) == (0, 0)
    assert produce(conn, first) == (0, 0)  # the retry: same offset, not stored again
    assert produce(conn, batch([b"c"], pid, 2)) == (0, 2)
    assert produce(conn, batch([b"x"], pid, 7))[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert payloads(db_path) == [b"a", b"b", b"c"]


def test_a_retry_on_another_connection_while_the_original_commits_is_stored_once(
    server: Server, db_path: Path
) -> None:
    """The same idempotent batch on two connections while the writer is held before its
    commit (another connection holds the file's write lock): one is stored, the other is
    refused at once, as an out-of-order sequence, while the first still waits."""
    first, second = RawConnection(server.bootstrap), RawConnection(server.bootstrap)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        pid = first.request(
            InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000),
            4,
            InitProducerIdResponse,
        ).producer_id
        sent = batch([b"a", b"b"], pid, 0)
        blocker.execute("BEGIN IMMEDIATE")  # the writer cannot commit until it ends
        with ThreadPoolExecutor(2) as pool:
            answers = [pool.submit(produce, conn, sent) for conn in (first, second)]
            done, waiting = wait(answers, timeout=10, return_when=FIRST_COMPLETED)
            assert len(done) == 1 and len(waiting) == 1  # one answered, one held in its commit
            assert done.pop().result()[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
            blocker.execute("COMMIT")
            assert waiting.pop().result(timeout=10) == (0, 0)
        assert payloads(db_path) == [b"a", b"b"]
        assert produce(second, sent) == (0, 0)  # now stored: a retry, answered, not stored
        assert payloads(db_path) == [b"a", b"b"]
    finally:
        blocker.close()
        first.close()
        second.close()


def test_pipelined_idempotent_requests_are_stored_once_in_order(
    conn: RawConnection, db_path: Path
) -> None:
    """Requests sent without waiting (as a producer with several in flight does) are all
    accepted while earlier ones commit; answers come back in order; a gap after them is
    still refused."""
    pid = conn.request(
        InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000),
        4,
        InitProducerIdResponse,
    ).producer_id
    frames = []
    for i in range(40):
        request = produce_request(batch([b"%d" % (2 * i), b"%d" % (2 * i + 1)], pid, 2 * i))
        request.with_header(correlation_id=1000 + i, client_id="pipelined")
        frames.append(bytes(request.encode(version=PRODUCE_V, header=True, framed=True)))
    gap = produce_request(batch([b"gap"], pid, 200))
    gap.with_header(correlation_id=1040, client_id="pipelined")
    frames.append(bytes(gap.encode(version=PRODUCE_V, header=True, framed=True)))
    conn.send_bytes(b"".join(frames))
    answers = []
    for _ in frames:
        frame = conn.read_frame()
        correlation_id = int.from_bytes(frame[:4], "big")
        body = ProduceResponse.decode(frame[5:], version=PRODUCE_V)  # flexible header
        part = body.responses[0].partition_responses[0]
        answers.append((correlation_id, part.error_code, part.base_offset))
    assert answers[:40] == [(1000 + i, 0, 2 * i) for i in range(40)]
    assert answers[40][:2] == (1040, OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert payloads(db_path) == [b"%d" % n for n in range(80)]


def test_an_idempotent_retry_after_a_restart_is_still_recognised(db_path: Path) -> None:
    with Stream(db_path, "t"):
        pass
    with serve(db_path) as server:
        conn = RawConnection(server.bootstrap)
        pid = conn.request(
            InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000),
            4,
            InitProducerIdResponse,
        ).producer_id
        sent = batch([b"a"], pid, 0)
        assert produce(conn, sent) == (0, 0)
        conn.close()
    with serve(db_path) as server:
        conn = RawConnection(server.bootstrap)
        assert produce(conn, sent) == (0, 0)
        conn.close()
    assert payloads(db_path) == [b"a"]


def test_a_corrupt_batch_is_refused_and_nothing_is_written(
    conn: RawConnection, db_path: Path
) -> None:
    good = bytearray(batch([b"one", b"two"]))
    good[-1] ^= 0xFF  # flip a bit of the last value: the CRC no longer matches
    assert produce(conn, bytes(good))[0] == CORRUPT_MESSAGE
    assert produce(conn, bytes(good)[:-5])[0] == CORRUPT_MESSAGE  # truncated
    assert produce(conn, b"\x00" * 70)[0] == UNSUPPORTED_FOR_MESSAGE_FORMAT  # magic 0
    assert payloads(db_path) == []
    assert produce(conn, batch([b"fine"])) == (0, 0)  # the connection still works


def fetch(
    conn: RawConnection, offset: int, wait_ms: int = 0, min_bytes: int = 1, max_bytes: int = 1 << 20
) -> Any:
    request = FetchRequest(
        replica_id=-1,
        max_wait_ms=wait_ms,
        min_bytes=min_bytes,
        max_bytes=1 << 20,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,
        topics=[
            FetchRequest.FetchTopic(
                topic="t",
                partitions=[
                    FetchRequest.FetchTopic.FetchPartition(
                        partition=0, fetch_offset=offset, partition_max_bytes=max_bytes
                    )
                ],
            )
        ],
        forgotten_topics_data=[],
        rack_id="",
    )
    return conn.request(request, 11, FetchResponse).responses[0].partitions[0]


def test_fetch_reports_watermarks_out_of_range_and_long_polls(
    conn: RawConnection, db_path: Path
) -> None:
    with Stream(db_path, "t") as stream:
        stream.append_many([b"r0", b"r1", b"r2"])
    part = fetch(conn, 1)
    assert (part.error_code, part.high_watermark, part.log_start_offset) == (0, 3, 0)
    assert part.records  # the batch holding offsets 1 and 2
    assert fetch(conn, 4).error_code == OFFSET_OUT_OF_RANGE
    started = time.monotonic()
    part = fetch(conn, 3, wait_ms=300)
    assert part.records in (b"", None) and time.monotonic() - started >= 0.25


def test_fetch_max_bytes_limits_records_but_returns_at_least_one(
    conn: RawConnection, db_path: Path
) -> None:
    with Stream(db_path, "t") as stream:
        stream.append_many([b"x" * 1000] * 10)
    batches = MemoryRecords(fetch(conn, 0, max_bytes=2500).records)
    offsets = [record.offset for fetched in batches for record in fetched]
    assert 1 <= len(offsets) <= 3 and offsets[0] == 0
    produce(conn, batch([b"y" * 5000]))
    one = list(MemoryRecords(fetch(conn, 10, max_bytes=100).records))
    assert [r.offset for b in one for r in b] == [10]  # over the limit, still one batch


def test_list_offsets_earliest_latest_and_by_timestamp(conn: RawConnection, db_path: Path) -> None:
    with Stream(db_path, "t") as stream:
        stream.append_many([b"old"] * 2)
        time.sleep(0.05)
        middle = int(time.time() * 1000)
        time.sleep(0.05)
        stream.append(b"new")

    def offset_at(timestamp: int) -> int:
        request = ListOffsetsRequest(
            replica_id=-1,
            isolation_level=0,
            topics=[
                ListOffsetsRequest.ListOffsetsTopic(
                    name="t",
                    partitions=[
                        ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
                            partition_index=0, timestamp=timestamp
                        )
                    ],
                )
            ],
        )
        response = conn.request(request, 7, ListOffsetsResponse)
        return response.topics[0].partitions[0].offset

    assert (offset_at(-2), offset_at(-1), offset_at(middle)) == (0, 3, 2)
    assert offset_at(int(time.time() * 1000) + 60_000) == -1


def test_transactions_are_refused_with_the_protocols_error(conn: RawConnection) -> None:
    init = conn.request(
        InitProducerIdRequest(transactional_id="tx", transaction_timeout_ms=60000),
        4,
        InitProducerIdResponse,
    )
    assert init.error_code == TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def test_an_unsupported_api_versions_version_gets_the_supported_list(conn: RawConnection) -> None:
    conn.send_bytes(
        b"\x00\x00\x00\x0a" + b"\x00\x12" + b"\x00\x63" + b"\x00\x00\x00\x07" + b"\xff\xff"
    )
    size = int.from_bytes(conn._read(4), "big")
    frame = conn._read(size)
    response = ApiVersionsResponse.decode(frame[4:], version=0)
    assert response.error_code == 35  # UNSUPPORTED_VERSION
    assert {k.api_key for k in response.api_keys} >= {0, 1, 3, 11, 18}
    answer = conn.request(ApiVersionsRequest(), 3, ApiVersionsResponse)
    assert answer.error_code == 0


def test_an_oversized_frame_closes_only_that_connection(server: Server) -> None:
    small = Server(server.path, port=0, max_request_bytes=1000).start()
    try:
        bad = RawConnection(small.bootstrap)
        bad.send_bytes((5000).to_bytes(4, "big") + b"\x00" * 100)
        assert bad.closed_by_server()
        good = RawConnection(small.bootstrap)
        assert good.request(ApiVersionsRequest(), 3, ApiVersionsResponse).error_code == 0
        good.close()
    finally:
        small.close()
