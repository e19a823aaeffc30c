"""The on-disk schema: one application id, one version number, and the migrations.

Migration ``n`` takes a file from schema version ``n - 1`` to ``n``; :mod:`sqlitequeue._db`
applies the missing ones inside one write transaction when a file is opened. Never edit a
migration once released: add a new one and bump :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

#: PRAGMA application_id of every sqlitequeue file ("SQQU").
APPLICATION_ID = 0x53515155

#: Tables of the work queue as version 1 made them (version 3 rebuilds them: QUEUE_TABLE_V3).
#: One row per message, in one of four states:
#: 0 ready (claimable now), 1 delayed (claimable at available_at), 2 leased (claimed; claimable
#: again when the lease expires at available_at), 3 dead (a dead letter; last_error says why).
#: Each state has its own partial index, so a claim seeks straight to the best ready row and
#: never walks past leased, delayed or dead ones. Acked messages are deleted.
#: Ids are never reused: SQLite would reuse the highest rowid once its row is deleted, so
#: deleting the row with the highest id leaves a tombstone (state 4, no payload) holding that
#: id; claims sweep tombstones that are no longer the highest. This costs a rowid look-up per
#: delete, instead of AUTOINCREMENT's extra sqlite_sequence write on every insert.
QUEUE_TABLES = """
CREATE TABLE queue_messages (
    id           INTEGER PRIMARY KEY,  -- never reused: see queue_keep_top_id
    queue        TEXT    NOT NULL,
    state        INTEGER NOT NULL DEFAULT 0,  -- 0 ready, 1 delayed, 2 leased, 3 dead, 4 tombstone
    priority     INTEGER NOT NULL DEFAULT 0,  -- higher first, then id (FIFO)
    available_at REAL    NOT NULL,  -- delayed: end of the delay, leased: lease expiry
    attempts     INTEGER NOT NULL DEFAULT 0,  -- deliveries so far
    lease_token  INTEGER,  -- random per claim: a stale holder cannot touch a new claim
    enqueued_at  REAL    NOT NULL,
    key          BLOB,  -- str or bytes, stored as given
    last_error   TEXT,  -- reason of the last nack, bury or lease expiry
    payload      BLOB    NOT NULL  -- last, so the other columns never need overflow pages
);
CREATE INDEX queue_ready ON queue_messages (queue, priority DESC, id) WHERE state = 0;
CREATE INDEX queue_due ON queue_messages (queue, available_at, state) WHERE state IN (1, 2);
CREATE INDEX queue_dead ON queue_messages (queue, id) WHERE state = 3;
CREATE INDEX queue_tombstones ON queue_messages (id) WHERE state = 4;
CREATE TRIGGER queue_keep_top_id AFTER DELETE ON queue_messages
WHEN old.id > coalesce((SELECT max(id) FROM queue_messages), 0)
BEGIN
    INSERT INTO queue_messages (id, queue, state, available_at, enqueued_at, payload)
    VALUES (old.id, old.queue, 4, 0, 0, x''); END;
