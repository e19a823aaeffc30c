"""A member of a consumer group: owns partitions through a lease, polls, commits, seeks.

Membership lives in the database: each member has a row in ``stream_members`` whose
``expires_at`` is its lease, renewed by ``poll`` (the heartbeat). Partition ``p`` belongs
to the ``p % n``-th live member ordered by id; a member takes a partition only when it is
free (never owned, released, or its owner's lease expired) and hands over the ones that
belong to others at its next heartbeat, so a partition never has two live owners.

A polling member also looks, at most every ``GROUP_CHECK_INTERVAL`` seconds, whether its
group changed (a member joined, left or expired, or a partition it waits for was released)
and then heartbeats at once: a new member's share moves within a poll or two of each member
instead of a heartbeat period (``lease / 3``). Callbacks and their contract:
:mod:`sqlitequeue._stream_assignment`.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum

from sqlitequeue import _stream_codec as codec
from sqlitequeue import _stream_log as log
from sqlitequeue._db import Database
from sqlitequeue._stream_assignment import (
    GROUP_CHECK_INTERVAL,
    AssignmentCallback,
    AssignmentListener,
    group_changed,
)
from sqlitequeue._stream_types import (
    START_POSITIONS,
    Offset,
    Record,
    Reset,
    TopicHandle,
    check_group,
    check_in_range,
    records_from_rows,
    to_timestamp,
)
from sqlitequeue.errors import Closed, InvalidArgument, NotPartitionOwner, StreamError

logger = logging.getLogger("sqlitequeue.stream")

#: Default member lease: a member that does not poll for this long loses its partitions.
DEFAULT_LEASE = 10.0

_UPSERT_MEMBER = (
    "INSERT INTO stream_members (topic_id, grp, member, expires_at, joined_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (topic_id, grp, member)"
    " DO UPDATE SET expires_at = excluded.expires_at"
)
_ASSIGNMENT_STATE = (
    "SELECT p.partition, p.pid, p.log_start, p.next_offset, o.committed, o.owner"
    " FROM stream_partition_state p LEFT JOIN stream_offsets o ON o.pid = p.pid AND o.grp = ?"
    " WHERE p.topic_id = ? ORDER BY p.partition"
)
_COMMIT = (
    "UPDATE stream_offsets SET committed = ?, committed_at = ? WHERE grp = ? AND pid = ?"
    " AND owner = ?"
)
_RELEASE = "UPDATE stream_offsets SET owner = NULL WHERE grp = ? AND pid = ? AND owner = ?"


class _Share(Enum):
    """What a heartbeat found for one partition of this member's group."""

    SETTLED = 0  # nothing to do: owned and ours, or neither
    WAITING = 1  # ours, but its previous owner (alive) has not released it yet
    HANDOVER = 2  # owned by this member, but now another member's share


