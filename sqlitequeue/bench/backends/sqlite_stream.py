"""``sqlite-stream``: :class:`sqlitequeue.Stream`, Kafka's log semantics in one SQLite file.

The natural mapping: a topic is a ``Stream`` topic (with its partitions), a consumer is
``stream.consumer(group, start="earliest")``, ``poll``/``commit``/``close`` are the Stream
consumer's own. Every topic lives in one file, ``<data_dir>/sqlite-stream.db``, as in the
"single SQLite file" the article describes. Producers batch adaptively on a background
thread: everything sent while the previous transaction was committing goes into the next
``append_many`` (one transaction), so batches grow with the load and stay at one record
when idle. A member that dies without closing keeps its partitions until its lease
(``lease_s``) expires; then another member takes them and reads from the committed offset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlitequeue.bench.backends._common import (
    BatchingWriter,
    base_description,
    durability,
    merged_settings,
    sqlite_description,
    sqlitequeue_version,
)
from sqlitequeue.bench.backends.base import (
    Backend,
    BackendSpec,
    Consumer,
    DeliveryCallback,
    Producer,
    Received,
)
from sqlitequeue.bench.errors import BackendError
from sqlitequeue.errors import InvalidArgument, NotPartitionOwner, QueueError
from sqlitequeue.internals import Database
from sqlitequeue.stream import Stream

DEFAULTS: dict[str, Any] = {
    "synchronous": "NORMAL",
    "max_batch": 1000,
    "max_buffered": 100_000,
    "lease_s": 10.0,
    "max_payload_size": 4 * 1024 * 1024,
}


class SqliteStreamBackend(Backend):
    """Topics, producers and consumer groups on :class:`sqlitequeue.Stream`."""

    name = "sqlite-stream"

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self.settings = merged_settings(self.name, DEFAULTS, spec.settings)
        self.durability = durability(self.name, self.settings["synchronous"])
        self.path = Path(spec.data_dir) / "sqlite-stream.db"

    def open(self, topic: str, partitions: int | None = None) -> Stream:
        """Open ``topic`` in the backend's file (created with ``partitions`` if missing)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return Stream(
                self.path,
                topic,
                partitions=partitions,
                durability=self.durability,
                max_payload_size=int(self.settings["max_payload_size"]),
            )
        except QueueError as exc:
            raise BackendError(f"sqlite-stream: cannot open topic {topic!r}: {exc}") from exc

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        """Create ``topic`` with ``partitions``; a no-op if it exists (whatever its count)."""
        try:
            Stream(self.path, topic, create=False).close()
            return
        except InvalidArgument:
            pass  # missing: create it below
        except QueueError as exc:
            raise BackendError(f"sqlite-stream: cannot open {self.path}: {exc}") from exc
        self.open(topic, partitions).close()

    def producer(self, topic: str) -> Producer:
        """Return a producer appending to ``topic`` in adaptive batches."""
        return StreamProducer(self.open(topic), self.settings)

    def consumer(self, topic: str, group: str) -> Consumer:
        """Return a new member of ``group`` reading ``topic`` from the committed offsets."""
        stream = self.open(topic)
        try:
            member = stream.consumer(group, start="earliest", lease=float(self.settings["lease_s"]))
        except QueueError as exc:
            stream.close()
            raise BackendError(f"sqlite-stream: cannot join group {group!r}: {exc}") from exc
        return StreamConsumer(stream, member)

    def describe(self) -> dict[str, Any]:
        """Return settings, versions and the effective durability pragmas."""
        info = base_description(self.name, self.spec.profile, self.settings)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = Database(self.path, durability=self.durability)
        try:
            with db.read() as conn:
                info.update(sqlite_description(conn))  # read back from a real connection
        finally:
            db.close()
        info.update(sqlitequeue=sqlitequeue_version(), file=str(self.path))
        return info


class StreamProducer(Producer):
    """Appends through ``Stream.append_many`` on a background thread."""

    def __init__(self, stream: Stream, settings: dict[str, Any]) -> None:
        self._stream = stream
        self._writer = BatchingWriter(
            self._write,
            max_batch=int(settings["max_batch"]),
            max_buffered=int(settings["max_buffered"]),
            name="sqlite-stream-producer",
        )
        self._closed = False

    def _write(self, records: list[tuple[bytes | None, bytes]]) -> None:
        self._stream.append_many(
            [payload for _, payload in records], keys=[key for key, _ in records]
        )

    def send(
        self, key: bytes | None, payload: bytes, on_delivery: DeliveryCallback | None = None
    ) -> None:
        """Buffer one record; delivery is reported once its batch is committed."""
        self._writer.send(key, payload, on_delivery)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every record sent so far is committed; BackendError on timeout."""
        self._writer.flush(timeout)

    def close(self) -> None:
        """Flush, stop the writer thread and close the stream; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.close()
        finally:
            self._stream.close()


class StreamConsumer(Consumer):
    """A Stream consumer-group member."""

    def __init__(self, stream: Stream, member: Any) -> None:
        self._stream = stream
        self._member = member
        self._closed = False

    def poll(self, max_records: int, timeout: float) -> list[Received]:
        """Return up to ``max_records`` records from the partitions this member owns."""
        if self._closed:
            raise BackendError("poll() after the consumer was closed")
        try:
            records = self._member.poll(max_records=max_records, timeout=timeout)
        except QueueError as exc:
            raise BackendError(f"sqlite-stream poll failed: {exc}") from exc
        return [
            Received(key=r.key, payload=r.payload, partition=r.partition, offset=r.offset)
            for r in records
        ]

    def commit(self) -> None:
        """Commit the position after everything polled (see Consumer.commit)."""
        if self._closed:
            raise BackendError("commit() after the consumer was closed")
        try:
            self._member.commit()
        except NotPartitionOwner:
            self.lost_commits += 1  # the partition moved: its new owner reads them again
        except QueueError as exc:
            raise BackendError(f"sqlite-stream commit failed: {exc}") from exc

    def close(self) -> None:
        """Leave the group without committing; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._member.close()
        finally:
            self._stream.close()
