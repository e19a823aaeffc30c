"""The worker loop, Queue.consume(): ack on success, nack on error, stop cleanly.

In-process tests for the contract, real processes for the two ways a worker ends: SIGTERM
(it finishes its current message, acks it and exits 0) and SIGKILL (its message comes back
after the lease). Timing bounds are generous; nothing depends on a tight schedule.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sqlitequeue import Delivery, InvalidArgument, Queue

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def queue(db_path: Path) -> Iterator[Queue]:
    with Queue(db_path) as q:
        yield q


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def all_ids(q: Queue) -> list[int]:
    return [m.id for m in q.peek(1000)]


# -- success and failure -------------------------------------------------------------------


def test_a_block_that_ends_acks_its_message(queue: Queue) -> None:
    queue.put_many([b"a", b"b", b"c"])
    seen = []
    for job in queue.consume(idle_timeout=0.2):
        with job as msg:
            seen.append(msg.payload)
        assert job.settled
    assert seen == [b"a", b"b", b"c"]
    stats = queue.stats()
    assert (stats.pending, stats.in_flight, stats.dead) == (0, 0, 0)


def test_an_error_nacks_with_the_exception_as_reason_and_the_loop_goes_on(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Queue(db_path, max_attempts=1) as q:
        q.put_many([b"bad", b"good"])
        done = []
        with caplog.at_level(logging.ERROR, logger="sqlitequeue.queue"):
            for job in q.consume(idle_timeout=0.2):
                with job as msg:
                    if msg.payload == b"bad":
                        raise ValueError("cannot parse 'bad'")
                    done.append(msg.payload)
        assert done == [b"good"]
        (dead,) = q.dead_letters()
        assert dead.payload == b"bad"
        assert dead.last_error == "ValueError: cannot parse 'bad'"
        assert "cannot parse 'bad'" in caplog.text and "Traceback" in caplog.text


def test_a_failed_message_is_retried_after_retry_delay(queue: Queue) -> None:
    queue.put(b"flaky")
    attempts = []
    started = time.monotonic()
    for job in queue.consume(idle_timeout=2.0, retry_delay=0.3):
        with job as msg:
            attempts.append((msg.attempts, time.monotonic() - started))
            if msg.attempts == 1:
                raise RuntimeError("try again")
    assert [a for a, _ in attempts] == [1, 2]
    assert attempts[1][1] >= 0.3  # the nack's delay was kept
    assert queue.stats().pending == 0


def test_keyboard_interrupt_gives_the_message_back_and_propagates(queue: Queue) -> None:
    queue.put(b"x")
    with pytest.raises(KeyboardInterrupt):
        for job in queue.consume():
            with job:
                raise KeyboardInterrupt
    message = queue.get(timeout=0)  # back at once, not after the lease
    assert message is not None and message.attempts == 2
    assert message.last_error == "KeyboardInterrupt"


def test_a_block_may_settle_the_message_itself(queue: Queue) -> None:
    queue.put_many([b"bury me", b"retry me", b"ack me"])
    for job in queue.consume(idle_timeout=0.2):
        with job as msg:
            if msg.payload == b"bury me":
                job.bury("unusable")
            elif msg.payload == b"retry me" and msg.attempts == 1:
                job.nack(reason="later")
            elif msg.payload == b"ack me":
                job.ack()
                with pytest.raises(InvalidArgument, match="already acked"):
                    job.ack()
    assert [m.last_error for m in queue.dead_letters()] == ["unusable"]
    assert queue.stats().pending == 0


def test_without_with_a_body_that_returns_is_acked_and_one_left_by_break_is_nacked(
    queue: Queue,
) -> None:
    queue.put_many([b"1", b"2", b"3"])
    seen = []
    for job in queue.consume():
        seen.append(job.message.payload)
        if len(seen) == 2:
            break  # "2" is unsettled: given back at once
    assert seen == [b"1", b"2"]
    assert [m.payload for m in queue.peek()] == [b"2", b"3"]
    (again, _) = queue.get_many(2, timeout=0)
    assert again.attempts == 2 and again.last_error is not None
    assert "loop was left" in again.last_error


def test_an_exception_out_of_the_loop_gives_the_message_back_at_once(queue: Queue) -> None:
    queue.put(b"x")

    def work() -> None:
        for job in queue.consume():
            raise OSError(f"disk gone while handling {job.message.id}")

    with pytest.raises(OSError, match="disk gone"):
        work()
    message = queue.get(timeout=0)
    assert message is not None and message.attempts == 2


def test_a_lost_lease_is_logged_and_the_loop_goes_on(
    db_path: Path, queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    queue.put_many([b"slow", b"next"])
    handled = []
    with Queue(db_path) as other, caplog.at_level(logging.WARNING, logger="sqlitequeue.queue"):
        for job in queue.consume(lease=0.05, idle_timeout=0.5):
            with job as msg:
                handled.append(msg.payload)
                if msg.payload == b"slow":  # outlive the lease; another worker claims it
                    time.sleep(0.1)
                    taken = other.get(timeout=30)
                    assert taken is not None and taken.id == msg.id
                    other.ack(taken)
    assert handled == [b"slow", b"next"]
    assert "lease was lost" in caplog.text
    assert queue.stats().pending == 0


def test_extend_renews_the_lease_of_a_delivery(queue: Queue) -> None:
    queue.put(b"long")
    for job in queue.consume(lease=5, idle_timeout=0.2):
        with job as msg:
            before = msg.lease_expires_at
            renewed = job.extend(60)
            assert renewed.lease_expires_at is not None and before is not None
            assert renewed.lease_expires_at > before + 30
            assert job.message is renewed


# -- stopping ------------------------------------------------------------------------------


def test_a_stop_set_during_a_message_finishes_it_and_claims_no_more(queue: Queue) -> None:
    queue.put_many([b"1", b"2", b"3"])
    stop = threading.Event()
    seen = []
    for job in queue.consume(stop=stop):
        with job as msg:
            seen.append(msg.payload)
            stop.set()
            time.sleep(0.05)  # the loop must not cut the block short
    assert seen == [b"1"]
    assert [m.payload for m in queue.peek()] == [b"2", b"3"]
    assert queue.stats().in_flight == 0


def test_a_stop_from_another_thread_ends_an_idle_loop(queue: Queue) -> None:
    stop = threading.Event()
    ended = threading.Event()

    def run() -> None:
        for _job in queue.consume(stop=stop):
            pass
        ended.set()

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.2)
    assert not ended.is_set()  # an idle loop waits for messages
    stop.set()
    assert ended.wait(10), "the loop did not end after stop was set"
    worker.join(10)


def test_a_signal_stops_the_loop_after_the_current_message(queue: Queue) -> None:
    queue.put_many([b"1", b"2"])
    before = signal.getsignal(signal.SIGUSR1)
    seen = []
    for job in queue.consume(stop_signals=[signal.SIGUSR1]):
        with job as msg:
            assert signal.getsignal(signal.SIGUSR1) != before  # installed while running
            seen.append(msg.payload)
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.05)
    assert seen == [b"1"]
    assert [m.payload for m in queue.peek()] == [b"2"]
    assert signal.getsignal(signal.SIGUSR1) == before  # and removed afterwards


def test_the_stop_flag_is_set_by_the_signal(queue: Queue) -> None:
    queue.put(b"1")
    stop = threading.Event()
    for job in queue.consume(stop=stop, stop_signals=[signal.SIGUSR1]):
        with job:
            os.kill(os.getpid(), signal.SIGUSR1)
    assert stop.is_set()


def test_idle_timeout_ends_the_loop(queue: Queue) -> None:
    started = time.monotonic()
    assert list(queue.consume(idle_timeout=0.1)) == []
    assert time.monotonic() - started < 10


# -- bad arguments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"stop": True}, "stop must be a threading.Event"),
        ({"stop": "yes"}, "stop must be a threading.Event"),
        ({"stop_signals": [signal.SIGKILL]}, "SIGKILL cannot be caught"),
        ({"stop_signals": [0]}, "not a signal number"),
        ({"stop_signals": ["SIGTERM"]}, "not a signal number"),
        ({"stop_signals": 3.5}, "must be a list of signals"),
        ({"lease": 0}, "lease must be > 0"),
        ({"lease": math.nan}, "lease must be a finite"),
        ({"idle_timeout": -1}, "idle_timeout must be >= 0"),
        ({"idle_timeout": math.inf}, "idle_timeout must be a finite"),
        ({"retry_delay": -0.5}, "retry_delay must be >= 0"),
    ],
)
def test_bad_arguments_are_refused_at_once_and_claim_nothing(
    queue: Queue, arguments: dict[str, Any], match: str
) -> None:
    queue.put(b"x")
    with pytest.raises(InvalidArgument, match=match):
        queue.consume(**arguments)
    assert queue.stats().pending == 1


def test_signals_outside_the_main_thread_are_refused(queue: Queue) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            queue.consume(stop_signals=[signal.SIGTERM])
        except InvalidArgument as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert len(errors) == 1 and "main thread" in str(errors[0])


def test_a_delivery_is_typed_and_shows_its_state(queue: Queue) -> None:
    queue.put(b"x")
    loop = queue.consume()
    job = next(loop)
    assert isinstance(job, Delivery)
    assert "unsettled" in repr(job)
    job.ack()
    assert "acked" in repr(job)
    loop.close()
    assert queue.stats().pending == 0


# -- real processes ------------------------------------------------------------------------


def _worker(path: str, log: str, go: str, lease: float) -> None:
    """A worker process: logs "start ID" and "done ID" around each message; each message
    waits until the file ``go`` exists. Stops on SIGTERM; logs "exit" when the loop ends."""

    def note(line: str) -> None:
        with open(log, "a") as f:
            f.write(line + "\n")

    with Queue(path, lease=lease) as q:
        for job in q.consume(stop_signals=[signal.SIGTERM]):
            with job as msg:
                note(f"start {msg.id}")
                deadline = time.monotonic() + 120
                while not os.path.exists(go) and time.monotonic() < deadline:
                    time.sleep(0.01)
                note(f"done {msg.id}")
    note("exit")


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.slow
def test_sigterm_finishes_the_current_message_then_exits_cleanly(tmp_path: Path) -> None:
    path, log, go = tmp_path / "q.db", tmp_path / "worker.log", tmp_path / "go"
    with Queue(path) as q:
        first, *rest = q.put_many([b"1", b"2", b"3"])
    worker = SPAWN.Process(target=_worker, args=(str(path), str(log), str(go), 60.0))
    worker.start()
    try:
        wait_until(lambda: f"start {first}" in _lines(log))
        os.kill(worker.pid, signal.SIGTERM)  # type: ignore[arg-type]
        time.sleep(0.2)
        assert worker.is_alive(), "SIGTERM must not end the worker mid-message"
        go.touch()
        worker.join(60)
    finally:
        if worker.is_alive():
            worker.kill()
    assert worker.exitcode == 0
    assert _lines(log) == [f"start {first}", f"done {first}", "exit"]
    with Queue(path) as q:
        assert all_ids(q) == rest  # the first was acked, no other was claimed
        assert q.stats().in_flight == 0


@pytest.mark.slow
def test_sigkill_mid_message_redelivers_it_after_the_lease(tmp_path: Path) -> None:
    path, log, go = tmp_path / "q.db", tmp_path / "worker.log", tmp_path / "go"
    lease = 5.0
    with Queue(path) as q:
        first, second = q.put_many([b"1", b"2"])
    worker = SPAWN.Process(target=_worker, args=(str(path), str(log), str(go), lease))
    worker.start()
    try:
        wait_until(lambda: f"start {first}" in _lines(log))
        os.kill(worker.pid, signal.SIGKILL)  # type: ignore[arg-type]
        worker.join(30)
    finally:
        if worker.is_alive():
            worker.kill()
    assert worker.exitcode == -signal.SIGKILL
    with Queue(path) as q:
        assert q.stats().in_flight == 1  # still leased by the dead worker
        assert [m.id for m in q.get_many(2, timeout=0)] == [second]
        again = q.get(timeout=60)  # after the lease: delivered again
        assert again is not None and again.id == first and again.attempts == 2
        assert again.last_error is not None and "lease expired" in again.last_error
