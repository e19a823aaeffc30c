"""The per-record path of a produce and its fetch: the writer's fast path (an append with
no write in flight commits on the event loop's thread; when the file's lock is held it goes
to the writer thread, which waits for it, and appends keep the order they were submitted
in), and the change watcher waking a waiting fetch only for what it has not read."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from sqlitequeue.errors import DatabaseError
from sqlitequeue.gateway import writer as writer_module
from sqlitequeue.gateway.batches import Batch, check_batch
from sqlitequeue.gateway.changes import Changes
from sqlitequeue.gateway.handlers import AcceptedProduce
from sqlitequeue.gateway.producers import Producers
from sqlitequeue.gateway.storage import Log
from sqlitequeue.gateway.wire import ErrorCode
from sqlitequeue.gateway.writer import Writer
from tests.test_gateway_protocol import batch


def _setup(db_path: Path) -> None:
    setup = Log(db_path)
    setup.create_topic("t", 1)
    setup.close()


def _stored(db_path: Path) -> tuple[int, int]:
    check = Log(db_path)
    try:
        return check.bounds(check.topic("t").pids[0])  # type: ignore[union-attr]
    finally:
        check.close()


def _one(value: bytes) -> Batch:
    return check_batch(batch([value]), 1 << 20)


async def _held_offset_commit(
    writer: Writer, release: threading.Event, after: Callable[[], None] = lambda: None
) -> asyncio.Future[None]:
    """Start an offset commit on the writer thread that waits there until ``release`` is
    set (then commits and calls ``after``); return once it waits, with its future."""
    started = threading.Event()
    real = writer.log.commit

    def held_commit(*args: object) -> None:
        started.set()
        release.wait(30)
        real(*args)  # type: ignore[arg-type]
        after()

    writer.log.commit = held_commit  # type: ignore[method-assign,assignment]
    pid = writer.log.topic("t").pids[0]  # type: ignore[union-attr]
    running = asyncio.ensure_future(writer.run(writer.log.commit, "g", [(pid, 0)]))
    assert await asyncio.to_thread(started.wait, 30)  # held on the writer thread
    return running


async def _append_behind_a_held_commit(
    writer: Writer,
    release: threading.Event,
    after: Callable[[], None] = lambda: None,
    appended: Callable[[], None] = lambda: None,
) -> list[int]:
    """Submit one append while an offset commit is held on the writer thread (see
    _held_offset_commit: ``after`` runs once it committed, ``appended`` once the append
    is done); check the append is not done yet, release the commit, and return the
    append's offsets once both are done."""
    pid = writer.log.topic("t").pids[0]  # type: ignore[union-attr]
    running = await _held_offset_commit(writer, release, after)
    append = writer.submit([(pid, _one(b"a"))])
    append.add_done_callback(lambda _f: appended())
    assert not append.done()
    release.set()
    await running
    return await append


def test_an_append_with_no_write_in_flight_is_committed_before_submit_returns(
    db_path: Path,
) -> None:
    _setup(db_path)

    async def scenario() -> list[int]:
        writer = Writer(Log(db_path))
        pid = writer.log.topic("t").pids[0]  # type: ignore[union-attr]
        try:
            offsets = []
            for value in (b"a", b"b", b"c"):
                future = writer.submit([(pid, _one(value))])
                assert future.done()  # committed on the loop's thread, no hop
                offsets.append(future.result()[0])
            return offsets
        finally:
            await asyncio.to_thread(writer.close)

    assert asyncio.run(scenario()) == [0, 1, 2]
    assert _stored(db_path) == (0, 3)


def test_a_held_lock_sends_appends_to_the_writer_thread_in_order(db_path: Path) -> None:
    """Another connection holds the write lock: the appends wait for it on the writer
    thread (the loop is free meanwhile), get their offsets in submission order once it
    is released, and the next append takes the fast path again."""
    _setup(db_path)
    blocker = sqlite3.connect(db_path, isolation_level=None)

    async def scenario() -> list[int]:
        writer = Writer(Log(db_path))
        pid = writer.log.topic("t").pids[0]  # type: ignore[union-attr]
        try:
            blocker.execute("BEGIN IMMEDIATE")
            first = writer.submit([(pid, _one(b"a"))])
            second = writer.submit([(pid, _one(b"b"))])  # queued behind, never ahead
            await asyncio.sleep(0.2)  # the loop runs while the writer thread waits
            assert not first.done() and not second.done()
            blocker.execute("COMMIT")
            offsets = [(await first)[0], (await second)[0]]
            if writer._flusher is not None:
                await writer._flusher  # the writer thread's round is over
            third = writer.submit([(pid, _one(b"c"))])
            assert third.done()
            return [*offsets, third.result()[0]]
        finally:
            await asyncio.to_thread(writer.close)

    try:
        assert asyncio.run(scenario()) == [0, 1, 2]
    finally:
        blocker.close()
    assert _stored(db_path) == (0, 3)


