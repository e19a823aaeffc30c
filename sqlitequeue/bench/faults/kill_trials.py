"""The process-kill trials, one template each for every system: consumer-kill, producer-kill.

The template runs the workload, injects the fault and does the accounting; a
:class:`System` supplies what differs between systems (the way OpenMessaging Benchmark's
drivers plug into one benchmark loop): how to deploy it, when its consumer group is ready
for the fault, how long recovery may take, what is still stored, and the notes.
:mod:`sqlitequeue.bench.faults.sqlite_trials` and
:mod:`sqlitequeue.bench.faults.kafka_trials` hold the two systems.

consumer-kill: two members of one group share the topic; one is frozen (SIGSTOP) at a
moment it is part-way through processing a batch, so no commit can be in flight and every
record it received since its last commit is certainly uncommitted, then SIGKILLed. RTO:
from the freeze until the survivor has processed every record the victim held. The wait is
bounded by :meth:`System.recovery_window`; if recovery is not seen in time, ``rto_s`` is
empty and the notes say ``NOT RECOVERED`` and why.

producer-kill: the producer is SIGKILLed mid-stream and a new one started. RTO: from the
kill until the new producer's first acknowledged message.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path

from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.faults.lab import (
    Case,
    Deployment,
    Lab,
    Scale,
    Trial,
    Worker,
    account_sends,
    consumer_config,
    events_of,
    fault_events,
    finish,
    ids_in,
    producer_config,
    restarted_producer,
    seconds_to_ack,
    throughput,
    trial_row,
    wait_for,
    wait_until,
)
from sqlitequeue.bench.faults.ledger import Accounting, Event, account, first_time


class System(ABC):
    """What the kill trials need from one system under test (see the module docstring)."""

    #: What the system calls a message, in notes and events ("messages", "records").
    unit: str = "messages"
    #: What :meth:`ready` waits for, as said in a timeout error.
    ready_what: str = "consumer 1 to receive messages"

    @abstractmethod
    def deploy(self, lab: Lab, case: Case, d: Path, partitions: int) -> Deployment:
        """Make the system ready for a trial in directory ``d``; return what workers use."""

    @abstractmethod
    def stored_ids(self, target: Deployment) -> list[int]:
        """Return the id of every record the system stores for ``target`` (repeats kept)."""

    @abstractmethod
    def recovery_window(self, scale: Scale) -> float:
        """How long to wait for the survivor to process what the victim held."""

    @abstractmethod
    def consumer_kill_notes(self, victim: Worker, held: set[int], acc: Accounting) -> str:
        """The notes of a consumer-kill row: the settings that decide its RTO, what was held."""

    def ready(self, victim: Worker, survivor: Worker) -> bool:
        """True when the fault may be injected (by default: the victim received something)."""
        return bool(ids_in(victim.events(), "R"))

    def no_recovery(
        self, victim: Worker, survivor: Worker, t_fault: float, window: float, held: set[int]
    ) -> str:
        """Why the survivor did not process all the victim held within ``window`` seconds."""
        if not held:
            return f"the victim held no {self.unit}; "
        return "the survivor " + self.processed_only(survivor, window, held)

    def processed_only(self, survivor: Worker, window: float, held: set[int]) -> str:
        """``processed only <n> of <held> held <unit> within <window> s; ``."""
        got = len(held & set(ids_in(survivor.events(), "P")))
        return f"processed only {got} of {len(held)} held {self.unit} within {window:g} s; "


# -- consumer SIGKILL --------------------------------------------------------------------


def consumer_kill(lab: Lab, case: Case, repeat: int, system: System) -> Trial:
    """Kill one of two consumers of one group mid-batch; see the module docstring."""
    s, d = lab.scale, lab.trial_dir(case, repeat)
    target = system.deploy(lab, case, d, partitions=2)
    consumers = [
        Worker(consumer_config(lab, d, target, f"consumer{i}"), d / f"consumer{i}.log")
        for i in (1, 2)
    ]
    victim, survivor = consumers
    config = producer_config(lab, d, target, "producer", stop=str(d / "stop-producer"))
    producer = Worker(config, d / "producer.log")
    window = system.recovery_window(s)
    try:
        time.sleep(s.before_s)
        wait_until(lambda: system.ready(victim, survivor), 60, system.ready_what)
        t_fault = freeze_mid_batch(victim, 30)
        victim.kill()
        held = held_ids(victim.events())
        t_recovered = wait_for(lambda: held <= set(ids_in(survivor.events(), "P")), window)
        time.sleep(s.after_s)
        (d / "stop-producer").touch()
        producer.wait(s.drain_timeout_s)
        acked = set(ids_in(producer.events(), "A"))
        wait_for(lambda: acked <= set(ids_in(events_of(consumers), "P")), s.drain_timeout_s)
    finally:
        finish([producer, *consumers], d, 60)
    consumed = events_of(consumers)
    processed = ids_in(consumed, "P")
    # A log keeps what was consumed; a queue holds only what is still to be consumed.
    leftovers = [] if target.replays_history else system.stored_ids(target)
    acc = account(ids_in(producer.events(), "S"), acked, processed + leftovers, processed)
    first_redelivery = first_time([e for e in survivor.events() if e.at > t_fault], "P")
    redelivered = [first_redelivery[i] for i in held if i in first_redelivery]
    complete = bool(held) and len(redelivered) == len(held)
    rto = max(redelivered) - t_fault if complete else None
    notes = system.consumer_kill_notes(victim, held, acc)
    if rto is None:
        reason = system.no_recovery(victim, survivor, t_fault, window, held)
        notes = "NOT RECOVERED: " + reason + notes
    elif t_recovered is None:
        notes += f"; recovered only after the {window:g} s window, while draining"
    events = fault_events(
        t_fault,
        ("consumer SIGKILL", 0.0, f"victim held {len(held)} {system.unit}"),
        (f"held {system.unit} redelivered", rto, ""),
    )
    series = throughput(producer.events(), consumed, t_fault, s.bin_s)
    return Trial(case, repeat, trial_row(acc, rto_s=rto, notes=notes), series, events)


def freeze_mid_batch(victim: Worker, timeout: float) -> float:
    """SIGSTOP ``victim`` at a moment it holds an uncommitted, part-processed batch.

    A consumer commits only after processing its whole batch, so while some record it
    received is not yet processed no commit can be in flight. Between attempts it runs
    on. Returns the unix time of the freeze; raises BenchError after ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at = victim.pause()
        if mid_batch(victim.events()):
            return at
        victim.resume()
        time.sleep(0.01)
    raise BenchError(f"consumer 1 was never caught mid-batch within {timeout:g} s")


