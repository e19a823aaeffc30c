"""Waking long-polling fetches when records arrive.

An append by this server wakes waiting fetches at once (:meth:`Changes.notify`). Records
appended by another process (``Stream.append``) are noticed by one watcher task that polls
``PRAGMA data_version`` while any fetch waits: every 2 ms after a change, backing off to
every 50 ms when idle, so idle consumers cost little CPU however many there are.
"""

from __future__ import annotations

import asyncio

from sqlitequeue.gateway.storage import Log

FIRST_PAUSE = 0.002
MAX_PAUSE = 0.05


class Changes:
    """Change notification for the fetches of one server. Use from the event loop only."""

    def __init__(self, log: Log) -> None:
        self.log = log
        #: Set (and replaced) on every change: take it before reading, then wait on it.
        self.event = asyncio.Event()
        self._waiting = 0
        self._watcher: asyncio.Task[None] | None = None

    def token(self) -> tuple[int, int]:
        """A value that differs once anyone committed to the file (take it before reading)."""
        return self.log.change_token()

    def notify(self) -> None:
        """Wake every waiting fetch."""
        self.event.set()
        self.event = asyncio.Event()

    async def wait(self, event: asyncio.Event, token: tuple[int, int], timeout: float) -> None:
        """Return once ``event`` is set, the file changed since ``token``, or ``timeout``
        seconds passed (``event`` and ``token`` taken before the caller last read)."""
        if self.token() != token:
            return
        self._waiting += 1
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(token))
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiting -= 1

    async def _watch(self, token: tuple[int, int]) -> None:
        pause = FIRST_PAUSE
        while self._waiting:
            await asyncio.sleep(pause)
            now = self.token()
            if now != token:
                token, pause = now, FIRST_PAUSE
                self.notify()
            else:
                pause = min(pause * 2, MAX_PAUSE)