def test_an_append_while_another_write_runs_waits_for_it(db_path: Path) -> None:
    """A write running on the writer thread (here an offset commit, held) comes first: an
    append submitted meanwhile is not committed ahead of it on the fast path."""
    _setup(db_path)
    release = threading.Event()
    order: list[str] = []

    async def scenario() -> None:
        writer = Writer(Log(db_path))
        try:
            offsets = await _append_behind_a_held_commit(
                writer, release, lambda: order.append("commit"), lambda: order.append("append")
            )
            assert offsets == [0]
        finally:
            release.set()
            await asyncio.to_thread(writer.close)

    asyncio.run(scenario())
    assert order == ["commit", "append"]


def test_large_appends_go_to_the_writer_thread(db_path: Path) -> None:
    _setup(db_path)

    async def scenario() -> int:
        writer = Writer(Log(db_path))
        pid = writer.log.topic("t").pids[0]  # type: ignore[union-attr]
        big = check_batch(batch([b"x" * (writer_module.FAST_BYTES + 1)]), 1 << 21)
        try:
            future = writer.submit([(pid, big)])
            assert not future.done()  # the loop reads on while the writer thread commits
            return (await future)[0]
        finally:
            await asyncio.to_thread(writer.close)

    assert asyncio.run(scenario()) == 0
    assert _stored(db_path) == (0, 1)


def test_a_waiting_fetch_wakes_for_another_connections_commit_not_for_one_it_read(
    db_path: Path,
) -> None:
    """The change watcher compares the file with what each waiting fetch read: a commit
    made after the fetch read wakes it; one made before (as the server's own appends, on
    the writer's connections, always are once their fetches are woken) does not."""
    _setup(db_path)
    other = Log(db_path)
    pid = other.topic("t").pids[0]  # type: ignore[union-attr]

    async def scenario() -> tuple[int, int]:
        log = Log(db_path)
        changes = Changes(log)
        try:
            first = asyncio.ensure_future(changes.wait(changes.mark(), 30))
            await asyncio.sleep(0.05)  # waiting, and the watcher runs
            other.append([(pid, _one(b"a"))])  # as the server's own append ...
            changes.notify()  # ... which wakes the fetches itself
            await first
            mark = changes.mark()  # the next fetch reads after that commit
            await changes.wait(mark, 0.3)  # nothing new: it waits until its timeout
            quiet = changes._notified - mark.notified
            mark = changes.mark()
            waiting = asyncio.ensure_future(changes.wait(mark, 30))
            await asyncio.sleep(0.05)
            await asyncio.to_thread(other.append, [(pid, _one(b"b"))])  # after it read
            await asyncio.wait_for(waiting, 10)  # woken by the watcher, not the timeout
            return quiet, changes._notified - mark.notified
        finally:
            log.close()

    try:
        assert asyncio.run(scenario()) == (0, 1)
    finally:
        other.close()


