"""What the runner's parent and children share: timings, signals, and the process context.

The parent steers its children only through a :class:`Control` (events and one shared
value), and they answer only through a queue of :mod:`~sqlitequeue.bench.runner.messages`.
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
    from multiprocessing.sharedctypes import Synchronized
    from multiprocessing.synchronize import Event

REPORT_EVERY = 0.25  # seconds between children's stats messages
POLL_RECORDS = 1000
READY_TIMEOUT = 90.0
PRIME_TIMEOUT = 30.0
#: producer index stamped into priming messages (sent before the run; never counted)
PRIME = 0xFFFFFFFF

#: the modules a child process runs; the fork server imports them once, up front
CHILD_MODULES = ["sqlitequeue.bench.runner.producer", "sqlitequeue.bench.runner.consumer"]


@dataclass
class Control:
    """Events and values shared by the parent and its children.

    The parent sets ``prime`` (producers send one priming message), then ``start_at``
    (wall-clock time the schedule starts) and ``go`` (producers start);
    ``consume_go`` lets consumers start counting (late when a backlog is built first);
    ``stop`` ends the producers' schedule and ``consumers_stop`` ends consuming.
    """

    go: Event
    stop: Event
    consume_go: Event
    consumers_stop: Event
    start_at: Synchronized[float]
    prime: Event

    @classmethod
    def create(cls, ctx: BaseContext) -> Control:
        e = ctx.Event
        return cls(e(), e(), e(), e(), ctx.Value(ctypes.c_double, 0.0), e())


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
