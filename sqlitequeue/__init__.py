"""sqlitequeue: a work queue and a Kafka-style log in one SQLite file.

``from sqlitequeue import Queue, Stream``. The core imports only the standard library;
the workbench that compares it with Kafka lives in :mod:`sqlitequeue.bench` (extras).
"""

from sqlitequeue._worker import Delivery
from sqlitequeue.errors import (
    Closed,
    CorruptDatabase,
    DatabaseBusy,
    DatabaseError,
    InvalidArgument,
    LeaseLost,
    NotAQueueDatabase,
    NotPartitionOwner,
    OffsetOutOfRange,
    PayloadTooLarge,
    QueueError,
    ReadOnlyDatabase,
    SchemaTooNew,
    StreamError,
)
from sqlitequeue.queue import Message, Queue, QueueStats
from sqlitequeue.stream import Consumer, Offset, Record, Retention, Stream

__version__ = "0.1.0"

__all__ = [
    "Closed",
    "Consumer",
    "CorruptDatabase",
    "DatabaseBusy",
    "DatabaseError",
    "Delivery",
    "InvalidArgument",
    "LeaseLost",
    "Message",
    "NotAQueueDatabase",
    "NotPartitionOwner",
    "Offset",
    "OffsetOutOfRange",
    "PayloadTooLarge",
    "Queue",
    "QueueError",
    "QueueStats",
    "ReadOnlyDatabase",
    "Record",
    "Retention",
    "SchemaTooNew",
    "Stream",
    "StreamError",
    "__version__",
]