def test_appends_queued_behind_a_catch_up_checkpoint_commit_on_the_loops_connection(
    db_path: Path,
) -> None:
    """Appends that waited for the writer's catch-up checkpoint are committed on the loop's
    connection once it ends, not handed to the writer thread (whose Python steps would
    wait for the interpreter lock the loop holds); with the file's lock held by another
    connection they go to the writer thread, which waits for it."""
    _setup(db_path)
    release, started = threading.Event(), threading.Event()
    on_writer_thread: list[int] = []

    async def scenario(hold_lock: bool) -> list[int]:
        writer = Writer(Log(db_path))
        pid = writer.log.topic("t").pids[0]  # type: ignore[union-attr]
        real_checkpoint, real_append = writer.log.checkpoint, writer.log.append_all

        def held_checkpoint() -> bool:
            started.set()
            release.wait(30)
            real_checkpoint()
            return False  # as if a reader kept frames: the WAL does not start over

        def counted_append(jobs: list[list[tuple[int, Batch]]]) -> list[list[int]]:
            on_writer_thread.append(len(jobs))
            return real_append(jobs)

        writer.log.checkpoint = held_checkpoint  # type: ignore[method-assign]
        writer.log.append_all = counted_append  # type: ignore[method-assign]
        blocker = sqlite3.connect(db_path, isolation_level=None)
        try:
            writer._catch_up = True  # a background checkpoint ended: the catch-up is due
            first = writer.submit([(pid, _one(b"a"))])  # the fast path, then the catch-up
            assert first.done()
            assert await asyncio.to_thread(started.wait, 30)  # held on the writer thread
            queued = [writer.submit([(pid, _one(v))]) for v in (b"b", b"c")]
            if hold_lock:
                blocker.execute("BEGIN IMMEDIATE")
            release.set()
            if hold_lock:
                await asyncio.sleep(0.2)
                assert not any(f.done() for f in queued)  # waiting for the lock
                blocker.execute("COMMIT")
            return [(await f)[0] for f in [first, *queued]]
        finally:
            release.set()
            blocker.close()
            await asyncio.to_thread(writer.close)

    assert asyncio.run(scenario(hold_lock=False)) == [0, 1, 2]
    assert on_writer_thread == []
    release.clear()
    started.clear()
    assert asyncio.run(scenario(hold_lock=True)) == [3, 4, 5]
    assert on_writer_thread == [2]  # both queued ones, in one transaction, in order
    assert _stored(db_path) == (0, 6)


def test_batches_stored_out_of_order_still_let_the_next_one_follow() -> None:
    """A producer's batch committed on the loop's thread can be settled before an earlier
    one whose task has not run yet: the next batch must still follow the later one."""
    producers = Producers(lambda pid: [])

    def one(sequence: int, count: int = 2) -> Batch:
        return Batch(b"", count, 7, 0, sequence)

    first, second, third = one(0), one(2), one(4)
    assert producers.check(1, first) == (0, None)
    assert producers.check(1, second) == (0, None)
    producers.stored(1, second, 2)  # settled first
    producers.stored(1, first, 0)
    assert producers.check(1, third) == (0, None)  # follows the second, not the first
    assert producers.check(1, one(2)) == (0, 2)  # a retry of the second is recognised


def test_the_append_after_a_checkpoint_that_copied_the_wal_commits_on_the_writer_thread(
    db_path: Path,
) -> None:
    """The commit after a checkpoint that copied the whole WAL starts the WAL over and
    syncs its header: that append goes to the writer thread, not the loop's connection,
    and the next one takes the fast path again. Both checkpoints: the writer's catch-up,
    and the background one. (Each reports a full copy: the file's own checkpointer, on
    another thread, may have copied the WAL first and made them report busy.)"""
    _setup(db_path)

    async def scenario(catch_up: bool) -> tuple[list[int], list[int]]:
        writer = Writer(Log(db_path))
        pid = writer.log.topic("t").pids[0]  # type: ignore[union-attr]
        on_writer_thread: list[int] = []
        real_append = writer.log.append_all

        def counted_append(jobs: list[list[tuple[int, Batch]]]) -> list[list[int]]:
            on_writer_thread.append(len(jobs))
            return real_append(jobs)

        def copied_all(real: Callable[[], bool]) -> Callable[[], bool]:
            return lambda: real() or True

        writer.log.append_all = counted_append  # type: ignore[method-assign]
        writer.log.checkpoint = copied_all(writer.log.checkpoint)  # type: ignore[method-assign]
        background = writer._checkpoint_log
        background.checkpoint = copied_all(background.checkpoint)  # type: ignore[method-assign]
        try:
            if catch_up:  # a background checkpoint ended: the catch-up is due
                writer._catch_up = True
            else:  # the appends filled the WAL: the background checkpoint is due
                writer._unchecked = writer_module.CHECKPOINT_PAGES
            first = writer.submit([(pid, _one(b"a"))])  # fast; then a checkpoint
            assert first.done()
            assert writer._flusher is not None
            await writer._flusher
            if writer._checkpointing is not None:  # the background one
                await writer._checkpointing
                await asyncio.sleep(0)  # its done-callback
            second = writer.submit([(pid, _one(b"b"))])  # the WAL starts over
            assert not second.done()
            await second
            await writer._flusher
            third = writer.submit([(pid, _one(b"c"))])
            assert third.done()  # the fast path again
            return [(await f)[0] for f in (first, second, third)], on_writer_thread
        finally:
            await asyncio.to_thread(writer.close)

    assert asyncio.run(scenario(catch_up=True)) == ([0, 1, 2], [1])
    assert asyncio.run(scenario(catch_up=False)) == ([3, 4, 5], [1])
    assert _stored(db_path) == (0, 6)


