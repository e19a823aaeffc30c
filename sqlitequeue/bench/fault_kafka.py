"""Fault trials against a real Apache Kafka (confluent-kafka clients, acks=all, idempotent).

Consumer and producer crashes run on a shared broker; broker crashes on a broker the lab
may kill (single node) or on a 3-node cluster (RF=3, min.insync.replicas=2).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from sqlitequeue.bench.fault_lab import (
    Case,
    Lab,
    Trial,
    Worker,
    throughput,
    trial_row,
    wait_for,
    wait_until,
)
from sqlitequeue.bench.fault_ledger import Event, account, first_time, ids_of
from sqlitequeue.bench.fault_workers import id_of
from sqlitequeue.errors import KafkaError

BACKEND = "kafka"
DURABILITY = "acks=all"
SECOND_GENERATION = 10_000_000
#: librdkafka settings for the lab's own clients: a broker we killed on purpose is no news.
QUIET = {"log_level": 2}


def create_topic(bootstrap: str, partitions: int, replication: int, timeout: float = 60) -> str:
    """Create a fresh topic and return its name; raise KafkaError if it cannot be made."""
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"faults-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=replication)],
        operation_timeout=timeout,
    )
    try:
        futures[name].result(timeout)
    except Exception as exc:
        raise KafkaError(f"could not create topic {name} on {bootstrap}: {exc}") from exc
    wait_until(lambda: _has_leaders(admin, name, partitions), timeout, f"leaders for topic {name}")
    return name


def _has_leaders(admin: Any, topic: str, partitions: int) -> bool:
    meta = admin.list_topics(topic, timeout=5).topics.get(topic)
    if meta is None or meta.error is not None or len(meta.partitions) < partitions:
        return False
    return all(p.leader >= 0 for p in meta.partitions.values())


def partition_leader(bootstrap: str, topic: str, partition: int = 0) -> int:
    """Return the node id leading ``topic``'s ``partition``."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    return int(admin.list_topics(topic, timeout=10).topics[topic].partitions[partition].leader)


