"""The server: an asyncio TCP listener that answers Kafka requests from one file.

One event loop serves every connection; each connection's requests are answered one at a
time, in order (as a Kafka broker does). Reads and writes of the file are short
transactions on the loop's thread; waiting (long-poll fetches, group rebalances) never
blocks the loop, so a slow or stalled client holds up only its own connection.

Safety: a frame over ``max_request_bytes`` (Kafka's ``socket.request.max.bytes``), a
malformed frame, or an unsupported API closes that connection only, is logged, and
writes nothing. :meth:`Server.close` (and SIGTERM or Ctrl-C under ``sqlitequeue serve``)
stops accepting, lets in-flight requests finish, and closes the file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from sqlitequeue.errors import QueueError
from sqlitequeue.gateway.changes import Changes
from sqlitequeue.gateway.context import Context
from sqlitequeue.gateway.dispatch import dispatch
from sqlitequeue.gateway.handlers import accept_produce
from sqlitequeue.gateway.producers import Producers
from sqlitequeue.gateway.storage import Log
from sqlitequeue.gateway.wire import (
    FrameError,
    Request,
    api_versions_error,
    decode_request,
    encode_response,
    peek,
)
from sqlitequeue.gateway.writer import Writer

logger = logging.getLogger("sqlitequeue.gateway")

#: Kafka's socket.request.max.bytes default (100 MiB).
MAX_REQUEST_BYTES = 104857600
#: How long close() lets in-flight requests finish before cancelling them (seconds).
DRAIN_SECONDS = 5.0
API_VERSIONS = 18
PRODUCE = 0
#: Requests read ahead of the one being answered, per connection (Kafka clients pipeline
#: up to 5 by default).
IN_FLIGHT = 16
#: How often the server applies the topics' retention (seconds).
RETENTION_INTERVAL = 5.0


def cluster_id_for(path: Path) -> str:
    """A stable Kafka cluster id for a file (22 base64url characters, like Kafka's)."""
    digest = hashlib.sha256(str(path.resolve()).encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def parse_address(address: str) -> tuple[str, int]:
    """``"HOST:PORT"`` as (host, port); raises QueueError naming the expected form."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise QueueError(
            f"cannot advertise {address!r}: give HOST:PORT, for example 127.0.0.1:19092"
        )
    return host, int(port)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Server:
    """Serve the file at ``path`` over Kafka's wire protocol on ``host``:``port``.

    ``port=0`` picks a free port (see :attr:`bootstrap`). ``auto_create`` creates topics
    on first use, with ``partitions`` partitions. ``advertise`` (``"HOST:PORT"``) is the
    address Metadata gives clients, for a server behind a proxy; by default the bound one.
    Use :meth:`start` and :meth:`close`, or ``with Server(...) as server:``; :meth:`run`
    serves in the calling thread until :meth:`close` (the CLI). Raises QueueError if the
    file cannot be opened, the address cannot be bound or ``advertise`` is malformed.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 9092,
        auto_create: bool = True,
        partitions: int = 1,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        advertise: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.advertise = parse_address(advertise) if advertise is not None else None
        self.host = host
        self.port = port
        self.auto_create = auto_create
        self.partitions = partitions
        self.max_request_bytes = max_request_bytes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._readers: set[asyncio.Task[None]] = set()  # each connection's request reader
        self._closing = False

    @property
    def bootstrap(self) -> str:
        """The ``bootstrap.servers`` value that reaches this server."""
        return f"{self.host}:{self.port}"

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> Server:
        """Serve on a background thread; return once the port is bound."""
        self._thread = threading.Thread(target=self.run, name="sqlitequeue-serve", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def run(self) -> None:
        """Serve in this thread until :meth:`close` is called."""
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            if self._thread is None or threading.current_thread() is not self._thread:
                raise

    def close(self) -> None:
        """Stop accepting, let in-flight requests finish, close the file. Safe to repeat."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a server started with :meth:`start` has stopped (or ``timeout``
        seconds pass); return True once it has stopped."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- serving -------------------------------------------------------------------------

    def _own_host(self) -> str:
        return self.host if self.host not in ("0.0.0.0", "::", "") else socket.getfqdn()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        log = Log(self.path, auto_create=self.auto_create, partitions=self.partitions)
        writer: Writer | None = None
        try:
            writer = Writer(Log(self.path))
            try:
                listener = await asyncio.start_server(self._connection, self.host, self.port)
            except OSError as exc:
                raise QueueError(
                    f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}; "
                    "choose another --port (0 picks a free one) or stop what uses it"
                ) from exc
            self.port = listener.sockets[0].getsockname()[1]
            advertised_host, advertised_port = self.advertise or (self._own_host(), self.port)
            producers = Producers(log.recent_batches)
            writer.on_failure = producers.forget_partitions
            self._ctx = Context(
                log,
                writer,
                Changes(log),
                advertised_host,
                advertised_port,
                cluster_id_for(self.path),
                producers,
            )
            if not is_loopback(self.host):
                logger.warning(
                    "listening on %s: anyone who can reach this address can read and write %s "
                    "(there is no authentication or TLS)",
                    self.host,
                    self.path,
                )
            expiry = asyncio.create_task(self._expire_members())
            self._ready.set()
            async with listener:
                await self._stop.wait()
                self._closing = True
                listener.close()
                await self._drain()
            expiry.cancel()
        finally:
            if writer is not None:
                writer.close()
            log.close()

    async def _drain(self) -> None:
        """Stop reading new requests; let each connection answer what it has read (up to
        DRAIN_SECONDS), then cancel what is left (e.g. long polls)."""
        for reader in list(self._readers):
            reader.cancel()
        if self._connections:
            _done, pending = await asyncio.wait(self._connections, timeout=DRAIN_SECONDS)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)

    async def _expire_members(self) -> None:
        """Session timeouts every 0.25 s; topics' retention every RETENTION_INTERVAL."""
        retention_due = 0.0
        while True:
            await asyncio.sleep(0.25)
            self._ctx.coordinator.expire()
            if time.monotonic() >= retention_due:
                retention_due = time.monotonic() + RETENTION_INTERVAL
                try:
                    await self._ctx.writer.run(self._ctx.writer.log.apply_retention)
                except QueueError as exc:
                    logger.warning("retention skipped: %s", exc)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        try:
            await self._serve_connection(reader, writer, peer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        except asyncio.CancelledError:
            pass  # the server is closing
        except Exception:
            logger.exception("connection from %s: internal error; connection closed", peer)
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object
    ) -> None:
        """Read requests ahead (up to IN_FLIGHT) while answering them in order."""
        queue: asyncio.Queue[Request | bytes | None] = asyncio.Queue(IN_FLIGHT)
        reading = asyncio.create_task(self._read_requests(reader, peer, queue))
        self._readers.add(reading)
        reading.add_done_callback(self._readers.discard)
        try:
            await self._answer(queue, writer)
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading

    async def _read_requests(
        self,
        reader: asyncio.StreamReader,
        peer: object,
        queue: asyncio.Queue[Request | bytes | None],
    ) -> None:
        """Put each request (or a ready answer, or None to close) on ``queue``."""
        try:
            while not self._closing:
                size = int.from_bytes(await reader.readexactly(4), "big", signed=True)
                if not 8 <= size <= self.max_request_bytes:
                    logger.warning(
                        "connection from %s: request of %d bytes (allowed 8..%d); closed",
                        peer,
                        size,
                        self.max_request_bytes,
                    )
                    break
                frame = await reader.readexactly(size)
                try:
                    await queue.put(decode_request(frame))
                except FrameError as exc:
                    api_key, _version, correlation_id = peek(frame)
                    if api_key == API_VERSIONS:  # as Kafka: answer with the versions it has
                        await queue.put(api_versions_error(correlation_id))
                        continue
                    logger.warning("connection from %s: %s; connection closed", peer, exc)
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client left, or the server is closing
        await queue.put(None)

    async def _answer(
        self, queue: asyncio.Queue[Request | bytes | None], writer: asyncio.StreamWriter
    ) -> None:
        """Answer queued requests in order. Produce requests queued together are checked
        together and share a transaction, answered at once when the writer's fast path
        committed them already; while one commits on the writer thread, the next ones are
        checked and submitted (a producer's pipelined requests keep the writer busy). Any
        other request waits until every earlier answer is out, as on a Kafka broker."""
        outbox: asyncio.Queue[_Outgoing | None] = asyncio.Queue(IN_FLIGHT)
        sender = asyncio.create_task(self._send(outbox, writer))
        try:
            await self._answer_into(queue, outbox, sender)
            await outbox.put(None)
            await sender
        finally:
            sender.cancel()

    async def _answer_into(
        self,
        queue: asyncio.Queue[Request | bytes | None],
        outbox: asyncio.Queue[_Outgoing | None],
        sender: asyncio.Task[None],
    ) -> None:
        ahead: Request | bytes | None = None
        while True:
            item = ahead if ahead is not None else await queue.get()
            ahead = None
            if item is None or sender.done():
                return
            if isinstance(item, Request) and item.api_key == PRODUCE:
                group = [item]
                while not queue.empty():
                    nxt = queue.get_nowait()
                    if isinstance(nxt, Request) and nxt.api_key == PRODUCE:
                        group.append(nxt)
                    else:
                        ahead = nxt
                        break
                accepted = accept_produce(self._ctx, group)
                if accepted.ready:  # committed already (the writer's fast path)
                    data = _encode_all(group, accepted.responses(self._ctx))
                    await outbox.put(_Outgoing([], None, data))
                else:  # waits for the commit, or settles a failed one (even a fast one)
                    finish = asyncio.ensure_future(accepted.finish(self._ctx))
                    await outbox.put(_Outgoing(group, finish))
            else:
                await outbox.join()  # every earlier answer is out
                if isinstance(item, bytes):
                    await outbox.put(_Outgoing([], None, item))
                else:
                    response = await dispatch(self._ctx, item)
                    if response is not None:
                        await outbox.put(_Outgoing([], None, encode_response(item, response)))
            if ahead is None and self._closing and queue.empty():
                return

    @staticmethod
    async def _send(outbox: asyncio.Queue[_Outgoing | None], writer: asyncio.StreamWriter) -> None:
        """Write the answers in order, each once ready; after a failure, wait for the
        rest (a produce still commits) without writing, then raise it."""
        failure: BaseException | None = None
        while (out := await outbox.get()) is not None:
            try:
                data = out.data
                if out.responses is not None:
                    data = _encode_all(out.requests, await out.responses)
                if failure is None and data:
                    writer.write(data)
                    await writer.drain()
            except Exception as exc:
                failure = failure or exc
            finally:
                outbox.task_done()
        if failure is not None:
            raise failure


def _encode_all(requests: list[Request], responses: list[Any]) -> bytes:
    """The frames of ``requests``' responses, in order (None: no response is due)."""
    return b"".join(
        encode_response(request, response)
        for request, response in zip(requests, responses, strict=True)
        if response is not None
    )


class _Outgoing(NamedTuple):
    """What goes out for a group of requests: their responses once ready (produce), or
    the encoded answer already at hand."""

    requests: list[Request]
    responses: asyncio.Future[list[Any]] | None
    data: bytes = b""


@contextlib.contextmanager
def serve(
    path: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0, **options: object
) -> Iterator[Server]:
    """Serve ``path`` while the block runs: ``with serve(path) as server: server.bootstrap``.

    ``port`` defaults to 0 (a free port). Other options are :class:`Server`'s.
    """
    server = Server(path, host=host, port=port, **options)  # type: ignore[arg-type]
    with server:
        yield server
