"""Any interleaving of put/get/ack/nack/extend/bury and time passing matches a simple model."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from sqlitequeue import LeaseLost, Message, Queue

LEASE = 10.0
MAX_ATTEMPTS = 2


@dataclass
class Row:
    """The model of one stored message."""

    priority: int
    state: str  # ready, delayed, leased, dead
    due: float  # delayed: end of delay; leased: lease expiry
    attempts: int = 0
    token: int | None = None


class QueueModel(RuleBasedStateMachine):
    """Drives a real Queue (with a fake clock) and a dict model side by side."""

    @initialize()
    def open_queue(self) -> None:
        self.dir = tempfile.mkdtemp()
        self.now = 1_000.0
        self.queue = Queue(Path(self.dir) / "q.db", lease=LEASE, max_attempts=MAX_ATTEMPTS)
        self.queue._clock = lambda: self.now
        self.rows: dict[int, Row] = {}
        self.held: list[Message] = []

    def teardown(self) -> None:
        if hasattr(self, "queue"):
            self.queue.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- the model's own rules -------------------------------------------------------------

    def settle(self) -> None:
        for row in self.rows.values():
            if row.state in ("delayed", "leased") and row.due <= self.now:
                expired = row.state == "leased"
                row.state = "dead" if expired and row.attempts >= MAX_ATTEMPTS else "ready"

    def holds(self, msg: Message, states: tuple[str, ...]) -> bool:
        row = self.rows.get(msg.id)
        return row is not None and row.token == msg.lease_token and row.state in states

    # -- operations --------------------------------------------------------------------------

    @rule(count=st.integers(1, 3), priority=st.integers(0, 2), delayed=st.booleans())
    def put(self, count: int, priority: int, delayed: bool) -> None:
        delay = 5.0 if delayed else 0.0
        payloads = [b"m"] * count
        if count == 1:
            ids = [self.queue.put(payloads[0], priority=priority, delay=delay)]
        else:
            ids = self.queue.put_many(payloads, priority=priority, delay=delay)
        for i in ids:
            assert i not in self.rows
            state = "delayed" if delayed else "ready"
            self.rows[i] = Row(priority, state, self.now + delay)

    @rule(count=st.integers(1, 3))
    def get(self, count: int) -> None:
        got = self.queue.get_many(count, timeout=0)
        self.settle()
        ready = sorted(
            (i for i, r in self.rows.items() if r.state == "ready"),
            key=lambda i: (-self.rows[i].priority, i),
        )
        assert [m.id for m in got] == ready[:count]
        for m in got:
            row = self.rows[m.id]
            row.state, row.due, row.token = "leased", self.now + LEASE, m.lease_token
            row.attempts += 1
            assert m.attempts == row.attempts
            self.held.append(m)
        del self.held[:-20]

    @precondition(lambda self: self.held)
    @rule(pick=st.integers(0, 19))
    def ack(self, pick: int) -> None:
        msg = self.held[-1 - pick % len(self.held)]
        row = self.rows.get(msg.id)
        if row is not None and row.token == msg.lease_token:
            self.queue.ack(msg)
            del self.rows[msg.id]
        else:
            with pytest.raises(LeaseLost):
                self.queue.ack(msg)

    @precondition(lambda self: self.held)
    @rule(pick=st.integers(0, 19), delayed=st.booleans())
    def nack(self, pick: int, delayed: bool) -> None:
        msg = self.held[-1 - pick % len(self.held)]
        delay = 5.0 if delayed else 0.0
        if self.holds(msg, ("ready", "leased")):
            self.queue.nack(msg, delay=delay)
            row = self.rows[msg.id]
            row.token, row.due = None, self.now + delay
            if row.attempts >= MAX_ATTEMPTS:
                row.state = "dead"
            else:
                row.state = "delayed" if delayed else "ready"
        else:
            with pytest.raises(LeaseLost):
                self.queue.nack(msg, delay=delay)

    @precondition(lambda self: self.held)
    @rule(pick=st.integers(0, 19))
    def extend(self, pick: int) -> None:
        msg = self.held[-1 - pick % len(self.held)]
        if self.holds(msg, ("ready", "leased")):
            self.queue.extend(msg)
            row = self.rows[msg.id]
            row.state, row.due = "leased", self.now + LEASE
        else:
            with pytest.raises(LeaseLost):
                self.queue.extend(msg)

    @precondition(lambda self: self.held)
    @rule(pick=st.integers(0, 19))
    def bury(self, pick: int) -> None:
        msg = self.held[-1 - pick % len(self.held)]
        if self.holds(msg, ("ready", "leased")):
            self.queue.bury(msg, "bad")
            row = self.rows[msg.id]
            row.state, row.token = "dead", None
        else:
            with pytest.raises(LeaseLost):
                self.queue.bury(msg, "bad")

    @rule()
    def redrive(self) -> None:
        self.settle()
        dead = [r for r in self.rows.values() if r.state == "dead"]
        assert self.queue.redrive() == len(dead)
        for row in dead:
            row.state, row.attempts, row.token = "ready", 0, None

    @rule(seconds=st.sampled_from([0.5, 4.0, 6.0, 11.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        self.queue._next_settle = 0.0  # real time passed too: the next claim settles

    # -- what must always hold ---------------------------------------------------------------

    @invariant()
    def counts_match(self) -> None:
        if not hasattr(self, "queue"):
            return
        stats = self.queue.stats()
        self.settle()
        states = [r.state for r in self.rows.values()]
        expected = (
            states.count("ready"),
            states.count("leased"),
            states.count("delayed"),
            states.count("dead"),
        )
        assert (stats.pending, stats.in_flight, stats.delayed, stats.dead) == expected


QueueModel.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestQueueModel = QueueModel.TestCase
