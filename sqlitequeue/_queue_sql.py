"""The work queue's statements, on the table of schema version 3 (see :mod:`sqlitequeue._schema`).

Rows are in one of four states: 0 ready, 1 leased (or acked), 2 delayed, 3 dead. One index,
``queue_order (queue, state DESC, rank, id)``, serves every hot statement; ``rank`` orders
rows within their state: ``~priority`` for ready rows (higher priority first, then id), the
file time they fall due for leased and delayed rows, 0 for dead letters.

What each hot call writes (measured against a minimal design, see docs/benchmarks.md):

* put: the row and its index entry;
* claim (one ``UPDATE ... RETURNING``): the row, and in the index the ready entry out and the
  lease entry in. Leased rows sort right before ready ones, and a new lease (the latest
  expiry) goes at the end of the leased range, so both index changes usually land on one page;
* ack: only the row. The ack sets ``lease_token`` to NULL, which no index holds, and leaves the
  row leased: a leased row without a token is *acked*, never delivered again, and deleted in
  bulk later (:data:`FORGET_ACKED` by the process that acked it, within 2 ms while
  it claims, and on close; :data:`DROP_ACKED` by anyone once its lease
  would have expired, if that process died first). An ack of a row that is no longer leased
  (its lease expired and nobody claimed it) turns it into an acked row (:data:`ACK_SETTLED`).
* ids are never reused: SQLite gives a new row the highest rowid + 1, so no statement here
  deletes the row with the highest id (``id < (SELECT max(id) ...)``, one seek per
  statement): an acked row left there holds the id, unseen, until a newer row exists. (A
  trigger did this before, and cost a seek per deleted row.)

Every statement that acts for a lease holder matches ``lease_token``: a claim draws a new
random token, so a stale holder (or a second ack) finds no row and gets ``LeaseLost``.
"""

from __future__ import annotations

#: Row states (``queue_messages.state``); a leased row without a lease token is acked.
READY, LEASED, DELAYED, DEAD = 0, 1, 2, 3

