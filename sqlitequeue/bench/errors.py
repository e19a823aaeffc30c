"""The workbench's errors: each a :class:`sqlitequeue.QueueError`, so one ``except`` catches all.

The tree (under :class:`~sqlitequeue.errors.QueueError`)::

    BenchError                  the workbench (sqlitequeue.bench)
    ├── WorkloadError           a bad workload file (names the field)
    ├── ProfileError            a bad team profile for `decide` (names the field)
    ├── BackendError            a backend failed or is unknown
    ├── KafkaError              a broker could not be started or reached
    └── LitestreamError         the litestream binary failed or is missing
"""

from __future__ import annotations

from sqlitequeue.errors import QueueError


class BenchError(QueueError):
    """A workbench failure (sqlitequeue.bench)."""


class WorkloadError(BenchError):
    """A workload file is missing, malformed, or has a bad field."""


class ProfileError(BenchError):
    """A team profile (``sqlitequeue decide``) is missing, malformed, or has a bad field."""


class BackendError(BenchError):
    """A backend is unknown, misconfigured, or failed."""


class KafkaError(BenchError):
    """A Kafka broker could not be started, reached, or used."""


class LitestreamError(BenchError):
    """The litestream binary is missing, too old, or failed."""
