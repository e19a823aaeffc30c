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

Message rows live in ``queue_messages`` (see :mod:`sqlitequeue._schema`): state 0 ready,
1 delayed, 2 leased, 3 dead, each with its own partial index, so a claim seeks straight to
the best ready row. Delayed rows and expired leases are moved to ready (or dead) by the
claim transaction itself, one index range seek that finds nothing in the common case.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlitequeue._checks import INT64_MAX, check_int64, check_text
from sqlitequeue._db import Database
from sqlitequeue._worker import Delivery, StopFlag, consume
from sqlitequeue.errors import InvalidArgument, LeaseLost, PayloadTooLarge

#: Row states (``queue_messages.state``); a tombstone only keeps the highest id from reuse.
READY, DELAYED, LEASED, DEAD, TOMBSTONE = 0, 1, 2, 3, 4

#: Default largest payload accepted by :meth:`Queue.put`, in bytes (like Kafka's 1 MB).
DEFAULT_MAX_PAYLOAD_SIZE = 1024 * 1024

#: A busy consumer settles due delayed messages and expired leases at most this often
#: (seconds); an idle one does so as soon as they fall due.
_SETTLE_INTERVAL = 0.001

#: Extra sleep after a delayed message or lease falls due, so the wake-up is not early.
_DUE_SLACK = 0.0005

_Key = str | bytes | None
#: What ``put`` accepts as a key: str (returned as str) or bytes-like (returned as bytes).
_KeyIn = str | bytes | bytearray | memoryview | None

# -- statements (module constants: each is prepared once per connection and cached) ----------

