"""Leases and delays ignore wall-clock steps, and survive reboots and restores elsewhere
(issue 15, defect 8).

Wall-clock steps are simulated by patching ``time.time`` (in this process, or in a second
process); a reboot or a restore on another host by patching the host's boot id and
CLOCK_BOOTTIME as :mod:`sqlitequeue._clock` reads them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlitequeue import Queue, Stream
from tests.helpers import REPO

HOUR = 3600.0


class WallClock:
    """``time.time`` plus a step that the test sets."""

    def __init__(self) -> None:
        self.real = time.time
        self.step = 0.0

    def __call__(self) -> float:
        return self.real() + self.step


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> Iterator[WallClock]:
    clock = WallClock()
    monkeypatch.setattr(time, "time", clock)
    yield clock


def claimed_and_delayed(path: Path, lease: float, delay: float) -> Queue:
    """A queue holding one leased message and one delayed message."""
    q = Queue(path)
    q.put(b"leased")
    assert q.get(timeout=0, lease=lease) is not None
    q.put(b"delayed", delay=delay)
    return q


# -- wall-clock steps --------------------------------------------------------------------------


def test_a_step_forward_redelivers_nothing_and_fires_no_delay(
    db_path: Path, wall: WallClock
) -> None:
    with claimed_and_delayed(db_path, lease=60, delay=60) as q:
        wall.step = HOUR
        assert q.get(timeout=0) is None
        stats = q.stats()
        assert (stats.in_flight, stats.delayed, stats.pending) == (1, 1, 0)


def test_a_step_back_holds_no_lease_or_delay_longer(db_path: Path, wall: WallClock) -> None:
    with claimed_and_delayed(db_path, lease=0.2, delay=0.2) as q:
        wall.step = -HOUR
        first, second = q.get(timeout=10), q.get(timeout=10)
        assert first is not None and first.payload == b"leased" and first.attempts == 2
        assert second is not None and second.payload == b"delayed"


def test_nack_delay_ignores_a_step(db_path: Path, wall: WallClock) -> None:
    with Queue(db_path) as q:
        q.put(b"x")
        message = q.get(timeout=0)
        assert message is not None
        q.nack(message, delay=60)
        wall.step = HOUR
        assert q.stats().delayed == 1
        assert q.get(timeout=0) is None


def test_public_times_stay_on_the_wall_clock(db_path: Path) -> None:
    with Queue(db_path) as q:
        q.put(b"x")
        message = q.get(timeout=0, lease=30)
        assert message is not None
        assert abs(message.enqueued_at - time.time()) < 60
        assert message.lease_expires_at is not None
        assert abs(message.lease_expires_at - (time.time() + 30)) < 60


STEPPED_GET = """
import sys, time
real = time.time
time.time = lambda: real() + float(sys.argv[2])
from sqlitequeue import Queue
with Queue(sys.argv[1]) as q:
    message = q.get(timeout=float(sys.argv[3]))
    print(None if message is None else message.payload.decode())
"""


def get_in_a_stepped_process(path: Path, step: float, timeout: float) -> str:
    done = subprocess.run(
        [sys.executable, "-c", STEPPED_GET, str(path), str(step), str(timeout)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=True,
    )
    return done.stdout.strip()


def test_a_process_whose_clock_is_ahead_takes_no_leased_or_delayed_message(
    db_path: Path,
) -> None:
    with claimed_and_delayed(db_path, lease=60, delay=60):
        assert get_in_a_stepped_process(db_path, HOUR, timeout=0) == "None"


def test_a_process_whose_clock_is_behind_takes_an_expired_lease(db_path: Path) -> None:
    with claimed_and_delayed(db_path, lease=0.2, delay=HOUR):
        time.sleep(0.3)
        assert get_in_a_stepped_process(db_path, -HOUR, timeout=10) == "leased"


def test_a_stream_member_keeps_its_partitions_through_a_step(
    db_path: Path, wall: WallClock
) -> None:
    with Stream(db_path, "t", partitions=2) as stream:
        first = stream.consumer("g", lease=60)
        assert first.assignment() == [0, 1]
        wall.step = HOUR
        second = stream.consumer("g", lease=60)
        assert first.assignment() == [0, 1] and second.assignment() == []
        assert len(stream.groups()[0].members) == 2


# -- reboots and restores ----------------------------------------------------------------------


class Host:
    """The boot id and CLOCK_BOOTTIME as sqlitequeue._clock sees them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from sqlitequeue import _clock

        self.boot_id = _clock.host_boot_id()
        self.uptime = _clock.boottime()
        monkeypatch.setattr(_clock, "host_boot_id", lambda: self.boot_id)
        monkeypatch.setattr(_clock, "boottime", lambda: self.uptime)

    def reboot(self, boot_id: str = "another boot") -> None:
        self.boot_id = boot_id
        self.uptime = 5.0


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Host:
    return Host(monkeypatch)


