"""Fault trials against a real Apache Kafka (confluent-kafka clients, acks=all, idempotent).

Consumer and producer crashes run on a shared broker; broker crashes on a broker the lab
may kill (single node) or on a 3-node cluster (RF=3, min.insync.replicas=2).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from sqlitequeue.bench.errors import BenchError, KafkaError
from sqlitequeue.bench.faults.lab import (
    Case,
    Lab,
    Trial,
    Worker,
    throughput,
    trial_row,
    wait_for,
    wait_until,
)
from sqlitequeue.bench.faults.ledger import Event, account, first_time, ids_of
from sqlitequeue.bench.faults.workers import id_of

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

    The victim is frozen (SIGSTOP) at a moment it is part-way through processing a batch,
    so no commit can be in flight: every record it received since its last commit is
    certainly uncommitted and must come back. Then it is SIGKILLed. RTO: from the freeze
    until the survivor (after the group noticed, session.timeout.ms, and rebalanced) has
    processed every record the victim held. The wait for that is bounded by
    :func:`recovery_window`; if recovery is not seen in time, ``rto_s`` is empty and the
    notes say ``NOT RECOVERED`` and why.
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
    window = recovery_window(s.failure_timeout_s)
    try:
        time.sleep(s.before_s)
        wait_until(
            lambda: _stable(victim, survivor, partitions=2),
            60,
            "a stable group (each consumer owns a partition and committed twice since)",
        )
        t_fault = _freeze_mid_batch(victim, 30)
        victim.kill()
        held = _held(victim.events())
        owned = _assignment(victim.log)
        t_recovered = wait_for(lambda: held <= set(_ids(survivor.events(), "P")), window)
        time.sleep(s.after_s)
        (d / "stop-producer").touch()
        producer.wait(s.drain_timeout_s)
        acked = set(_ids(producer.events(), "A"))
        wait_for(lambda: acked <= set(_ids(_all(consumers), "P")), s.drain_timeout_s)
    finally:
        _finish([producer, *consumers], d, 60)
    consumed = _all(consumers)
    processed = _ids(consumed, "P")
    acc = account(_ids(producer.events(), "S"), acked, processed, processed)
    first_redelivery = first_time([e for e in survivor.events() if e.at > t_fault], "P")
    redelivered = [first_redelivery[i] for i in held if i in first_redelivery]
    complete = bool(held) and len(redelivered) == len(held)
    rto = max(redelivered) - t_fault if complete else None
    notes = (
        f"session.timeout.ms {s.failure_timeout_s * 1000:.0f}; victim held {len(held)} "
        f"records of partition(s) {_fmt(owned)}"
    )
    if rto is None:
        notes = "NOT RECOVERED: " + _no_recovery(survivor, t_fault, window, held, owned) + notes
    elif t_recovered is None:
        notes += f"; recovered only after the {window:g} s window, while draining"
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


def recovery_window(session_timeout_s: float) -> float:
    """How long a trial waits for a group to hand a dead member's partitions on.

    The coordinator needs ``session_timeout_s`` to notice, then a rebalance (the survivor
    rejoins on its next heartbeat, a few seconds at most); the margin covers a machine
    busy with other work (slow heartbeats, slow fetches, a loaded broker).
    """
    return session_timeout_s * 3 + 30.0


def _freeze_mid_batch(victim: Worker, timeout: float) -> float:
    """SIGSTOP ``victim`` at a moment it holds an uncommitted, part-processed batch.

    A consumer commits only after processing its whole batch, so while some record it
    received is not yet processed no commit can be in flight. Between attempts it runs
    on. Returns the unix time of the freeze; raises BenchError after ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at = victim.pause()
        if _mid_batch(victim.events()):
            return at
        victim.resume()
        time.sleep(0.01)
    raise BenchError(f"consumer 1 was never caught mid-batch within {timeout:g} s")


def _mid_batch(events: list[Event]) -> bool:
    """True when some record received since the last commit is not yet processed."""
    last_commit = max((e.at for e in events if e.kind == "C"), default=0.0)
    recent = [e for e in events if e.at > last_commit]
    received = {i for e in recent if e.kind == "R" for i in e.ids}
    processed = {i for e in recent if e.kind == "P" for i in e.ids}
    return bool(received - processed)


def _held(events: list[Event]) -> set[int]:
    """Records received after the last commit (a commit covers everything polled before)."""
    last_commit = max((e.at for e in events if e.kind == "C"), default=0.0)
    return {i for e in events if e.kind == "R" and e.at > last_commit for i in e.ids}


def _assignments(log: Path) -> list[tuple[float, str, set[int]]]:
    """The ``(at, "assigned"|"revoked", partitions)`` lines a kafka-consumer printed."""
    found = []
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[1] in ("assigned", "revoked"):
            try:
                at = float(parts[0])
                spec = parts[2] if len(parts) > 2 else ""
                partitions = {int(p.split("@")[0]) for p in spec.split(",") if p}
            except ValueError:
                continue
            found.append((at, parts[1], partitions))
    return found


def _assignment(log: Path) -> tuple[float, set[int]]:
    """When the consumer got its current partitions, and which (eager protocol)."""
    lines = _assignments(log)
    if not lines or lines[-1][1] != "assigned":
        return 0.0, set()
    return lines[-1][0], lines[-1][2]


def _stable(a: Worker, b: Worker, partitions: int) -> bool:
    """Both own partitions, together all, and both committed twice since the last change."""
    (at_a, parts_a), (at_b, parts_b) = _assignment(a.log), _assignment(b.log)
    if not parts_a or not parts_b or parts_a & parts_b:
        return False
    if len(parts_a | parts_b) != partitions:
        return False
    since = max(at_a, at_b)
    return all(sum(1 for e in w.events() if e.kind == "C" and e.at > since) >= 2 for w in (a, b))


def _fmt(owned: tuple[float, set[int]]) -> str:
    return ",".join(map(str, sorted(owned[1]))) or "?"


def _no_recovery(
    survivor: Worker, t_fault: float, window: float, held: set[int], owned: tuple[float, set[int]]
) -> str:
    """Why recovery was not seen: no takeover, or a takeover without the held records."""
    taken = [
        (at, parts)
        for at, kind, parts in _assignments(survivor.log)
        if kind == "assigned" and at > t_fault and owned[1] <= parts
    ]
    if not held:
        return "the victim held no records; "
    if not taken:
        return f"the survivor was not given partition(s) {_fmt(owned)} within {window:g} s; "
    got = set(_ids(survivor.events(), "P"))
    return (
        f"the survivor took partition(s) {_fmt(owned)} over after {taken[0][0] - t_fault:.1f} s "
        f"but processed only {len(held & got)} of {len(held)} held records within "
        f"{window:g} s; "
    )


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
