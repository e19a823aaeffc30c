"""Consumer groups: members share partitions through leases; dead members lose them.

Real processes for the crash and ordering tests; leases of a fraction of a second so the
tests stay short. No tight timing assertions: only generous upper bounds.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sqlitequeue import NotPartitionOwner, Stream
from sqlitequeue.stream import Consumer, groups

LEASE = 0.5
SPAWN = multiprocessing.get_context("spawn")


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, step: float = 0.02) -> None:
    """Call ``condition`` until it returns True; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(step)


def test_members_split_partitions_and_rejoin_after_close(db_path: Path) -> None:
    with Stream(db_path, "t", partitions=4) as stream:
        first = stream.consumer("g", lease=LEASE)
        second = stream.consumer("g", lease=LEASE)
        assert first.assignment() == [0, 1, 2, 3] and second.assignment() == []

        def balanced() -> bool:
            first.poll(1, timeout=0.01)
            second.poll(1, timeout=0.01)
            return len(first.assignment()) == len(second.assignment()) == 2

        wait_until(balanced)
        assert sorted(first.assignment() + second.assignment()) == [0, 1, 2, 3]
        first.close()

        def second_has_all() -> bool:
            second.poll(1, timeout=0.01)
            return second.assignment() == [0, 1, 2, 3]

        wait_until(second_has_all)


def test_expired_member_cannot_commit_and_its_records_go_to_the_survivor(
    db_path: Path,
) -> None:
    with Stream(db_path, "t", partitions=2) as stream:
        stream.append_many([b"%d" % i for i in range(10)])
        stale = stream.consumer("g", lease=LEASE)
        polled = stale.poll(100, timeout=0)
        assert len(polled) == 10
        survivor = stream.consumer("g", lease=LEASE)
        # `stale` stops polling: after its lease the survivor takes both partitions.
        got: list[bytes] = []

        def survivor_took_over() -> bool:
            got.extend(r.payload for r in survivor.poll(100, timeout=0.05))
            return survivor.assignment() == [0, 1]

        wait_until(survivor_took_over)
        wait_until(lambda: survivor_took_over() and len(got) >= 10)
        assert sorted(got) == sorted(r.payload for r in polled)  # redelivered, none lost
        with pytest.raises(NotPartitionOwner, match="no longer owns partition"):
            stale.commit()
        assert stale.assignment() == []
        survivor.commit()
        (group,) = groups(db_path)
        assert group.lag == 0 and group.members == (survivor.member,)


# -- real processes ----------------------------------------------------------------------


def _member(path: str, out: str, stop: str, lease: float, commit_first: int) -> None:
    """A group member in its own process: poll, log every record, commit.

    Writes "C p o" for records whose commit succeeded and "U p o" for records polled after
    the first ``commit_first`` ones, which it never commits (it keeps polling, so it keeps
    its lease, until killed or told to stop).
    """
    with Stream(path, "t") as stream, open(out, "a", buffering=1) as log:
        consumer = stream.consumer("g", lease=lease)
        log.write(f"J {consumer.member}\n")
        seen = 0
        while not os.path.exists(stop):
            records = consumer.poll(5, timeout=0.05)
            if not records:
                continue
            if seen < commit_first:
                consumer.commit()
                tag = "C"
            else:
                tag = "U"
            seen += len(records)
            for r in records:
                log.write(f"{tag} {r.partition} {r.offset} {r.payload.decode()}\n")
        consumer.commit()
        consumer.close()


