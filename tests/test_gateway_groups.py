"""The classic group protocol through the gateway: members join, leave and time out while
records flow; no record is lost and each key's records arrive in order."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer
from kafka.protocol.consumer import JoinGroupRequest, JoinGroupResponse

from sqlitequeue import Stream
from sqlitequeue.gateway import serve
from tests.gateway_wire import RawConnection

TOPIC = "flow"
KEYS = 12


class Member(threading.Thread):
    """A confluent-kafka consumer that records what it reads and commits after each poll."""

    def __init__(self, bootstrap: str, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.bootstrap = bootstrap
        self.seen: list[tuple[bytes, int]] = []  # (key, sequence)
        self.stop = threading.Event()
        self.assigned = threading.Event()

    def run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": "flow-group",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "heartbeat.interval.ms": 200,
                "session.timeout.ms": 6000,
                "topic.metadata.refresh.interval.ms": 1000,
            }
        )
        consumer.subscribe([TOPIC], on_assign=lambda c, parts: self.assigned.set())
        while not self.stop.is_set():
            messages = consumer.consume(100, 0.2)
            for message in messages:
                if message.error() is None:
                    self.seen.append((message.key(), int(message.value())))
            if messages:
                with contextlib.suppress(KafkaException):  # a rebalance: redelivery allowed
                    consumer.commit(asynchronous=False)
        consumer.close()  # sends LeaveGroup


def test_three_members_join_and_leave_while_records_flow(db_path: Path) -> None:
    with Stream(db_path, TOPIC, partitions=6):
        pass
    with serve(db_path) as server:
        producer = Producer({"bootstrap.servers": server.bootstrap, "linger.ms": 2})
        sent: dict[bytes, list[int]] = defaultdict(list)
        sequence = 0

        def produce_for(seconds: float) -> None:
            nonlocal sequence
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                for _ in range(20):
                    key = b"key-%d" % (sequence % KEYS)
                    producer.produce(TOPIC, key=key, value=b"%d" % sequence)
                    sent[key].append(sequence)
                    sequence += 1
                producer.poll(0)
                time.sleep(0.01)

        members = [Member(server.bootstrap, f"m{i}") for i in range(3)]
        members[0].start()
        assert members[0].assigned.wait(20)
        produce_for(1.0)
        members[1].start()
        produce_for(1.0)
        members[2].start()
        produce_for(1.5)
        members[0].stop.set()  # leaves mid-stream
        produce_for(1.5)
        assert producer.flush(10) == 0
        deadline = time.monotonic() + 30
        total = sum(len(v) for v in sent.values())
        while time.monotonic() < deadline:
            got = {(k, s) for m in members for k, s in m.seen}
            if len(got) >= total:
                break
            time.sleep(0.2)
        for member in members:
            member.stop.set()
        for member in members:
            member.join(15)
    got = {(k, s) for m in members for k, s in m.seen}
    assert got == {(k, s) for k, seqs in sent.items() for s in seqs}  # nothing lost
    for member in members:  # each member saw each key's records in the order sent
        by_key: dict[bytes, list[int]] = defaultdict(list)
        for key, seq in member.seen:
            by_key[key].append(seq)
        for seqs in by_key.values():
            firsts = [s for i, s in enumerate(seqs) if s not in seqs[:i]]
            assert firsts == sorted(firsts)
    assert sum(1 for m in members if m.seen) >= 2  # the work was shared


def join(conn: RawConnection, member_id: str, session_ms: int) -> object:
    request = JoinGroupRequest(
        group_id="hb",
        session_timeout_ms=session_ms,
        rebalance_timeout_ms=5000,
        member_id=member_id,
        group_instance_id=None,
        protocol_type="consumer",
        protocols=[JoinGroupRequest.JoinGroupRequestProtocol(name="range", metadata=b"")],
    )
    return conn.request(request, 5, JoinGroupResponse)


def test_a_member_that_stops_heartbeating_is_dropped_and_the_group_rebalances(
    db_path: Path,
) -> None:
    with serve(db_path) as server:
        quiet, live = RawConnection(server.bootstrap), RawConnection(server.bootstrap)
        first = join(quiet, "", 500)
        assert first.error_code == 79  # MEMBER_ID_REQUIRED (KIP-394): join again with it
        joined = join(quiet, first.member_id, 500)
        assert (joined.error_code, joined.generation_id) == (0, 1)
        # ``quiet`` never heartbeats: the next member's join completes once it is dropped
        second = join(live, join(live, "", 10_000).member_id, 10_000)
        assert second.error_code == 0 and second.generation_id == 2
        assert [m.member_id for m in second.members] == [second.member_id]
        quiet.close()
        live.close()