_INSERT = (
    "INSERT INTO queue_messages "
    "(queue, state, priority, available_at, enqueued_at, key, payload) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# Move due rows out of the delayed/leased states: delayed -> ready; an expired lease -> ready,
# or dead once it was delivered max_attempts times. The lease token is kept, so a late ack
# from the previous holder still succeeds while nobody else has claimed the message.
_PROMOTE = (
    "UPDATE queue_messages SET "
    "state = CASE WHEN state = 2 AND attempts >= ?3 THEN 3 ELSE 0 END, "
    "last_error = CASE WHEN state = 2 THEN 'lease expired on delivery ' || attempts "
    "|| CASE WHEN attempts >= ?3 THEN ' (max_attempts reached)' ELSE '' END "
    "ELSE last_error END "
    "WHERE queue = ?1 AND state IN (1, 2) AND available_at <= ?2"
)
# Tombstones that no longer hold the highest id (see sqlitequeue._schema) are swept here.
_SWEEP_TOMBSTONES = (
    "DELETE FROM queue_messages WHERE state = 4 AND id < (SELECT max(id) FROM queue_messages)"
)
_CLAIM = (
    "UPDATE queue_messages "
    "SET state = 2, attempts = attempts + 1, lease_token = ?2, available_at = ?3 "
    "WHERE id IN (SELECT id FROM queue_messages WHERE queue = ?1 AND state = 0 "
    "ORDER BY priority DESC, id LIMIT ?4) "
    "RETURNING id, payload, key, priority, attempts, enqueued_at, last_error"
)
# Cheap read-only look: is anything ready, and when does the next delayed row or lease fall due?
_PROBE = (
    "SELECT EXISTS (SELECT 1 FROM queue_messages WHERE queue = ?1 AND state = 0), "
    "(SELECT min(available_at) FROM queue_messages WHERE queue = ?1 AND state IN (1, 2))"
)
_ACK = "DELETE FROM queue_messages WHERE id = ? AND lease_token = ?"
_ACK_MANY = (
    "DELETE FROM queue_messages WHERE lease_token = ?2 "
    "AND id IN (SELECT value FROM json_each(?1)) RETURNING id"
)
_EXTEND = (
    "UPDATE queue_messages SET state = 2, available_at = ? "
    "WHERE id = ? AND lease_token = ? AND state IN (0, 2)"
)
_NACK = (
    "UPDATE queue_messages SET "
    "state = CASE WHEN attempts >= ?4 THEN 3 WHEN ?5 > ?6 THEN 1 ELSE 0 END, "
    "available_at = ?5, lease_token = NULL, last_error = ?3 "
    "WHERE id = ?1 AND lease_token = ?2 AND state IN (0, 2)"
)
_BURY = (
    "UPDATE queue_messages SET state = 3, lease_token = NULL, last_error = ? "
    "WHERE id = ? AND lease_token = ? AND state IN (0, 2)"
)
_COLUMNS = "id, payload, key, priority, attempts, enqueued_at, last_error"


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
        state, available_at = self._schedule(delay, priority, self._clock())
        cur = self._db.execute_write(
            _INSERT, (self.name, state, priority, available_at, time.time(), key, payload)
        )
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
        state, available_at = self._schedule(delay, priority, self._clock())
        name, now = self.name, time.time()
        rows = [
            (name, state, priority, available_at, now, k, p)
            for k, p in zip(key_list, items, strict=True)
        ]
        with self._db.write() as conn:
            conn.executemany(_INSERT, rows)
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        # One transaction holds the write lock, so the new ids are consecutive.
        return list(range(last - len(rows) + 1, last + 1))

    # -- consuming -------------------------------------------------------------------------

    def get(self, timeout: float | None = None, lease: float | None = None) -> Message | None:
        """Claim the next message (highest priority, then oldest) under a lease.

        Returns None when nothing becomes claimable within ``timeout`` seconds;
        ``timeout=None`` waits as long as it takes, ``0`` does not wait. ``lease`` overrides
        the queue's default lease for this claim. The message is delivered again if it is
        not acked, nacked or buried before the lease ends.
        """
        messages = self.get_many(1, timeout=timeout, lease=lease)
        return messages[0] if messages else None

    def get_many(
        self, max_messages: int, timeout: float | None = None, lease: float | None = None
    ) -> list[Message]:
        """Claim up to ``max_messages`` in one statement; the list is in delivery order.

        Returns as soon as at least one message is claimable, an empty list when none is
        within ``timeout`` seconds (None waits forever). All returned messages share one
        lease (``lease`` seconds, default the queue's).
        """
        _check_count("max_messages", max_messages)
        if timeout is not None:
            _check_seconds("timeout", timeout)
        lease = self.lease if lease is None else _check_seconds("lease", lease, positive=True)
        messages = self._claim(max_messages, lease)
        if messages or timeout == 0:
            return messages
        return self._wait_and_claim(max_messages, lease, timeout)

    def _claim(self, limit: int, lease: float, *, settle: bool = False) -> list[Message]:
        """One claim. Due delayed rows and expired leases are settled in the same
        transaction when ``settle`` is set or the last settling is over
        ``_SETTLE_INTERVAL`` old; otherwise the claim is a single autocommit statement."""
        now = self._clock()
        expires = now + lease
        token = random.getrandbits(62)
        name = self.name
        params = (name, token, expires, limit)
        tick = time.monotonic()
        if settle or tick >= self._next_settle:
            self._next_settle = tick + _SETTLE_INTERVAL
            with self._db.write(durable=False) as conn:
                conn.execute(_PROMOTE, (name, now, self.max_attempts))
                conn.execute(_SWEEP_TOMBSTONES)
                rows = conn.execute(_CLAIM, params).fetchall()
        else:
            rows = self._db.execute_returning(_CLAIM, params, durable=False)
        if not rows:
            return []
        if len(rows) > 1:
            rows.sort(key=_delivery_order)
        wall_expires = time.time() + lease
        return [
            Message(r[0], r[1], r[2], r[3], r[4], r[5], wall_expires, name, token, r[6])
            for r in rows
        ]

    def _wait_and_claim(self, limit: int, lease: float, timeout: float | None) -> list[Message]:
        """Sleep until something may be claimable (a commit elsewhere, or a due time)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # Taken before the look, so a commit landing between the look and the wait
            # wakes the wait at once (otherwise the message would wait for the next commit).
            token = self._db.change_token()
            with self._db.read() as conn:
                ready, next_due = conn.execute(_PROBE, (self.name,)).fetchone()
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
        cur = self._db.execute_write(_ACK, (message.id, message.lease_token), durable=False)
        if cur.rowcount != 1:
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
                rows = conn.execute(_ACK_MANY, (id_list, token)).fetchall()
                if len(rows) != len(ids):
                    done = {r[0] for r in rows}
                    lost.extend(i for i in ids if i not in done)
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
        cur = self._db.execute_write(_NACK, params)
        if cur.rowcount != 1:
            raise self._lease_lost([message.id], "nack")

    def extend(self, message: Message, lease: float | None = None) -> Message:
        """Renew the lease to ``lease`` seconds from now (a heartbeat); return the message
        with its new ``lease_expires_at``. Raises :class:`LeaseLost` if it was taken over."""
        lease = self.lease if lease is None else _check_seconds("lease", lease, positive=True)
        cur = self._db.execute_write(
            _EXTEND, (self._clock() + lease, message.id, message.lease_token), durable=False
        )
        if cur.rowcount != 1:
            raise self._lease_lost([message.id], "extend")
        return dataclasses.replace(message, lease_expires_at=time.time() + lease)

    def bury(self, message: Message, reason: str) -> None:
        """Move ``message`` to the dead letters now, with ``reason`` as its ``last_error``.

        Raises :class:`LeaseLost` if the lease was taken over."""
        reason = check_text(str(reason), "reason")
        cur = self._db.execute_write(_BURY, (reason, message.id, message.lease_token))
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
                    "SELECT state, count(*) FROM queue_messages "
                    "WHERE queue = ? AND state IN (1, 2) GROUP BY state",
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
                f"SELECT {_COLUMNS} FROM queue_messages WHERE queue = ? AND state = 0 "
                "ORDER BY priority DESC, id LIMIT ?",
                (self.name, limit),
            ).fetchall()
        return [self._listed(r) for r in rows]

    def dead_letters(self, limit: int = 100) -> list[Message]:
        """Return up to ``limit`` dead letters, oldest first; ``last_error`` says why."""
        _check_count("limit", limit)
        self._sweep()
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM queue_messages WHERE queue = ? AND state = 3 "
                "ORDER BY id LIMIT ?",
                (self.name, limit),
            ).fetchall()
        return [self._listed(r) for r in rows]

    def redrive(self, ids: Iterable[int] | None = None) -> int:
        """Make dead letters pending again with a fresh attempt count; return how many.

        ``ids=None`` redrives every dead letter of this queue; ids that are not dead letters
        of this queue are ignored.
        """
        sql = (
            "UPDATE queue_messages SET state = 0, attempts = 0, lease_token = NULL "
            "WHERE queue = ? AND state = 3"
        )
        self._sweep()
        if ids is None:
            return self._db.execute_write(sql, (self.name,)).rowcount
        id_list = "[" + ",".join(str(_check_id(i)) for i in ids) + "]"
        sql += " AND id IN (SELECT value FROM json_each(?))"
        return self._db.execute_write(sql, (self.name, id_list)).rowcount

    def purge(self, *, dead_only: bool = False) -> int:
        """Delete every message of this queue (or only its dead letters); return how many.

        Consumers holding leases on purged messages get :class:`LeaseLost` when they ack.
        Freed pages are returned to the file system (the file shrinks at the next
        checkpoint, or at once with :meth:`compact`).
        """
        sql = "DELETE FROM queue_messages WHERE queue = ?" + (
            " AND state = 3" if dead_only else " AND state < 4"
        )
        count = self._db.execute_write(sql, (self.name,)).rowcount
        if count:
            self._db.vacuum_free_pages()
        return count

    def queue_names(self) -> list[str]:
        """Return the names of every queue that has messages in this file, sorted."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT DISTINCT queue FROM queue_messages WHERE state < 4"
            ).fetchall()
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

    @staticmethod
    def _schedule(delay: float, priority: int, now: float) -> tuple[int, float]:
        if type(priority) is not int:
            raise InvalidArgument(f"priority must be an integer, not {priority!r}")
        check_int64(priority, "priority")
        if delay == 0 and delay is not False:  # False is no number of seconds
            return READY, now
        _check_seconds("delay", delay)
        return (DELAYED, now + delay) if delay > 0 else (READY, now)

    def _sweep(self) -> None:
        """Settle due delayed rows and expired leases."""
        with self._db.write() as conn:
            conn.execute(_PROMOTE, (self.name, self._clock(), self.max_attempts))
            conn.execute(_SWEEP_TOMBSTONES)

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


def _delivery_order(row: tuple[Any, ...]) -> tuple[int, int]:
    return -row[3], row[0]


def _check_seconds(what: str, value: float, *, positive: bool = False) -> float:
    """Return ``value`` as a float if it is a finite number of seconds (>= 0, or > 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument(f"{what} must be a finite number of seconds, not {value!r}")
    if value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise InvalidArgument(f"{what} must be {bound} seconds, not {value!r}")
    return float(value)


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


def _check_count(what: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an int in [minimum, 2**63 - 1]; raise InvalidArgument."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= INT64_MAX:
        raise InvalidArgument(
            f"{what} must be an integer from {minimum} to 2**63 - 1, not {value!r}"
        )
    return value


def _check_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"message ids are integers, not {value!r}")
    return check_int64(value, "message id")
