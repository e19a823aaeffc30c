"""Fault trials against ``sqlitequeue serve`` (the gateway): its server SIGKILLed and restarted.

The gateway's broker-kill: the same trial as Kafka's
(:func:`~sqlitequeue.bench.faults.kafka_trials.producing_through`, the same
``kafka-confluent`` client and settings: acks=all, an idempotent producer), with a consumer
group of two reading and committing throughout. The server is a real separate process,
``python -m sqlitequeue serve FILE --port PORT`` (:class:`GatewayServer`), SIGKILLed and
started again on the same port and file. RTO: from the kill until the producer's first
acknowledgement of a message sent after it; loss: acknowledged ids missing from the file
afterwards; the notes say how the group came back (from its committed offsets).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.faults.kafka_trials import BrokerFault, producing_through
from sqlitequeue.bench.faults.lab import Case, FaultEvent, Lab, Trial, Unavailable, wait_for
from sqlitequeue.bench.kafka.node import free_port

BACKEND = "gateway"
DURABILITY = "acks=all"
#: Members of the consumer group that reads through the fault.
CONSUMERS = 2
#: How long a (re)started server may take to print that it serves (seconds).
START_TIMEOUT_S = 30.0
#: How long a stopped server may take to drain and close the file before SIGKILL.
STOP_TIMEOUT_S = 15.0


class GatewayServer:
    """One ``sqlitequeue serve FILE --port PORT`` process, restartable on the same port and file.

    ``pids`` lists every process started, in order; its output goes to ``log``.
    """

    def __init__(self, file: Path, log: Path, port: int | None = None) -> None:
        self.file = file
        self.log = log
        self.port = port or free_port()
        self.pids: list[int] = []
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The address clients connect to (``127.0.0.1:PORT``)."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The pid of the current (or last) server process; 0 before the first start."""
        return self.pids[-1] if self.pids else 0

    @property
    def running(self) -> bool:
        """True while the current server process has not exited."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> GatewayServer:
        """Start the server and wait until it serves; raise BenchError (with its log) if not."""
        command = [sys.executable, "-m", "sqlitequeue", "serve", str(self.file)]
        command += ["--port", str(self.port)]
        served_before = self._served()
        with open(self.log, "ab") as out:
            self._process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.pids.append(self._process.pid)
        up = wait_for(lambda: self._served() > served_before or not self.running, START_TIMEOUT_S)
        if up is None or not self.running:
            self.kill()
            raise BenchError(
                f"sqlitequeue serve did not start on {self.bootstrap} within "
                f"{START_TIMEOUT_S:g} s (log {self.log}):\n{self._tail()}"
            )
        return self

    def kill(self) -> float:
        """SIGKILL the server process; return the unix time of the kill."""
        at = time.time()
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait(30)
        return at

    def stop(self) -> None:
        """SIGTERM the server (it drains and closes the file); SIGKILL it if it lingers."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def _served(self) -> int:
        """How many times the log says a server started serving."""
        try:
            return self.log.read_text(errors="replace").count(f"serving {self.file} on ")
        except OSError:
            return 0

    def _tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class ServerKill(BrokerFault):
    """SIGKILL ``sqlitequeue serve``, then start it again on the same port and file."""

    recovered = "first ack after the kill"
    waiting_for = "an acknowledgement after the server restart"

    def __init__(self, server: GatewayServer) -> None:
        self.server = server

    def inject(self, bootstrap: str, topic: str) -> list[tuple[str, float, str]]:
        """Kill the server and restart it; return both moments, with both pids."""
        killed = self.server.pid
        t_fault = self.server.kill()
        self.server.start()
        t_up = time.time()
        return [
            ("server SIGKILL", t_fault, f"pid {killed}"),
            ("server restarted", t_up, f"pid {self.server.pid}, same port and file"),
        ]

    def notes(self, bootstrap: str, topic: str, events: list[FaultEvent], errors: int) -> str:
        """How long the server was away and how many delivery errors the producer saw."""
        return (
            f"server back after {events[1][1]:.1f} s (pid {self.server.pids[-2]} -> "
            f"{self.server.pid}, port {self.server.port}); {errors} delivery errors"
        )


def gateway_problem() -> str | None:
    """Return None when the gateway can be served here, else why not (the extra to install)."""
    try:
        import sqlitequeue.gateway  # noqa: F401
    except Exception as exc:  # QueueError naming the extra, or a broken install
        return str(exc)
    return None


def broker_kill(lab: Lab, case: Case, repeat: int) -> Trial:
    """``sqlitequeue serve`` is SIGKILLed and restarted while a producer and a group run.

    RTO: from the kill until the producer's first acknowledgement after it. Loss:
    acknowledged ids missing from the file afterwards. Raises Unavailable without the
    gateway extra.
    """
    problem = gateway_problem()
    if problem is not None:
        raise Unavailable(problem)
    d = lab.trial_dir(case, repeat)
    server = GatewayServer(d / "gateway.sqlite", d / "server.log").start()
    try:
        return producing_through(
            lab, case, repeat, server.bootstrap, 1, ServerKill(server), consumers=CONSUMERS, d=d
        )
    finally:
        server.stop()
