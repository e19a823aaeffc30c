"""Work-queue semantics on one SQLite file: competing consumers, leases, retries, dead letters.

Many processes may open the same file, and several named queues may share it::

    with Queue("jobs.db") as q:
        q.put(b"resize 42.png")
        msg = q.get(timeout=5)          # claimed under a lease (30 s by default)
        if msg is not None:
            do_the_work(msg.payload)
            q.ack(msg)                  # done: the row is deleted

A claim is one ``UPDATE ... RETURNING`` inside a ``BEGIN IMMEDIATE`` transaction, so two
consumers never hold the same message at once. A consumer that dies leaves its messages
leased; they become claimable again when the lease expires, with their attempt count kept,
and a message delivered ``max_attempts`` times goes to the dead letters instead of out again.
Every claim carries a random lease token: acking, extending or nacking a message whose lease
was taken over by another consumer raises :class:`~sqlitequeue.errors.LeaseLost` and leaves
the new claim alone.

Message rows live in ``queue_messages``; its one index keeps each queue's rows by state
(ready, leased, delayed, dead) and order within it, so a claim seeks straight to the best
ready row, and a claim and an ack write as few pages as a minimal design's (see
:mod:`sqlitequeue._queue_sql`). Delayed rows and expired leases are moved to ready (or dead)
by a claim transaction at most every 2 ms, one index range seek that finds nothing
in the common case.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlitequeue import _queue_sql as sql
from sqlitequeue._checks import INT64_MAX, check_int64, check_text
from sqlitequeue._checks import check_count as _check_count
from sqlitequeue._checks import check_seconds as _check_seconds
from sqlitequeue._db import Database
from sqlitequeue._group_commit import RowInsert
from sqlitequeue._queue_sql import DELAYED, LEASED, READY
from sqlitequeue._worker import Delivery, StopFlag, consume
from sqlitequeue.errors import DatabaseError, InvalidArgument, LeaseLost, PayloadTooLarge

#: Default largest payload accepted by :meth:`Queue.put`, in bytes (like Kafka's 1 MB).
DEFAULT_MAX_PAYLOAD_SIZE = 1024 * 1024

#: A busy consumer settles due delayed messages and expired leases, and deletes the rows it
#: acked, at most this often (seconds); an idle one settles as soon as they fall due. Each
#: settling is a transaction of its own statements: 2 ms spreads it over ~40 claims at
#: full speed (at 1 ms it cost a tenth of get + ack's time; at 5 ms the bulk deletes of
#: acked rows grew long enough to show in the latency tail at 5,000 msgs/s).
_SETTLE_INTERVAL = 0.002

#: Extra sleep after a delayed message or lease falls due, so the wake-up is not early.
_DUE_SLACK = 0.0005

_Key = str | bytes | None
#: What ``put`` accepts as a key: str (returned as str) or bytes-like (returned as bytes).
_KeyIn = str | bytes | bytearray | memoryview | None

#: Acked rows this process keeps before deleting them in the ack itself (see _queue_sql).
_MAX_ACKED = 1000

_random_bits = random.getrandbits


@dataclass(frozen=True, slots=True)
class Message:
    """One message as delivered (or listed): immutable.

    ``attempts`` counts deliveries including this one; ``lease_expires_at`` is the
    ``time.time()`` at which the lease ends as this process saw it when claiming or
    extending (None for messages that are not leased, e.g. dead letters; the lease itself
    runs on a clock that wall-clock steps do not move, see docs/queue.md). ``last_error``
    is the reason given by the last nack or bury, or why the last lease ended.
    ``lease_token`` identifies this claim; acks must present it.
    """

    id: int
    payload: bytes
    key: _Key
    priority: int
    attempts: int
    enqueued_at: float
    lease_expires_at: float | None
    queue: str
    lease_token: int | None = dataclasses.field(default=None, repr=False)
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts for one queue at one instant (see :meth:`Queue.stats`)."""

    queue: str
    pending: int  #: claimable now
    in_flight: int  #: leased, lease not expired
    delayed: int  #: waiting for their delay (or a nack's delay) to pass
    dead: int  #: dead letters
    oldest_pending_age: float | None  #: seconds since the oldest pending message was put