class Consumer:
    """A member of a consumer group reading one topic. Create it with :meth:`Stream.consumer`.

    Owns some of the topic's partitions (all of them when it is the group's only member),
    reads them from its position, and commits positions to the group. Not thread-safe:
    use one consumer per thread. ``resets`` lists the positions this consumer moved
    because retention had deleted them (each also logged as a warning). ``on_assign`` and
    ``on_revoke`` are called as ``f(consumer, partitions)`` from inside ``poll`` (see
    :mod:`sqlitequeue._stream_assignment` for when exactly).
    """

    def __init__(
        self,
        topic: TopicHandle,
        group: str,
        *,
        start: str,
        lease: float,
        on_assign: AssignmentCallback[Consumer] | None = None,
        on_revoke: AssignmentCallback[Consumer] | None = None,
    ) -> None:
        self.group = check_group(group)
        if start not in START_POSITIONS:
            raise InvalidArgument(f"start must be 'earliest' or 'latest', not {start!r}")
        lease_seconds = codec.check_seconds(lease, "lease", allow_none=False)
        if not lease_seconds or not math.isfinite(lease_seconds):
            raise InvalidArgument(f"lease must be > 0 seconds and finite, not {lease!r}")
        self._handle = topic
        self.topic = topic.name
        self.start = start
        self.lease = lease_seconds
        self._pid = os.getpid()
        self.member = f"{socket.gethostname()}-{self._pid}-{uuid.uuid4().hex[:8]}"
        self.resets: list[Reset] = []
        self._topic_id = topic.topic_id
        self._pids = topic.pids
        self._bases = topic.bases
        self._positions: dict[int, int] = {}  # owned partition -> next offset to read
        self._committed: dict[int, int] = {}  # owned partition -> offset committed in the file
        self._rotation = 0
        self._next_heartbeat = 0.0
        self._listener: AssignmentListener[Consumer] = AssignmentListener(on_assign, on_revoke)
        self._members: tuple[str, ...] = ()  # the live members at the last heartbeat
        self._waiting: set[int] = set()  # our share, still held by a live previous owner
        self._next_check = 0.0  # time.monotonic() of the next look for a changed group
        self._db = Database(topic.path, durability=topic.durability)
        try:
            self._heartbeat()
        except BaseException:
            self._db.close()
            raise

    # -- membership ----------------------------------------------------------------------

    def _heartbeat(self) -> list[int]:
        """Renew this member's lease, take the free partitions of its share, and return the
        owned partitions that are now another member's share (release them with
        :meth:`_hand_over`).

        Partition ``p`` belongs to the ``p % n``-th live member (by id). A member takes a
        partition only when it is free (never owned, released, or its owner's lease
        expired), so a partition never has two live owners.
        """
        now, wall = self._db.now(), time.time()  # leases on the file's clock
        handover: list[int] = []
        self._waiting.clear()
        with self._db.write() as conn:
            key = (self._topic_id, self.group)
            conn.execute(_UPSERT_MEMBER, (*key, self.member, now + self.lease, wall))
            conn.execute(
                "DELETE FROM stream_members WHERE topic_id = ? AND grp = ? AND expires_at < ?",
                (*key, now),
            )
            members = [
                r[0]
                for r in conn.execute(
                    "SELECT member FROM stream_members WHERE topic_id = ? AND grp = ?"
                    " ORDER BY member",
                    key,
                )
            ]
            live = set(members)
            for row in conn.execute(_ASSIGNMENT_STATE, (self.group, self._topic_id)).fetchall():
                share = self._reconcile(conn, members, live, wall, *row)
                if share is _Share.WAITING:
                    self._waiting.add(row[1])
                elif share is _Share.HANDOVER:
                    handover.append(row[0])
        self._members = tuple(members)
        interval = self.lease / (10 if self._waiting else 3)
        self._next_heartbeat = time.monotonic() + interval
        return handover

    def _hand_over(self, partitions: list[int]) -> None:
        """Release owned ``partitions`` to the group (their new owner takes them)."""
        args = [(self.group, self._pids[p], self.member) for p in partitions]
        with self._db.write() as conn:
            conn.executemany(_RELEASE, args)
        for partition in partitions:
            self._drop(partition, "was handed over to another member")

    def _rebalance(self) -> None:
        """Heartbeat, and tell the callbacks: on_revoke before a handover, then what was
        lost and gained. A handover happens even if on_revoke raises."""
        handover = self._heartbeat()
        try:
            if handover:
                self._listener.revoking(self, handover)
        finally:
            if handover:
                self._hand_over(handover)
        self._listener.catch_up(self, self._positions.keys())

    def _group_changed(self) -> bool:
        """A cheap look, at most every GROUP_CHECK_INTERVAL: did the group change since the
        last heartbeat (so that this member should heartbeat now)?"""
        tick = time.monotonic()
        if tick < self._next_check:
            return False
        self._next_check = tick + GROUP_CHECK_INTERVAL
        now = self._db.now()
        with self._db.read() as conn:
            return group_changed(
                conn, self._topic_id, self.group, now, self._members, self._waiting
            )

    def _reconcile(
        self,
        conn: sqlite3.Connection,
        members: list[str],
        live: set[str],
        wall: float,
        partition: int,
        pid: int,
        start: int,
        end: int,
        committed: int | None,
        owner: str | None,
    ) -> _Share:
        """Take or keep one partition, or say that it must be handed over or waited for."""
        mine = members[partition % len(members)] == self.member
        if owner != self.member and partition in self._positions:
            self._drop(partition, f"was taken over by {owner or 'nobody'}")
        if owner == self.member and not mine:
            return _Share.HANDOVER
        if not mine:
            return _Share.SETTLED
        if owner is not None and owner != self.member and owner in live:
            return _Share.WAITING  # the previous owner releases it at its next heartbeat
        if owner == self.member and partition in self._positions:
            return _Share.SETTLED
        if committed is None:
            committed = start if self.start == "earliest" else end
            conn.execute(
                "INSERT INTO stream_offsets (grp, pid, committed, committed_at, owner)"
                " VALUES (?, ?, ?, ?, ?)",
                (self.group, pid, committed, wall, self.member),
            )
        else:
            conn.execute(
                "UPDATE stream_offsets SET owner = ? WHERE grp = ? AND pid = ?",
                (self.member, self.group, pid),
            )
        if owner is not None and owner != self.member:
            logger.info(
                "group %r of topic %r: %s took partition %d from expired member %s",
                self.group,
                self.topic,
                self.member,
                partition,
                owner,
            )
        self._committed[partition] = committed
        self._positions[partition] = committed
        if committed < start:
            self._reset(partition, committed, start)
        return _Share.SETTLED

    def _drop(self, partition: int, why: str) -> None:
        position = self._positions.pop(partition, None)
        committed = self._committed.pop(partition, None)
        if position is not None and position != committed:
            logger.info(
                "group %r of topic %r: partition %d %s; records %d..%d were not committed "
                "and will be delivered again to its new owner",
                self.group,
                self.topic,
                partition,
                why,
                committed,
                position - 1,
            )

    def _reset(self, partition: int, old: int, new: int) -> None:
        reason = (
            f"offset {old} of partition {partition} of topic {self.topic!r} was deleted by "
            f"retention; group {self.group!r} continues at the earliest retained offset {new}"
        )
        self.resets.append(Reset(partition, old, new, reason))
        self._positions[partition] = new
        logger.warning("%s (%d records skipped)", reason, new - old)

    # -- reading -------------------------------------------------------------------------

    def poll(self, max_records: int = 500, timeout: float | None = None) -> list[Record]:
        """Return up to ``max_records`` records from the owned partitions, oldest first per
        partition, and advance the position past them.

        Blocks until at least one record is available or ``timeout`` seconds pass (None
        waits forever; 0 never waits), then returns an empty list. Also heartbeats: renews
        this member's lease and takes part in rebalancing, noticing a changed group within
        a poll or two, and runs ``on_assign``/``on_revoke``. Wakes within a few ms of an
        append by another process. Raises StreamError if called from a callback.
        """
        codec.check_int(max_records, "max_records", minimum=1)
        codec.check_seconds(timeout, "timeout")
        self._check_open()
        self._check_not_in_callback("poll")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._keep_up()
            records = self._fetch(max_records)
            if records:
                return records
            version = self._db.data_version()
            records = self._fetch(max_records)  # anything committed before `version`
            if records:
                return records
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return []
            self._wait_for_change(version, self._wait_time(now, deadline))

    def wait_for_assignment(self, timeout: float | None = None) -> list[int]:
        """Block until this member owns its whole share of the partitions, at least one,
        or ``timeout`` seconds pass (None waits forever); return :meth:`assignment`.

        The result is empty after a timeout without any partition (e.g. when the group
        has more members than the topic has partitions). Heartbeats and rebalances as
        ``poll`` does (the callbacks run here too), but reads no record. Raises
        InvalidArgument for a bad timeout, StreamError if called from a callback.
        """
        codec.check_seconds(timeout, "timeout")
        self._check_open()
        self._check_not_in_callback("wait_for_assignment")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._keep_up()
            if self._positions and not self._waiting:
                return self.assignment()
            version = self._db.data_version()
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return self.assignment()
            self._wait_for_change(version, self._wait_time(now, deadline))

    def _keep_up(self) -> None:
        """Heartbeat when due or when the group changed; tell the callbacks of changes."""
        if time.monotonic() >= self._next_heartbeat or self._group_changed():
            self._rebalance()
        elif self._listener.announced != self._positions.keys():
            self._listener.catch_up(self, self._positions.keys())

    def _wait_time(self, now: float, deadline: float | None) -> float:
        """How long a poll may sleep: until the next heartbeat or look at the group."""
        wait = min(self._next_heartbeat, self._next_check) - now
        return wait if deadline is None else min(wait, deadline - now)

    def _check_not_in_callback(self, what: str) -> None:
        if self._listener.in_callback:
            raise StreamError(
                f"{what}() was called from inside on_assign/on_revoke of consumer "
                f"{self.member}; commit or seek there, and poll after the callback returns"
            )

    def _wait_for_change(self, version: int, timeout: float) -> None:
        """Sleep until the file changes after ``version`` was read, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        sleep = 0.00005
        while self._db.data_version() == version:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(sleep, left))
            sleep = min(sleep * 1.5, 0.002)

    def _fetch(self, max_records: int) -> list[Record]:
        owned = list(self._positions)
        if not owned:
            return []
        self._rotation += 1
        first = self._rotation % len(owned)
        records: list[Record] = []
        with self._db.read() as conn:
            for partition in owned[first:] + owned[:first]:
                position = self._positions[partition]
                base = self._bases[partition]
                want = max_records - len(records)
                rows = conn.execute(
                    log.FETCH, (base, base + position, base + log.OFFSET_LIMIT, want)
                ).fetchall()
                got = records_from_rows(self.topic, partition, base, rows, position, want)
                if not got:
                    continue
                if got[0].offset != position:
                    self._reset(partition, position, got[0].offset)
                records += got
                self._positions[partition] = got[-1].offset + 1
                if len(records) >= max_records:
                    break
        return records

    # -- positions -----------------------------------------------------------------------

    def commit(self, offsets: Mapping[int, int] | Iterable[Offset] | None = None) -> None:
        """Commit offsets for the group, all or nothing.

        Without arguments commits the position (after the last polled record) of every
        owned partition. ``offsets`` maps partition -> next offset to read (or is a list of
        :class:`Offset` with that meaning). Raises NotPartitionOwner if a partition is
        owned by another member now (its uncommitted records go to that member; nothing
        is committed), OffsetOutOfRange for an offset outside the partition's retained
        range (from its earliest retained offset to its end offset), InvalidArgument for
        a bad partition or offset.
        """
        self._check_open()
        if offsets is None:
            updates = {
                p: pos for p, pos in self._positions.items() if self._committed.get(p) != pos
            }
            explicit = False
        else:
            updates = self._check_offsets(offsets)
            explicit = True
        if not updates:
            return
        now = time.time()
        args = [(off, now, self.group, self._pids[p], self.member) for p, off in updates.items()]
        lost: list[int] = []
        try:
            if not explicit and len(args) == 1:  # the common case: one statement, autocommit
                if self._db.execute_write(_COMMIT, args[0]).rowcount != 1:
                    with self._db.read() as conn:
                        lost = self._lost_partitions(conn, updates)
                    raise NotPartitionOwner(self._not_owner_message(lost))
            else:
                with self._db.write() as conn:
                    if explicit:
                        self._check_retained(conn, updates)
                    if conn.executemany(_COMMIT, args).rowcount != len(args):
                        lost = self._lost_partitions(conn, updates)
                        raise NotPartitionOwner(self._not_owner_message(lost))
        except NotPartitionOwner:
            for partition in lost:
                self._drop(partition, "was lost")
            self._next_heartbeat = 0.0
            raise
        self._committed.update(updates)
        if time.monotonic() >= self._next_heartbeat and not self._listener.in_callback:
            handover = self._heartbeat()  # committing is a good moment to hand over
            if handover and self._listener.on_revoke is None:
                self._hand_over(handover)
            elif handover:
                self._next_heartbeat = 0.0  # at the next poll, after on_revoke

    def _check_offsets(self, offsets: object) -> dict[int, int]:
        pairs: Iterable[tuple[object, object]]
        if isinstance(offsets, Mapping):
            pairs = offsets.items()
        elif isinstance(offsets, Iterable) and not isinstance(offsets, (str, bytes)):
            pairs = [self._offset_pair(o) for o in offsets]
        else:
            raise InvalidArgument(
                f"offsets must be a dict partition -> offset, not {type(offsets).__name__}"
            )
        updates = {}
        for partition, offset in pairs:
            p = self._handle.check_partition(partition)
            updates[p] = codec.check_int(offset, f"offset for partition {p}")
        return updates

    def _check_retained(self, conn: sqlite3.Connection, updates: Mapping[int, int]) -> None:
        """Raise OffsetOutOfRange unless every offset lies in its partition's retained
        range (the end offset included), read in the committing transaction."""
        for p, offset in updates.items():
            start, end = log.partition_bounds(conn, self._pids[p])
            check_in_range(self.topic, p, offset, start, end)

    @staticmethod
    def _offset_pair(item: object) -> tuple[object, object]:
        if isinstance(item, Offset) or (isinstance(item, tuple) and len(item) == 2):
            return item[0], item[1]
        raise InvalidArgument(f"offsets must hold Offset(partition, offset) items, not {item!r}")

    def _lost_partitions(self, conn: sqlite3.Connection, updates: Mapping[int, int]) -> list[int]:
        lost = []
        for p in updates:
            row = conn.execute(
                "SELECT owner FROM stream_offsets WHERE grp = ? AND pid = ?",
                (self.group, self._pids[p]),
            ).fetchone()
            if row is None or row[0] != self.member:
                lost.append(p)
        return lost

    def _not_owner_message(self, lost: list[int]) -> str:
        return (
            f"member {self.member} of group {self.group!r} no longer owns partition(s) "
            f"{', '.join(map(str, lost))} of topic {self.topic!r} (its lease expired and "
            "another member took them over), so nothing was committed; their uncommitted "
            f"records go to the new owner. Poll at least every {self.lease:g} s (the lease), "
            "or raise lease="
        )

    def _owned(self, partition: object) -> int:
        p = self._handle.check_partition(partition)
        if p not in self._positions:
            raise NotPartitionOwner(
                f"partition {p} of topic {self.topic!r} is not assigned to member "
                f"{self.member} of group {self.group!r}; it owns {self.assignment()}"
            )
        return p

    def seek(self, partition: int, offset: int) -> None:
        """Move the position of an owned ``partition`` to ``offset`` (next poll reads it).

        Raises InvalidArgument for a bad partition or offset, NotPartitionOwner if this
        member does not own the partition, OffsetOutOfRange outside the retained range
        (the end offset itself is allowed). Commit to make it the group's position.
        """
        self._check_open()
        p = self._owned(partition)
        codec.check_int(offset, "offset")
        with self._db.read() as conn:
            start, end = log.partition_bounds(conn, self._pids[p])
        check_in_range(self.topic, p, offset, start, end)
        self._positions[p] = offset

    def seek_to_timestamp(self, timestamp: float | datetime) -> dict[int, int]:
        """Move every owned partition to its first record at or after ``timestamp``.

        Returns partition -> new position (the end offset where no record is that recent).
        """
        self._check_open()
        ts = to_timestamp(timestamp)
        with self._db.read() as conn:
            for p in self._positions:
                self._positions[p] = log.offset_for_timestamp(conn, self._pids[p], ts)
        return dict(self._positions)

    def seek_to_beginning(self) -> dict[int, int]:
        """Move every owned partition to its earliest retained offset; return the positions."""
        return self._seek_all(0)

    def seek_to_end(self) -> dict[int, int]:
        """Move every owned partition to its end offset; return the positions."""
        return self._seek_all(1)

    def _seek_all(self, which: int) -> dict[int, int]:
        self._check_open()
        with self._db.read() as conn:
            for p in self._positions:
                self._positions[p] = log.partition_bounds(conn, self._pids[p])[which]
        return dict(self._positions)

    def position(self) -> dict[int, int]:
        """Return owned partition -> next offset this consumer will read."""
        return dict(self._positions)

    def committed(self) -> dict[int, int]:
        """Return owned partition -> offset committed by the group (as last seen)."""
        return dict(self._committed)

    def assignment(self) -> list[int]:
        """Return the partitions this member owns now (changes at rebalances)."""
        return sorted(self._positions)

    def lag(self) -> dict[int, int]:
        """Return owned partition -> retained records after this consumer's position."""
        self._check_open()
        with self._db.read() as conn:
            bounds = {p: log.partition_bounds(conn, self._pids[p]) for p in self._positions}
        return {p: end - max(self._positions[p], start) for p, (start, end) in bounds.items()}

    # -- life cycle ----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._db.closed

    def _check_open(self) -> None:
        if self._db.closed:
            raise Closed(f"consumer {self.member} of group {self.group!r} was closed")
        if os.getpid() != self._pid:
            raise StreamError(
                f"consumer {self.member} of group {self.group!r} belongs to process "
                f"{self._pid} and was carried across fork(); a group member is one process. "
                "Create a new consumer in this process with stream.consumer(group)."
            )

    def close(self) -> None:
        """Leave the group without committing: call ``on_revoke`` with the partitions still
        owned (it may commit), release them at once (the other members take them at their
        next poll) and close the connection. Safe to call twice.
        """
        if self._db.closed:
            return
        if os.getpid() != self._pid:  # a fork's copy: the member lives on in its process
            self._db.close()
            return
        try:
            if not self._listener.in_callback:
                self._listener.revoking(self, list(self._positions))
        finally:
            self._leave()

    def _leave(self) -> None:
        try:
            with self._db.write() as conn:
                conn.execute(
                    "UPDATE stream_offsets SET owner = NULL WHERE grp = ? AND owner = ?",
                    (self.group, self.member),
                )
                conn.execute(
                    "DELETE FROM stream_members WHERE topic_id = ? AND grp = ? AND member = ?",
                    (self._topic_id, self.group, self.member),
                )
        finally:
            self._positions.clear()
            self._db.close()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Consumer(topic={self.topic!r}, group={self.group!r}, member={self.member!r})"