def topic_ids(bootstrap: str, topic: str, timeout: float = 60) -> list[int]:
    """Read every record of ``topic`` from the beginning (no group); return their ids."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            **QUIET,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        ends = {}
        for p in meta.partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        seen = dict.fromkeys(ends, 0)
        ids: list[int] = []
        deadline = time.monotonic() + timeout
        while any(seen[p] < ends[p] for p in ends):
            if time.monotonic() > deadline:
                raise KafkaError(f"could not read {topic} to its end within {timeout:g} s")
            for record in consumer.consume(500, timeout=0.5):
                if record.error() is None:
                    ids.append(id_of(record.value()))
                    seen[record.partition() or 0] = (record.offset() or 0) + 1
        return ids
    finally:
        consumer.close()


def _producer_cfg(
    lab: Lab, d: Path, name: str, bootstrap: str, topic: str, **extra: Any
) -> dict[str, Any]:
    s = lab.scale
    return {
        "bootstrap": bootstrap,
        "topic": topic,
        "rate": s.rate,
        "batch": s.batch,
        "payload_size": s.payload_size,
        "ledger": str(d / f"{name}.ledger"),
        "stop": str(d / "stop"),
        **extra,
    }


def _ids(events: list[Event], kind: str) -> list[int]:
    return [i for _, i in ids_of(events, kind)]


def _all(workers: list[Worker]) -> list[Event]:
    return [e for w in workers for e in w.events()]


def _finish(workers: list[Worker], d: Path, timeout: float) -> None:
    (d / "stop-producer").touch()
    (d / "stop").touch()
    for w in workers:
        if w.running:
            w.wait(timeout)


# -- consumer SIGKILL --------------------------------------------------------------------


def consumer_kill(lab: Lab, case: Case, repeat: int) -> Trial:
    """Two group members share a 2-partition topic; one is SIGKILLed while holding records.

    RTO: from the kill until every record it held (polled, not committed) was processed by
    the survivor, after the group noticed (session.timeout.ms) and rebalanced.
    """
    s, d = lab.scale, lab.trial_dir(case, repeat)
    bootstrap = lab.bootstrap()
    topic = create_topic(bootstrap, partitions=2, replication=1)
    (d / "topic").write_text(topic)
    consumers = [
        Worker(
            "kafka-consumer",
            {
                "bootstrap": bootstrap,
                "topic": topic,
                "group": f"g-{topic}",
                "lease": s.failure_timeout_s,
                "batch": s.batch,
                "process_s": s.process_s,
                "ledger": str(d / f"consumer{i}.ledger"),
                "stop": str(d / "stop"),
            },
            d / f"consumer{i}.log",
        )
        for i in (1, 2)
    ]
    victim, survivor = consumers
    producer = Worker(
        "kafka-producer",
        _producer_cfg(lab, d, "producer", bootstrap, topic, stop=str(d / "stop-producer")),
        d / "producer.log",
    )
    try:
        time.sleep(s.before_s)
        wait_until(
            lambda: _committed_twice(victim) and _committed_twice(survivor),
            60,
            "both consumers to commit (a stable group)",
        )
        wait_until(lambda: bool(_held(victim.events())), 30, "consumer 1 to hold records")
        t_fault = victim.kill()
        held = _held(victim.events())
        time.sleep(s.after_s)
        (d / "stop-producer").touch()
        producer.wait(s.drain_timeout_s)
        acked = set(_ids(producer.events(), "A"))
        t_recovered = wait_for(
            lambda: held <= set(_ids(survivor.events(), "P")),
            s.failure_timeout_s * 3 + s.drain_timeout_s,
        )
        wait_for(lambda: acked <= set(_ids(_all(consumers), "P")), s.drain_timeout_s)
    finally:
        _finish([producer, *consumers], d, 60)
    consumed = _all(consumers)
    processed = _ids(consumed, "P")
    acc = account(_ids(producer.events(), "S"), acked, processed, processed)
    first_redelivery = first_time([e for e in survivor.events() if e.at > t_fault], "P")
    redelivered = [first_redelivery[i] for i in held if i in first_redelivery]
    done_at = max(redelivered) if redelivered and len(redelivered) == len(held) else t_recovered
    rto = None if done_at is None else done_at - t_fault
    notes = f"session.timeout.ms {s.failure_timeout_s * 1000:.0f}; victim held {len(held)} records"
    return Trial(
        case,
        repeat,
        trial_row(acc, rto_s=rto, rpo_s=0.0 if acc.lost == 0 else None, notes=notes),
        throughput(producer.events(), consumed, t_fault, s.bin_s),
        [
            ("consumer SIGKILL", 0.0, t_fault, f"victim held {len(held)} records"),
            ("held records redelivered", rto or 0.0, t_fault + (rto or 0.0), ""),
        ],
    )


def _held(events: list[Event]) -> set[int]:
    """Records received after the last commit (a commit covers everything polled before)."""
    last_commit = max((e.at for e in events if e.kind == "C"), default=0.0)
    return {i for e in events if e.kind == "R" and e.at > last_commit for i in e.ids}


def _committed_twice(worker: Worker) -> bool:
    return sum(1 for e in worker.events() if e.kind == "C") >= 2


# -- producer SIGKILL --------------------------------------------------------------------


def producer_kill(lab: Lab, case: Case, repeat: int) -> Trial:
    """The producer is SIGKILLed mid-stream and restarted; is everything acknowledged there?"""
    s, d = lab.scale, lab.trial_dir(case, repeat)
    bootstrap = lab.bootstrap()
    topic = create_topic(bootstrap, partitions=1, replication=1)
    (d / "topic").write_text(topic)
    first = Worker(
        "kafka-producer", _producer_cfg(lab, d, "producer1", bootstrap, topic), d / "p1.log"
    )
    time.sleep(s.before_s)
    wait_until(lambda: bool(_ids(first.events(), "A")), 60, "the producer's first ack")
    t_fault = first.kill()
    second = Worker(
        "kafka-producer",
        _producer_cfg(
            lab,
            d,
            "producer2",
            bootstrap,
            topic,
            first_id=SECOND_GENERATION,
            count=int(s.rate * s.after_s),
        ),
        d / "p2.log",
    )
    second.wait(s.drain_timeout_s + s.after_s * 2)
    produced = first.events() + second.events()
    found = topic_ids(bootstrap, topic)
    acc = account(_ids(produced, "S"), _ids(produced, "A"), found)
    acks_after = [e.at for e in second.events() if e.kind == "A"]
    rto = min(acks_after) - t_fault if acks_after else None
    notes = f"{acc.extra} stored but unacknowledged (in flight at the kill)"
    return Trial(
        case,
        repeat,
        trial_row(acc, rto_s=rto, rpo_s=0.0 if acc.lost == 0 else None, notes=notes),
        throughput(produced, [], t_fault, s.bin_s),
        [
            ("producer SIGKILL", 0.0, t_fault, ""),
            ("restarted producer acknowledged", rto or 0.0, t_fault + (rto or 0.0), ""),
        ],
    )


# -- broker SIGKILL ----------------------------------------------------------------------


def _first_ack_of_later_send(events: list[Event], t_fault: float, fallback: float) -> float:
    """When the first message *sent after* ``t_fault`` was acknowledged.

    Acks of messages already in flight at the fault may arrive just after it; only a
    message sent after the fault proves the cluster accepts writes again.
    """
    sent_after = {i for e in events if e.kind == "S" and e.at > t_fault for i in e.ids}
    acks = [e.at for e in events if e.kind == "A" and sent_after.intersection(e.ids)]
    return min(acks) if acks else fallback


def broker_kill(lab: Lab, case: Case, repeat: int) -> Trial:
    """The only broker is SIGKILLed and restarted while a producer (acks=all) keeps sending.

    RTO: from the kill until the producer's first acknowledgement after it (the broker is
    down, then restarts and replays its log). Loss: acknowledged ids missing afterwards.
    """
    s, d = lab.scale, lab.trial_dir(case, repeat)
    broker = lab.killable_broker()
    bootstrap = broker.bootstrap_servers
    topic = create_topic(bootstrap, partitions=1, replication=1)
    (d / "topic").write_text(topic)
    producer = Worker(
        "kafka-producer", _producer_cfg(lab, d, "producer", bootstrap, topic), d / "producer.log"
    )
    events: list[tuple[str, float, float, str]] = []
    try:
        time.sleep(s.before_s)
        wait_until(lambda: bool(_ids(producer.events(), "A")), 60, "the producer's first ack")
        t_fault = time.time()
        broker.kill()
        events.append(("broker SIGKILL", 0.0, t_fault, ""))
        broker.restart()
        t_up = time.time()
        events.append(("broker restarted", t_up - t_fault, t_up, "answers Metadata again"))
        t_ack = wait_until(
            lambda: _first_ack_of_later_send(producer.events(), t_fault, 0.0) > 0,
            s.drain_timeout_s * 2,
            "an acknowledgement after the broker restart",
        )
        time.sleep(s.after_s)
    finally:
        _finish([producer], d, s.drain_timeout_s * 2)
    produced = producer.events()
    found = topic_ids(bootstrap, topic)
    acc = account(_ids(produced, "S"), _ids(produced, "A"), found)
    rto = _first_ack_of_later_send(produced, t_fault, t_ack) - t_fault
    events.append(("first ack after the kill", rto, t_fault + rto, ""))
    errors = sum(1 for e in produced if e.kind == "E")
    notes = f"broker back after {t_up - t_fault:.1f} s; {errors} delivery errors; RF=1"
    return Trial(
        case,
        repeat,
        trial_row(acc, rto_s=rto, rpo_s=0.0 if acc.lost == 0 else None, notes=notes),
        throughput(produced, [], t_fault, s.bin_s),
        events,
    )


def leader_failover(lab: Lab, case: Case, repeat: int) -> Trial:
    """3 brokers, RF=3, min.insync.replicas=2: the partition leader is SIGKILLed.

    RTO: from the kill until the producer's first acknowledgement after it (a new leader
    was elected and the client found it). Loss expected: none. A node killed by the
    previous repeat is restarted first, so every repeat starts with three.
    """
    s, d = lab.scale, lab.trial_dir(case, repeat)
    cluster = lab.cluster()
    for index, node in enumerate(cluster.nodes):  # the previous repeat's victim
        if not node.running:
            cluster.restart_node(index)
    bootstrap = cluster.bootstrap_servers
    topic = create_topic(bootstrap, partitions=1, replication=3)
    (d / "topic").write_text(topic)
    producer = Worker(
        "kafka-producer", _producer_cfg(lab, d, "producer", bootstrap, topic), d / "producer.log"
    )
    events: list[tuple[str, float, float, str]] = []
    try:
        time.sleep(s.before_s)
        wait_until(lambda: bool(_ids(producer.events(), "A")), 60, "the producer's first ack")
        leader = partition_leader(bootstrap, topic)
        index = next(i for i, n in enumerate(cluster.nodes) if n.node_id == leader)
        t_fault = time.time()
        cluster.nodes[index].kill()
        events.append(("leader SIGKILL", 0.0, t_fault, f"node {leader}"))
        t_ack = wait_until(
            lambda: _first_ack_of_later_send(producer.events(), t_fault, 0.0) > 0,
            s.drain_timeout_s * 2,
            "an acknowledgement after the leader died",
        )
        time.sleep(s.after_s)
    finally:
        _finish([producer], d, s.drain_timeout_s * 2)
    produced = producer.events()
    found = topic_ids(bootstrap, topic)
    acc = account(_ids(produced, "S"), _ids(produced, "A"), found)
    rto = _first_ack_of_later_send(produced, t_fault, t_ack) - t_fault
    events.append(("first ack after failover", rto, t_fault + rto, ""))
    new_leader = partition_leader(bootstrap, topic)
    errors = sum(1 for e in produced if e.kind == "E")
    notes = (
        f"leader node {leader} killed, node {new_leader} took over; {errors} delivery errors; "
        "RF=3, min.insync.replicas=2"
    )
    return Trial(
        case,
        repeat,
        trial_row(acc, rto_s=rto, rpo_s=0.0 if acc.lost == 0 else None, notes=notes),
        throughput(produced, [], t_fault, s.bin_s),
        events,
    )
