"""Helpers shared by tests: real read-only and size-limited file systems, real processes,
waiting for processes to be gone."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def wait_gone(pids: Iterable[int], timeout: float = 10.0) -> bool:
    """True once none of ``pids`` runs (a zombie counts as gone); False if one still runs
    after ``timeout`` seconds."""
    pending = list(pids)
    deadline = time.monotonic() + timeout
    while True:
        pending = [pid for pid in pending if _running(pid)]
        if not pending:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def run_on_read_only_directory(
    directory: Path, command: Sequence[str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` while ``directory`` is read-only, and return its result.

    As root (CI), the directory is bind-mounted read-only in a private mount namespace
    (``unshare --mount``), a real read-only file system; otherwise its permission bits
    are cleared for the duration of the call.
    """
    if os.geteuid() == 0:
        d = shlex.quote(str(directory))
        script = f"mount --bind -o ro {d} {d} && exec {shlex.join(command)}"
        argv = ["unshare", "--mount", "bash", "-c", script]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False
        )
    modes = {p: p.stat().st_mode for p in [directory, *directory.iterdir()]}
    try:
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        return subprocess.run(
            list(command), capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False
        )
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def run_on_small_file_system(
    directory: Path, size: str, command: Sequence[str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with a fresh tmpfs of ``size`` (e.g. "2m") mounted on ``directory``.

    Needs root (CI runs as root): a private mount namespace keeps the mount invisible to
    everything else and it disappears with the process.
    """
    d = shlex.quote(str(directory))
    script = f"mount -t tmpfs -o size={size} tmpfs {d} && exec {shlex.join(command)}"
    argv = ["unshare", "--mount", "bash", "-c", script]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False
    )


def execute_notebook(
    path: Path, parameters: dict[str, object], cwd: Path, timeout: int = 600
) -> object:
    """Execute a notebook headless with ``parameters`` injected after its parameters cell.

    The notebook's cell tagged ``parameters`` holds the defaults a user edits; this adds a
    cell right after it assigning ``parameters`` (papermill's convention), runs every cell
    with the current interpreter's ``python3`` kernel in ``cwd``, and returns the executed
    notebook. Raises nbclient's CellExecutionError (with the traceback) if a cell fails.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    index = next(
        (
            i
            for i, c in enumerate(nb.cells)
            if "parameters" in c.get("metadata", {}).get("tags", [])
        ),
        None,
    )
    if index is None:
        raise AssertionError(f"{path} has no cell tagged 'parameters'")
    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    injected = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index + 1, injected)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return nb
