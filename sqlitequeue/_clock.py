"""The file's clock: lease and delay deadlines that no wall-clock step can move.

Deadlines shared between processes (``queue_messages.rank`` of delayed and leased
messages, ``stream_members.expires_at``) are stored on the *file clock*::

    file time = CLOCK_BOOTTIME + boot_offset

CLOCK_BOOTTIME counts the seconds since the host booted, suspend included. It is one
clock for every process on the host, and NTP, an administrator or a VM resume never step
it (they only step the wall clock, ``time.time()``). ``boot_offset`` is stored in the file
(table ``sqlitequeue_clock``) with the boot id of the host that chose it; it is chosen
when the file is made so that file time starts equal to the wall clock, so stored values
read like Unix timestamps. Wall-clock times stay where people read them
(``Message.enqueued_at``, record timestamps, ``committed_at``).

A reboot restarts CLOCK_BOOTTIME, and a file restored on another host (e.g. by
``litestream restore``) meets another host's. The first process that opens the file under
a boot id other than the stored one rebases it, in one write transaction:

* the time the file spent unused is taken from the wall clock, the only clock that spans
  the gap: file time now = the stored anchor's file time + max(0, wall-clock time since
  the anchor). A wall clock that is behind never moves file time back;
* every lease is released, because its holder ran under the old boot and is gone: leased
  messages are due at once (the delivery counts as an attempt), stream members are
  removed and their partitions are free;
* delays keep what remained of them;
* the new boot id, offset and anchor are stored.

The anchor (file time, wall time) is refreshed by each process's background checkpointer
at most every ``ANCHOR_INTERVAL`` seconds while the process commits, so only wall-clock
steps since then (and during the downtime) count across a reboot. Where the host has no
CLOCK_BOOTTIME or boot id (not Linux), the wall clock stands in for both, as before.
All processes sharing a file must share a time namespace (containers do by default).
"""

from __future__ import annotations

import logging
import sqlite3
import time

logger = logging.getLogger("sqlitequeue")

#: Seconds between refreshes of the stored anchor by a process that commits.
ANCHOR_INTERVAL = 10.0

_BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"
_WALL_CLOCK_ONLY = "wall-clock"
_boot_id: str | None = None

_READ = "SELECT boot_id, boot_offset, anchor_file, anchor_wall FROM sqlitequeue_clock"
_INSERT = (
    "INSERT INTO sqlitequeue_clock (id, boot_id, boot_offset, anchor_file, anchor_wall)"
    " VALUES (1, ?, ?, ?, ?)"
)
_REBASE = (
    "UPDATE sqlitequeue_clock SET boot_id = ?, boot_offset = ?, anchor_file = ?, anchor_wall = ?"
)
_REFRESH_ANCHOR = (
    "UPDATE sqlitequeue_clock SET anchor_file = ?1 + boot_offset, anchor_wall = ?2"
    " WHERE boot_id = ?3"
)


def host_boot_id() -> str:
    """The id of the host's current boot (Linux), or ``"wall-clock"`` where there is none."""
    global _boot_id
    if _boot_id is None:
        try:
            with open(_BOOT_ID_FILE) as fh:
                _boot_id = fh.read().strip() or _WALL_CLOCK_ONLY
        except OSError:
            _boot_id = _WALL_CLOCK_ONLY
        if not hasattr(time, "CLOCK_BOOTTIME"):
            _boot_id = _WALL_CLOCK_ONLY
    return _boot_id


def boottime() -> float:
    """Seconds since the host booted (CLOCK_BOOTTIME); the wall clock where there is none."""
    if host_boot_id() == _WALL_CLOCK_ONLY:
        return time.time()
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def stored_offset(conn: sqlite3.Connection) -> float | None:
    """The file's ``boot_offset`` if it was set under this host's boot, else None."""
    row = conn.execute(_READ).fetchone()
    return float(row[1]) if row is not None and row[0] == host_boot_id() else None


def adopt(conn: sqlite3.Connection) -> float:
    """Inside a write transaction: return the offset for this boot, first setting it up
    (a new file) or rebasing the file (it was last used under another boot)."""
    boot, up, wall = host_boot_id(), boottime(), time.time()
    row = conn.execute(_READ).fetchone()
    if row is None:  # file time starts at the wall clock
        conn.execute(_INSERT, (boot, wall - up, wall, wall))
        return wall - up
    old_boot, offset, anchor_file, anchor_wall = row
    if old_boot == boot:
        return float(offset)
    now = anchor_file + max(0.0, wall - anchor_wall)
    leases = conn.execute(
        "UPDATE queue_messages SET rank = ? WHERE state = 1",
        (now,),  # leased (schema v3)
    ).rowcount
    members = conn.execute("DELETE FROM stream_members").rowcount
    conn.execute(_REBASE, (boot, now - up, now, wall))
    logger.warning(
        "this file was last used under another boot (%s; now %s): %d queue lease(s) and "
        "%d stream member(s) released, delays kept, %.0f s of downtime counted by the "
        "wall clock",
        old_boot,
        boot,
        leases,
        members,
        now - anchor_file,
    )
    return now - up


def refresh_anchor(conn: sqlite3.Connection) -> None:
    """Store (file time, wall time) now, as its own transaction, if this boot owns the
    file's clock. Raises sqlite3.Error (e.g. busy); the caller tries again later."""
    conn.execute(_REFRESH_ANCHOR, (boottime(), time.time(), host_boot_id()))
