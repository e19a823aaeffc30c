"""``memory``: no storage at all, a Unix-socket channel between processes.

Used to test the harness and to measure its own ceiling: whatever rate the runner reaches
with ``memory`` is the most it could measure on any backend.

How it works: each consumer binds a Linux abstract Unix stream socket and registers it as a
small file ``<data_dir>/memory/<topic>/<group>/<member>.addr``. A producer discovers the
members of every group of its topic (re-scanning at most every ``rescan_ms``), connects to
them, and writes each record, length-framed, to one member per group (chosen by key hash,
round-robin without a key). ``send`` only buffers; a writer thread writes what has
accumulated with one ``sendall`` per member, so the cost per record is a list append, not a
system call and a consumer wake-up. The delivery callback fires (on the writer thread) once
the record is in the socket. Consumers parse the frames straight from what they receive.

Honest limits (see docs/backends.md): nothing is stored, so records sent while a group has
no live member are dropped for that group, records buffered in a consumer that dies or
closes are lost (``redelivers_uncommitted`` and ``commits_survive_restart`` are False),
``commit()`` does nothing, and consumers must subscribe before records are produced.
Linux only (abstract sockets).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlitequeue.bench.backends._common import base_description, merged_settings, safe_name
from sqlitequeue.bench.backends.base import (
    Backend,
    BackendSpec,
    Consumer,
    Delivery,
    DeliveryCallback,
    Producer,
    Received,
)
from sqlitequeue.bench.errors import BackendError

DEFAULTS: dict[str, Any] = {
    "socket_buffer_bytes": 4 * 1024 * 1024,
    "rescan_ms": 20,
}

_HEADER = struct.Struct("!iI")  # key length (-1: no key), payload length
_RECV_BYTES = 1 << 20
#: records a producer buffers before ``send`` blocks (the writer is stuck on a full socket)
MAX_BUFFERED = 50_000
#: bytes per write: large enough to need few system calls, small enough to reuse memory
WRITE_BYTES = 64 * 1024

#: a buffered record: key, payload, delivery callback
_Pending = tuple[bytes | None, bytes, DeliveryCallback | None]


class MemoryBackend(Backend):
    """A storage-less channel between processes (see the module docstring)."""

    name = "memory"
    replays_history = False
    redelivers_uncommitted = False
    commits_survive_restart = False

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self.settings = merged_settings(self.name, DEFAULTS, spec.settings)
        self.root = Path(spec.data_dir) / "memory"

    def topic_dir(self, topic: str) -> Path:
        """Return the directory where ``topic``'s groups register their members."""
        return self.root / safe_name(topic)

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        """Create the topic's registration directory (partitions are not modelled)."""
        self.topic_dir(topic).mkdir(parents=True, exist_ok=True)

    def producer(self, topic: str) -> Producer:
        """Return a producer that writes to every group of ``topic``."""
        self.create_topic(topic)
        return MemoryProducer(self.topic_dir(topic), self.settings)

    def consumer(self, topic: str, group: str) -> Consumer:
        """Return a consumer registered as a new member of ``group``."""
        self.create_topic(topic)
        return MemoryConsumer(self.topic_dir(topic) / safe_name(group), self.settings)

    def describe(self) -> dict[str, Any]:
        """Return the settings; there is no storage and no client library."""
        info = base_description(self.name, self.spec.profile, self.settings)
        info["storage"] = "none (Unix abstract sockets)"
        return info


