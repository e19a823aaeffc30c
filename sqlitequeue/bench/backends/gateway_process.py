"""One ``sqlitequeue serve`` process: started on a port, ready, SIGKILLed, restarted, stopped.

:class:`ServeProcess` is the gateway's server as the workbench runs it, for the gateway
backends (:class:`~sqlitequeue.bench.backends.gateway.SharedServer`: one server shared by a
run's processes) and for the failure lab (SIGKILLed and started again on the same port and
file). It is ready once its log holds one more ``serving FILE on`` line (what
``sqlitequeue serve`` prints when it listens) than before it started; :meth:`start` raises
BackendError, with the end of the log, when it exits first or is not ready within
:data:`START_TIMEOUT_S`.

An owned server (the default) leads its own process group and the kernel SIGKILLs it when
the thread that started it dies (:func:`~sqlitequeue.bench.processes.start_process`): a
SIGKILLed harness leaves no server behind. A detached one starts its own session and
outlives its starter (the shared server, which stops by itself once its users are gone).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sqlitequeue.bench.errors import BackendError
from sqlitequeue.bench.kafka.node import free_port, pid_alive, terminate_pid
from sqlitequeue.bench.processes import log_tail, start_process

#: How long a (re)started server may take to say that it serves (seconds).
START_TIMEOUT_S = 30.0
#: How long a stopped server may take to drain and close the file before SIGKILL.
STOP_TIMEOUT_S = 15.0
#: ``python -m`` arguments that run ``sqlitequeue serve`` (FILE and --port PORT follow).
SERVE = ("sqlitequeue", "serve")


def stop_server(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM server ``pid``'s process group (it drains and closes the file); SIGKILL it if
    it is still there after ``timeout`` s. Returns once it is gone; also for a server this
    process did not start (a shared server stopped by its last user)."""
    terminate_pid(pid, timeout)


class ServeProcess:
    """A server process of ``file`` on 127.0.0.1:``port`` (a free port when None).

    ``runner``: the ``python -m`` arguments before ``FILE --port PORT``, and ``extra`` the
    ones after (default: plain ``sqlitequeue serve``). ``pids`` lists every process
    started, in order; their output is appended to ``log``.
    """

    def __init__(
        self,
        file: Path,
        log: Path,
        port: int | None = None,
        *,
        runner: Sequence[str] = SERVE,
        extra: Sequence[str] = (),
        detached: bool = False,
    ) -> None:
        self.file = file
        self.log = log
        self.port = port or free_port()
        self.command = [sys.executable, "-m", *runner, str(file), "--port", str(self.port)]
        self.command += extra
        self.detached = detached
        self.pids: list[int] = []
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The server's own address (``127.0.0.1:PORT``)."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The pid of the current (or last) server process; 0 before the first start."""
        return self.pids[-1] if self.pids else 0

    @property
    def running(self) -> bool:
        """True while the current server process has not exited."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> ServeProcess:
        """Start the server and wait until it serves.

        Raises BackendError (with the end of its log) when it exits or does not serve
        within START_TIMEOUT_S; it is killed then.
        """
        served_before = self._served()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self._process = start_process(self.command, out, detached=self.detached)
        self.pids.append(self._process.pid)
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.running and self._served() <= served_before:
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if not self.running or self._served() <= served_before:
            self.kill()
            raise BackendError(
                f"sqlitequeue serve did not start on {self.bootstrap} within "
                f"{START_TIMEOUT_S:g} s (log {self.log}):\n{self.tail()}"
            )
        return self

    def kill(self) -> float:
        """SIGKILL the server process (not its group); return the unix time of the kill."""
        at = time.time()
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait(30)
        return at

    def restart(self) -> float:
        """SIGKILL the server, then start it again on the same port and file; return the
        unix time of the kill. Raises as :meth:`start` does."""
        at = self.kill()
        self.start()
        return at

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the server (it drains and closes the file), SIGKILL it if it lingers
        ``timeout`` s; return once it is gone. Safe to repeat."""
        if self._process is None or self._process.poll() is not None:
            return
        if pid_alive(self._process.pid):
            stop_server(self._process.pid, timeout)
        self._process.wait(30)

    def tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the log ("" before there is one)."""
        return log_tail(self.log, lines)

    def _served(self) -> int:
        """How many times the log says a server of this file started serving."""
        try:
            return self.log.read_text(errors="replace").count(f"serving {self.file} on ")
        except OSError:
            return 0