def _read_log(path: Path) -> list[tuple[str, int, int, str]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts[0] in "CU" and len(parts) == 4:
            rows.append((parts[0], int(parts[1]), int(parts[2]), parts[3]))
    return rows


@pytest.mark.slow
def test_per_key_order_with_four_partitions_and_two_member_processes(tmp_path: Path) -> None:
    path, stop = tmp_path / "s.db", tmp_path / "stop"
    Stream(path, "t", partitions=4).close()
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    members = [
        SPAWN.Process(target=_member, args=(str(path), str(out), str(stop), 5.0, 10**9))
        for out in logs
    ]
    for process in members:
        process.start()
    try:
        wait_until(lambda: all(out.exists() for out in logs), timeout=60)

        def settled() -> bool:
            found = groups(path)
            owners = [p.owner for p in found[0].partitions] if found else []
            return len(owners) == 4 and len(set(owners)) == 2 and None not in owners

        wait_until(settled, timeout=60)
        keys = [f"k{i}" for i in range(12)]
        with Stream(path, "t") as stream:
            for batch in range(20):
                payloads = [f"{k}:{batch}".encode() for k in keys]
                stream.append_many(payloads, keys=[k.encode() for k in keys])
        total = 20 * len(keys)
        wait_until(lambda: sum(len(_read_log(out)) for out in logs) >= total, timeout=60)
    finally:
        stop.touch()
        for process in members:
            process.join(30)
    assert all(process.exitcode == 0 for process in members)
    by_member = [_read_log(out) for out in logs]
    assert all(by_member), "both members received records"
    seen_keys: list[set[str]] = []
    for rows in by_member:
        sequences: dict[str, list[int]] = {}
        for _tag, _p, _o, payload in rows:
            key, seq = payload.split(":")
            sequences.setdefault(key, []).append(int(seq))
        assert all(seq == sorted(seq) for seq in sequences.values()), "per-key order"
        seen_keys.append(set(sequences))
    assert not seen_keys[0] & seen_keys[1], "a key is read by one member only"
    received = sorted(row[3] for rows in by_member for row in rows)
    assert received == sorted(f"{k}:{b}" for k in keys for b in range(20))


@pytest.mark.slow
def test_sigkill_member_partitions_move_to_survivor_nothing_lost(tmp_path: Path) -> None:
    path, stop, victim_log = tmp_path / "s.db", tmp_path / "stop", tmp_path / "victim.log"
    with Stream(path, "t", partitions=4) as stream:
        stream.append_many([b"%d" % i for i in range(200)], keys=[b"%d" % i for i in range(200)])
    victim = SPAWN.Process(target=_member, args=(str(path), str(victim_log), str(stop), LEASE, 40))
    victim.start()
    try:
        # The victim committed its first batches and holds polled, uncommitted records.
        wait_until(lambda: any(r[0] == "U" for r in _read_log(victim_log)), timeout=60)
        with Stream(path, "t") as stream:
            survivor = stream.consumer("g", lease=LEASE)
            got: list[tuple[int, int]] = []

            def poll_survivor() -> bool:
                for r in survivor.poll(50, timeout=0.05):
                    got.append((r.partition, r.offset))
                survivor.commit()
                return True

            # Rebalance while both live: the survivor takes two partitions.
            wait_until(lambda: poll_survivor() and len(survivor.assignment()) == 2)
            os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
            victim.join(10)
            # After the victim's lease, its partitions move to the survivor.
            wait_until(lambda: poll_survivor() and survivor.assignment() == [0, 1, 2, 3])
            wait_until(lambda: poll_survivor() and sum(survivor.lag().values()) == 0)
            survivor.close()
    finally:
        stop.touch()
        if victim.is_alive():
            victim.kill()
        victim.join(10)
    assert victim.exitcode == -signal.SIGKILL
    victim_rows = _read_log(victim_log)
    committed_by_victim = {(p, o) for tag, p, o, _ in victim_rows if tag == "C"}
    uncommitted = {(p, o) for tag, p, o, _ in victim_rows if tag == "U"}
    everything = {(p, o) for p in range(4) for o in range(_end(path, p))}
    assert len(everything) == 200
    assert committed_by_victim | set(got) == everything, "no committed record lost"
    assert uncommitted - committed_by_victim <= set(got), "uncommitted records redelivered"
    (group,) = groups(path)
    assert group.lag == 0


def _end(path: Path, partition: int) -> int:
    with Stream(path, "t") as stream:
        return stream.end_offsets()[partition]


def _append_later(path: str, delay: float) -> None:
    time.sleep(delay)
    with Stream(path, "t") as stream:
        stream.append(b"wake up")


def test_blocking_poll_wakes_on_append_from_another_process(db_path: Path) -> None:
    with Stream(db_path, "t") as stream:
        consumer = stream.consumer("g")
        writer = SPAWN.Process(target=_append_later, args=(str(db_path), 0.5))
        writer.start()
        started = time.monotonic()
        records = consumer.poll(10, timeout=30)
        waited = time.monotonic() - started
        writer.join(30)
    assert [r.payload for r in records] == [b"wake up"]
    assert waited < 20  # returned on the append, not at the timeout


def test_poll_timeout_returns_empty_list(db_path: Path) -> None:
    with Stream(db_path, "t") as stream:
        consumer: Consumer = stream.consumer("g")
        started = time.monotonic()
        assert consumer.poll(10, timeout=0.2) == []
        assert time.monotonic() - started >= 0.19


def _two_handles_appending(path: str, signals: str, count: int) -> None:
    """Open the file twice in one process (stream + consumer), append slowly, and keep
    both open until told to stop (a closing last connection would checkpoint)."""
    with Stream(path, "t") as stream:
        consumer = stream.consumer("g")
        (Path(signals) / "ready").touch()
        for i in range(count):
            stream.append(b"%d" % i)
            consumer.poll(10, timeout=0.01)
        (Path(signals) / "done").touch()
        wait_until((Path(signals) / "stop").exists, timeout=60)
        consumer.close()


def test_a_second_handle_in_a_process_keeps_its_locks(tmp_path: Path) -> None:
    # Re-reading the header of a file the process has open used to drop its POSIX locks;
    # another process closing its connection then deleted the WAL, and they diverged.
    path = tmp_path / "s.db"
    Stream(path, "t").close()
    child = SPAWN.Process(target=_two_handles_appending, args=(str(path), str(tmp_path), 50))
    child.start()
    try:
        wait_until((tmp_path / "ready").exists, timeout=60)
        while not (tmp_path / "done").exists():
            Stream(path, "t").close()  # each close may think it is the last connection
            time.sleep(0.01)
        with Stream(path, "t") as stream:
            assert stream.end_offsets() == {0: 50}  # sees the writer's records
    finally:
        (tmp_path / "stop").touch()
        child.join(60)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