def mid_batch(events: list[Event]) -> bool:
    """True when some record received since the last commit is not yet processed."""
    last_commit = max((e.at for e in events if e.kind == "C"), default=0.0)
    recent = [e for e in events if e.at > last_commit]
    received = {i for e in recent if e.kind == "R" for i in e.ids}
    processed = {i for e in recent if e.kind == "P" for i in e.ids}
    return bool(received - processed)


def held_ids(events: list[Event]) -> set[int]:
    """Records received after the last commit (a commit covers everything polled before)."""
    last_commit = max((e.at for e in events if e.kind == "C"), default=0.0)
    return {i for e in events if e.kind == "R" and e.at > last_commit for i in e.ids}


# -- producer SIGKILL --------------------------------------------------------------------


def producer_kill(lab: Lab, case: Case, repeat: int, system: System) -> Trial:
    """Kill the producer mid-stream and start another; is everything acknowledged there?"""
    s, d = lab.scale, lab.trial_dir(case, repeat)
    target = system.deploy(lab, case, d, partitions=1)
    first = Worker(producer_config(lab, d, target, "producer1"), d / "producer1.log")
    time.sleep(s.before_s)
    wait_until(lambda: bool(ids_in(first.events(), "A")), 60, "the producer's first ack")
    t_fault = first.kill()
    second = restarted_producer(lab, d, target, "producer2")
    produced = first.events() + second.events()
    acc = account_sends(produced, system.stored_ids(target))
    rto = seconds_to_ack(second.events(), t_fault)
    notes = f"{acc.extra} stored but unacknowledged (in flight at the kill)"
    events = fault_events(
        t_fault, ("producer SIGKILL", 0.0, ""), ("restarted producer acknowledged", rto, "")
    )
    series = throughput(produced, [], t_fault, s.bin_s)
    return Trial(case, repeat, trial_row(acc, rto_s=rto, notes=notes), series, events)