def test_an_unexpected_error_on_the_fast_path_is_settled_not_left_in_flight(
    db_path: Path,
) -> None:
    """A fast-path commit failing with an error that is not a QueueError: submit does not
    raise, its future holds the error, the produce is not answered at once, and settling
    it forgets the producer's batch in flight, so a retry of it is accepted."""
    _setup(db_path)
    producers = Producers(lambda pid: [])
    sent = Batch(b"", 2, 7, 0, 0)

    def broken(jobs: list[list[tuple[int, Batch]]]) -> list[list[int]]:
        raise RuntimeError("disk on fire")

    async def scenario() -> None:
        writer = Writer(Log(db_path))
        pid = writer.log.topic("t").pids[0]  # type: ignore[union-attr]
        writer._fast_log.append_all = broken  # type: ignore[method-assign]
        ctx = SimpleNamespace(producers=producers, changes=None)
        try:
            assert producers.check(pid, sent) == (0, None)
            stored = writer.submit([(pid, sent)])
            assert stored.done() and isinstance(stored.exception(), RuntimeError)
            assert not writer._appends and not writer._running
            accepted = AcceptedProduce([], [], [(pid, sent)], [(0, ("t", 0))], stored)
            assert not accepted.ready  # answered through finish, which settles it
            with pytest.raises(RuntimeError, match="disk on fire"):
                await accepted.finish(ctx)  # type: ignore[arg-type]
            assert producers.check(pid, sent) == (0, None)  # the retry is accepted
        finally:
            await asyncio.to_thread(writer.close)

    asyncio.run(scenario())


def test_a_batch_checked_after_its_predecessor_failed_is_refused_not_stored(
    db_path: Path,
) -> None:
    """A producer's batch fails on the writer thread; its next batch (pipelined) is checked
    before the failed one's request was answered. It is refused as out of order, not
    stored after a gap: the producer then resends both, in order, and both are stored."""
    _setup(db_path)

    async def scenario() -> tuple[int, list[int]]:
        writer = Writer(Log(db_path))
        pid = writer.log.topic("t").pids[0]  # type: ignore[union-attr]
        producers = Producers(writer.log.recent_batches)
        writer.on_failure = producers.forget_partitions
        real_append = writer.log.append_all
        failures = [DatabaseError("disk I/O error")]

        def fails_once(jobs: list[list[tuple[int, Batch]]]) -> list[list[int]]:
            if failures:
                raise failures.pop()
            return real_append(jobs)

        writer.log.append_all = fails_once  # type: ignore[method-assign]
        first = check_batch(batch([b"a", b"b"], producer_id=7, sequence=0), 1 << 20)
        second = check_batch(batch([b"c"], producer_id=7, sequence=2), 1 << 20)
        try:
            writer._restart_due = True  # no fast path: the append goes to the writer thread
            assert producers.check(pid, first) == (0, None)
            failed = writer.submit([(pid, first)])
            with pytest.raises(DatabaseError):
                await failed  # failed, and its request not answered yet
            code, _ = producers.check(pid, second)
            offsets = []
            for resent in (first, second):  # the producer resends both, in order
                assert producers.check(pid, resent) == (0, None)
                stored = await writer.submit([(pid, resent)])
                producers.stored(pid, resent, stored[0])
                offsets.append(stored[0])
            return code, offsets
        finally:
            await asyncio.to_thread(writer.close)

    code, offsets = asyncio.run(scenario())
    assert code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert offsets == [0, 2]
    assert _stored(db_path) == (0, 3)