"""

#: Tables of the log (sqlitequeue.stream).
#:
#: A record's id packs its partition and offset: ``id = pid << 47 | offset`` (``pid`` is
#: the partition's global id in ``stream_partitions``), so a partition's records are one
#: contiguous rowid range: appends go to the end of one b-tree, reads are range scans, and
#: retention deletes a prefix of the range. A partition's end offset is its newest record's
#: offset + 1 (one b-tree seek, no counter row to rewrite on every append); when retention
#: deleted every record, ``stream_partitions.log_start`` holds it, so offsets are never
#: reused. Within a partition ``ts`` never decreases and ``cum_bytes`` (bytes appended up
#: to and including the record) increases, so both are binary-searched by offset.
STREAM_TABLES = """
CREATE TABLE stream_topics (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    partitions      INTEGER NOT NULL,
    retention_age   REAL,     -- seconds; NULL = keep forever
    retention_bytes INTEGER,  -- per partition; NULL = no size limit
    created_at      REAL    NOT NULL
);
CREATE TABLE stream_partitions (
    pid         INTEGER PRIMARY KEY AUTOINCREMENT,
    topic_id    INTEGER NOT NULL REFERENCES stream_topics (id),
    partition   INTEGER NOT NULL,
    log_start   INTEGER NOT NULL DEFAULT 0,  -- earliest retained offset
    start_bytes INTEGER NOT NULL DEFAULT 0,  -- bytes appended before log_start
    start_ts    REAL    NOT NULL DEFAULT 0,  -- timestamp of the record before log_start
    UNIQUE (topic_id, partition)
);
CREATE TABLE stream_records (
    id        INTEGER PRIMARY KEY,  -- pid << 47 | offset
    ts        REAL    NOT NULL,
    cum_bytes INTEGER NOT NULL,
    key       BLOB,
    headers   BLOB,
    payload   BLOB    NOT NULL
);
CREATE TABLE stream_offsets (
    grp          TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    committed    INTEGER NOT NULL,  -- next offset the group reads
    committed_at REAL    NOT NULL,
    owner        TEXT,              -- member id holding the partition, or NULL
    PRIMARY KEY (grp, pid)
) WITHOUT ROWID;
CREATE TABLE stream_members (
    topic_id   INTEGER NOT NULL,
    grp        TEXT    NOT NULL,
    member     TEXT    NOT NULL,
    expires_at REAL    NOT NULL,  -- the member's lease on its partitions
    joined_at  REAL    NOT NULL,
    PRIMARY KEY (topic_id, grp, member)
) WITHOUT ROWID;
CREATE VIEW stream_partition_state AS
    SELECT p.pid, p.topic_id, p.partition, p.log_start,
           coalesce(r.id - (p.pid << 47) + 1, p.log_start) AS next_offset,
           coalesce(r.ts, p.start_ts) AS last_ts,
           p.start_bytes,
           coalesce(r.cum_bytes, p.start_bytes) AS end_bytes
    FROM stream_partitions p
    LEFT JOIN stream_records r ON r.id = (
        SELECT max(id) FROM stream_records
        WHERE id >= (p.pid << 47) AND id < ((p.pid + 1) << 47));
CREATE VIEW stream_records_view AS
    SELECT t.name AS topic, p.partition, r.id - (p.pid << 47) AS offset, r.ts, r.key,
           r.headers, r.payload
    FROM stream_records r
    JOIN stream_partitions p ON p.pid = r.id >> 47
    JOIN stream_topics t ON t.id = p.topic_id;
"""

#: The file's clock (see :mod:`sqlitequeue._clock`): one row. Deadlines in
#: queue_messages.available_at and stream_members.expires_at are file times,
#: CLOCK_BOOTTIME + boot_offset under boot ``boot_id``.
CLOCK_TABLE = """
CREATE TABLE sqlitequeue_clock (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    boot_id     TEXT    NOT NULL,  -- the host boot whose CLOCK_BOOTTIME boot_offset is for
    boot_offset REAL    NOT NULL,  -- file time = CLOCK_BOOTTIME + boot_offset
    anchor_file REAL    NOT NULL,  -- a recent file time ...
    anchor_wall REAL    NOT NULL   -- ... and the wall clock (time.time()) at that moment
);
"""

#: Version 3: the queue's table rebuilt for a cheaper claim and ack (see
#: :mod:`sqlitequeue._queue_sql`). One index, ``queue_order``, replaces the three per-state
#: ones: its key is (queue, state DESC, rank, id), where ``rank`` orders rows within their
#: state: ~priority for ready rows (higher priority first, then id), the file time they
#: fall due for leased and delayed rows, 0 for dead letters and tombstones. The states are
#: renumbered so that leased rows sort right before ready ones: a claim takes the first
#: ready entry out and puts the lease in at the end of the leased range, usually on the
#: same index page, so it writes one index page where it wrote two (ready and due). A
#: leased row whose lease_token is NULL has been acked and waits to be deleted in bulk: an
#: ack only rewrites its table row and writes no index page (see _queue_sql). Ids stay
#: never reused without the trigger: no statement deletes the row with the highest id (an
#: acked row left there holds it, unseen), so version 2's tombstones become acked rows.
QUEUE_TABLE_V3 = """
CREATE TABLE queue_messages_v3 (
    id          INTEGER PRIMARY KEY,  -- never reused: the highest id's row is never deleted
    queue       TEXT    NOT NULL,
    state       INTEGER NOT NULL DEFAULT 0,  -- 0 ready, 1 leased (or acked), 2 delayed, 3 dead
    rank        NOT NULL DEFAULT 0,  -- ready: ~priority; leased, delayed: when due; else 0
    priority    INTEGER NOT NULL DEFAULT 0,  -- higher first, then id (FIFO)
    attempts    INTEGER NOT NULL DEFAULT 0,  -- deliveries so far
    lease_token INTEGER,  -- random per claim; NULL on a leased row: acked, to be deleted
    enqueued_at REAL    NOT NULL,
    key         BLOB,  -- str or bytes, stored as given
    last_error  TEXT,  -- reason of the last nack, bury or lease expiry
    payload     BLOB    NOT NULL  -- last, so the other columns never need overflow pages
);
INSERT INTO queue_messages_v3 (id, queue, state, rank, priority, attempts, lease_token,
    enqueued_at, key, last_error, payload)
