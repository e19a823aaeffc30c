"""Fault trials against a real Apache Kafka (acks=all, idempotent producers).

The workers drive Kafka through the ``kafka-confluent`` backend (confluent-kafka), with the
lab's needs as its settings (:func:`client_settings`): acks=all and idempotence for
producers; for consumers ``session.timeout.ms`` equal to the lab's failure timeout (the
SQLite lease), frequent heartbeats. Consumers log their rebalances
(``Consumer.on_rebalance``), which the consumer-kill trial reads back.

Consumer and producer crashes run on a shared broker; broker crashes on a broker the lab
may kill (single node) or on a 3-node cluster (RF=3, min.insync.replicas=2).
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sqlitequeue.bench.backends import BackendSpec
from sqlitequeue.bench.errors import KafkaError
from sqlitequeue.bench.faults import kill_trials
from sqlitequeue.bench.faults.kill_trials import System
from sqlitequeue.bench.faults.lab import (
    Case,
    Deployment,
    FaultEvent,
    Lab,
    Scale,
    Trial,
    Worker,
    account_sends,
    consumer_config,
    deploy,
    events_of,
    fault_events,
    finish,
    ids_in,
    producer_config,
    throughput,
    trial_row,
    wait_for,
    wait_until,
)
from sqlitequeue.bench.faults.ledger import Accounting, Event
from sqlitequeue.bench.faults.workers import id_of

BACKEND = "kafka"
DURABILITY = "acks=all"
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


def client_settings(failure_timeout_s: float) -> dict[str, Any]:
    """Return the ``kafka-confluent`` settings of the lab's producers and consumers.

    ``session.timeout.ms`` is ``failure_timeout_s`` (the time a group takes to notice a
    dead member, set equal to the SQLite lease for a fair comparison).
    """
    session_ms = int(failure_timeout_s * 1000)
    return {
        "producer.acks": "all",
        "producer.enable.idempotence": True,
        "producer.linger.ms": 1,
        "producer.delivery.timeout.ms": 120_000,  # librdkafka's message.timeout.ms
        "consumer.auto.offset.reset": "earliest",
        "consumer.session.timeout.ms": session_ms,
        # Frequent heartbeats: the group then acts on a death within ~session.timeout.ms
        # (not up to one more heartbeat interval early or late) and RTO measures it.
        "consumer.heartbeat.interval.ms": max(100, session_ms // 20),
    }


def kafka_deployment(
    lab: Lab, case: Case, d: Path, bootstrap: str, partitions: int, replication: int = 1
) -> Deployment:
    """Create a fresh topic (its name written to ``d/topic``) and return it with a group."""
    topic = create_topic(bootstrap, partitions=partitions, replication=replication)
    (d / "topic").write_text(topic)
    settings = client_settings(lab.scale.failure_timeout_s)
    spec = BackendSpec(case.seam_backend, settings=settings, bootstrap_servers=bootstrap)
    return deploy(spec, topic, f"g-{topic}", producer_waits=False)


# -- process kills -----------------------------------------------------------------------


class Kafka(System):
    """Kafka in the kill trials: a rebalance after ``session.timeout.ms`` decides RTO."""

    unit = "records"
    ready_what = "a stable group (each consumer owns a partition and committed twice since)"

    def deploy(self, lab: Lab, case: Case, d: Path, partitions: int) -> Deployment:
        """A fresh topic with ``partitions`` partitions on the lab's shared broker."""
        return kafka_deployment(lab, case, d, lab.bootstrap(), partitions)

    def stored_ids(self, target: Deployment) -> list[int]:
        """Every record of the topic, read from the beginning."""
        return topic_ids(str(target.spec.bootstrap_servers), target.topic)

    def recovery_window(self, scale: Scale) -> float:
        """See :func:`recovery_window`."""
        return recovery_window(scale.failure_timeout_s)

    def ready(self, victim: Worker, survivor: Worker) -> bool:
        """Each consumer owns a partition and committed twice since the last rebalance."""
        return _stable(victim, survivor, partitions=2)

    def consumer_kill_notes(self, victim: Worker, held: set[int], acc: Accounting) -> str:
        """The session timeout and the partitions whose records the victim held."""
        session_ms = victim.config.backend.settings["consumer.session.timeout.ms"]
        return (
            f"session.timeout.ms {session_ms}; victim held {len(held)} "
            f"records of partition(s) {_fmt(_assignment(victim.log))}"
        )

    def no_recovery(
        self, victim: Worker, survivor: Worker, t_fault: float, window: float, held: set[int]
    ) -> str:
        """No takeover of the victim's partitions, or a takeover without the held records."""
        owned = _assignment(victim.log)
        taken = [
            (at, parts)
            for at, kind, parts in _assignments(survivor.log)
            if kind == "assigned" and at > t_fault and owned[1] <= parts
        ]
        if not held:
            return "the victim held no records; "
        if not taken:
            return f"the survivor was not given partition(s) {_fmt(owned)} within {window:g} s; "
        took_over = f"took partition(s) {_fmt(owned)} over after {taken[0][0] - t_fault:.1f} s"
        return f"the survivor {took_over} but " + self.processed_only(survivor, window, held)


