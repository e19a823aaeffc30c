"""The one seam through which sqlitequeue's own workbench reaches the core's internals.

Not a public API: no stability promise beyond this repository. The workbench
(:mod:`sqlitequeue.bench`) imports the core's private modules only through here, so the
list below is everything it depends on besides ``Queue``, ``Stream`` and the errors:

* :class:`Database` - a connection to a sqlitequeue file with its pragmas, schema and write
  retry (the sqlite-queue backend keeps a side table in the same file; the micro-benchmark's
  raw loops open files the library created);
* :data:`DURABILITY` - durability name -> ``PRAGMA synchronous`` value;
* :data:`WAIT_MIN_SLEEP`, :data:`WAIT_MAX_SLEEP` - the back-off bounds of the change wait,
  so the raw loop waits the way the library does;
* :func:`boottime` - the base of the file clock (``Database.now()`` is ``boottime()`` plus
  the file's offset), so the raw queue loop stores deadlines on the library's clock;
* :data:`QUEUE_SQL`, :data:`QUEUE_SETTLE_INTERVAL` - the queue's statements (from
  :mod:`sqlitequeue._queue_sql`) and how often a busy consumer settles due rows, so the
  micro-benchmark's raw queue loop issues exactly what :class:`sqlitequeue.Queue` issues
  (never a copy that can drift);
* :mod:`stream_log` - the log's SQL (offset layout, topic creation, append and range
  read), :data:`STREAM_ASSIGNMENT_STATE` (a group's offsets as a joining consumer reads
  them) and :data:`STREAM_COMMIT` (the consumer's owner-guarded offset update), so the raw
  stream loop runs the library's statements.
"""

from typing import NamedTuple

from sqlitequeue import _queue_sql, _stream_consumer
from sqlitequeue import _stream_log as stream_log
from sqlitequeue import queue as _queue
from sqlitequeue._clock import boottime
from sqlitequeue._db import DURABILITY, WAIT_MAX_SLEEP, WAIT_MIN_SLEEP, Database


class QueueStatements(NamedTuple):
    """The statements of :mod:`sqlitequeue._queue_sql` that put, claim and ack a message,
    and those a claim runs first at most every ``QUEUE_SETTLE_INTERVAL`` (in this order:
    forget_acked, drop_acked, promote)."""

    insert: str
    forget_acked: str
    drop_acked: str
    promote: str
    claim_one: str
    claim: str
    ack: str
    ack_settled: str
    ack_many: str
    ack_many_top: str


QUEUE_SQL = QueueStatements(
    insert=_queue_sql.INSERT,
    forget_acked=_queue_sql.FORGET_ACKED,
    drop_acked=_queue_sql.DROP_ACKED,
    promote=_queue_sql.PROMOTE,
    claim_one=_queue_sql.CLAIM_ONE,
    claim=_queue_sql.CLAIM,
    ack=_queue_sql.ACK,
    ack_settled=_queue_sql.ACK_SETTLED,
    ack_many=_queue_sql.ACK_MANY,
    ack_many_top=_queue_sql.ACK_MANY_TOP,
)
QUEUE_SETTLE_INTERVAL: float = _queue._SETTLE_INTERVAL
STREAM_ASSIGNMENT_STATE: str = _stream_consumer._ASSIGNMENT_STATE
STREAM_COMMIT: str = _stream_consumer._COMMIT

__all__ = [
    "DURABILITY",
    "QUEUE_SETTLE_INTERVAL",
    "QUEUE_SQL",
    "STREAM_ASSIGNMENT_STATE",
    "STREAM_COMMIT",
    "WAIT_MAX_SLEEP",
    "WAIT_MIN_SLEEP",
    "Database",
    "QueueStatements",
    "boottime",
    "stream_log",
]