SELECT id, queue, CASE state WHEN 1 THEN 2 WHEN 2 THEN 1 WHEN 4 THEN 1 ELSE state END,
    CASE WHEN state = 0 THEN ~priority WHEN state IN (1, 2) THEN available_at ELSE 0 END,
    priority, attempts, lease_token, enqueued_at, key, last_error, payload
FROM queue_messages;
DROP TABLE queue_messages;
ALTER TABLE queue_messages_v3 RENAME TO queue_messages;
CREATE INDEX queue_order ON queue_messages (queue, state DESC, rank, id);
"""

#: Version 4: a stream row may hold a whole Kafka record batch (written by ``sqlitequeue
#: serve``, see :mod:`sqlitequeue._stream_batch`). ``records`` is NULL for a row of one
#: record (key, headers, payload as before); for a batch row it is the number of records,
#: the payload is the batch (record format v2, uncompressed), and the row holds offsets
#: ``id - (pid << 47)`` to that + records - 1. ``ts`` stays the append time (it never
#: decreases within a partition); the records' own timestamps are inside the batch. A
#: producer's batch is stored as it came, so producing costs one row per batch, not per
#: record. ``records`` sits before ``payload`` so that reading it never follows an
#: overflow chain, hence the rebuild instead of ADD COLUMN.
STREAM_BATCHES_V4 = """
DROP VIEW stream_partition_state;
DROP VIEW stream_records_view;
CREATE TABLE stream_records_v4 (
    id        INTEGER PRIMARY KEY,  -- pid << 47 | offset of the row's first record
    ts        REAL    NOT NULL,     -- append time: never decreases within a partition
    cum_bytes INTEGER NOT NULL,     -- bytes appended up to and including this row
    records   INTEGER,              -- NULL: one record; n: payload is a batch of n records
    key       BLOB,
    headers   BLOB,
    payload   BLOB    NOT NULL
);
INSERT INTO stream_records_v4 (id, ts, cum_bytes, key, headers, payload)
SELECT id, ts, cum_bytes, key, headers, payload FROM stream_records;
DROP TABLE stream_records;
ALTER TABLE stream_records_v4 RENAME TO stream_records;
CREATE VIEW stream_partition_state AS
    SELECT p.pid, p.topic_id, p.partition, p.log_start,
           coalesce(r.id - (p.pid << 47) + coalesce(r.records, 1), p.log_start) AS next_offset,
           coalesce(r.ts, p.start_ts) AS last_ts,
           p.start_bytes,
           coalesce(r.cum_bytes, p.start_bytes) AS end_bytes
    FROM stream_partitions p
    LEFT JOIN stream_records r ON r.id = (
        SELECT max(id) FROM stream_records
        WHERE id >= (p.pid << 47) AND id < ((p.pid + 1) << 47));
CREATE VIEW stream_records_view AS
    SELECT t.name AS topic, p.partition, r.id - (p.pid << 47) AS offset, r.records, r.ts,
           r.key, r.headers, r.payload
    FROM stream_records r
    JOIN stream_partitions p ON p.pid = r.id >> 47
    JOIN stream_topics t ON t.id = p.topic_id;
"""

MIGRATIONS: list[str] = [
    QUEUE_TABLES + STREAM_TABLES,
    CLOCK_TABLE,
    QUEUE_TABLE_V3,
    STREAM_BATCHES_V4,
]

SCHEMA_VERSION = len(MIGRATIONS)


def split_statements(script: str) -> list[str]:
    """Split a migration script into statements (on semicolons at line ends)."""
    statements, current = [], []
    for line in script.splitlines():
        current.append(line)
        if line.rstrip().endswith(";"):
            text = "\n".join(current).strip()
            if text.strip(";").strip():
                statements.append(text)
            current = []
    rest = "\n".join(current).strip()
    if rest:
        statements.append(rest)
    return statements