class MemoryProducer(Producer):
    """Buffers records; a writer thread writes each batch with one ``sendall`` per member.

    ``send`` only appends to a list and wakes the writer when the list was empty, so a
    record costs no system call and no thread switch of its own: what accumulates while the
    writer is busy (or waits for the GIL) goes out together. The writer reports delivery,
    with one :class:`Delivery` per batch, once the batch is in the sockets.
    """

    def __init__(self, topic_dir: Path, settings: dict[str, Any]) -> None:
        self._topic_dir = topic_dir
        self._buffer_bytes = int(settings["socket_buffer_bytes"])
        self._rescan_s = float(settings["rescan_ms"]) / 1000.0
        self._next_scan = 0.0
        self._stamps: dict[Path, int] = {}  # folder -> modification time at the last look
        self._group_dirs: list[Path] = []
        self._members: dict[str, dict[str, socket.socket]] = {}  # group -> addr file -> sock
        self._order: dict[str, list[str]] = {}
        self._round_robin = 0
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._in_flight = 0  # records the writer has taken and not yet reported
        self._wake = threading.Event()
        self._closed = False
        self._stopping = False
        self._failure: str | None = None
        self._writer = threading.Thread(target=self._write_loop, name="memory-writer", daemon=True)
        self._writer.start()

    def send(
        self, key: bytes | None, payload: bytes, on_delivery: DeliveryCallback | None = None
    ) -> None:
        """Buffer the record for the writer thread; block while MAX_BUFFERED records wait.

        The writer sends it to one live member of every group and reports delivery
        (``ok=False`` when no group has a live member).
        """
        if self._closed:
            raise BackendError("send() after the producer was closed")
        with self._lock:
            pending = self._pending
            pending.append((key, payload, on_delivery))
            waiting = len(pending)
        if waiting == 1:
            if self._failure is not None:
                raise BackendError(f"the memory producer's writer failed: {self._failure}")
            self._wake.set()
        elif waiting >= MAX_BUFFERED:
            self._wait_until(lambda: len(self._pending) < MAX_BUFFERED, 30.0, "send")

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every record sent so far is in a socket (or reported undeliverable)."""
        self._wait_until(lambda: not (self._pending or self._in_flight), timeout, "flush")

    def _wait_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if done():
                    return
            if self._failure is not None:
                raise BackendError(f"the memory producer's writer failed: {self._failure}")
            if time.monotonic() >= deadline:
                raise BackendError(
                    f"{what} timed out after {timeout} s with "
                    f"{len(self._pending) + self._in_flight} record(s) not yet in a socket"
                )
            time.sleep(0.0005)

    def close(self) -> None:
        """Flush, stop the writer and close every connection; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            self._stopping = True
            self._wake.set()
            self._writer.join(30.0)
            for members in self._members.values():
                for sock in members.values():
                    sock.close()
            self._members.clear()
            self._order.clear()

    # the writer thread
    def _write_loop(self) -> None:
        try:
            while not self._stopping:
                self._wake.wait()
                self._wake.clear()
                while True:
                    with self._lock:
                        batch, self._pending = self._pending, []
                        self._in_flight = len(batch)
                    if not batch:
                        break
                    self._write(batch)
                    with self._lock:
                        self._in_flight = 0
        except BaseException as exc:  # reported by the next send/flush
            self._failure = f"{type(exc).__name__}: {exc}"
            raise

    def _write(self, batch: list[_Pending]) -> None:
        """Write ``batch`` to every group; report each record's delivery."""
        now = time.monotonic()
        if now >= self._next_scan:
            self._rescan()
            self._next_scan = now + self._rescan_s
        heads = [_frame_head(key, payload) for key, payload, _ in batch]
        first = self._round_robin
        self._round_robin += len(batch)
        undelivered: set[int] | None = None
        for group in list(self._order):
            missed = self._write_group(group, batch, heads, first)
            undelivered = missed if undelivered is None else undelivered & missed
        published = time.time()
        ok = Delivery(ok=True, published_at=published)
        if undelivered is None or undelivered:
            failed = Delivery(
                ok=False,
                published_at=published,
                error=f"no live consumer subscribed under {self._topic_dir}",
            )
            for i, (_, _, callback) in enumerate(batch):
                if callback is not None:
                    callback(failed if undelivered is None or i in undelivered else ok)
            return
        for _, _, callback in batch:
            if callback is not None:
                callback(ok)

    def _write_group(
        self, group: str, batch: list[_Pending], heads: list[bytes], first: int
    ) -> set[int]:
        """Write each record to one live member of ``group`` (by key hash, else round-robin);
        return the indices written to none (the group has no live member left)."""
        todo = list(range(len(batch)))
        while todo:
            order = self._order.get(group)
            if not order:
                return set(todo)
            chunks: dict[str, list[int]] = {}
            if len(order) == 1:
                chunks[order[0]] = todo
            else:
                for i in todo:
                    key = batch[i][0]
                    pick = zlib.crc32(key) if key is not None else first + i
                    chunks.setdefault(order[pick % len(order)], []).append(i)
            todo = []
            for member, indices in chunks.items():
                written = self._write_member(self._members[group][member], batch, heads, indices)
                if written < len(indices):  # the member died: the next live one gets the rest
                    self._drop(group, member)
                    todo += indices[written:]
        return set()

    @staticmethod
    def _write_member(
        sock: socket.socket, batch: list[_Pending], heads: list[bytes], indices: list[int]
    ) -> int:
        """Write the records ``indices`` of ``batch`` in writes of about WRITE_BYTES; return
        how many were written before the connection failed (all of them when it did not)."""
        done = 0
        while done < len(indices):
            parts: list[bytes] = []
            size = 0
            end = done
            while end < len(indices) and size < WRITE_BYTES:
                i = indices[end]
                payload = batch[i][1]
                parts += (heads[i], payload)
                size += len(payload)
                end += 1
            try:
                sock.sendall(b"".join(parts), socket.MSG_NOSIGNAL)
            except OSError:
                return done
            done = end
        return done

    def _rescan(self) -> None:
        """Connect to the members registered since the last look.

        Only folders whose modification time moved (or moved within the last second, as
        file times tick coarsely) are listed again, so a steady topic costs a few ``stat``
        calls per look.
        """
        if self._changed(self._topic_dir) or not self._group_dirs:
            try:
                self._group_dirs = [d for d in self._topic_dir.iterdir() if d.is_dir()]
            except OSError:  # the topic's folder is gone: no members to find
                return
        for group_dir in self._group_dirs:
            if not self._changed(group_dir):
                continue
            members = self._members.setdefault(group_dir.name, {})
            for addr_file in group_dir.glob("*.addr"):
                if addr_file.name not in members:
                    sock = self._connect(addr_file)
                    if sock is not None:
                        members[addr_file.name] = sock
            self._order[group_dir.name] = sorted(members)

    def _changed(self, folder: Path) -> bool:
        """True when ``folder`` may hold entries not seen at the last look (or is gone)."""
        try:
            mtime = folder.stat().st_mtime_ns
        except OSError:
            return True
        seen = self._stamps.get(folder)
        self._stamps[folder] = mtime
        return seen != mtime or time.time_ns() - mtime < 1_000_000_000

    def _connect(self, addr_file: Path) -> socket.socket | None:
        try:
            address = "\0" + addr_file.read_text()
        except OSError:
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._buffer_bytes)
        try:
            sock.connect(address)
        except OSError:  # the member died: its abstract socket is gone; forget its file
            sock.close()
            with contextlib.suppress(OSError):
                addr_file.unlink()
            return None
        return sock

    def _drop(self, group: str, member: str) -> None:
        sock = self._members[group].pop(member)
        sock.close()
        self._order[group] = sorted(self._members[group])


