"""``memory``: no storage at all, a Unix-socket channel between processes.

Used to test the harness and to measure its own ceiling: whatever rate the runner reaches
with ``memory`` is the most it could measure on any backend.

How it works: each consumer binds a Linux abstract Unix stream socket and registers it as a
small file ``<data_dir>/memory/<topic>/<group>/<member>.addr``. A producer discovers the
members of every group of its topic (re-scanning at most every ``rescan_ms``), connects to
them, and writes each record, length-framed, to one member per group (chosen by key hash,
round-robin without a key). The delivery callback fires once the record is in the socket.

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
import time
import uuid
import zlib
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
    """Writes length-framed records straight into the members' sockets."""

    def __init__(self, topic_dir: Path, settings: dict[str, Any]) -> None:
        self._topic_dir = topic_dir
        self._buffer_bytes = int(settings["socket_buffer_bytes"])
        self._rescan_s = float(settings["rescan_ms"]) / 1000.0
        self._next_scan = 0.0
        self._members: dict[str, dict[str, socket.socket]] = {}  # group -> addr file -> sock
        self._order: dict[str, list[str]] = {}
        self._round_robin = 0
        self._closed = False

    def send(
        self, key: bytes | None, payload: bytes, on_delivery: DeliveryCallback | None = None
    ) -> None:
        """Write the record to one live member of every group; report delivery at once."""
        if self._closed:
            raise BackendError("send() after the producer was closed")
        now = time.monotonic()
        if now >= self._next_scan:
            self._rescan()
            self._next_scan = now + self._rescan_s
        frame = b"".join(
            (_HEADER.pack(-1 if key is None else len(key), len(payload)), key or b"", payload)
        )
        self._round_robin += 1
        delivered = 0
        for group in list(self._order):
            delivered += self._send_to_group(group, key, frame)
        if on_delivery is not None:
            if delivered:
                on_delivery(Delivery(ok=True, published_at=time.time()))
            else:
                on_delivery(
                    Delivery(
                        ok=False,
                        published_at=time.time(),
                        error=f"no live consumer subscribed under {self._topic_dir}",
                    )
                )

    def _send_to_group(self, group: str, key: bytes | None, frame: bytes) -> int:
        while self._order.get(group):
            order = self._order[group]
            pick = zlib.crc32(key) if key is not None else self._round_robin
            member = order[pick % len(order)]
            try:
                self._members[group][member].sendall(frame, socket.MSG_NOSIGNAL)
                return 1
            except OSError:
                self._drop(group, member)
        return 0

    def _rescan(self) -> None:
        if not self._topic_dir.is_dir():
            return
        for group_dir in self._topic_dir.iterdir():
            if not group_dir.is_dir():
                continue
            members = self._members.setdefault(group_dir.name, {})
            for addr_file in group_dir.glob("*.addr"):
                if addr_file.name not in members:
                    sock = self._connect(addr_file)
                    if sock is not None:
                        members[addr_file.name] = sock
            self._order[group_dir.name] = sorted(members)

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

    def flush(self, timeout: float = 30.0) -> None:
        """Nothing to wait for: every send is in a socket when ``send`` returns."""

    def close(self) -> None:
        """Close every connection; safe to call twice."""
        self._closed = True
        for members in self._members.values():
            for sock in members.values():
                sock.close()
        self._members.clear()
        self._order.clear()


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
        self._buffers: dict[socket.socket, bytearray] = {}
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
                    self._buffers[conn] = bytearray()
                    self._selector.register(conn, selectors.EVENT_READ, None)
            return
        try:
            data = sock.recv(_RECV_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._buffers[sock] += data
        else:  # the producer closed: keep its buffer until parsed
            self._selector.unregister(sock)
            sock.close()

    def _parse(self, max_records: int) -> list[Received]:
        records: list[Received] = []
        for buffer in self._buffers.values():
            pos = 0
            size = len(buffer)
            while len(records) < max_records and size - pos >= _HEADER.size:
                key_len, payload_len = _HEADER.unpack_from(buffer, pos)
                start = pos + _HEADER.size
                key_end = start + max(key_len, 0)
                end = key_end + payload_len
                if end > size:
                    break
                key = bytes(buffer[start:key_end]) if key_len >= 0 else None
                records.append(Received(key=key, payload=bytes(buffer[key_end:end])))
                pos = end
            if pos:
                del buffer[:pos]
            if len(records) >= max_records:
                break
        for sock in [s for s, b in self._buffers.items() if not b and s.fileno() == -1]:
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