SYSTEM = Kafka()


def consumer_kill(lab: Lab, case: Case, repeat: int) -> Trial:
    """Two group members share a 2-partition topic; one is SIGKILLed while holding records.

    RTO: from the freeze (mid-batch, see :mod:`~sqlitequeue.bench.faults.kill_trials`)
    until the survivor (after the group noticed, session.timeout.ms, and rebalanced) has
    processed every record the victim held.
    """
    return kill_trials.consumer_kill(lab, case, repeat, SYSTEM)


def producer_kill(lab: Lab, case: Case, repeat: int) -> Trial:
    """The producer is SIGKILLed mid-stream and restarted; is everything acknowledged there?"""
    return kill_trials.producer_kill(lab, case, repeat, SYSTEM)


def recovery_window(session_timeout_s: float) -> float:
    """How long a trial waits for a group to hand a dead member's partitions on.

    The coordinator needs ``session_timeout_s`` to notice, then a rebalance (the survivor
    rejoins on its next heartbeat, a few seconds at most); the margin covers a machine
    busy with other work (slow heartbeats, slow fetches, a loaded broker).
    """
    return session_timeout_s * 3 + 30.0


def _assignments(log: Path) -> list[tuple[float, str, set[int]]]:
    """The ``(at, "assigned"|"revoked", partitions)`` lines a consumer printed."""
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


# -- broker faults -----------------------------------------------------------------------


class BrokerFault(ABC):
    """A fault on the brokers while one producer (acks=all) keeps sending.

    RTO: from the fault until the producer's first acknowledgement of a message sent
    after it. Loss: acknowledged ids missing afterwards.
    """

    #: The event recorded once writes are acknowledged again.
    recovered: str
    #: What the trial waits for after the fault, as said in a timeout error.
    waiting_for: str

    @abstractmethod
    def inject(self, bootstrap: str, topic: str) -> list[tuple[str, float, str]]:
        """Inject the fault; return ``(event, unix time, detail)``, the fault itself first."""

    @abstractmethod
    def notes(self, bootstrap: str, topic: str, events: list[FaultEvent], errors: int) -> str:
        """The row's notes, given the trial's events and the count of delivery errors."""


def _first_ack_of_later_send(events: list[Event], t_fault: float, fallback: float) -> float:
    """When the first message *sent after* ``t_fault`` was acknowledged.

    Acks of messages already in flight at the fault may arrive just after it; only a
    message sent after the fault proves the cluster accepts writes again.
    """
    sent_after = {i for e in events if e.kind == "S" and e.at > t_fault for i in e.ids}
    acks = [e.at for e in events if e.kind == "A" and sent_after.intersection(e.ids)]
    return min(acks) if acks else fallback


