"""One exception tree for the whole package.

Every error the package raises on purpose derives from :class:`QueueError`, so
``except sqlitequeue.QueueError`` catches them all. Messages say what happened
and what to do about it. The tree::

    QueueError
    ├── InvalidArgument (also ValueError)   a bad argument: negative timeout, unknown partition ...
    ├── PayloadTooLarge                     a payload over the configured maximum size
    ├── Closed                              use of a Queue/Stream/Consumer after close()
    ├── LeaseLost                           ack/extend/nack of a message whose lease moved on
    ├── DatabaseError                       the file itself
    │   ├── NotAQueueDatabase               a file that is not a sqlitequeue database
    │   ├── CorruptDatabase                 a damaged SQLite file
    │   ├── SchemaTooNew                    written by a newer sqlitequeue
    │   ├── ReadOnlyDatabase                no write access to the file or its directory
    │   └── DatabaseBusy                    the write lock could not be had in time
    ├── StreamError
    │   ├── NotPartitionOwner               commit for a partition this member no longer owns
    │   └── OffsetOutOfRange                a seek before the earliest or after the end offset
    └── BenchError                          the workbench: see :mod:`sqlitequeue.bench.errors`

Payloads that are not bytes-like raise the built-in ``TypeError``, as Python does.
"""

from __future__ import annotations


class QueueError(Exception):
    """Base of every error raised on purpose by sqlitequeue."""


class InvalidArgument(QueueError, ValueError):
    """An argument has a value the call cannot accept."""


class PayloadTooLarge(QueueError):
    """A payload is larger than the queue's or stream's ``max_payload_size``."""


class Closed(QueueError):
    """The object was used after ``close()``."""


class LeaseLost(QueueError):
    """The message's lease expired and the message was claimed again (or acked) elsewhere."""


class DatabaseError(QueueError):
    """A problem with the database file itself."""


class NotAQueueDatabase(DatabaseError):
    """The file exists but is not a sqlitequeue database."""


class CorruptDatabase(DatabaseError):
    """The file looks like SQLite but cannot be read."""


class SchemaTooNew(DatabaseError):
    """The file was written by a newer version of sqlitequeue."""


class ReadOnlyDatabase(DatabaseError):
    """The file, or the directory that must hold its -wal and -shm files, is not writable."""


class DatabaseBusy(DatabaseError):
    """The write lock could not be acquired within the lock timeout."""


class StreamError(QueueError):
    """A stream or consumer-group operation failed."""


class NotPartitionOwner(StreamError):
    """A consumer tried to commit or read a partition that it no longer owns."""


class OffsetOutOfRange(StreamError, InvalidArgument):
    """An offset lies outside the partition's retained range."""