class Queue:
    """A named work queue in an SQLite file, safe to share between threads and processes.

    ``durability`` is ``"full"`` (acknowledged puts survive power loss; the last claims
    and acks may be undone, i.e. redelivered), ``"normal"`` (survives a process
    crash; power loss may lose the last commits) or ``"off"`` (no fsync at all; see
    docs/queue.md). ``lease`` is the default seconds a claim lasts, ``max_attempts`` the
    deliveries before a message is dead-lettered, ``max_payload_size`` the largest payload
    in bytes, ``lock_timeout`` the longest a write waits for the file's lock before
    :class:`~sqlitequeue.errors.DatabaseBusy`. Raises a
    :class:`~sqlitequeue.errors.DatabaseError` subclass if the file is not a usable queue
    database (the file is then left untouched), ``InvalidArgument`` for bad arguments.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        name: str = "default",
        *,
        durability: str = "normal",
        lease: float = 30.0,
        max_attempts: int = 5,
        max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
        lock_timeout: float = 30.0,
    ) -> None:
        if not check_text(name, "queue name"):
            raise InvalidArgument("queue name must be a non-empty string, not ''")
        _check_seconds("lease", lease, positive=True)
        _check_count("max_attempts", max_attempts)
        _check_count("max_payload_size", max_payload_size, minimum=0)
        self.name = name
        self.lease = float(lease)
        self.max_attempts = max_attempts
        self.max_payload_size = max_payload_size
        self._next_settle = 0.0  # time.monotonic() after which a claim settles due rows
        self._acked: list[int] = []  # ids acked here, their rows not yet deleted
        # The last claim took fewer messages than asked: the queue is probably empty, so a
        # blocking get first looks (a read) instead of claiming (a write, which would take
        # the file's write lock from producers for nothing).
        self._drained = False
        self._db = Database(path, durability=durability, lock_timeout=lock_timeout)
        # Deadlines are on the file's clock, which wall-clock steps never move (see
        # sqlitequeue._clock); enqueued_at and lease_expires_at stay wall-clock times.
        self._clock = self._db.now
        self.path = self._db.path

    # -- producing -------------------------------------------------------------------------

    def put(
        self, payload: bytes, *, key: _KeyIn = None, delay: float = 0.0, priority: int = 0
    ) -> int:
        """Store one message and return its id (ids increase and are never reused).

        ``payload`` must be bytes-like (bytes, bytearray, memoryview), else ``TypeError``;
        over ``max_payload_size`` raises :class:`PayloadTooLarge`. The message is claimable
        after ``delay`` seconds; higher ``priority`` is delivered first. ``key`` is a label
        kept with the message and returned as given (str as str, bytes-like as bytes). When
        this returns, the message is committed (durable as the queue's ``durability`` says).
        """
        payload = self._checked_payload(payload)
        key = _check_key(key)
        state, rank = self._schedule(delay, priority)
        row = (self.name, state, priority, rank, time.time(), key, payload)
        if self._db.durability == "full":  # an fsync per commit: share it (group commit)
            return self._db.write_grouped(RowInsert(sql.INSERT, row))
        cur = self._db.execute_write(sql.INSERT, row)
        return cur.lastrowid  # type: ignore[return-value]

    def put_many(
        self,
        payloads: Iterable[bytes],
        *,
        keys: Sequence[_KeyIn] | None = None,
        delay: float = 0.0,
        priority: int = 0,
    ) -> list[int]:
        """Store many messages in one transaction and return their ids, in order.

        All or nothing: every payload is checked first (``TypeError``,
        :class:`PayloadTooLarge`), and a failure while writing rolls everything back.
        ``keys``, if given, has one key per payload.
        """
        items = [self._checked_payload(p) for p in payloads]
        if keys is None:
            key_list: Sequence[_Key] = [None] * len(items)
        else:
            key_list = [_check_key(k) for k in keys]
            if len(key_list) != len(items):
                raise InvalidArgument(
                    f"keys has {len(key_list)} entries but there are {len(items)} payloads"
                )
        if not items:
            return []
        state, rank = self._schedule(delay, priority)
        name, now = self.name, time.time()
        rows = [
            (name, state, priority, rank, now, k, p) for k, p in zip(key_list, items, strict=True)
        ]
        if self._db.durability == "full":  # an fsync per commit: share it (group commit)
            return self._db.write_grouped(lambda conn: _inserted_many(conn, rows))
        with self._db.write() as conn:
            return _inserted_many(conn, rows)

    # -- consuming -------------------------------------------------------------------------

    def get(self, timeout: float | None = None, lease: float | None = None) -> Message | None:
        """Claim the next message (highest priority, then oldest) under a lease.

        Returns None when nothing becomes claimable within ``timeout`` seconds;
        ``timeout=None`` waits as long as it takes, ``0`` does not wait. ``lease`` overrides
        the queue's default lease for this claim. The message is delivered again if it is
        not acked, nacked or buried before the lease ends.
        """
        if timeout is not None and (timeout.__class__ is not int or timeout != 0):
            _check_seconds("timeout", timeout)  # (int 0, the commonest, needs no check)
        lease = self.lease if lease is None else _check_seconds("lease", lease, positive=True)
        if timeout != 0 and self._drained:  # look (a read) before trying a claim (a write)
            messages = self._wait_and_claim(1, lease, timeout)
        else:
            messages = self._claim(1, lease)
            if not messages and timeout != 0:
                messages = self._wait_and_claim(1, lease, timeout)
        return messages[0] if messages else None

    def get_many(
        self, max_messages: int, timeout: float | None = None, lease: float | None = None
    ) -> list[Message]:
        """Claim up to ``max_messages`` in one statement; the list is in delivery order.

        Returns as soon as at least one message is claimable, an empty list when none is
        within ``timeout`` seconds (None waits forever). All returned messages share one
        lease (``lease`` seconds, default the queue's).
        """
        if max_messages.__class__ is not int or not 0 < max_messages <= INT64_MAX:
            _check_count("max_messages", max_messages)
        if timeout is not None and (timeout.__class__ is not int or timeout != 0):
            _check_seconds("timeout", timeout)  # (int 0, the commonest, needs no check)
        lease = self.lease if lease is None else _check_seconds("lease", lease, positive=True)
        if timeout != 0 and self._drained:  # look (a read) before trying a claim (a write)
            return self._wait_and_claim(max_messages, lease, timeout)
        messages = self._claim(max_messages, lease)
        if messages or timeout == 0:
            return messages
        return self._wait_and_claim(max_messages, lease, timeout)

    def _claim(self, limit: int, lease: float, *, settle: bool = False) -> list[Message]:
        """One claim. Due delayed rows and expired leases are settled in the same
        transaction when ``settle`` is set or the last settling is over
        ``_SETTLE_INTERVAL`` old; otherwise the claim is a single autocommit statement."""
        now = self._clock()
        token = _random_bits(62)
        name = self.name
        params: tuple[Any, ...]
        if limit == 1:
            statement, params = sql.CLAIM_ONE, (name, token, now + lease)
        else:
            statement, params = sql.CLAIM, (name, token, now + lease, limit)
        tick = time.monotonic()
        if settle or tick >= self._next_settle:
            self._next_settle = tick + _SETTLE_INTERVAL
            with self._db.write(durable=False) as conn:
                self._settle(conn, now)
                rows = conn.execute(statement, params).fetchall()
        else:
            rows = self._db.execute_returning(statement, params, durable=False)
        self._drained = len(rows) < limit
        if not rows:
            return []
        if len(rows) > 1:
            rows.sort(key=_delivery_order)
        wall_expires = time.time() + lease
        return [_delivered(r, wall_expires, name, token) for r in rows]

    def _wait_and_claim(self, limit: int, lease: float, timeout: float | None) -> list[Message]:
        """Sleep until something may be claimable (a commit elsewhere, or a due time)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # Taken before the look, so a commit landing between the look and the wait
            # wakes the wait at once (otherwise the message would wait for the next commit).
            token = self._db.change_token()
            with self._db.read() as conn:
                ready, lease_due, delay_due = conn.execute(sql.PROBE, (self.name,)).fetchone()
            next_due = delay_due if lease_due is None else min(lease_due, delay_due or lease_due)
            now = self._clock()
            due = next_due is not None and next_due <= now
            if ready or due:
                messages = self._claim(limit, lease, settle=due)
                if messages:
                    return messages
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return []
            if ready:
                continue  # another consumer was faster; look again
            if next_due is not None:
                until_due = next_due - now + _DUE_SLACK
                wait = until_due if wait is None else min(wait, until_due)
            self._db.wait_for_change(wait, since=token)

    def consume(
        self,
        *,
        stop: StopFlag | None = None,
        stop_signals: Iterable[int] = (),
        lease: float | None = None,
        idle_timeout: float | None = None,
        retry_delay: float = 0.0,
    ) -> Iterator[Delivery[Message]]:
        """A worker loop: yield each claimed message as a :class:`Delivery`, whose ``with``
        block acks it when it ends and nacks it (reason: the exception) when it raises.

        Ends, after finishing the current message, once ``stop`` (a ``threading.Event``)
        is set or a signal of ``stop_signals`` arrives (main thread only), or after
        ``idle_timeout`` seconds without a message (None: never). ``lease`` is each
        claim's lease, ``retry_delay`` the nack delay after an error. Raises
        InvalidArgument for bad arguments at once. Full contract: :mod:`sqlitequeue._worker`.
        """
        return consume(
            self,
            stop=stop,
            stop_signals=stop_signals,
            lease=lease,
            idle_timeout=idle_timeout,
            retry_delay=retry_delay,
        )

    # -- settling --------------------------------------------------------------------------

    def ack(self, message: Message) -> None:
        """Mark ``message`` done: it is deleted and never delivered again.

        Raises :class:`LeaseLost` if its lease expired and another consumer claimed it (or
        it was already acked, buried or nacked); the other claim is left untouched. An ack
        after the lease expired still succeeds if nobody claimed the message meanwhile.
        """
        params = (message.id, message.lease_token)
        if self._db.execute_write(sql.ACK, params, durable=False).rowcount == 1:
            self._acked.append(message.id)  # deleted by a later transaction (_forget_acked)
            if len(self._acked) >= _MAX_ACKED:
                with self._db.write(durable=False) as conn:
                    self._forget_acked(conn)
        elif self._db.execute_write(sql.ACK_SETTLED, params, durable=False).rowcount != 1:
            raise self._lease_lost([message.id], "ack")

    def ack_many(self, messages: Iterable[Message]) -> None:
        """Ack several messages in one transaction.

        Every message whose lease is still held is acked; if any lease was lost, raises
        :class:`LeaseLost` naming those ids (the others stay acked).
        """
        by_token: dict[int | None, list[int]] = {}
        for m in messages:
            by_token.setdefault(m.lease_token, []).append(m.id)
        if not by_token:
            return
        lost: list[int] = []
        with self._db.write(durable=False) as conn:
            for token, ids in by_token.items():
                id_list = "[" + ",".join(map(str, ids)) + "]"
                rows = conn.execute(sql.ACK_MANY, (id_list, token)).fetchall()
                if len(rows) != len(ids):  # the highest id is kept (as an acked row), or lost
                    rows += conn.execute(sql.ACK_MANY_TOP, (id_list, token)).fetchall()
                if len(rows) != len(ids):
                    done = {r[0] for r in rows}
                    lost.extend(i for i in ids if i not in done)
            conn.execute(sql.DROP_ACKED, (self.name, self._clock()))  # e.g. the last top row
        if lost:
            raise self._lease_lost(lost, "ack")

    def nack(self, message: Message, delay: float = 0.0, *, reason: str | None = None) -> None:
        """Give ``message`` back: it becomes claimable again after ``delay`` seconds.

        If it has already been delivered ``max_attempts`` times it goes to the dead letters
        instead. ``reason`` is kept as the message's ``last_error``. Raises
        :class:`LeaseLost` if the lease was taken over.
        """
        _check_seconds("delay", delay)
        reason = "nacked" if reason is None else check_text(str(reason), "reason")
        now = self._clock()
        params = (
            message.id,
            message.lease_token,
            reason,
            self.max_attempts,
            now + delay,
            now,
        )
        cur = self._db.execute_write(sql.NACK, params)
        if cur.rowcount != 1:
            raise self._lease_lost([message.id], "nack")

    def extend(self, message: Message, lease: float | None = None) -> Message:
        """Renew the lease to ``lease`` seconds from now (a heartbeat); return the message
        with its new ``lease_expires_at``. Raises :class:`LeaseLost` if it was taken over."""
        lease = self.lease if lease is None else _check_seconds("lease", lease, positive=True)
        cur = self._db.execute_write(
            sql.EXTEND, (self._clock() + lease, message.id, message.lease_token), durable=False
        )
        if cur.rowcount != 1:
            raise self._lease_lost([message.id], "extend")
        return dataclasses.replace(message, lease_expires_at=time.time() + lease)

    def bury(self, message: Message, reason: str) -> None:
        """Move ``message`` to the dead letters now, with ``reason`` as its ``last_error``.

        Raises :class:`LeaseLost` if the lease was taken over."""
        reason = check_text(str(reason), "reason")
        cur = self._db.execute_write(sql.BURY, (reason, message.id, message.lease_token))
        if cur.rowcount != 1:
            raise self._lease_lost([message.id], "bury")

    # -- inspecting and operating ----------------------------------------------------------

    def stats(self) -> QueueStats:
        """Return the queue's counts: pending, in flight, delayed, dead, oldest pending age.

        Due delayed messages and expired leases are settled first (as a claim would), so
        the counts are exact at the moment of the call.
        """
        self._sweep()
        now = time.time()
        q = (self.name,)
        with self._db.read() as conn:
            pending = conn.execute(
                "SELECT count(*) FROM queue_messages WHERE queue = ? AND state = 0", q
            ).fetchone()[0]
            by_state = dict(
                conn.execute(
                    "SELECT state, count(*) FROM queue_messages WHERE queue = ? "
                    "AND state IN (1, 2) AND (state = 2 OR lease_token IS NOT NULL) GROUP BY state",
                    q,
                ).fetchall()
            )
            dead = conn.execute(
                "SELECT count(*) FROM queue_messages WHERE queue = ? AND state = 3", q
            ).fetchone()[0]
            oldest = conn.execute(
                "SELECT enqueued_at FROM queue_messages WHERE id = (SELECT min(id) "
                "FROM queue_messages WHERE queue = ? AND state = 0)",
                q,
            ).fetchone()
        return QueueStats(
            queue=self.name,
            pending=pending,
            in_flight=by_state.get(LEASED, 0),
            delayed=by_state.get(DELAYED, 0),
            dead=dead,
            oldest_pending_age=None if oldest is None else max(0.0, now - oldest[0]),
        )

    def peek(self, limit: int = 10) -> list[Message]:
        """Return up to ``limit`` pending messages in delivery order, without claiming them."""
        _check_count("limit", limit)
        self._sweep()
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {sql.COLUMNS} FROM queue_messages WHERE queue = ? AND state = 0 "
                "ORDER BY rank, id LIMIT ?",
                (self.name, limit),
            ).fetchall()
        return [self._listed(r) for r in rows]

    def dead_letters(self, limit: int = 100) -> list[Message]:
        """Return up to ``limit`` dead letters, oldest first; ``last_error`` says why."""
        _check_count("limit", limit)
        self._sweep()
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {sql.COLUMNS} FROM queue_messages WHERE queue = ? AND state = 3 "
                "ORDER BY rank, id LIMIT ?",  # rank is 0: in id order, straight from the index
                (self.name, limit),
            ).fetchall()
        return [self._listed(r) for r in rows]

    def redrive(self, ids: Iterable[int] | None = None) -> int:
        """Make dead letters pending again with a fresh attempt count; return how many.

        ``ids=None`` redrives every dead letter of this queue; ids that are not dead letters
        of this queue are ignored.
        """
        self._sweep()
        if ids is None:
            return self._db.execute_write(sql.REDRIVE, (self.name,)).rowcount
        id_list = "[" + ",".join(str(_check_id(i)) for i in ids) + "]"
        statement = sql.REDRIVE + " AND id IN (SELECT value FROM json_each(?))"
        return self._db.execute_write(statement, (self.name, id_list)).rowcount

    def purge(self, *, dead_only: bool = False) -> int:
        """Delete every message of this queue (or only its dead letters); return how many.

        Consumers holding leases on purged messages get :class:`LeaseLost` when they ack.
        Freed pages are returned to the file system (the file shrinks at the next
        checkpoint, or at once with :meth:`compact`).
        """
        where = "state = 3" if dead_only else sql.LIVE
        with self._db.write() as conn:
            count = conn.execute(sql.PURGE.format(where=where), (self.name,)).rowcount
            count += conn.execute(sql.PURGE_TOP.format(where=where), (self.name,)).rowcount
            if not dead_only:  # acked rows waiting to be deleted (not counted: no messages)
                conn.execute(sql.DROP_ACKED, (self.name, math.inf))
        if count:
            self._db.vacuum_free_pages()
        return count

    def queue_names(self) -> list[str]:
        """Return the names of every queue that has messages in this file, sorted."""
        with self._db.read() as conn:
            statement = f"SELECT DISTINCT queue FROM queue_messages WHERE {sql.LIVE}"
            rows = conn.execute(statement).fetchall()
        return sorted(r[0] for r in rows)

    def compact(self) -> dict[str, int]:
        """Return free pages to the file system, then checkpoint and truncate the WAL.

        Returns the file sizes afterwards (``db``, ``wal``, ``shm`` in bytes). Never needed
        for correctness: freed pages are reused anyway; this only shrinks the files. Raises
        :class:`~sqlitequeue.errors.DatabaseBusy` if other connections keep the file locked
        (or a reader keeps an old snapshot) for ``lock_timeout`` seconds.
        """
        self._db.vacuum_free_pages()
        self._db.checkpoint("TRUNCATE")  # the file shrinks when the vacuum is checkpointed
        return self._db.file_bytes()

    # -- life cycle ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._db.closed

    def close(self) -> None:
        """Close the file; later calls raise :class:`~sqlitequeue.errors.Closed`. Idempotent.

        Leases held by this object stay until they expire (ack or nack first)."""
        if self._acked and not self._db.closed:
            try:
                with self._db.write(durable=False) as conn:
                    self._forget_acked(conn)
            except DatabaseError:  # e.g. busy: the rows go when their leases would expire
                pass
        self._db.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Queue {self.name!r} in {str(self.path)!r} ({state})>"

    # -- helpers ---------------------------------------------------------------------------

    def _checked_payload(self, payload: Any) -> bytes:
        if type(payload) is bytes:
            size = len(payload)
        elif isinstance(payload, bytes | bytearray):
            payload, size = bytes(payload), len(payload)
        elif isinstance(payload, memoryview):
            payload = payload.tobytes()
            size = len(payload)
        else:
            raise TypeError(
                f"payload must be bytes-like (bytes, bytearray or memoryview), not "
                f"{type(payload).__name__}; encode text first, e.g. text.encode()"
            )
        if size > self.max_payload_size:
            raise PayloadTooLarge(
                f"payload of {size} bytes is over this queue's max_payload_size of "
                f"{self.max_payload_size} bytes; store large data elsewhere and queue a "
                "reference, or open the Queue with a larger max_payload_size"
            )
        return payload

    def _schedule(self, delay: float, priority: int) -> tuple[int, float]:
        """(state, rank) of a new message: ready ranks by ~priority, delayed by due time."""
        if type(priority) is not int:
            raise InvalidArgument(f"priority must be an integer, not {priority!r}")
        check_int64(priority, "priority")
        if delay == 0 and delay is not False:  # False is no number of seconds
            return READY, ~priority
        _check_seconds("delay", delay)
        return (DELAYED, self._clock() + delay) if delay > 0 else (READY, ~priority)

    def _settle(self, conn: sqlite3.Connection, now: float) -> None:
        """Inside a write transaction: delete the rows this process acked, drop acked rows
        whose acker died, promote due delayed rows and expired leases."""
        self._forget_acked(conn)
        conn.execute(sql.DROP_ACKED, (self.name, now))
        conn.execute(sql.PROMOTE, (self.name, now, self.max_attempts))

    def _forget_acked(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: delete the rows this process acked (see _queue_sql)."""
        if self._acked:
            acked, self._acked = self._acked, []
            conn.execute(sql.FORGET_ACKED, ("[" + ",".join(map(str, acked)) + "]",))

    def _sweep(self) -> None:
        """Settle due delayed rows and expired leases, and delete acked rows."""
        with self._db.write() as conn:
            self._settle(conn, self._clock())

    def _listed(self, row: tuple[Any, ...]) -> Message:
        return Message(
            row[0], row[1], row[2], row[3], row[4], row[5], None, self.name, None, row[6]
        )

    def _lease_lost(self, ids: list[int], action: str) -> LeaseLost:
        which = f"message {ids[0]}" if len(ids) == 1 else f"messages {ids}"
        return LeaseLost(
            f"cannot {action} {which} of queue {self.name!r} in {self.path}: the lease was "
            "lost (it expired and the message was claimed again, or it was already acked, "
            "nacked, buried or purged). The work may be done twice: keep handlers "
            "idempotent, use a longer lease, or call extend() while working."
        )


def _inserted_many(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[int]:
    """Insert message rows (inside a write transaction); return their ids, in order."""
    conn.executemany(sql.INSERT, rows)
    last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    # The transaction holds the write lock, so the new ids are consecutive.
    return list(range(last - len(rows) + 1, last + 1))


_new_message = object.__new__
(_set_id, _set_payload, _set_key, _set_priority, _set_attempts, _set_enqueued_at) = (
    getattr(Message, name).__set__
    for name in ("id", "payload", "key", "priority", "attempts", "enqueued_at")
)
_set_lease_expires_at, _set_queue, _set_lease_token, _set_last_error = (
    getattr(Message, name).__set__
    for name in ("lease_expires_at", "queue", "lease_token", "last_error")
)


def _delivered(row: tuple[Any, ...], lease_expires_at: float, queue: str, token: int) -> Message:
    """``Message(*row[:6], lease_expires_at, queue, token, row[6])`` in half the time (it
    sets the slots directly; a frozen dataclass's __init__ goes through object.__setattr__)."""
    message = _new_message(Message)
    _set_id(message, row[0])
    _set_payload(message, row[1])
    _set_key(message, row[2])
    _set_priority(message, row[3])
    _set_attempts(message, row[4])
    _set_enqueued_at(message, row[5])
    _set_lease_expires_at(message, lease_expires_at)
    _set_queue(message, queue)
    _set_lease_token(message, token)
    _set_last_error(message, row[6])
    return message


def _delivery_order(row: tuple[Any, ...]) -> tuple[int, int]:
    return -row[3], row[0]


def _check_key(key: object) -> _Key:
    """Return ``key`` as stored: a str UTF-8 can encode, bytes (copied from bytearray or
    memoryview) or None; raise InvalidArgument for a lone surrogate, TypeError otherwise."""
    if key is None or type(key) is bytes:
        return key
    if isinstance(key, str):
        return check_text(key, "key")
    if isinstance(key, bytes | bytearray | memoryview):
        return bytes(key)
    raise TypeError(f"key must be str, bytes-like or None, not {type(key).__name__}")


def _check_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"message ids are integers, not {value!r}")
    return check_int64(value, "message id")
