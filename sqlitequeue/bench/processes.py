"""Helper processes that never outlive the workbench (Kafka JVMs, the Toxiproxy server)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """``preexec_fn``: ask the kernel to SIGKILL this child when its parent thread dies.

    Exits the child at once when the parent (``parent_pid``) died before the request took
    effect. Use with ``subprocess.Popen(..., preexec_fn=lambda: die_with_parent(os.getpid()))``
    evaluated in the parent (the pid is bound before the fork).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def start_process(cmd: list[str], out: IO[bytes], *, detached: bool) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with stdout and stderr into ``out``.

    An owned process (``detached=False``) leads its own process group and dies with the
    calling thread (:func:`die_with_parent`); a detached one starts a new session and outlives
    Python, to be stopped later through its pid.
    """
    if detached:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    parent = os.getpid()
    return subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        process_group=0,
        preexec_fn=lambda: die_with_parent(parent),
    )


def log_tail(path: Path, lines: int = 20, missing: str = "") -> str:
    """The last ``lines`` lines of the log at ``path`` (``missing`` when it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return missing
