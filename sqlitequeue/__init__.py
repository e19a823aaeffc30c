"""sqlitequeue: a work queue and a Kafka-style log in one SQLite file.

``from sqlitequeue import Queue, Stream``. The core imports only the standard library;
the workbench that compares it with Kafka lives in :mod:`sqlitequeue.bench` (extras).
"""

from sqlitequeue.errors import (
    BackendError,
    BenchError,
    Closed,
    CorruptDatabase,
    DatabaseBusy,
    DatabaseError,
    InvalidArgument,
    KafkaError,
    LeaseLost,
    LitestreamError,
    NotAQueueDatabase,
    NotPartitionOwner,
    OffsetOutOfRange,
    PayloadTooLarge,
    ProfileError,
    QueueError,
    ReadOnlyDatabase,
    SchemaTooNew,
    StreamError,
    WorkloadError,
)
from sqlitequeue.queue import Message, Queue, QueueStats
from sqlitequeue.stream import Consumer, Offset, Record, Retention, Stream

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "BenchError",
    "Closed",
    "Consumer",
    "CorruptDatabase",
    "DatabaseBusy",
    "DatabaseError",
    "InvalidArgument",
    "KafkaError",
    "LeaseLost",
    "LitestreamError",
    "Message",
    "NotAQueueDatabase",
    "NotPartitionOwner",
    "Offset",
    "OffsetOutOfRange",
    "PayloadTooLarge",
    "ProfileError",
    "Queue",
    "QueueError",
    "QueueStats",
    "ReadOnlyDatabase",
    "Record",
    "Retention",
    "SchemaTooNew",
    "Stream",
    "StreamError",
    "WorkloadError",
    "__version__",
]
