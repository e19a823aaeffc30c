"""fork() and the queue (issue 15, defects 1 and 2).

Both start methods of multiprocessing, several rounds each: with "fork" the child inherits
the parent's memory (SQLite's included), with "spawn" it starts afresh.
"""

from __future__ import annotations

import multiprocessing
import threading
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from sqlitequeue import Consumer, Queue, Stream, StreamError

METHODS = ["fork", "spawn"]
ROUNDS = 4
PUTS = 50


def _put_after_parent_closed(path: str, opened: Event, closed: Event) -> None:
    with Queue(path) as q:
        q.put(b"child opened")
        opened.set()
        assert closed.wait(60)
        for i in range(PUTS):
            q.put(b"%d" % i)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_parent_close_keeps_the_puts_of_a_child_that_opened_its_own_queue(
    tmp_path: Path, method: str
) -> None:
    ctx = multiprocessing.get_context(method)
    for round_ in range(ROUNDS):
        path = tmp_path / f"round{round_}.db"
        parent = Queue(path)
        parent.put(b"parent")
        opened, closed = ctx.Event(), ctx.Event()
        child = ctx.Process(target=_put_after_parent_closed, args=(str(path), opened, closed))
        child.start()
        assert opened.wait(60), "the child did not open its queue"
        parent.close()
        closed.set()
        child.join(60)
        assert child.exitcode == 0
        with Queue(path) as q:
            assert q.stats().pending == PUTS + 2, f"round {round_}: puts were lost"


def _put_with_inherited_queue(q: Queue, opened: Event, closed: Event) -> None:
    q.put(b"child opened")
    opened.set()
    assert closed.wait(60)
    for i in range(PUTS):
        q.put(b"%d" % i)
    q.close()


@pytest.mark.slow
def test_a_queue_carried_across_fork_keeps_the_childs_puts(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for round_ in range(ROUNDS):
        path = tmp_path / f"round{round_}.db"
        parent = Queue(path)
        parent.put(b"parent")
        opened, closed = ctx.Event(), ctx.Event()
        child = ctx.Process(target=_put_with_inherited_queue, args=(parent, opened, closed))
        child.start()
        assert opened.wait(60)
        parent.put(b"parent again")
        parent.close()
        closed.set()
        child.join(60)
        assert child.exitcode == 0
        with Queue(path) as q:
            assert q.stats().pending == PUTS + 3, f"round {round_}: puts were lost"


def _open_put_close(path: str) -> None:
    with Queue(path) as q:
        q.put(b"child")
    with Stream(path, "t") as s:
        s.append(b"child")


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_a_child_started_right_after_a_put_never_hangs(tmp_path: Path, method: str) -> None:
    """The parent's background threads must not hold SQLite's locks across fork (each
    round opens a new file, so its checkpointer thread is just starting)."""
    ctx = multiprocessing.get_context(method)
    for round_ in range(30 if method == "fork" else 3):
        path = tmp_path / f"round{round_}.db"
        with Queue(path) as q:
            q.put(b"parent")
            child = ctx.Process(target=_open_put_close, args=(str(path),))
            child.start()
            child.join(20)
            if child.exitcode is None:
                child.kill()
                child.join()
                pytest.fail(f"round {round_}: the child hung opening the queue")
            assert child.exitcode == 0
            assert q.stats().pending == 2


def _busy_worker(path: Path, stop: threading.Event, errors: list[BaseException]) -> None:
    try:
        with Queue(path, "busy") as q:
            while not stop.is_set():
                q.put(b"x")
                message = q.get(timeout=0)
                if message is not None:
                    q.ack(message)
    except BaseException as exc:  # reported by the test
        errors.append(exc)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_forking_while_other_threads_use_queues_never_hangs_or_loses(
    tmp_path: Path, method: str
) -> None:
    ctx = multiprocessing.get_context(method)
    path = tmp_path / "q.db"
    stop, errors = threading.Event(), []
    workers = [threading.Thread(target=_busy_worker, args=(path, stop, errors)) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        with Queue(path) as q:
            for round_ in range(15 if method == "fork" else 3):
                q.put(b"parent")
                child = ctx.Process(target=_open_put_close, args=(str(path),))
                child.start()
                child.join(30)
                if child.exitcode is None:
                    child.kill()
                    child.join()
                    pytest.fail(f"round {round_}: the child hung")
                assert child.exitcode == 0
    finally:
        stop.set()
        for worker in workers:
            worker.join(60)
    assert not errors
    with Queue(path) as q:
        assert q.stats().pending == 2 * (15 if method == "fork" else 3)


def _use_carried_stream(stream: Stream, consumer: Consumer, out: multiprocessing.Queue) -> None:
    stream.append(b"from the child")
    try:
        consumer.poll(timeout=0)
    except StreamError as exc:
        out.put(str(exc))
    consumer.close()  # a fork's copy: must not end the parent's membership
    out.put(len(stream.read(0, 0)))


@pytest.mark.slow
def test_a_stream_crosses_fork_but_a_group_member_does_not(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    with Stream(tmp_path / "s.db", "t") as stream:
        stream.append(b"from the parent")
        consumer = stream.consumer("g")
        out = ctx.Queue()
        child = ctx.Process(target=_use_carried_stream, args=(stream, consumer, out))
        child.start()
        message, records = out.get(timeout=60), out.get(timeout=60)
        child.join(60)
        assert child.exitcode == 0
        assert "carried across fork" in message and records == 2
        assert [r.payload for r in consumer.poll(timeout=0)] == [
            b"from the parent",
            b"from the child",
        ]
        assert stream.groups()[0].members == (consumer.member,)
