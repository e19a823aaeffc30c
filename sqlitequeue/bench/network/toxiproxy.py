"""A Toxiproxy server owned by the workbench, and TCP proxies that delay what passes through.

:class:`ToxiproxyServer` runs Shopify's ``toxiproxy-server`` (installed by
``tools/install_toxiproxy.sh`` into the project cache) on a free loopback port and talks to
its HTTP API. :meth:`ToxiproxyServer.add_proxy` opens a proxy in front of a port and adds
``latency`` toxics: Toxiproxy delays in whole milliseconds per direction, so a round trip of
``rtt_ms`` is split into ``rtt_ms - rtt_ms // 2`` upstream and ``rtt_ms // 2`` downstream
(jitter likewise). An owned server dies with the Python thread that started it
(``PR_SET_PDEATHSIG``) and is killed at exit; a detached one (``sqlitequeue kafka start``)
is stopped later through its pid.
"""

from __future__ import annotations

import atexit
import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from sqlitequeue.bench.cache import find_binary
from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.processes import log_tail, start_process

HOST = "127.0.0.1"
BINARY = "toxiproxy-server"
BINARY_ENV = "TOXIPROXY_BIN"
START_TIMEOUT = 15.0

_OWNED: set[ToxiproxyServer] = set()


@atexit.register
def _stop_owned() -> None:
    for server in list(_OWNED):
        server.stop()


def find_toxiproxy() -> Path:
    """Return the toxiproxy-server binary; raise BenchError saying how to install it."""
    found = find_binary(BINARY, BINARY_ENV)
    if found is None:
        raise BenchError(
            "Toxiproxy is not installed: run `make toxiproxy` (bash tools/install_toxiproxy.sh, "
            f"needs Go), or set {BINARY_ENV} to a toxiproxy-server binary"
        )
    return found


def split_round_trip(rtt_ms: int) -> tuple[int, int]:
    """Split a round trip into (upstream, downstream) whole-millisecond delays."""
    return rtt_ms - rtt_ms // 2, rtt_ms // 2


class ToxiproxyServer:
    """One ``toxiproxy-server`` process on a free loopback port; use as a context manager."""

    def __init__(self, log_path: Path, *, detached: bool = False) -> None:
        self.log_path = log_path
        self.detached = detached
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None

    @property
    def api(self) -> str:
        """The HTTP API's base URL."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> ToxiproxyServer:
        """Start the server and wait until its API answers; raise BenchError if it does not."""
        from sqlitequeue.bench.kafka.node import free_port

        binary = find_toxiproxy()
        self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            command = [str(binary), "-host", HOST, "-port", str(self.port)]
            self.process = start_process(command, log, detached=self.detached)
        self.pid = self.process.pid
        if not self.detached:
            _OWNED.add(self)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self._call("GET", "/version")
                return
            except BenchError as exc:
                if self.process is not None and self.process.poll() is not None:
                    raise BenchError(f"toxiproxy-server exited: {self._log_tail()}") from exc
                if time.monotonic() > deadline:
                    self.stop()
                    raise BenchError(
                        f"toxiproxy-server did not answer within {START_TIMEOUT:.0f} s: {exc}"
                    ) from exc
                time.sleep(0.05)

    def add_proxy(
        self, name: str, upstream_port: int, rtt_ms: int, jitter_ms: int = 0, listen_port: int = 0
    ) -> int:
        """Open proxy ``name`` in front of ``upstream_port``, delayed as given; return its port.

        ``listen_port`` 0 picks a free port. Raises BenchError when the API refuses.
        """
        proxy = self._call(
            "POST",
            "/proxies",
            {
                "name": name,
                "listen": f"{HOST}:{listen_port}",
                "upstream": f"{HOST}:{upstream_port}",
            },
        )
        latency, jitter = split_round_trip(rtt_ms), split_round_trip(jitter_ms)
        for stream, delay, spread in zip(("upstream", "downstream"), latency, jitter, strict=True):
            if delay or spread:
                attributes = {"latency": delay, "jitter": spread}
                body = {
                    "name": stream,
                    "type": "latency",
                    "stream": stream,
                    "attributes": attributes,
                }
                self._call("POST", f"/proxies/{name}/toxics", body)
        return int(proxy["listen"].rsplit(":", 1)[1])

    def proxies(self) -> dict[str, Any]:
        """The server's proxies and their toxics, as its API reports them."""
        result: dict[str, Any] = self._call("GET", "/proxies")
        return result

    def stop(self) -> None:
        """Stop the server (SIGTERM, SIGKILL after 5 s); idempotent."""
        _OWNED.discard(self)
        if self.pid is None:
            return
        stop_pid(self.pid)
        if self.process is not None:
            self.process.wait()
        self.pid = self.process = None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.api + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise BenchError(
                f"toxiproxy {method} {path}: {exc.code} {exc.read().decode()}"
            ) from exc
        except (OSError, ValueError) as exc:
            raise BenchError(f"toxiproxy {method} {path}: {exc}") from exc

    def _log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines, missing="(no log)")

    def __enter__(self) -> ToxiproxyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM a toxiproxy-server by pid, SIGKILL it after ``timeout`` s; ignore if gone."""
    from sqlitequeue.bench.kafka.node import terminate_pid

    terminate_pid(pid, timeout)