def producing_through(
    lab: Lab,
    case: Case,
    repeat: int,
    bootstrap: str,
    replication: int,
    fault: BrokerFault,
    *,
    consumers: int = 0,
    d: Path | None = None,
) -> Trial:
    """Run one producer on a fresh topic, inject ``fault``, count what it cost.

    With ``consumers`` > 0, a consumer group of that many members reads the topic (one
    partition each) and commits; the fault comes once each has committed, and the row also
    says how the group came back (:class:`GroupResume`, event ``consumers resumed``).
    ``d``: the trial directory (default: a fresh one from the lab).
    """
    s = lab.scale
    d = d or lab.trial_dir(case, repeat)
    partitions = max(1, consumers)
    target = kafka_deployment(lab, case, d, bootstrap, partitions, replication=replication)
    producer = Worker(producer_config(lab, d, target, "producer"), d / "producer.log")
    group = [
        Worker(consumer_config(lab, d, target, f"consumer{n}"), d / f"consumer{n}.log")
        for n in range(1, consumers + 1)
    ]
    try:
        time.sleep(s.before_s)
        wait_until(lambda: bool(ids_in(producer.events(), "A")), 60, "the producer's first ack")
        wait_until(
            lambda: all(ids_in(w.events(), "C") for w in group), 60, "a commit by every consumer"
        )
        injected = fault.inject(bootstrap, target.topic)
        t_fault = injected[0][1]
        t_ack = wait_until(
            lambda: _first_ack_of_later_send(producer.events(), t_fault, 0.0) > 0,
            s.drain_timeout_s * 2,
            fault.waiting_for,
        )
        time.sleep(s.after_s)
        if group:  # a measurement: a group that never resumes is reported, not an error
            resumed = partial(_resumed_at, producer, group, t_fault)
            wait_for(lambda: resumed() is not None, recovery_window(s.failure_timeout_s))
    finally:
        finish([producer, *group], d, s.drain_timeout_s * 2)
    produced, consumed = producer.events(), events_of(group)
    found = topic_ids(bootstrap, target.topic)
    acc = account_sends(produced, found)
    rto = _first_ack_of_later_send(produced, t_fault, t_ack) - t_fault
    resume = GroupResume.of(produced, consumed, t_fault) if group else None
    events = fault_events(
        t_fault,
        *[(name, at - t_fault, detail) for name, at, detail in injected],
        (fault.recovered, rto, ""),
        *([resume.event()] if resume else []),
    )
    errors = sum(1 for e in produced if e.kind == "E")
    notes = fault.notes(bootstrap, target.topic, events, errors)
    if resume:
        notes += f"; {resume.notes(consumers)}"
    series = throughput(produced, consumed, t_fault, s.bin_s)
    return Trial(case, repeat, trial_row(acc, rto_s=rto, notes=notes), series, events)


def _resumed_at(producer: Worker, group: list[Worker], t_fault: float) -> float | None:
    return GroupResume.first_processed_after(producer.events(), events_of(group), t_fault)


@dataclass(frozen=True)
class GroupResume:
    """How a consumer group came through a fault on the server (from the workers' ledgers).

    ``resumed_s``: from the fault until a consumer processed a message sent after it (None:
    never); ``again``: records processed more than once (each extra time counts);
    ``committed_again``: records whose commit returned before the fault but that were
    processed again after it (0 when the group resumed from its committed offsets);
    ``not_consumed``: acknowledged records no consumer processed.
    """

    resumed_s: float | None
    again: int
    committed_again: int
    not_consumed: int

    @staticmethod
    def first_processed_after(
        produced: list[Event], consumed: list[Event], t_fault: float
    ) -> float | None:
        """When a consumer first processed a message sent after ``t_fault`` (None: never)."""
        sent_after = {i for e in produced if e.kind == "S" and e.at > t_fault for i in e.ids}
        times = [e.at for e in consumed if e.kind == "P" and sent_after.intersection(e.ids)]
        return min(times) if times else None

    @classmethod
    def of(cls, produced: list[Event], consumed: list[Event], t_fault: float) -> GroupResume:
        """Compute it from a producer's and the consumers' events."""
        resumed = cls.first_processed_after(produced, consumed, t_fault)
        counts = Counter(ids_in(consumed, "P"))
        committed = {i for e in consumed if e.kind == "C" and e.at < t_fault for i in e.ids}
        after = {i for e in consumed if e.kind == "P" and e.at > t_fault for i in e.ids}
        return cls(
            resumed_s=None if resumed is None else resumed - t_fault,
            again=sum(n - 1 for n in counts.values()),
            committed_again=len(committed & after),
            not_consumed=len(set(ids_in(produced, "A")) - set(counts)),
        )

    def event(self) -> tuple[str, float | None, str]:
        """The ``consumers resumed`` fault event (seconds after the fault)."""
        return ("consumers resumed", self.resumed_s, "a message sent after the fault processed")

    def notes(self, members: int) -> str:
        """The group's part of the row's notes."""
        resumed = (
            "NOT RESUMED" if self.resumed_s is None else f"resumed after {self.resumed_s:.1f} s"
        )
        return (
            f"group of {members}: {resumed}, {self.again} records processed again, "
            f"{self.committed_again} of them committed before the fault; "
            f"{self.not_consumed} acknowledged not consumed"
        )


