"""What the runner's parent and children share: timings, signals, and the process context.

The parent steers its children only through a :class:`Control` (events and shared values),
and they answer only through a queue of :mod:`~sqlitequeue.bench.runner.messages`. In a
max-rate search the parent also publishes each step to the producers as a :class:`Segment`.
Children run under the ``forkserver`` start method, with the child modules preloaded, so
each starts from a clean interpreter without re-importing the workbench.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.context import BaseContext, ForkServerContext
from typing import TYPE_CHECKING

from sqlitequeue.bench.backends import base
from sqlitequeue.bench.backends.base import BackendSpec, open_backend
from sqlitequeue.bench.runner.messages import Failed, Message, Role

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
    from multiprocessing.synchronize import Event

REPORT_EVERY = 0.1  # seconds between children's stats messages
#: a producer that is ahead of its schedule sleeps at least this long (s): it then sends
#: what fell due meanwhile in one go. Latency still counts from each message's schedule.
SEND_TICK = 0.0005
#: while behind its schedule, a producer reads the clock (and checks the stop signal and its
#: report timer) every this many sends
CLOCK_EVERY = 64
#: seconds between a producer's looks for the next step of a max-rate search
SEGMENT_POLL = 0.002
POLL_RECORDS = 1000
READY_TIMEOUT = 90.0
PRIME_TIMEOUT = 30.0
#: producer index stamped into priming messages (sent before the run; never counted)
PRIME = 0xFFFFFFFF

#: the modules a child process runs; the fork server imports them once, up front
CHILD_MODULES = ["sqlitequeue.bench.runner.producer", "sqlitequeue.bench.runner.consumer"]


@dataclass(frozen=True)
class Segment:
    """A stretch of a max-rate search's schedule: ``rate`` msg/s (as ``producerRate``) from
    ``start`` to ``end`` seconds after the run's start. Numbers rise by one per segment."""

    number: int
    rate: float
    start: float
    end: float


@dataclass
class Control:
    """Events and values shared by the parent and its children.

    The parent sets ``prime`` (producers send one priming message), then ``start_at``
    (wall-clock time the schedule starts) and ``go`` (producers start);
    ``consume_go`` lets consumers start counting (late when a backlog is built first);
    ``stop`` ends the producers' schedule and ``consumers_stop`` ends consuming;
    ``segment`` holds the latest :class:`Segment` of a max-rate search.
    """

    go: Event
    stop: Event
    consume_go: Event
    consumers_stop: Event
    start_at: Synchronized[float]
    prime: Event
    segment: SynchronizedArray[float]

    @classmethod
    def create(cls, ctx: BaseContext) -> Control:
        e = ctx.Event
        segment = ctx.Array(ctypes.c_double, [-1.0, 0.0, 0.0, 0.0])
        return cls(e(), e(), e(), e(), ctx.Value(ctypes.c_double, 0.0), e(), segment)

    def publish(self, segment: Segment) -> None:
        """Make ``segment`` the producers' next stretch of schedule (parent only)."""
        with self.segment.get_lock():
            self.segment[:] = [segment.number, segment.rate, segment.start, segment.end]

    def segment_after(self, number: int) -> Segment | None:
        """The latest segment if it comes after segment ``number``; None until then."""
        with self.segment.get_lock():
            latest, rate, start, end = self.segment[:]
        if latest <= number:
            return None
        return Segment(int(latest), rate, start, end)


def context() -> ForkServerContext:
    """The multiprocessing context children are started in (forkserver, preloaded)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(CHILD_MODULES)
    return ctx


def open_child_backend(spec: BackendSpec, registry: Mapping[str, str]) -> base.Backend:
    """Open ``spec`` in a child, with the parent's backend ``registry``."""
    base.BACKENDS.update(registry)  # backends registered at run time (tests) travel along
    return open_backend(spec)


@contextmanager
def reporting_failure(out: Queue[Message], role: Role) -> Iterator[None]:
    """Send :class:`Failed` with the traceback when the block raises (anything at all)."""
    try:
        yield
    except BaseException:
        out.put(Failed(role, traceback.format_exc()))
