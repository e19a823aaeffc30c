"""Many processes on one file: no loss, no double claim, crash safety under SIGKILL."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from sqlitequeue import Queue

SPAWN = multiprocessing.get_context("spawn")


# -- workers (module level, so spawned processes can import them) -------------------------


def _produce(path: str, producer: int, count: int) -> None:
    """Put ``count`` messages: the first half one at a time, the rest in batches of 250."""
    with Queue(path) as q:
        half = count // 2
        for i in range(half):
            q.put(b"%d:%d" % (producer, i))
        for start in range(half, count, 250):
            q.put_many([b"%d:%d" % (producer, i) for i in range(start, min(start + 250, count))])


def _consume(path: str, out: str, done_flag: str, batch: int) -> None:
    """Claim and ack until producers are done and the queue stays empty; log every claim."""
    claimed: list[bytes] = []
    with Queue(path, lease=300) as q:
        while True:
            messages = q.get_many(batch, timeout=0.2) if batch > 1 else _one(q)
            if messages:
                claimed.extend(b"%d %s" % (m.id, m.payload) for m in messages)
                q.ack_many(messages)
            elif os.path.exists(done_flag):
                if not q.get_many(1, timeout=0.5):
                    break
                raise AssertionError("message appeared after producers finished")
    Path(out).write_bytes(b"\n".join(claimed))


def _one(q: Queue) -> list:
    msg = q.get(timeout=0.2)
    return [] if msg is None else [msg]


def _hold_leases(path: str, ready: Connection) -> None:
    """Claim 100 messages under a short lease, report their ids, then hang until killed."""
    with Queue(path, lease=0.5) as q:
        held = q.get_many(50, timeout=5) + q.get_many(50, timeout=5)
        ready.send([m.id for m in held])
        time.sleep(600)


def _put_batches(path: str, acked: Connection) -> None:
    """Put batches forever, alternating put_many(500) and single puts; report each success."""
    with Queue(path) as q:
        number = 0
        while True:
            if number % 4 == 3:
                q.put(b"single %d" % number)
            else:
                q.put_many([b"batch %d %d" % (number, i) for i in range(500)])
            acked.send(number)
            number += 1


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_four_producers_four_consumers_nothing_lost_nothing_claimed_twice(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "q.db")
    Queue(path).close()
    per_producer = 25_000
    done_flag = str(tmp_path / "producers-done")
    outs = [str(tmp_path / f"consumer-{i}.log") for i in range(4)]
    consumers = [
        SPAWN.Process(target=_consume, args=(path, outs[i], done_flag, [1, 10, 50, 100][i]))
        for i in range(4)
    ]
    producers = [SPAWN.Process(target=_produce, args=(path, p, per_producer)) for p in range(4)]
    for proc in consumers + producers:
        proc.start()
    try:
        for proc in producers:
            proc.join(timeout=240)
            assert proc.exitcode == 0, "a producer failed"
        Path(done_flag).touch()
        for proc in consumers:
            proc.join(timeout=120)
            assert proc.exitcode == 0, "a consumer failed"
    finally:
        for proc in consumers + producers:
            if proc.is_alive():
                proc.kill()
    lines = [line for out in outs for line in Path(out).read_bytes().split(b"\n") if line]
    ids = [line.split(b" ")[0] for line in lines]
    payloads = {line.split(b" ")[1] for line in lines}
    assert len(ids) == len(set(ids)), "a message was claimed twice"
    expected = {b"%d:%d" % (p, i) for p in range(4) for i in range(per_producer)}
    assert payloads == expected, f"{len(expected - payloads)} messages lost"
    assert len(lines) == 4 * per_producer
    with Queue(path) as q:
        stats = q.stats()
        assert (stats.pending, stats.in_flight, stats.delayed, stats.dead) == (0, 0, 0, 0)


@pytest.mark.slow
def test_killed_consumer_leases_are_redelivered(tmp_path: Path) -> None:
    path = str(tmp_path / "q.db")
    with Queue(path) as q:
        q.put_many([b"%d" % i for i in range(200)])
    receive, send = SPAWN.Pipe(duplex=False)
    child = SPAWN.Process(target=_hold_leases, args=(path, send))
    child.start()
    try:
        assert receive.poll(60), "the consumer did not claim in time"
        held = set(receive.recv())
        assert len(held) == 100
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join(timeout=10)
        assert child.exitcode == -signal.SIGKILL
    finally:
        if child.is_alive():
            child.kill()
    seen: dict[bytes, int] = {}
    redelivered = set()
    with Queue(path, lease=30) as q:
        while len(seen) < 200:
            batch = q.get_many(100, timeout=10)
            assert batch, f"only {len(seen)} of 200 messages came back"
            for m in batch:
                assert m.payload not in seen, "delivered twice within a lease"
                seen[m.payload] = m.attempts
                if m.id in held:
                    redelivered.add(m.id)
                    assert m.attempts == 2
            q.ack_many(batch)
    assert redelivered == held
    assert set(seen) == {b"%d" % i for i in range(200)}


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [3, 8, 13])
def test_killed_producer_batches_are_all_or_nothing_and_acked_puts_survive(
    tmp_path: Path, kill_after: int
) -> None:
    path = str(tmp_path / "q.db")
    Queue(path).close()
    receive, send = SPAWN.Pipe(duplex=False)
    child = SPAWN.Process(target=_put_batches, args=(path, send))
    child.start()
    acked: list[int] = []
    try:
        while len(acked) < kill_after:
            assert receive.poll(60), "the producer stopped reporting"
            acked.append(receive.recv())
        time.sleep(0.002 * kill_after)  # land somewhere inside a later put
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join(timeout=10)
        while receive.poll(0):
            acked.append(receive.recv())
    finally:
        if child.is_alive():
            child.kill()
    with Queue(path) as q:
        rows = [m.payload for m in q.peek(limit=1_000_000)]
    batches: dict[int, int] = {}
    singles = set()
    for payload in rows:
        words = payload.split()
        if words[0] == b"single":
            singles.add(int(words[1]))
        else:
            batches[int(words[1])] = batches.get(int(words[1]), 0) + 1
    assert all(count == 500 for count in batches.values()), f"a partial batch: {batches}"
    stored = set(batches) | singles
    assert set(acked) <= stored, f"acknowledged puts lost: {set(acked) - stored}"
    assert stored <= set(range(max(acked) + 2)), "unexpected batch numbers"