#: Parameters: queue, state, priority, rank (~priority when ready, else the due time),
#: enqueued_at, key, payload.
INSERT = (
    "INSERT INTO queue_messages (queue, state, priority, rank, enqueued_at, key, payload) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
#: Delete acked rows whose lease would have expired: their acker died before deleting them.
DROP_ACKED = (
    "DELETE FROM queue_messages WHERE queue = ?1 AND state = 1 AND rank <= ?2 "
    "AND lease_token IS NULL AND id < (SELECT max(id) FROM queue_messages)"
)
#: Move due rows out of the delayed/leased states: delayed -> ready; an expired lease -> ready,
#: or dead once it was delivered max_attempts times. The lease token is kept, so a late ack
#: from the previous holder still succeeds while nobody else has claimed the message.
#: Acked rows (leased, no token) never come back; DROP_ACKED deletes them.
PROMOTE = (
    "UPDATE queue_messages SET "
    "state = CASE WHEN state = 1 AND attempts >= ?3 THEN 3 ELSE 0 END, "
    "rank = CASE WHEN state = 1 AND attempts >= ?3 THEN 0 ELSE ~priority END, "
    "last_error = CASE WHEN state = 1 THEN 'lease expired on delivery ' || attempts "
    "|| CASE WHEN attempts >= ?3 THEN ' (max_attempts reached)' ELSE '' END "
    "ELSE last_error END "
    "WHERE queue = ?1 AND state IN (1, 2) AND rank <= ?2 AND (state = 2 OR lease_token NOT NULL)"
)
#: Delete rows this process acked (a JSON list of ids), unless something else became of them.
FORGET_ACKED = (
    "DELETE FROM queue_messages WHERE id IN (SELECT value FROM json_each(?)) AND state = 1 "
    "AND lease_token IS NULL AND id < (SELECT max(id) FROM queue_messages)"
)
#: Claim the best ready message. Parameters: queue, lease token, lease expiry.
CLAIM_ONE = (
    "UPDATE queue_messages SET state = 1, attempts = attempts + 1, lease_token = ?2, rank = ?3 "
    "WHERE id = (SELECT id FROM queue_messages WHERE queue = ?1 AND state = 0 "
    "ORDER BY rank, id LIMIT 1) "
    "RETURNING id, payload, key, priority, attempts, enqueued_at, last_error"
)
#: Claim up to ?4 messages (rows come back in no particular order).
CLAIM = (
    "UPDATE queue_messages SET state = 1, attempts = attempts + 1, lease_token = ?2, rank = ?3 "
    "WHERE id IN (SELECT id FROM queue_messages WHERE queue = ?1 AND state = 0 "
    "ORDER BY rank, id LIMIT ?4) "
    "RETURNING id, payload, key, priority, attempts, enqueued_at, last_error"
)
#: Cheap read-only look: is anything ready, and when does the next lease or delayed row fall
#: due? (One seek per state: min() over both states at once would scan them. Acked rows
#: are skipped: one is always kept, and a blocked get would spin on it once "due".)
PROBE = (
    "SELECT EXISTS (SELECT 1 FROM queue_messages WHERE queue = ?1 AND state = 0), "
    "(SELECT rank FROM queue_messages WHERE queue = ?1 AND state = 1 "
    "AND lease_token NOT NULL ORDER BY rank LIMIT 1), "  # acked rows never fall due
    "(SELECT min(rank) FROM queue_messages WHERE queue = ?1 AND state = 2)"
)
#: Ack a leased message: the row stays (acked) until FORGET_ACKED or DROP_ACKED deletes it.
ACK = "UPDATE queue_messages SET lease_token = NULL WHERE id = ? AND lease_token = ? AND state = 1"
#: Ack a message whose lease expired without anyone claiming it since (see PROMOTE): it
#: becomes an acked row, which the next settling deletes (DROP_ACKED: rank 0 is due).
ACK_SETTLED = (
    "UPDATE queue_messages SET state = 1, rank = 0, lease_token = NULL "
    "WHERE id = ? AND lease_token = ?"
)
#: Ack several messages of one claim (?2 the token, ?1 a JSON list of ids) ...
ACK_MANY = (
    "DELETE FROM queue_messages WHERE lease_token = ?2 "
    "AND id IN (SELECT value FROM json_each(?1)) "
    "AND id < (SELECT max(id) FROM queue_messages) RETURNING id"
)
#: ... and, when ACK_MANY left one (the highest id), turn it into an acked row.
ACK_MANY_TOP = (
    "UPDATE queue_messages SET state = 1, rank = 0, lease_token = NULL "
    "WHERE lease_token = ?2 AND id IN (SELECT value FROM json_each(?1)) RETURNING id"
)
#: Purge (``{where}``: which rows of queue ?): delete all but the highest id's row ...
PURGE = (
    "DELETE FROM queue_messages WHERE queue = ? AND {where} "
    "AND id < (SELECT max(id) FROM queue_messages)"
)
#: ... which, if it is one of them, becomes an acked row.
PURGE_TOP = (
    "UPDATE queue_messages SET state = 1, rank = 0, lease_token = NULL "
    "WHERE id = (SELECT max(id) FROM queue_messages) AND queue = ? AND {where}"
)
EXTEND = (
    "UPDATE queue_messages SET state = 1, rank = ? "
    "WHERE id = ? AND lease_token = ? AND state IN (0, 1)"
)
#: Parameters: id, token, reason, max_attempts, due time, now.
NACK = (
    "UPDATE queue_messages SET "
    "state = CASE WHEN attempts >= ?4 THEN 3 WHEN ?5 > ?6 THEN 2 ELSE 0 END, "
    "rank = CASE WHEN attempts >= ?4 THEN 0 WHEN ?5 > ?6 THEN ?5 ELSE ~priority END, "
    "lease_token = NULL, last_error = ?3 "
    "WHERE id = ?1 AND lease_token = ?2 AND state IN (0, 1)"
)
BURY = (
    "UPDATE queue_messages SET state = 3, rank = 0, lease_token = NULL, last_error = ? "
    "WHERE id = ? AND lease_token = ? AND state IN (0, 1)"
)
REDRIVE = (
    "UPDATE queue_messages SET state = 0, rank = ~priority, attempts = 0, lease_token = NULL "
    "WHERE queue = ? AND state = 3"
)
#: Rows that hold a message (not acked rows waiting to be deleted).
LIVE = "(state <> 1 OR lease_token IS NOT NULL)"
COLUMNS = "id, payload, key, priority, attempts, enqueued_at, last_error"
