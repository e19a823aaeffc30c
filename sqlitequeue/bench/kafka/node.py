"""One local Kafka JVM: a KRaft node that is both broker and controller.

A :class:`KafkaNode` owns a data directory (``server.properties``, the log dirs, ``logs/``),
formats it once with ``kafka.tools.StorageTool``, and runs ``kafka.Kafka`` bound to
127.0.0.1. Nodes are grouped into a broker or a cluster by :mod:`sqlitequeue.bench.kafka.broker`.

No orphaned JVMs: an *owned* node's JVM runs in its own process group with
``PR_SET_PDEATHSIG=SIGKILL`` (it dies with the Python thread that started it, even on SIGKILL
of Python), and an ``atexit`` hook kills whatever is still running when Python exits. A
*detached* node (``sqlitequeue kafka start``) outlives its starter in a new session and is
stopped later through its pid.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from sqlitequeue.bench.errors import KafkaError
from sqlitequeue.bench.kafka.distribution import KafkaDist
from sqlitequeue.bench.processes import start_process

HOST = "127.0.0.1"
_LOG_TAIL_LINES = 60

#: JVM options of Kafka's own start scripts (KAFKA_JVM_PERFORMANCE_OPTS).
JVM_PERFORMANCE_OPTS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
)
#: JVM options for the short-lived StorageTool run: small heap, quick start.
TOOL_JVM_OPTS = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")


def new_cluster_id() -> str:
    """Return a random Kafka cluster id (22 url-safe base64 characters, as ``random-uuid``)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def check_port_free(port: int) -> None:
    """Raise KafkaError when something already listens on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM binds
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise KafkaError(
                f"port {port} on {HOST} is in use ({exc.strerror}): stop whatever listens there "
                "(`sqlitequeue kafka status` shows a broker it started), or leave the port unset "
                "to pick free ports"
            ) from exc


def pid_alive(pid: int) -> bool:
    """Return True when ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group led by ``pid`` (and to ``pid``); ignore if gone."""
    for send in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            send(pid, sig)


def terminate_pid(pid: int, timeout: float) -> None:
    """SIGTERM the process group of ``pid``; SIGKILL it if still alive after ``timeout`` s.

    For processes that are not our children (a detached broker). Returns once it is gone or
    after a further 10 s (then raises KafkaError).
    """
    signal_group(pid, signal.SIGTERM)
    if _wait_gone(pid, timeout):
        return
    signal_group(pid, signal.SIGKILL)
    if not _wait_gone(pid, 10.0):
        raise KafkaError(f"process {pid} survived SIGKILL for 10 s")


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


_OWNED: set[KafkaNode] = set()


@atexit.register
def _kill_owned_nodes() -> None:
    for node in list(_OWNED):
        node.kill()


class KafkaNode:
    """One KRaft node (broker + controller) in ``data_dir``, listening on 127.0.0.1."""

    def __init__(
        self,
        dist: KafkaDist,
        data_dir: Path,
        node_id: int,
        port: int,
        controller_port: int,
        properties: Mapping[str, str],
        cluster_id: str,
        heap: str = "1G",
    ) -> None:
        self.dist = dist
        self.data_dir = Path(data_dir)
        self.node_id = node_id
        self.port = port
        self.controller_port = controller_port
        self.properties = dict(properties)
        self.cluster_id = cluster_id
        self.heap = heap
        self._proc: subprocess.Popen[bytes] | None = None
        self._detached_pid: int | None = None

    def __repr__(self) -> str:
        return f"KafkaNode(id={self.node_id}, {self.bootstrap_servers}, pid={self.pid})"

    # ------------------------------------------------------------------ paths

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:<port>`` of this node's client listener."""
        return f"{HOST}:{self.port}"

    @property
    def properties_path(self) -> Path:
        """The node's ``server.properties``."""
        return self.data_dir / "server.properties"

    @property
    def kraft_dir(self) -> Path:
        """The node's ``log.dirs`` (topic partitions and the KRaft metadata log)."""
        return self.data_dir / "kraft"

    @property
    def log_dir(self) -> Path:
        """Where ``server.log`` (log4j) and ``kafka.out`` (JVM stdout/stderr) go."""
        return self.data_dir / "logs"

    @property
    def pid(self) -> int | None:
        """The JVM's process id while it runs, else None."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        if self._detached_pid is not None and pid_alive(self._detached_pid):
            return self._detached_pid
        return None

    @property
    def running(self) -> bool:
        """True while the JVM process is alive (not necessarily ready)."""
        return self.pid is not None

    def exit_code(self) -> int | None:
        """The JVM's exit status if it was started by us and has exited, else None."""
        return None if self._proc is None else self._proc.poll()

    # ------------------------------------------------------------------ lifecycle

    def prepare(self) -> list[str]:
        """Write ``server.properties``; return the StorageTool command if not yet formatted."""
        self.kraft_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        lines = [f"{key}={value}" for key, value in self.properties.items()]
        self.properties_path.write_text("\n".join(lines) + "\n")
        if (self.kraft_dir / "meta.properties").exists():
            return []
        return [
            *self._java_prefix(TOOL_JVM_OPTS),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self.cluster_id,
            "-c",
            str(self.properties_path),
            "--ignore-formatted",
        ]

    def launch(self, detached: bool = False) -> None:
        """Start the JVM (returns at once; readiness is the caller's check).

        Raises KafkaError when a port is taken or Java cannot be started.
        """
        if self.running:
            return
        check_port_free(self.port)
        check_port_free(self.controller_port)
        cmd = [
            *self._java_prefix((f"-Xmx{self.heap}", f"-Xms{self.heap}", *JVM_PERFORMANCE_OPTS)),
            "kafka.Kafka",
            str(self.properties_path),
        ]
        with open(self.log_dir / "kafka.out", "ab") as out:
            try:
                self._proc = start_process(cmd, out, detached=detached)
            except OSError as exc:
                raise KafkaError(f"could not start Java ({cmd[0]}): {exc}") from exc
        if detached:
            self._detached_pid = self._proc.pid
        else:
            _OWNED.add(self)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the JVM (a clean shutdown), SIGKILL after ``timeout`` s; wait until gone."""
        self.signal(signal.SIGTERM)
        self.wait(timeout)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the JVM's process group, if it runs."""
        pid = self.pid
        if pid is not None:
            signal_group(pid, sig)

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the JVM to exit, then SIGKILL it and wait again."""
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
            _OWNED.discard(self)
        elif self._detached_pid is not None:
            terminate_pid(self._detached_pid, timeout)

    def kill(self) -> None:
        """SIGKILL the JVM (a crash: no shutdown hook runs) and wait until it is gone."""
        self.signal(signal.SIGKILL)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(10)
        elif self._detached_pid is not None:
            _wait_gone(self._detached_pid, 10)
        _OWNED.discard(self)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the JVM's output and of ``server.log``."""
        parts = []
        for name in ("kafka.out", "server.log"):
            path = self.log_dir / name
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").splitlines()[-lines:]
                if text:
                    parts.append(f"--- {path} (last {len(text)} lines)\n" + "\n".join(text))
        return "\n".join(parts) or f"(no log written in {self.log_dir})"

    def _java_prefix(self, jvm_opts: tuple[str, ...]) -> list[str]:
        return [
            self.dist.java,
            *jvm_opts,
            f"-Dlog4j2.configurationFile={self.dist.log4j_config}",
            f"-Dkafka.logs.dir={self.log_dir}",
            "-cp",
            self.dist.classpath,
        ]


def format_storage(nodes: list[KafkaNode], timeout: float = 60.0) -> None:
    """Write every node's properties and run StorageTool (in parallel) where not yet formatted.

    Raises KafkaError with the tool's output when it fails or exceeds ``timeout``.
    """
    runs = []
    for node in nodes:
        cmd = node.prepare()
        if cmd:
            log = open(node.log_dir / "format.out", "wb")  # noqa: SIM115 - closed below
            runs.append((node, log, start_process(cmd, log, detached=False)))
    deadline = time.monotonic() + timeout
    failures = []
    for node, log, proc in runs:
        try:
            code = proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
        log.close()
        if code != 0:
            output = (node.log_dir / "format.out").read_text(errors="replace")[-4000:]
            status = "timed out" if code is None else f"exit {code}"
            failures.append(f"node {node.node_id}: StorageTool format {status}\n{output}")
    if failures:
        raise KafkaError("could not format Kafka storage:\n" + "\n".join(failures))
