"""Producer ids and idempotent produce: a retried batch is stored once.

:meth:`Producers.new_id` hands out producer ids that never repeat, across restarts too
(microseconds of the wall clock, kept increasing). For each (partition, producer) the
last five batches' sequence ranges and offsets are kept, as Kafka does: a batch equal to
one of them is a retry, answered with its first offset and not stored again; a batch
whose first sequence does not follow the last one (stored, or accepted and still being
committed) is refused with OUT_OF_ORDER_SEQUENCE_NUMBER. After a restart the state of a
partition is rebuilt from its newest stored batches (their headers hold producer id,
epoch and sequence), so a retry that crosses a restart is still recognised.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlitequeue._stream_batch import HEADER
from sqlitequeue.gateway.batches import Batch
from sqlitequeue.gateway.wire import ErrorCode

#: Batches remembered per producer and partition (Kafka's max.in.flight limit is 5).
REMEMBERED = 5
SEQUENCE_MOD = 1 << 31


@dataclass
class _State:
    epoch: int
    batches: deque[tuple[int, int, int]] = field(default_factory=lambda: deque(maxlen=REMEMBERED))
    # each: (first sequence, last sequence, base offset)


def _last_sequence(batch: Batch) -> int:
    return (batch.base_sequence + batch.count - 1) % SEQUENCE_MOD


class Producers:
    """Idempotence state of every partition the server wrote to since it started."""

    def __init__(self, recent: Callable[[int], list[tuple[int, bytes]]]) -> None:
        self._recent = recent  # pid -> newest stored batches (see Log.recent_batches)
        self._states: dict[tuple[int, int], _State] = {}
        self._loaded: set[int] = set()
        # (pid, producer id) -> the sequence ranges (first, last) of its batches accepted
        # and not yet settled, in the order accepted. One entry per batch, so settling a
        # batch after its partition was forgotten (and its successors accepted again from
        # the file) cannot take a later batch out of flight.
        self._in_flight: dict[tuple[int, int], deque[tuple[int, int]]] = {}
        self._last_id = 0

    def new_id(self) -> int:
        """A producer id no producer of this file had before."""
        self._last_id = max(self._last_id + 1, time.time_ns() // 1000)
        return self._last_id

    def _load(self, pid: int) -> None:
        if pid in self._loaded:
            return
        self._loaded.add(pid)
        for base, head in reversed(self._recent(pid)):
            fields = HEADER.unpack_from(head)
            producer, epoch, first, count = fields[9], fields[10], fields[11], fields[12]
            if producer < 0 or first < 0:
                continue
            state = self._states.setdefault((pid, producer), _State(epoch))
            state.epoch = epoch
            state.batches.append((first, (first + count - 1) % SEQUENCE_MOD, base))

    def check(self, pid: int, batch: Batch) -> tuple[int, int | None]:
        """Before storing: (error code, offset of the stored original if a retry).

        A batch accepted here (no error, not a retry) is in flight until :meth:`stored`
        or :meth:`forget`: the next batch of its producer must follow it, so requests a
        client pipelined can be checked while earlier ones are still being committed.
        """
        if batch.producer_id < 0 or batch.base_sequence < 0:
            return ErrorCode.NONE, None
        key = (pid, batch.producer_id)
        flying = self._in_flight.get(key)
        if flying:
            if batch.base_sequence != (flying[-1][1] + 1) % SEQUENCE_MOD:
                code, original = self._check_stored(pid, batch)  # a retry of a stored one?
                if original is not None:
                    return code, original
                return ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, None
            flying.append((batch.base_sequence, _last_sequence(batch)))
            return ErrorCode.NONE, None
        code, original = self._check_stored(pid, batch)
        if code == ErrorCode.NONE and original is None:
            self._in_flight[key] = deque([(batch.base_sequence, _last_sequence(batch))])
        return code, original

    def failed(self, pid: int, batch: Batch) -> None:
        """After a failed write: ``batch`` is no longer in flight (nothing of it was
        stored, so a resend of it is checked against what is stored)."""
        self._settled(pid, batch)

    def _settled(self, pid: int, batch: Batch) -> None:
        """Take ``batch`` out of its producer's batches in flight, if it is there."""
        key = (pid, batch.producer_id)
        flying = self._in_flight.get(key)
        if flying is None:
            return
        with contextlib.suppress(ValueError):  # forgotten meanwhile (see forget_partitions)
            flying.remove((batch.base_sequence, _last_sequence(batch)))
        if not flying:
            del self._in_flight[key]

    def forget(self, pid: int) -> None:
        """Drop what is known of a partition, batches in flight included (reloaded from
        the file on next use): after a failed write."""
        self._loaded.discard(pid)
        for key in [k for k in self._states if k[0] == pid]:
            del self._states[key]
        for key in [k for k in self._in_flight if k[0] == pid]:
            del self._in_flight[key]

    def forget_partitions(self, pids: set[int]) -> None:
        """:meth:`forget` each of ``pids``: their appends failed (the writer calls this as
        they fail, so no batch of theirs is accepted as following a failed one)."""
        for pid in pids:
            self.forget(pid)

    def _check_stored(self, pid: int, batch: Batch) -> tuple[int, int | None]:
        self._load(pid)
        state = self._states.get((pid, batch.producer_id))
        if state is None or batch.producer_epoch > state.epoch:
            ok = batch.base_sequence == 0
            return (ErrorCode.NONE if ok else ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER), None
        if batch.producer_epoch < state.epoch:
            return ErrorCode.INVALID_PRODUCER_EPOCH, None
        last = _last_sequence(batch)
        for first, stored_last, offset in state.batches:
            if first == batch.base_sequence and stored_last == last:
                return ErrorCode.NONE, offset
        expected = (state.batches[-1][1] + 1) % SEQUENCE_MOD if state.batches else 0
        if batch.base_sequence != expected:
            return ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, None
        return ErrorCode.NONE, None

    def stored(self, pid: int, batch: Batch, offset: int) -> None:
        """After the commit: remember the batch for retries."""
        if batch.producer_id < 0 or batch.base_sequence < 0:
            return
        self._settled(pid, batch)
        key = (pid, batch.producer_id)
        state = self._states.get(key)
        if state is None or batch.producer_epoch != state.epoch:
            state = self._states[key] = _State(batch.producer_epoch)
        entry = (batch.base_sequence, _last_sequence(batch), offset)
        if entry in state.batches:  # reloaded from the file after a forget
            return
        if state.batches and offset < state.batches[-1][2]:
            # Settled after a later batch of its producer (one committed on the event
            # loop's thread can be answered before an earlier one's task ran): keep the
            # batches in offset order, which is their sequence order.
            ordered = sorted([*state.batches, entry], key=lambda found: found[2])
            state.batches.clear()
            state.batches.extend(ordered[-REMEMBERED:])
        else:
            state.batches.append(entry)
