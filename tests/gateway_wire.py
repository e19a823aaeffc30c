"""A raw Kafka protocol connection for the gateway tests: send one request, read its answer.

Requests and responses are kafka-python's protocol classes; this only frames them, so the
tests can send what a client library would never send (a repeated batch, a bad sequence).
"""

from __future__ import annotations

import io
import socket
import struct
from typing import Any

from kafka.protocol.api_header import ResponseHeader


class RawConnection:
    """One TCP connection to a Kafka-protocol server."""

    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.correlation = 0

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, message: Any, version: int, response_class: Any) -> Any:
        """Send ``message`` at ``version``; return the decoded response."""
        self.correlation += 1
        message.with_header(correlation_id=self.correlation, client_id="raw-test")
        self.sock.sendall(bytes(message.encode(version=version, header=True, framed=True)))
        size = struct.unpack(">i", self._read(4))[0]
        frame = self._read(size)
        flexible = response_class.flexible_version_q(version) and response_class.API_KEY != 18
        data = io.BytesIO(frame)
        header = ResponseHeader.decode(data, flexible=flexible)
        assert header.correlation_id == self.correlation
        return response_class.decode(frame[data.tell() :], version=version)

    def read_frame(self) -> bytes:
        """Read one response frame (without its size prefix)."""
        size = struct.unpack(">i", self._read(4))[0]
        return self._read(size)

    def _read(self, count: int) -> bytes:
        chunks = []
        while count:
            chunk = self.sock.recv(count)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            chunks.append(chunk)
            count -= len(chunk)
        return b"".join(chunks)

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True once the server closes this connection (reads EOF or a reset)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except TimeoutError:
            return False
        except OSError:
            return True
        return True

    def close(self) -> None:
        self.sock.close()