class BrokerKill(BrokerFault):
    """SIGKILL the only broker, then restart it (it replays its log)."""

    recovered = "first ack after the kill"
    waiting_for = "an acknowledgement after the broker restart"

    def __init__(self, broker: Any) -> None:
        self.broker = broker

    def inject(self, bootstrap: str, topic: str) -> list[tuple[str, float, str]]:
        """Kill the broker and restart it; return both moments."""
        t_fault = time.time()
        self.broker.kill()
        self.broker.restart()
        t_up = time.time()
        return [
            ("broker SIGKILL", t_fault, ""),
            ("broker restarted", t_up, "answers Metadata again"),
        ]

    def notes(self, bootstrap: str, topic: str, events: list[FaultEvent], errors: int) -> str:
        """How long the broker was away and how many delivery errors the producer saw."""
        return f"broker back after {events[1][1]:.1f} s; {errors} delivery errors; RF=1"


class LeaderKill(BrokerFault):
    """SIGKILL the partition leader of a 3-broker cluster."""

    recovered = "first ack after failover"
    waiting_for = "an acknowledgement after the leader died"

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.leader = -1

    def inject(self, bootstrap: str, topic: str) -> list[tuple[str, float, str]]:
        """Find the leader of partition 0 and kill it."""
        self.leader = partition_leader(bootstrap, topic)
        index = next(i for i, n in enumerate(self.cluster.nodes) if n.node_id == self.leader)
        t_fault = time.time()
        self.cluster.nodes[index].kill()
        return [("leader SIGKILL", t_fault, f"node {self.leader}")]

    def notes(self, bootstrap: str, topic: str, events: list[FaultEvent], errors: int) -> str:
        """Which node died, which took over, the delivery errors."""
        from sqlitequeue.bench.network.topology import zone_of

        new_leader = partition_leader(bootstrap, topic)
        network = getattr(self.cluster, "network", None)
        where = (
            f" (zone {zone_of(self.leader)} -> {zone_of(new_leader)}, over {network.name})"
            if network is not None and network.emulated and new_leader > 0
            else ""
        )
        return (
            f"leader node {self.leader} killed, node {new_leader} took over{where}; "
            f"{errors} delivery errors; RF=3, min.insync.replicas=2"
        )


def broker_kill(lab: Lab, case: Case, repeat: int) -> Trial:
    """The only broker is SIGKILLed and restarted while a producer (acks=all) keeps sending.

    RTO: from the kill until the producer's first acknowledgement after it (the broker is
    down, then restarts and replays its log). Loss: acknowledged ids missing afterwards.
    """
    broker = lab.killable_broker()
    return producing_through(lab, case, repeat, broker.bootstrap_servers, 1, BrokerKill(broker))


def leader_failover(lab: Lab, case: Case, repeat: int) -> Trial:
    """3 brokers, RF=3, min.insync.replicas=2: the partition leader is SIGKILLed.

    RTO: from the kill until the producer's first acknowledgement after it (a new leader
    was elected and the client found it). Loss expected: none. A node killed by the
    previous repeat is restarted first, so every repeat starts with three.
    """
    cluster = lab.cluster()
    for index, node in enumerate(cluster.nodes):  # the previous repeat's victim
        if not node.running:
            cluster.restart_node(index)
    return producing_through(lab, case, repeat, cluster.bootstrap_servers, 3, LeaderKill(cluster))
