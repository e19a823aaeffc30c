"""Group commit (issue 15, "Faster"): under durability="full", puts from many threads share
one transaction and one fsync, and each put still returns only after the commit that holds
it. Behaviour only: the speed-up is measured by ``sqlitequeue bench queue``."""

from __future__ import annotations

import multiprocessing
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sqlitequeue import Closed, DatabaseError, Queue, _group_commit

THREADS = 8


class CommitLog:
    """Wraps a queue's ``Database.write``: after each transaction commits, records the ids
    it stored (read by an independent connection) and the synchronous setting it committed
    at; can hold the next transaction open for a while, so that puts pile up behind it."""

    def __init__(self, queue: Queue, path: Path) -> None:
        self.committed: set[int] = set()
        self.batches: list[int] = []  # puts per transaction
        self.sync_at_commit: set[int] = set()
        self.opened = 0  # transactions begun (committed or not)
        self.hold_next = 0.0
        self.holding = threading.Event()  # set once a held transaction is open
        self.before_next: Callable[[], object] | None = None  # run as the next one begins
        self.lock = threading.Lock()
        self._reader = sqlite3.connect(path, check_same_thread=False)
        self._queue = queue
        self._write = queue._db.write
        queue._db.write = self.write  # type: ignore[method-assign]

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        hold, self.hold_next = self.hold_next, 0.0
        run_first, self.before_next = self.before_next, None
        if run_first is not None:
            run_first()
        self.opened += 1
        with self._write(durable=durable) as conn:
            self.sync_at_commit.add(conn.execute("PRAGMA synchronous").fetchone()[0])
            changes_before = conn.total_changes
            if hold:
                self.holding.set()
                time.sleep(hold)
            yield conn
            inserted = conn.total_changes - changes_before
        with self.lock:  # the COMMIT has returned: what does another connection see?
            ids = {r[0] for r in self._reader.execute("SELECT id FROM queue_messages")}
            self.committed |= ids
            self.batches.append(inserted)

    def close(self) -> None:
        """Stop logging: the queue writes through its own Database.write again."""
        self._queue._db.write = self._write  # type: ignore[method-assign]
        self._reader.close()


def wait_for_waiting_puts(q: Queue, count: int, timeout: float = 10.0) -> None:
    """Block until ``count`` puts wait for the next batch (behind a held transaction)."""
    deadline = time.monotonic() + timeout
    while len(q._db._group._waiting) < count:
        assert time.monotonic() < deadline, f"{count} puts never waited"
        time.sleep(0.005)