def test_after_a_reboot_leases_are_released_and_delays_kept(
    db_path: Path, host: Host, wall: WallClock
) -> None:
    claimed_and_delayed(db_path, lease=HOUR, delay=HOUR).close()
    host.reboot()
    with Queue(db_path) as q:
        message = q.get(timeout=0)
        assert message is not None and message.payload == b"leased" and message.attempts == 2
        q.ack(message)
        assert q.get(timeout=0) is None
        host.uptime += HOUR - 60
        assert q.get(timeout=0) is None and q.stats().delayed == 1
        host.uptime += 120
        message = q.get(timeout=5)
        assert message is not None and message.payload == b"delayed"


CRASHED_MEMBER = """
import os, sys
from sqlitequeue import Stream
stream = Stream(sys.argv[1], "t")
stream.consumer("g", lease=3600)
os._exit(0)  # a crash: the member never leaves the group
"""


def join_and_crash(path: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", CRASHED_MEMBER, str(path)], timeout=120, cwd=REPO, check=True
    )


def test_a_crashed_member_keeps_its_partitions_until_its_lease_ends(
    db_path: Path, host: Host
) -> None:
    Stream(db_path, "t", partitions=2).close()
    join_and_crash(db_path)
    with Stream(db_path, "t") as stream:
        assert len(stream.groups()[0].members) == 1
        assert stream.consumer("g").assignment() == []


def test_after_a_reboot_stream_members_are_gone(db_path: Path, host: Host) -> None:
    Stream(db_path, "t", partitions=2).close()
    join_and_crash(db_path)
    host.reboot()
    with Stream(db_path, "t") as stream:
        assert stream.groups()[0].members == ()
        assert stream.consumer("g").assignment() == [0, 1]


def test_downtime_counts_by_the_wall_clock(db_path: Path, host: Host, wall: WallClock) -> None:
    """Across a reboot or a restore on another host only the wall clock spans the gap."""
    claimed_and_delayed(db_path, lease=HOUR, delay=HOUR).close()
    host.reboot()
    wall.step = 2 * HOUR  # two hours off
    with Queue(db_path) as q:
        assert [m.payload for m in q.get_many(10, timeout=0)] == [b"leased", b"delayed"]


def test_a_wall_clock_behind_across_a_restore_fires_nothing_early(
    db_path: Path, host: Host, wall: WallClock
) -> None:
    claimed_and_delayed(db_path, lease=HOUR, delay=HOUR).close()
    host.reboot("the restore host")
    wall.step = -2 * HOUR
    with Queue(db_path) as q:
        leased = q.get_many(10, timeout=0)
        assert [m.payload for m in leased] == [b"leased"]
        q.ack_many(leased)
        host.uptime += HOUR + 60
        assert [m.payload for m in q.get_many(10, timeout=5)] == [b"delayed"]


def test_reopening_on_the_same_boot_changes_nothing(db_path: Path, host: Host) -> None:
    claimed_and_delayed(db_path, lease=HOUR, delay=HOUR).close()
    with Queue(db_path) as q:
        assert q.get(timeout=0) is None
        stats = q.stats()
        assert (stats.in_flight, stats.delayed) == (1, 1)