def _frame_head(key: bytes | None, payload: bytes) -> bytes:
    """What precedes a payload on the wire: key length (-1: none), payload length, key."""
    if key is None:
        return _HEADER.pack(-1, len(payload))
    return _HEADER.pack(len(key), len(payload)) + key


class MemoryConsumer(Consumer):
    """Accepts producers' connections and parses their framed records."""

    def __init__(self, group_dir: Path, settings: dict[str, Any]) -> None:
        group_dir.mkdir(parents=True, exist_ok=True)
        self._buffer_bytes = int(settings["socket_buffer_bytes"])
        name = f"sqq-mem-{os.getpid()}-{uuid.uuid4().hex}"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind("\0" + name)
        self._listener.listen(64)
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        #: per connection: the bytes received and not yet parsed, and where parsing stands
        self._buffers: dict[socket.socket, _Unparsed] = {}
        self._addr_file = group_dir / f"{name}.addr"
        tmp = group_dir / f".{name}.tmp"
        tmp.write_text(name)
        tmp.rename(self._addr_file)  # producers never read a half-written file
        self._closed = False

    def poll(self, max_records: int, timeout: float) -> list[Received]:
        """Return the records already in the socket buffers, waiting up to ``timeout``."""
        if self._closed:
            raise BackendError("poll() after the consumer was closed")
        records = self._parse(max_records)
        deadline = time.monotonic() + timeout
        while not records:
            remaining = deadline - time.monotonic()
            events = self._selector.select(max(remaining, 0.0))
            for selector_key, _ in events:
                self._on_readable(selector_key.fileobj)  # type: ignore[arg-type]
            records = self._parse(max_records)
            if remaining <= 0:
                break
        if len(records) < max_records:  # drain what is already there without waiting
            for selector_key, _ in self._selector.select(0):
                self._on_readable(selector_key.fileobj)  # type: ignore[arg-type]
            records.extend(self._parse(max_records - len(records)))
        return records

    def _on_readable(self, sock: socket.socket) -> None:
        if sock is self._listener:
            with contextlib.suppress(BlockingIOError):
                while True:
                    conn, _ = self._listener.accept()
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._buffer_bytes)
                    conn.setblocking(False)
                    self._buffers[conn] = _Unparsed()
                    self._selector.register(conn, selectors.EVENT_READ, None)
            return
        try:
            data = sock.recv(_RECV_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._buffers[sock].add(data)
        else:  # the producer closed: keep its buffer until parsed
            self._selector.unregister(sock)
            sock.close()

    def _parse(self, max_records: int) -> list[Received]:
        records: list[Received] = []
        for buffer in self._buffers.values():
            if len(records) >= max_records:
                break
            buffer.parse(records, max_records - len(records))
        for sock in [s for s, b in self._buffers.items() if b.empty() and s.fileno() == -1]:
            del self._buffers[sock]
        return records

    def commit(self) -> None:
        """Nothing to commit: there is no storage (records are gone once polled)."""
        if self._closed:
            raise BackendError("commit() after the consumer was closed")

    def close(self) -> None:
        """Unregister and close; records not yet polled are lost. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._addr_file.unlink()
        for sock in list(self._buffers):
            sock.close()
        self._buffers.clear()
        self._selector.close()
        self._listener.close()


class _Unparsed:
    """Bytes received on one connection and not yet parsed into records.

    Kept as ``bytes`` with a read position, so each payload is one slice (one copy) and a
    partial frame at the end is the only thing copied when more data arrives.
    """

    __slots__ = ("data", "pos")

    def __init__(self) -> None:
        self.data = b""
        self.pos = 0

    def empty(self) -> bool:
        return self.pos >= len(self.data)

    def add(self, more: bytes) -> None:
        if self.pos >= len(self.data):
            self.data = more
        else:
            self.data = self.data[self.pos :] + more
        self.pos = 0

    def parse(self, records: list[Received], limit: int) -> None:
        """Append up to ``limit`` complete records to ``records``."""
        data, pos, size = self.data, self.pos, len(self.data)
        unpack, head = _HEADER.unpack_from, _HEADER.size
        append = records.append
        while limit and size - pos >= head:
            key_len, payload_len = unpack(data, pos)
            start = pos + head
            if key_len < 0:
                end = start + payload_len
                if end > size:
                    break
                append(Received(None, data[start:end]))
            else:
                end = start + key_len + payload_len
                if end > size:
                    break
                append(Received(data[start : start + key_len], data[start + key_len : end]))
            pos = end
            limit -= 1
        self.pos = pos