def test_a_batch_settled_after_its_partition_was_forgotten_leaves_later_ones_in_flight(
    db_path: Path,
) -> None:
    """Producer Q's batch commits on the writer thread; before its request is answered,
    the next append on the partition (producer P's) fails, and the writer forgets the
    partition. Q's next batch is then accepted from what is stored. Settling Q's first
    batch late must not take that one out of flight: Q's batch after it still follows,
    and a resend of the one in flight is not accepted a second time."""
    _setup(db_path)

    def one(value: bytes, producer: int, sequence: int) -> Batch:
        return check_batch(batch([value], producer_id=producer, sequence=sequence), 1 << 20)

    async def scenario() -> list[tuple[int, int | None]]:
        writer = Writer(Log(db_path))
        pid = writer.log.topic("t").pids[0]  # type: ignore[union-attr]
        producers = Producers(writer.log.recent_batches)
        writer.on_failure = producers.forget_partitions
        real_append = writer.log.append_all
        running = threading.Event()

        def slow_append(jobs: list[list[tuple[int, Batch]]]) -> list[list[int]]:
            running.set()
            time.sleep(0.2)  # P's append queues behind it meanwhile
            return real_append(jobs)

        def broken(jobs: list[list[tuple[int, Batch]]]) -> list[list[int]]:
            raise DatabaseError("disk I/O error")

        writer.log.append_all = slow_append  # type: ignore[method-assign]
        writer._fast_log.append_all = broken  # type: ignore[method-assign]
        q0, q1, q2 = one(b"q0", 9, 0), one(b"q1", 9, 1), one(b"q2", 9, 2)
        try:
            writer._restart_due = True  # Q's append goes to the writer thread
            assert producers.check(pid, q0) == (0, None)
            first = writer.submit([(pid, q0)])
            assert await asyncio.to_thread(running.wait, 10)
            assert producers.check(pid, one(b"p", 7, 0)) == (0, None)
            failing = writer.submit([(pid, one(b"p", 7, 0))])  # fails on the fast path
            await asyncio.wait([failing])
            assert isinstance(failing.exception(), DatabaseError)
            assert first.done() and not first.exception()  # committed, not yet settled
            found = [producers.check(pid, q1)]  # accepted again from the file
            producers.stored(pid, q0, first.result()[0])  # Q's first request answered
            found.append(producers.check(pid, q2))  # follows q1, still in flight
            found.append(producers.check(pid, q1))  # a resend of q1, still in flight
            return found
        finally:
            await asyncio.to_thread(writer.close)

    after_forget, follower, resend = asyncio.run(scenario())
    assert after_forget == (0, None)
    assert follower == (0, None)
    assert resend[0] == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER  # not stored twice


def test_appends_queued_behind_a_write_are_committed_before_the_catch_up_checkpoint(
    db_path: Path,
) -> None:
    """A due catch-up checkpoint comes after the acks the writer owes: appends queued
    behind a running write (here an offset commit, held) are committed before it."""
    _setup(db_path)
    release = threading.Event()
    order: list[str] = []

    async def scenario() -> None:
        writer = Writer(Log(db_path))
        real_checkpoint, real_append = writer.log.checkpoint, writer.log.append_all

        def noted_append(jobs: list[list[tuple[int, Batch]]]) -> list[list[int]]:
            order.append("append")  # on the writer thread: the commit still ran
            return real_append(jobs)

        def noted_checkpoint() -> bool:
            order.append("checkpoint")
            return real_checkpoint()

        writer.log.checkpoint = noted_checkpoint  # type: ignore[method-assign]
        writer.log.append_all = noted_append  # type: ignore[method-assign]
        try:
            writer._catch_up = True
            assert await _append_behind_a_held_commit(writer, release) == [0]
            assert writer._flusher is not None
            await writer._flusher
        finally:
            release.set()
            await asyncio.to_thread(writer.close)

    asyncio.run(scenario())
    assert order == ["append", "checkpoint"]


def test_fast_appends_go_on_while_a_background_checkpoint_runs(db_path: Path) -> None:
    """While the background checkpoint runs (held here), appends past CHECKPOINT_PAGES
    still commit at once on the loop's thread: no idle flusher queues them meanwhile."""
    _setup(db_path)
    release, started = threading.Event(), threading.Event()

    async def scenario() -> list[int]:
        writer = Writer(Log(db_path))
        pid = writer.log.topic("t").pids[0]  # type: ignore[union-attr]
        background = writer._checkpoint_log
        real_checkpoint = background.checkpoint

        def held_checkpoint() -> bool:
            started.set()
            release.wait(30)
            return real_checkpoint()

        background.checkpoint = held_checkpoint  # type: ignore[method-assign]
        try:
            writer._unchecked = writer_module.CHECKPOINT_PAGES  # the checkpoint is due
            first = writer.submit([(pid, _one(b"a"))])
            assert writer._flusher is not None
            await writer._flusher  # started the background checkpoint
            assert await asyncio.to_thread(started.wait, 30)
            writer._unchecked = writer_module.CHECKPOINT_PAGES  # due again meanwhile
            rest = [writer.submit([(pid, _one(v))]) for v in (b"b", b"c", b"d")]
            assert all(f.done() for f in rest)  # each committed at once
            return [f.result()[0] for f in (first, *rest)]
        finally:
            release.set()
            await asyncio.to_thread(writer.close)

    assert asyncio.run(scenario()) == [0, 1, 2, 3]
