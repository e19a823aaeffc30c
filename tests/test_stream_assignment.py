"""Stream rebalances: on_assign / on_revoke callbacks, wait_for_assignment, and a new
member's share arriving at the members' next poll rather than their next heartbeat.

Leases here are 60 s, so a heartbeat comes every 20 s: a rebalance that finishes within the
generous 10 s bounds below was driven by the polls, not by a heartbeat. No tight timing.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sqlitequeue import InvalidArgument, Stream, StreamError
from sqlitequeue.stream import Consumer, groups

LEASE = 60.0
BOUND = 10.0  # well under LEASE / 3, the heartbeat period
SPAWN = multiprocessing.get_context("spawn")

Events = list[tuple[str, list[int]]]


@pytest.fixture
def stream(db_path: Path) -> Iterator[Stream]:
    with Stream(db_path, "t", partitions=4) as s:
        yield s


def recorder(events: Events, name: str) -> Callable[[Consumer, list[int]], None]:
    def record(consumer: Consumer, partitions: list[int]) -> None:
        events.append((name, partitions))

    return record


def halves(share: list[int], other: list[int]) -> bool:
    """True if two members split four partitions two and two (which two depends on the
    members' random ids)."""
    return len(share) == 2 and sorted(share + other) == [0, 1, 2, 3]


class Poller:
    """Polls one consumer in a background thread (as a real member would), keeping records."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.records: list[tuple[int, int]] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for r in self.consumer.poll(100, timeout=0.2):
                    self.records.append((r.partition, r.offset))
        except BaseException as exc:  # reported by stop()
            self.errors.append(exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self.errors, self.errors


# -- a new member's share arrives promptly -------------------------------------------------


def test_a_new_member_gets_its_share_at_the_next_poll_not_the_next_heartbeat(
    stream: Stream,
) -> None:
    first = stream.consumer("g", lease=LEASE)
    first.poll(1, timeout=0)
    poller = Poller(first)
    try:
        second = stream.consumer("g", lease=LEASE)
        started = time.monotonic()
        share = second.wait_for_assignment(timeout=BOUND * 3)
        assert time.monotonic() - started < BOUND
    finally:
        poller.stop()
    assert halves(share, first.assignment())
    (group,) = groups(stream.path)
    owners = {p.partition: p.owner for p in group.partitions}
    assert {p: second.member for p in share} == {p: owners[p] for p in share}


def test_a_closed_members_partitions_move_at_the_others_next_poll(stream: Stream) -> None:
    first = stream.consumer("g", lease=LEASE)
    second = stream.consumer("g", lease=LEASE)
    poller = Poller(first)
    try:
        assert len(second.wait_for_assignment(timeout=BOUND)) == 2
        started = time.monotonic()
        second.close()
        deadline = time.monotonic() + BOUND
        while first.assignment() != [0, 1, 2, 3]:
            assert time.monotonic() < deadline, "the survivor did not take the partitions"
            time.sleep(0.02)
        assert time.monotonic() - started < BOUND
    finally:
        poller.stop()


def test_wait_for_assignment_returns_empty_when_there_is_no_share(db_path: Path) -> None:
    with Stream(db_path, "one", partitions=1) as stream:
        first = stream.consumer("g", lease=LEASE)
        assert first.wait_for_assignment(timeout=BOUND) == [0]
        second = stream.consumer("g", lease=LEASE)
        started = time.monotonic()
        assert second.wait_for_assignment(timeout=0.3) == []  # partition 0 is first's share
        assert time.monotonic() - started >= 0.3


# -- the callbacks -------------------------------------------------------------------------


def test_on_assign_runs_inside_poll_before_any_record_is_returned(stream: Stream) -> None:
    stream.append_many([b"old"] * 8)
    events: Events = []

    def skip_history(consumer: Consumer, partitions: list[int]) -> None:
        events.append(("assign", partitions))
        for p in partitions:
            consumer.seek(p, stream.end_offsets()[p])

    consumer = stream.consumer("g", lease=LEASE, on_assign=skip_history)
    assert events == []  # joining tells nobody: the first poll does
    assert consumer.poll(100, timeout=0) == []  # the seek ran before any record came out
    assert events == [("assign", [0, 1, 2, 3])]
    stream.append(b"new")
    assert [r.payload for r in consumer.poll(100, timeout=BOUND)] == [b"new"]
    assert events == [("assign", [0, 1, 2, 3])]  # told once


def test_on_revoke_runs_before_the_handover_so_a_commit_there_counts(stream: Stream) -> None:
    stream.append_many([b"%d" % i for i in range(40)])
    events: Events = []
    committed: list[dict[int, int]] = []

    def commit_before_losing(consumer: Consumer, partitions: list[int]) -> None:
        events.append(("revoke", partitions))
        consumer.commit()  # still the owner: this succeeds
        committed.append(consumer.committed())

    first = stream.consumer(
        "g", lease=LEASE, on_assign=recorder(events, "assign"), on_revoke=commit_before_losing
    )
    seen = [(r.partition, r.offset) for r in first.poll(1000, timeout=0)]
    assert len(seen) == 40  # polled, not committed
    second = stream.consumer("g", lease=LEASE, on_assign=recorder(events, "second"))
    poller = Poller(first)
    try:
        share = second.wait_for_assignment(timeout=BOUND)
        assert second.poll(1000, timeout=0.2) == []  # nothing redelivered: first committed
    finally:
        poller.stop()
    assert halves(share, first.assignment())
    assert events == [("assign", [0, 1, 2, 3]), ("revoke", share), ("second", share)]
    assert set(committed[0]) == {0, 1, 2, 3} and sum(committed[0].values()) == 40


def test_without_a_commit_in_on_revoke_the_new_owner_gets_the_records_again(
    stream: Stream,
) -> None:
    stream.append_many([b"%d" % i for i in range(40)])
    first = stream.consumer("g", lease=LEASE)
    assert len(first.poll(1000, timeout=0)) == 40
    second = stream.consumer("g", lease=LEASE)
    poller = Poller(first)
    try:
        share = second.wait_for_assignment(timeout=BOUND)
        again = second.poll(1000, timeout=BOUND)
    finally:
        poller.stop()
    assert len(share) == 2
    assert {r.partition for r in again} == set(share) and len(again) == 20  # at-least-once


def test_close_tells_on_revoke_and_a_commit_there_is_kept(stream: Stream) -> None:
    stream.append_many([b"x"] * 8)
    events: Events = []

    def commit_on_revoke(consumer: Consumer, partitions: list[int]) -> None:
        events.append(("revoke", partitions))
        consumer.commit()

    consumer = stream.consumer("g", lease=LEASE, on_revoke=commit_on_revoke)
    assert len(consumer.poll(100, timeout=0)) == 8
    consumer.close()
    assert events == [("revoke", [0, 1, 2, 3])]
    (group,) = groups(stream.path)
    assert group.lag == 0 and group.members == ()


def test_lost_partitions_are_told_to_on_revoke_after_the_fact(db_path: Path) -> None:
    events: Events = []
    with Stream(db_path, "t", partitions=2) as stream:
        stale = stream.consumer(
            "g",
            lease=0.3,
            on_assign=recorder(events, "assign"),
            on_revoke=recorder(events, "revoke"),
        )
        assert stale.poll(1, timeout=0) == []
        time.sleep(0.5)  # the lease expires: the survivor may take everything
        survivor = stream.consumer("g", lease=LEASE)
        assert survivor.wait_for_assignment(timeout=BOUND) == [0, 1]
        stale.poll(1, timeout=0)
        assert events == [("assign", [0, 1]), ("revoke", [0, 1])]
        assert stale.assignment() == []


def test_a_failing_callback_propagates_and_the_handover_happens_anyway(stream: Stream) -> None:
    def fail(consumer: Consumer, partitions: list[int]) -> None:
        raise RuntimeError("callback failed")

    first = stream.consumer("g", lease=LEASE, on_revoke=fail)
    first.poll(1, timeout=0)
    second = stream.consumer("g", lease=LEASE)
    time.sleep(0.1)  # past the first member's look interval
    with pytest.raises(RuntimeError, match="callback failed"):
        first.poll(1, timeout=BOUND)
    assert halves(second.wait_for_assignment(timeout=BOUND), first.assignment())


def test_polling_from_inside_a_callback_is_refused(stream: Stream) -> None:
    errors: list[StreamError] = []

    def poll_again(consumer: Consumer, partitions: list[int]) -> None:
        for call in (lambda: consumer.poll(1, timeout=0), lambda: consumer.wait_for_assignment(0)):
            with pytest.raises(StreamError, match="inside on_assign/on_revoke") as caught:
                call()
            errors.append(caught.value)

    consumer = stream.consumer("g", lease=LEASE, on_assign=poll_again)
    consumer.poll(1, timeout=0)
    assert len(errors) == 2


@pytest.mark.parametrize(
    "arguments", [{"on_assign": "print"}, {"on_revoke": 42}, {"on_assign": [print]}]
)
def test_callbacks_must_be_callable(stream: Stream, arguments: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument, match="must be a function called as"):
        stream.consumer("g", **arguments)  # type: ignore[arg-type]
    assert groups(stream.path) == []  # nobody joined


@pytest.mark.parametrize("timeout", [-1, float("nan"), "1"])
def test_wait_for_assignment_refuses_bad_timeouts(stream: Stream, timeout: object) -> None:
    consumer = stream.consumer("g", lease=LEASE)
    with pytest.raises(InvalidArgument, match="timeout"):
        consumer.wait_for_assignment(timeout)  # type: ignore[arg-type]


# -- real processes ------------------------------------------------------------------------


def _member(path: str, log: str, stop: str) -> None:
    """A group member in its own process: polls until ``stop`` exists, logging callbacks."""

    def note(what: str) -> Callable[[Consumer, list[int]], None]:
        def told(consumer: Consumer, partitions: list[int]) -> None:
            with open(log, "a") as f:
                f.write(f"{what} {','.join(map(str, partitions))}\n")

        return told

    with Stream(path, "t") as stream:
        consumer = stream.consumer(
            "g", lease=LEASE, on_assign=note("assign"), on_revoke=note("revoke")
        )
        while not os.path.exists(stop):
            consumer.poll(100, timeout=0.2)
        consumer.close()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.slow
def test_a_member_in_another_process_hands_over_promptly(tmp_path: Path) -> None:
    path, log, stop = tmp_path / "s.db", tmp_path / "member.log", tmp_path / "stop"
    Stream(path, "t", partitions=4).close()
    member = SPAWN.Process(target=_member, args=(str(path), str(log), str(stop)))
    member.start()
    try:
        deadline = time.monotonic() + 60
        while _lines(log) != ["assign 0,1,2,3"]:
            assert time.monotonic() < deadline, _lines(log)
            time.sleep(0.02)
        with Stream(path, "t") as stream:
            joined = stream.consumer("g", lease=LEASE)
            started = time.monotonic()
            share = ",".join(map(str, joined.wait_for_assignment(timeout=BOUND * 3)))
            assert time.monotonic() - started < BOUND
            joined.close()
            deadline = time.monotonic() + BOUND
            while _lines(log)[-1:] != [f"assign {share}"]:
                assert time.monotonic() < deadline, _lines(log)
                time.sleep(0.02)
    finally:
        stop.touch()
        member.join(60)
        if member.is_alive():
            member.kill()
    assert member.exitcode == 0
    assert len(share) == 3  # two partitions
    assert _lines(log) == [
        "assign 0,1,2,3",
        f"revoke {share}",
        f"assign {share}",
        "revoke 0,1,2,3",
    ]
