"""Small pieces shared by the backends: settings checks, Kafka addresses, a batching writer."""

from __future__ import annotations

import os
import platform
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlitequeue.bench.backends.base import Delivery, DeliveryCallback
from sqlitequeue.bench.errors import BackendError

#: Environment variable naming an external Kafka cluster.
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"


def merged_settings(
    backend: str, defaults: Mapping[str, Any], given: Mapping[str, Any]
) -> dict[str, Any]:
    """Return ``defaults`` updated with ``given``.

    Raises BackendError naming the unknown keys (and the known ones) when ``given`` has a
    key the backend does not understand, so a typo in a profile never goes unnoticed.
    """
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise BackendError(
            f"backend {backend!r} does not understand setting(s) {', '.join(unknown)}; "
            f"known settings: {', '.join(sorted(defaults))}"
        )
    settings = dict(defaults)
    settings.update(given)
    return settings


def bootstrap_servers(backend: str, given: str | None) -> str:
    """Return the Kafka bootstrap servers from the spec, else from KAFKA_BOOTSTRAP_SERVERS.

    Raises BackendError saying how to provide them when neither is set.
    """
    servers = given or os.environ.get(BOOTSTRAP_ENV)
    if not servers:
        raise BackendError(
            f"backend {backend!r} needs a Kafka broker: pass bootstrap servers "
            f"(BackendSpec.bootstrap_servers) or set {BOOTSTRAP_ENV}=host:port; "
            "`sqlitequeue kafka start` starts a local one"
        )
    return servers


def base_description(name: str, profile: str | None, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return the fields every ``describe()`` reports: backend, profile, settings, Python."""
    return {
        "backend": name,
        "profile": profile,
        "settings": dict(settings),
        "python": platform.python_version(),
    }


def sqlite_description(conn: sqlite3.Connection) -> dict[str, Any]:
    """Return the SQLite library version and the connection's effective durability pragmas."""
    synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    return {
        "sqlite_version": sqlite3.sqlite_version,
        "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(synchronous, synchronous),
        "journal_mode": journal,
    }


def safe_name(text: str) -> str:
    """Return ``text`` made safe for a file name (topic and group names are user input)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "_"


class BatchingWriter:
    """Adaptive batching on a background thread (group commit without a linger timer).

    ``send`` only appends to a buffer; the writer thread takes everything buffered (up to
    ``max_batch``), hands it to ``write_batch`` in one call (one transaction), then reports
    each record's delivery. At low rates every batch has one record (lowest latency); under
    load batches grow by themselves. ``send`` blocks while ``max_buffered`` records wait.
    Delivery callbacks run on the writer thread.
    """

    def __init__(
        self,
        write_batch: Callable[[list[tuple[bytes | None, bytes]]], None],
        *,
        max_batch: int,
        max_buffered: int,
        name: str,
    ) -> None:
        self._write_batch = write_batch
        self._max_batch = max(1, int(max_batch))
        self._max_buffered = max(self._max_batch, int(max_buffered))
        self._buffer: list[tuple[bytes | None, bytes, DeliveryCallback | None]] = []
        self._in_flight = 0
        self._cond = threading.Condition()
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def send(self, key: bytes | None, payload: bytes, on_delivery: DeliveryCallback | None) -> None:
        """Buffer one record; block while the buffer is full; raise BackendError if closed."""
        with self._cond:
            while len(self._buffer) >= self._max_buffered and not self._closing:
                self._cond.wait(0.1)
            if self._closing:
                raise BackendError("send() after the producer was closed")
            self._buffer.append((key, payload, on_delivery))
            self._cond.notify_all()

    def flush(self, timeout: float) -> None:
        """Wait until every buffered record was written; raise BackendError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._buffer or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BackendError(
                        f"flush timed out after {timeout} s with "
                        f"{len(self._buffer) + self._in_flight} record(s) unconfirmed"
                    )
                self._cond.wait(min(remaining, 0.1))

    def close(self, timeout: float = 30.0) -> None:
        """Flush what is buffered, then stop the writer thread; safe to call twice."""
        if self._closing:
            return
        try:
            self.flush(timeout)
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join(timeout)

    def _take(self) -> list[tuple[bytes | None, bytes, DeliveryCallback | None]] | None:
        with self._cond:
            while not self._buffer and not self._closing:
                self._cond.wait()
            if not self._buffer:
                return None
            batch = self._buffer[: self._max_batch]
            del self._buffer[: self._max_batch]
            self._in_flight = len(batch)
            self._cond.notify_all()
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            error: str | None = None
            try:
                self._write_batch([(key, payload) for key, payload, _ in batch])
            except Exception as exc:  # reported per record, like Kafka's delivery errors
                error = f"{type(exc).__name__}: {exc}"
            delivery = Delivery(ok=error is None, published_at=time.time(), error=error)
            try:
                for _, _, callback in batch:
                    if callback is not None:
                        callback(delivery)
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()


def durability(backend: str, synchronous: object) -> str:
    """Map a profile's ``synchronous`` (OFF/NORMAL/FULL) to sqlitequeue's ``durability``.

    Raises BackendError for any other value.
    """
    value = str(synchronous).lower()
    if value not in ("off", "normal", "full"):
        raise BackendError(
            f"backend {backend!r}: synchronous must be OFF, NORMAL or FULL, not {synchronous!r}"
        )
    return value


def sqlitequeue_version() -> str:
    """Return the installed sqlitequeue version ("unknown" when not installed)."""
    import importlib.metadata

    try:
        return importlib.metadata.version("sqlitequeue")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
