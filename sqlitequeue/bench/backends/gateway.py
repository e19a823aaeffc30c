"""``gateway-confluent``, ``gateway-kafka-python``: Kafka clients -> sqlitequeue serve -> a file.

The project's two Kafka client backends (:mod:`.kafka_confluent`, :mod:`.kafka_python`),
unchanged, pointed at a ``sqlitequeue serve`` server (:mod:`sqlitequeue.gateway`) instead of a
broker. The server serves one SQLite file, ``gateway.sqlite`` in the backend's data dir, on a
free loopback port.

One server per data dir, shared: the runner opens the backend in several processes (the
parent creates topics, each producer and consumer process opens its own), and they must all
reach the same server, since consumer groups and producer ids live in the server. So the
server runs in its own process, and the openers keep a list of their pids beside the file
(``gateway.users``, changed under a lock on ``gateway.lock``):

* opening adds this process's pid, starting the server first when none is running (a
  detached :class:`~sqlitequeue.bench.backends.gateway_process.ServeProcess`; its address
  is in ``gateway.addr``, its log in ``gateway.log``);
* closing removes it, and the last user to close stops the server (SIGTERM: in-flight
  requests finish, the file is closed cleanly);
* the server also stops by itself once every listed process has died (a SIGKILLed
  harness leaves no server behind).

Over an emulated network (``gateway-confluent@cross-az``, or a run's ``--network``; the
profile travels in the spec's ``gateway.network`` setting, see :func:`on_network`), the
server's client listener sits behind a Toxiproxy proxy with the profile's delays, as a Kafka
broker's does (:mod:`sqlitequeue.bench.network`): the server process starts the proxy, and
advertises the proxy's address, so clients never reach the server's own port. The proxy
dies with the server.

Raises :class:`~sqlitequeue.bench.errors.BackendError` when the server cannot start (with
the end of its log).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlitequeue.bench.backends.base import Backend, BackendSpec
from sqlitequeue.bench.backends.gateway_process import ServeProcess, stop_server
from sqlitequeue.bench.backends.kafka_confluent import KafkaConfluentBackend
from sqlitequeue.bench.backends.kafka_python import KafkaPythonBackend
from sqlitequeue.bench.errors import BackendError
from sqlitequeue.bench.kafka.node import pid_alive
from sqlitequeue.bench.network.profiles import NetworkProfile, load_network

#: The file the server serves, in the backend's data dir.
FILE_NAME = "gateway.sqlite"
#: Where the backends sit: reports show it beside the results.
PLACEMENT = "producers, consumers, sqlitequeue serve and its file on this host, local disk"
#: The spec setting that carries the network profile (a ``NetworkProfile.to_dict()``).
NETWORK_SETTING = "gateway.network"
#: The backends of this module (the ones :func:`on_network` applies to).
NAMES = ("gateway-confluent", "gateway-kafka-python")
#: How often the server checks that someone still uses it (seconds).
WATCH_INTERVAL_S = 0.5
#: The module whose ``python -m`` runs the shared server (:func:`_serve_until_unused`).
SERVER_MODULE = "sqlitequeue.bench.backends.gateway"


def placement(network: NetworkProfile | None) -> str:
    """Where the gateway backends sit over ``network`` (None or loopback: all on this host)."""
    if network is None or not network.emulated:
        return PLACEMENT
    return (
        "producers and consumers on this host; sqlitequeue serve and its file (local disk) "
        f"over {network.name}"
    )


def on_network(spec: BackendSpec, network: NetworkProfile | None) -> BackendSpec:
    """``spec`` with its gateway behind ``network`` (only for this module's backends).

    Other backends' specs, and any spec when ``network`` is None or loopback, come back as
    they are.
    """
    if spec.name not in NAMES or network is None or not network.emulated:
        return spec
    return replace(spec, settings={**spec.settings, NETWORK_SETTING: network.to_dict()})


def _network_of(settings: Mapping[str, Any]) -> NetworkProfile | None:
    raw = settings.get(NETWORK_SETTING)
    return None if raw is None else NetworkProfile(**raw)


class SharedServer:
    """The ``sqlitequeue serve`` process of one data dir, shared by every opener.

    ``network`` (when emulated) puts a new server's client listener behind a Toxiproxy
    proxy; a server already running keeps the network it was started with.
    """

    def __init__(
        self, data_dir: str | os.PathLike[str], network: NetworkProfile | None = None
    ) -> None:
        self.dir = Path(data_dir)
        self.network = network if network is not None and network.emulated else None
        self.file = self.dir / FILE_NAME
        self.addr = self.dir / "gateway.addr"
        self.users = self.dir / "gateway.users"
        self.log = self.dir / "gateway.log"
        self.bootstrap = ""
        self.server_pid = 0
        self._server: ServeProcess | None = None
        self._attached = False

    @contextlib.contextmanager
    def _locked(self, wait: bool = True) -> Iterator[bool]:
        """Hold the dir's lock; yield False (not holding it) when ``wait`` is off and it is busy."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "gateway.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_users(self) -> list[int]:
        try:
            text = self.users.read_text()
        except FileNotFoundError:
            return []
        return [pid for pid in (int(word) for word in text.split()) if pid_alive(pid)]

    def _write_users(self, pids: list[int]) -> None:
        self.users.write_text("".join(f"{pid}\n" for pid in pids))

    def _running(self) -> tuple[int, str] | None:
        """The (pid, address) of a live server of this dir, or None."""
        try:
            pid_text, address = self.addr.read_text().split()
        except (FileNotFoundError, ValueError):
            return None
        pid = int(pid_text)
        return (pid, address) if pid_alive(pid) else None

    def attach(self) -> str:
        """Use this dir's server (starting it if none runs); return its bootstrap address."""
        with self._locked():
            running = self._running()
            if running is None:
                running = self._start()
            self.server_pid, self.bootstrap = running
            self._write_users([*self._read_users(), os.getpid()])
            self._attached = True
        return self.bootstrap

    def _start(self) -> tuple[int, str]:
        """Start this dir's server (detached: it outlives its starter, stopping by itself
        once every user has gone); return its (pid, address)."""
        self.addr.unlink(missing_ok=True)
        network = json.dumps(self.network.to_dict() if self.network else None)
        extra = ("--users", str(self.dir), "--network", network)
        self._server = ServeProcess(
            self.file, self.log, runner=(SERVER_MODULE,), extra=extra, detached=True
        ).start()
        running = self._running()
        if running is None:  # it served, then exited at once
            raise BackendError(
                f"sqlitequeue serve of {self.file} exited right after it started "
                f"(log {self.log}):\n{self._server.tail()}"
            )
        return running

    def release(self) -> None:
        """Stop using the server; the last user stops it. Safe to call twice."""
        if not self._attached:
            return
        self._attached = False
        with self._locked():
            users = self._read_users()
            if os.getpid() in users:
                users.remove(os.getpid())
            self._write_users(users)
            if not users:
                self._stop()
        if self._server is not None:
            _ = self._server.running  # reap it, when it was ours

    def _stop(self) -> None:
        running = self._running()
        if running is not None:
            stop_server(running[0])
        self.addr.unlink(missing_ok=True)

    def describe(self) -> dict[str, Any]:
        """What the backend is and where it sits, for ``describe()``."""
        return {
            "system": "Kafka clients -> sqlitequeue serve -> one SQLite file",
            "placement": placement(self.network),
            "network": self.network.to_dict() if self.network else load_network(None).to_dict(),
            "gateway_file": str(self.file),
            "gateway_pid": self.server_pid,
            "sqlite_version": sqlite3.sqlite_version,
        }


class _OnGateway(Backend):
    """Mix-in for a Kafka client backend: open attaches to the gateway, close releases it."""

    gateway: SharedServer

    def __init__(self, spec: BackendSpec) -> None:
        settings = dict(spec.settings)
        network = _network_of(settings)
        settings.pop(NETWORK_SETTING, None)
        self.gateway = SharedServer(spec.data_dir, network)
        attached = replace(spec, settings=settings, bootstrap_servers=self.gateway.attach())
        try:
            super().__init__(attached)
        except BaseException:
            self.gateway.release()
            raise

    def describe(self) -> dict[str, Any]:
        """The client backend's description, plus the server and its placement."""
        return {**super().describe(), **self.gateway.describe()}

    def close(self) -> None:
        """Close the client backend; the last user of the server stops it. Safe to repeat."""
        try:
            super().close()
        finally:
            self.gateway.release()

    @classmethod
    def server_pids(cls, spec: BackendSpec) -> list[int]:
        """The pid of the server of ``spec``'s data dir while one runs (resource samples)."""
        running = SharedServer(spec.data_dir)._running()
        return [] if running is None else [running[0]]


class GatewayConfluentBackend(_OnGateway, KafkaConfluentBackend):
    """confluent-kafka against ``sqlitequeue serve`` (see the module docstring)."""

    name = "gateway-confluent"


class GatewayKafkaPythonBackend(_OnGateway, KafkaPythonBackend):
    """kafka-python against ``sqlitequeue serve`` (see the module docstring)."""

    name = "gateway-kafka-python"


def _serve_until_unused(file: str, port: int, data_dir: str, network_json: str = "null") -> None:
    """The server process: serve ``file`` on ``port`` until SIGTERM or until no user process
    is alive.

    With an emulated network (``network_json``, a profile's dict) clients reach the server
    through a Toxiproxy proxy this process starts, and the server advertises the proxy.
    """
    from sqlitequeue.bench.kafka.node import free_port
    from sqlitequeue.bench.network.toxiproxy import ToxiproxyServer
    from sqlitequeue.gateway import Server

    raw = json.loads(network_json)
    network = NetworkProfile(**raw) if raw else None
    shared = SharedServer(data_dir, network)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    proxy: ToxiproxyServer | None = None
    if shared.network is None:
        server = Server(file, port=port).start()
        bootstrap = server.bootstrap
    else:
        proxy = ToxiproxyServer(shared.dir / "toxiproxy.log").start()
        listen = free_port()
        server = Server(file, port=port, advertise=f"127.0.0.1:{listen}").start()
        hop = shared.network
        proxy.add_proxy("gateway", server.port, hop.rtt_ms, hop.jitter_ms, listen_port=listen)
        bootstrap = f"127.0.0.1:{listen}"
        print(f"{server.bootstrap} behind a {hop.name} proxy at {bootstrap}", flush=True)
    temp = shared.addr.with_suffix(".tmp")
    temp.write_text(f"{os.getpid()} {bootstrap}\n")
    temp.replace(shared.addr)
    print(f"serving {file} on {server.bootstrap}", flush=True)  # ready (see ServeProcess)
    try:
        while not stop.wait(WATCH_INTERVAL_S):
            # never wait for the lock: its holder may be waiting for this server to stop
            with shared._locked(wait=False) as held:
                if held and not shared._read_users():
                    print("every user process has gone: stopping", flush=True)
                    server.close()
                    shared.addr.unlink(missing_ok=True)
                    return
    finally:
        server.close()
        if proxy is not None:
            proxy.stop()
        shared.addr.unlink(missing_ok=True)
    print("stopped", flush=True)


def _main(argv: list[str]) -> None:
    """``python -m sqlitequeue.bench.backends.gateway FILE --port PORT --users DIR
    [--network JSON]``: the shared server (see :class:`SharedServer`)."""
    parser = argparse.ArgumentParser(prog=f"python -m {SERVER_MODULE}")
    parser.add_argument("file")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--users", required=True, help="the data dir holding gateway.users")
    parser.add_argument("--network", default="null", help="a network profile's dict, as JSON")
    args = parser.parse_args(argv)
    _serve_until_unused(args.file, args.port, args.users, args.network)


if __name__ == "__main__":
    _main(sys.argv[1:])