def test_puts_from_many_threads_all_land_in_order_and_each_returns_after_its_commit(
    db_path: Path,
) -> None:
    with Queue(db_path, durability="full") as q:
        log = CommitLog(q, db_path)
        returned: dict[int, list[int]] = {n: [] for n in range(THREADS)}
        not_yet_committed: list[int] = []

        def producer(n: int) -> None:
            for i in range(40):
                message_id = q.put(f"{n}:{i}".encode())
                with log.lock:
                    if message_id not in log.committed:
                        not_yet_committed.append(message_id)
                returned[n].append(message_id)

        threads = [threading.Thread(target=producer, args=(n,)) for n in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log.close()
        assert not_yet_committed == []  # every put returned after the commit that held it
        assert log.sync_at_commit == {2}  # FULL: each of those commits was fsynced
        assert max(log.batches) > 1  # and some of them carried several puts
        all_ids = [i for ids in returned.values() for i in ids]
        assert len(set(all_ids)) == THREADS * 40
        for ids in returned.values():  # a thread's own puts keep their order
            assert ids == sorted(ids)
        stored = [m.payload for m in iter(lambda: q.get(timeout=0), None)]
        assert sorted(stored) == sorted(
            f"{n}:{i}".encode() for n in range(THREADS) for i in range(40)
        )


def test_a_failing_batch_fails_every_put_in_it_and_stores_nothing(db_path: Path) -> None:
    with Queue(db_path, durability="full") as q:
        log = CommitLog(q, db_path)
        q._db.conn.execute(  # one bad payload makes its INSERT (and so its batch) fail
            "CREATE TEMP TRIGGER refuse_bad BEFORE INSERT ON main.queue_messages "
            "WHEN new.payload = x'626164' BEGIN SELECT RAISE(ABORT, 'bad payload'); END"
        )
        outcomes: dict[bytes, object] = {}

        def put(payload: bytes) -> None:
            try:
                outcomes[payload] = q.put(payload)
            except DatabaseError as exc:
                outcomes[payload] = exc

        log.hold_next = 0.3  # the first put leads and holds its transaction open ...
        first = threading.Thread(target=put, args=(b"first",))
        first.start()
        assert log.holding.wait(10)
        others = [b"ok1", b"ok2", b"bad", b"ok3"]  # ... while these wait: the next batch
        threads = [threading.Thread(target=put, args=(p,)) for p in others]
        for t in threads:
            t.start()
        for t in [first, *threads]:
            t.join()
        log.close()
        assert isinstance(outcomes[b"first"], int)
        assert log.opened == 2 and log.batches == [1]  # the second batch was rolled back whole
        for payload in others:
            assert isinstance(outcomes[payload], DatabaseError), outcomes
            assert "bad payload" in str(outcomes[payload])
        assert [m.payload for m in iter(lambda: q.get(timeout=0), None)] == [b"first"]
        q._db.conn.execute("DROP TRIGGER temp.refuse_bad")
        assert q.put(b"after") > outcomes[b"first"]


def test_puts_at_normal_durability_do_not_wait_for_each_other(db_path: Path) -> None:
    """Group commit is for fsyncs: at "normal" a put is one autocommit statement."""
    with Queue(db_path) as q:
        log = CommitLog(q, db_path)
        q.put(b"x")
        log.close()
        assert log.batches == []  # no write transaction was opened


@pytest.mark.parametrize("many", [False, True])
def test_a_lone_thread_is_never_held_back(db_path: Path, many: bool) -> None:
    with Queue(db_path, durability="full") as q:
        log = CommitLog(q, db_path)
        for i in range(20):
            if many:
                q.put_many([b"a", b"b"])
            else:
                q.put(str(i).encode())
        log.close()
        assert log.batches == [2 if many else 1] * 20


def test_threads_that_put_now_and_then_are_never_held_back(db_path: Path) -> None:
    """Two threads take turns: each puts only once the other's put has returned. Each put
    commits at once, alone: no thread is on its way back with a put, so there is nothing
    to wait for (the batch's first put would otherwise wait for the other thread)."""
    with Queue(db_path, durability="full") as q:
        log = CommitLog(q, db_path)
        group = q._db._group
        waits: list[float] = []
        start_gathering = group._start_gathering

        def counted_start() -> float:
            waits.append(time.monotonic())
            return start_gathering()

        group._start_gathering = counted_start  # type: ignore[method-assign]
        turns = [threading.Event(), threading.Event()]

        def take_turns(me: int) -> None:
            for i in range(10):
                assert turns[me].wait(10)
                turns[me].clear()
                q.put(b"%d:%d" % (me, i))
                turns[1 - me].set()

        threads = [threading.Thread(target=take_turns, args=(n,)) for n in (0, 1)]
        for t in threads:
            t.start()
        turns[0].set()
        for t in threads:
            t.join(30)
        log.close()
        assert log.batches == [1] * 20
        assert waits == []  # no put waited for the other thread


def test_a_put_handed_the_next_batch_does_not_wait_for_threads_that_are_not_putting(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A put that arrives during another thread's commit is handed the next batch. When no
    other thread is on its way back from a commit (the threads that put before are busy
    elsewhere), it commits as soon as that commit has returned, without waiting for them."""
    monkeypatch.setattr(_group_commit, "LINGER_SHARE", 1000.0)
    monkeypatch.setattr(_group_commit, "LINGER_MAX", 60.0)  # waiting would take a minute
    with Queue(db_path, durability="full") as q:
        log = CommitLog(q, db_path)

        def put_while_held(later: list[bytes]) -> None:
            """One put holds its commit open while the puts of ``later`` arrive."""
            log.holding.clear()
            log.hold_next = 0.3
            first = threading.Thread(target=q.put, args=(b"first",))
            first.start()
            assert log.holding.wait(10)
            others = [threading.Thread(target=q.put, args=(p,)) for p in later]
            for t in others:
                t.start()
            wait_for_waiting_puts(q, len(later))
            for t in [first, *others]:
                t.join(10)
                assert not t.is_alive(), "a put waited for threads that were not putting"

        put_while_held([b"b", b"c"])  # three threads have put: the recent writers
        put_while_held([b"e"])  # e is handed the batch after the held commit
        log.close()
        assert log.batches == [1, 2, 1, 1]


@pytest.mark.parametrize("puts", [2, 7, 70])  # one INSERT; 4 + 2 + 1 rows; 64 + 4 + 2 rows
@pytest.mark.parametrize("with_put_many", [False, True])
def test_each_put_of_a_batch_returns_the_id_of_its_own_message(
    db_path: Path, puts: int, with_put_many: bool
) -> None:
    """A batch's puts are inserted together (multi-row INSERTs of 2**k rows; a put_many
    between them splits them): every put still returns the id its own message is stored
    under."""
    with Queue(db_path, durability="full") as q:
        log = CommitLog(q, db_path)
        returned: dict[bytes, int] = {}
        inserts: list[str] = []
        q._db.conn.set_trace_callback(
            lambda statement: (
                inserts.append(statement)
                if statement.startswith("INSERT INTO queue_messages")
                else None
            )
        )

        def put(payload: bytes) -> None:
            if with_put_many and payload == b"%d" % (puts // 2):
                first_id, second_id = q.put_many([payload, payload + b"+"])
                returned[payload + b"+"] = second_id
            else:
                first_id = q.put(payload)
            returned[payload] = first_id

        log.hold_next = 0.3  # the first put leads and holds its transaction open ...
        first = threading.Thread(target=put, args=(b"first",))
        first.start()
        assert log.holding.wait(10)
        threads = [  # ... while these wait for it: together they are the next batch
            threading.Thread(target=put, args=(b"%d" % n,)) for n in range(puts)
        ]
        for t in threads:
            t.start()
        wait_for_waiting_puts(q, puts)
        for t in [first, *threads]:
            t.join(30)
        log.close()
        assert log.batches == [1, puts + with_put_many]
        if not with_put_many:  # the first put's INSERT, then one per 2**k rows
            assert len(inserts) == 1 + bin(puts).count("1")
        stored = {m.payload: m.id for m in iter(lambda: q.get(timeout=0), None)}
        assert stored == returned


def test_no_put_of_a_batch_returns_before_its_commit_has_returned(db_path: Path) -> None:
    """The COMMIT of a batch of several puts is held open: none of them may return until it
    has returned, whatever the order in which the waiting threads are woken."""
    with Queue(db_path, durability="full") as q:
        log = CommitLog(q, db_path)
        db = q._db
        commit = db._commit
        commits = 0
        gate = threading.Event()
        holding = threading.Event()

        def held_commit() -> None:
            nonlocal commits
            commits += 1
            if commits == 2:  # the second batch: the puts that waited behind the first
                holding.set()
                assert gate.wait(10)
            commit()

        db._commit = held_commit  # type: ignore[method-assign]
        returned: list[int] = []
        log.hold_next = 0.3  # the first put leads and holds its transaction open ...
        first = threading.Thread(target=lambda: returned.append(q.put(b"first")))
        first.start()
        assert log.holding.wait(10)
        threads = [  # ... while these pile up: together they are the second batch
            threading.Thread(target=lambda n=n: returned.append(q.put(b"%d" % n)))
            for n in range(THREADS)
        ]
        for t in threads:
            t.start()
        assert holding.wait(10)
        time.sleep(0.2)  # time for any put of the held batch to return, were it allowed to
        assert len(returned) == 1  # only the first put (its own batch committed)
        gate.set()
        for t in [first, *threads]:
            t.join()
        db._commit = commit  # type: ignore[method-assign]
        log.close()
        assert len(returned) == THREADS + 1
        assert log.batches[:2] == [1, THREADS]  # the held commit carried all of them
        assert log.committed >= set(returned)


def test_an_interrupted_put_is_stored_and_raises_once_its_batch_committed(db_path: Path) -> None:
    """Ctrl-C while the main thread's put waits for a commit: the put still commits its
    batch (it is the batch's first write), then raises KeyboardInterrupt; the other puts
    of that batch return and are stored; no thread is left waiting."""
    with Queue(db_path, durability="full") as q:
        log = CommitLog(q, db_path)
        returned: list[int] = []
        log.hold_next = 0.4  # the first put leads and holds its transaction open ...
        first = threading.Thread(target=lambda: returned.append(q.put(b"first")))
        first.start()
        assert log.holding.wait(10)
        others = [  # ... the main thread's put, then these, wait for it: the next batch
            threading.Thread(target=lambda n=n: returned.append(q.put(b"%d" % n))) for n in range(3)
        ]
        main = threading.main_thread().ident
        assert main is not None

        def start_others_then_interrupt() -> None:
            wait_for_waiting_puts(q, 1)  # the main thread's put waits: it leads the batch
            for t in others:
                t.start()
            wait_for_waiting_puts(q, 4)
            signal.pthread_kill(main, signal.SIGINT)

        interrupter = threading.Thread(target=start_others_then_interrupt)
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            q.put(b"interrupted")
        for t in [first, interrupter, *others]:
            t.join(10)
            assert not t.is_alive()
        log.close()
        assert len(returned) == 4
        assert log.batches == [1, 4]  # the interrupted put committed its batch first
        stored = {m.payload for m in iter(lambda: q.get(timeout=0), None)}
        assert stored == {b"first", b"interrupted", b"0", b"1", b"2"}


def test_close_while_puts_wait_for_a_commit_ends_every_put(db_path: Path) -> None:
    """close() while puts wait behind a commit: the held put is stored, and the batch that
    waited (its transaction begins after the close) fails whole: every put in it raises
    Closed, none hangs, nothing of it is stored."""
    q = Queue(db_path, durability="full")
    log = CommitLog(q, db_path)
    outcomes: dict[bytes, int | Exception] = {}
    closed = threading.Event()

    def put(payload: bytes) -> None:
        try:
            outcomes[payload] = q.put(payload)
        except Closed as exc:
            outcomes[payload] = exc

    log.hold_next = 0.3  # the first put holds its transaction open; the others wait
    threads = [threading.Thread(target=put, args=(b"%d" % n,)) for n in range(THREADS)]
    threads[0].start()
    assert log.holding.wait(10)
    log.before_next = lambda: closed.wait(10)  # the waiting batch begins after the close
    for t in threads[1:]:
        t.start()
    wait_for_waiting_puts(q, THREADS - 1)
    q.close()  # waits for the held transaction, then closes the file
    closed.set()
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    log.close()
    assert isinstance(outcomes.pop(b"0"), int)
    assert len(outcomes) == THREADS - 1
    assert all(isinstance(o, Closed) for o in outcomes.values()), outcomes
    with Queue(db_path) as again:
        assert [m.payload for m in iter(lambda: again.get(timeout=0), None)] == [b"0"]


def _put_in_child(q: Queue, out: multiprocessing.Queue[object]) -> None:
    try:
        out.put([q.put(b"child") for _ in range(5)])
    except BaseException as exc:  # reported by the parent
        out.put(repr(exc))


def test_a_child_forked_while_threads_share_commits_starts_clean(db_path: Path) -> None:
    """fork() while 8 threads put through one Queue at FULL (batches waiting and being
    committed): the child's puts on the carried Queue do not wait for the parent's
    threads, and nothing of either side is lost."""
    ctx = multiprocessing.get_context("fork")
    with Queue(db_path, durability="full") as q:
        stop = threading.Event()
        counts = [0] * THREADS

        def producer(n: int) -> None:
            while not stop.is_set():
                q.put(b"parent")
                counts[n] += 1

        threads = [threading.Thread(target=producer, args=(n,)) for n in range(THREADS)]
        for t in threads:
            t.start()
        children = 0
        try:
            for _ in range(5):
                time.sleep(0.02)
                out: multiprocessing.Queue[object] = ctx.Queue()
                child = ctx.Process(target=_put_in_child, args=(q, out))
                child.start()
                try:
                    result = out.get(timeout=30)
                    child.join(30)
                finally:
                    if child.is_alive():  # hung: do not leave it behind
                        child.kill()
                        child.join()
                assert child.exitcode == 0, result
                assert isinstance(result, list) and len(result) == 5, result
                children += 1
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert q.stats().pending == sum(counts) + 5 * children
