"""``ours``: :class:`sqlitequeue.Queue` and :class:`sqlitequeue.Stream` through their public API.

A flush of one record is ``put`` / ``append``, of more ``put_many`` / ``append_many``; a
queue's ``poll`` is ``get_many`` and its ``commit`` is ``ack`` (one message) or
``ack_many``; a stream's ``poll`` and ``commit`` are its consumer's, from the earliest
offset. A queue has one consumer group: every consumer of a topic competes for its
messages whatever group it names (``fan_out`` is False). The queue or stream of a topic is
opened once per process and shared by its producers and consumers.
"""

from __future__ import annotations

from sqlitequeue.bench.backends.base import Consumer, Producer, Received
from sqlitequeue.bench.microbench.subject import BufferedProducer, TopicSubject
from sqlitequeue.errors import LeaseLost
from sqlitequeue.queue import Message, Queue
from sqlitequeue.stream import Stream


class OursQueue(TopicSubject[Queue]):
    """:class:`sqlitequeue.Queue` (one queue per topic, in one file)."""

    name = "sqlitequeue-queue"
    key = "ours"
    title = "sqlitequeue"
    fan_out = False

    def open_topic(self, topic: str) -> Queue:
        return Queue(self.path, topic, durability=self.durability)

    def producer(self, topic: str) -> Producer:
        queue = self.opened(topic)
        return BufferedProducer(queue.put, queue.put_many)

    def consumer(self, topic: str, group: str) -> Consumer:
        return _QueueConsumer(self.opened(topic))


class _QueueConsumer(Consumer):
    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        self._pending: list[Message] = []

    def poll(self, max_records: int, timeout: float) -> list[Received]:
        """``get_many(max_records, timeout)``; the messages stay leased until commit."""
        messages = self._queue.get_many(max_records, timeout=timeout)
        self._pending += messages
        return [Received(None, m.payload, 0, m.id) for m in messages]

    def commit(self) -> None:
        """``ack`` the one message polled, or ``ack_many`` them all."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        try:
            if len(pending) == 1:
                self._queue.ack(pending[0])
            else:
                self._queue.ack_many(pending)
        except LeaseLost:
            self.lost_commits += 1


class OursStream(TopicSubject[Stream]):
    """:class:`sqlitequeue.Stream` (one partition per topic)."""

    name = "sqlitequeue-stream"
    key = "ours"
    title = "sqlitequeue"

    def open_topic(self, topic: str) -> Stream:
        return Stream(self.path, topic, partitions=1, durability=self.durability)

    def producer(self, topic: str) -> Producer:
        stream = self.opened(topic)
        return BufferedProducer(stream.append, stream.append_many)

    def consumer(self, topic: str, group: str) -> Consumer:
        return _StreamConsumer(self.opened(topic), group)


class _StreamConsumer(Consumer):
    def __init__(self, stream: Stream, group: str) -> None:
        self._reader = stream.consumer(group, start="earliest")
        self._uncommitted = False

    def poll(self, max_records: int, timeout: float) -> list[Received]:
        records = self._reader.poll(max_records=max_records, timeout=timeout)
        if records:
            self._uncommitted = True
        return [Received(None, r.payload, r.partition, r.offset) for r in records]

    def commit(self) -> None:
        """The consumer's commit, when something was polled since the last one."""
        if self._uncommitted:
            self._uncommitted = False
            self._reader.commit()

    def close(self) -> None:
        self._reader.close()
