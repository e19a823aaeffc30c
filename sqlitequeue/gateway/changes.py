"""Waking long-polling fetches when records arrive.

An append by this server wakes waiting fetches at once (:meth:`Changes.notify`). Records
appended by another process (``Stream.append``) are noticed by one watcher task that polls
``PRAGMA data_version`` while any fetch waits: every 2 ms after a change, backing off to
every 50 ms when idle, so idle consumers cost little CPU however many there are.

The watcher compares the file with what each waiting fetch saw when it last read (its
:class:`Mark`), not with what the watcher saw last: this server's own commits (which
``data_version`` counts too, as they are made on the writer's connections) have woken the
fetches already, and a fetch that read after them is not woken again for nothing.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from sqlitequeue.gateway.storage import Log

FIRST_PAUSE = 0.002
MAX_PAUSE = 0.05


class Mark(NamedTuple):
    """What a fetch saw before it read: the wake-ups so far and the file's change token."""

    notified: int
    token: tuple[int, int]


class Changes:
    """Change notification for the fetches of one server. Use from the event loop only."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self._notified = 0  # notify() calls so far
        self._waiters: dict[asyncio.Future[None], tuple[int, int]] = {}  # -> its token
        self._watcher: asyncio.Task[None] | None = None

    def token(self) -> tuple[int, int]:
        """A value that differs once anyone committed to the file."""
        return self.log.change_token()

    def mark(self) -> Mark:
        """Take before reading; pass to :meth:`wait` if what was read is not enough."""
        return Mark(self._notified, self.token())

    def notify(self) -> None:
        """Wake every waiting fetch."""
        self._notified += 1
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, mark: Mark, timeout: float) -> None:
        """Return once :meth:`notify` is called, the file changed since ``mark``, or
        ``timeout`` seconds passed (``mark`` taken before the caller last read)."""
        if mark.notified != self._notified:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters[waiter] = mark.token
        expiry = loop.call_later(timeout, _release, waiter)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch())
        try:
            await waiter
        finally:
            expiry.cancel()
            self._waiters.pop(waiter, None)

    async def _watch(self) -> None:
        pause = FIRST_PAUSE
        while self._waiters:
            await asyncio.sleep(pause)
            if not self._waiters:
                return
            now = self.token()
            if any(token != now for token in self._waiters.values()):
                pause = FIRST_PAUSE
                self.notify()
            else:
                pause = min(pause * 2, MAX_PAUSE)


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
