"""The core stands alone: importing it, or running a core command, loads no workbench module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlitequeue
from sqlitequeue import errors
from sqlitequeue.bench import cli as bench_cli
from sqlitequeue.cli import CORE_COMMANDS, WORKBENCH_COMMANDS

CORE_RUNS = [
    ["put", "{db}", "hello"],
    ["stats", "{db}"],
    ["peek", "{db}"],
    ["get", "{db}", "--no-ack", "--json"],
    ["dead", "{db}"],
    ["redrive", "{db}"],
    ["purge", "{db}", "--yes"],
    ["topics", "{db}"],
    ["groups", "{db}"],
    ["tail", "{db}", "orders", "--from", "earliest", "-e"],
    ["reset-offsets", "{db}", "orders", "billing", "--to-earliest"],
]

SCRIPT = """
import contextlib, io, json, sys
from sqlitequeue import Stream
from sqlitequeue.cli import main
db = sys.argv[1]
with Stream(db, "orders") as stream:
    stream.append(b"one")
codes = {}
for argv in json.loads(sys.argv[2]):
    argv = [a.format(db=db) for a in argv]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        codes[argv[0]] = main(argv)
loaded = sorted(m for m in sys.modules if m.startswith("sqlitequeue.bench"))
print(json.dumps({"codes": codes, "loaded": loaded}))
"""


def test_core_commands_cover_every_core_command() -> None:
    assert sorted(run[0] for run in CORE_RUNS) == sorted(c.name for c in CORE_COMMANDS)


def test_importing_the_core_and_running_core_commands_loads_no_workbench(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "core.db"), json.dumps(CORE_RUNS)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["loaded"] == []
    assert set(result["codes"].values()) <= {0, 3}, result["codes"]


def test_workbench_errors_live_in_the_workbench() -> None:
    from sqlitequeue.bench import errors as bench_errors

    for name in ("BenchError", "WorkloadError", "ProfileError", "BackendError", "KafkaError"):
        assert name not in sqlitequeue.__all__ and not hasattr(errors, name)
        assert issubclass(getattr(bench_errors, name), sqlitequeue.QueueError)


def test_core_help_lists_the_workbench_commands_it_loads_on_demand() -> None:
    assert tuple(WORKBENCH_COMMANDS) == tuple(c.name for c in bench_cli.COMMANDS)
    assert all(WORKBENCH_COMMANDS[c.name] == c.help for c in bench_cli.COMMANDS)
