"""How a consumer learns of rebalances: the ``on_assign`` / ``on_revoke`` callbacks, and the
cheap look that lets a member notice a change of its group at its next poll instead of its
next heartbeat.

The callbacks keep the contract of Kafka's ``ConsumerRebalanceListener``:

* they run only inside ``poll``, ``wait_for_assignment`` and ``close``, in the consumer's
  thread, as ``callback(consumer, partitions)`` with a sorted, non-empty list of partition
  numbers;
* ``on_revoke`` runs *before* a partition is handed over to another member, while this
  member still owns it (a ``commit()`` there stores the position the next owner starts
  from), and at ``close()`` for every partition still owned; it also runs *after* a
  partition was lost (this member's lease expired and another member took it), when a
  commit for it is no longer possible;
* ``on_assign`` runs after partitions were taken and before any of their records is
  returned (a ``seek`` there moves where reading starts);
* revocations are announced before assignments, and a partition is announced as revoked
  exactly once between two announcements of it as assigned;
* an exception from a callback propagates out of the call that ran it, and the rebalance
  has happened anyway (a partition being handed over is released all the same);
* a callback must not call ``poll`` or ``wait_for_assignment`` (``StreamError``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable
from typing import Generic, TypeVar

from sqlitequeue.errors import InvalidArgument

C = TypeVar("C")
#: ``callback(consumer, partitions)``, told of partitions assigned to or revoked from it.
AssignmentCallback = Callable[[C, list[int]], object]

#: A polling member looks for a changed group (joined, left or expired members, a partition
#: it waits for released) at most this often, in seconds: one small read.
GROUP_CHECK_INTERVAL = 0.05

_LIVE_MEMBERS = (
    "SELECT member FROM stream_members WHERE topic_id = ? AND grp = ? AND expires_at >= ?"
    " ORDER BY member"
)
_OWNER = "SELECT owner FROM stream_offsets WHERE grp = ? AND pid = ?"


def check_callback(value: object, what: str) -> None:
    """Raise InvalidArgument unless ``value`` is None or callable."""
    if value is not None and not callable(value):
        raise InvalidArgument(
            f"{what} must be a function called as {what}(consumer, partitions), or None, "
            f"not {type(value).__name__}"
        )


class AssignmentListener(Generic[C]):
    """Tells a consumer's callbacks of the partitions it gained and lost (see the module
    docstring); ``announced`` holds what ``on_assign`` was last told this member owns."""

    def __init__(
        self,
        on_assign: AssignmentCallback[C] | None,
        on_revoke: AssignmentCallback[C] | None,
    ) -> None:
        check_callback(on_assign, "on_assign")
        check_callback(on_revoke, "on_revoke")
        self.on_assign = on_assign
        self.on_revoke = on_revoke
        self.announced: set[int] = set()
        self.in_callback = False

    def revoking(self, consumer: C, partitions: Iterable[int]) -> None:
        """Announce partitions that are about to be handed over (still owned now)."""
        chosen = set(partitions)
        told = sorted(chosen & self.announced)
        self.announced -= chosen
        self._call(self.on_revoke, consumer, told)

    def catch_up(self, consumer: C, owned: Collection[int]) -> None:
        """Announce every change since the last call: lost partitions, then gained ones."""
        if self.announced == owned:
            return
        now = set(owned)
        lost, gained = sorted(self.announced - now), sorted(now - self.announced)
        self.announced = now
        try:
            self._call(self.on_revoke, consumer, lost)
        finally:
            self._call(self.on_assign, consumer, gained)

    def _call(
        self, callback: AssignmentCallback[C] | None, consumer: C, partitions: list[int]
    ) -> None:
        if callback is None or not partitions:
            return
        self.in_callback = True
        try:
            callback(consumer, partitions)
        finally:
            self.in_callback = False


def group_changed(
    conn: sqlite3.Connection,
    topic_id: int,
    group: str,
    now: float,
    members: tuple[str, ...],
    waiting: Iterable[int],
) -> bool:
    """True if the group's live members are no longer ``members`` (one joined, left or
    let its lease expire), or a partition (by pid) in ``waiting`` has no live owner now.

    Read-only and small (the group's member rows, one row per waited-for partition): cheap
    enough for every poll, so a member rebalances as soon as its group changes.
    """
    live = tuple(r[0] for r in conn.execute(_LIVE_MEMBERS, (topic_id, group, now)))
    if live != members:
        return True
    for pid in waiting:
        row = conn.execute(_OWNER, (group, pid)).fetchone()
        if row is None or row[0] is None or row[0] not in live:
            return True
    return False
