"""The ``sqlitequeue`` command: operate queue and stream files; find the workbench when asked.

Every command is a :class:`~sqlitequeue.cli.command.Command` (or a
:class:`~sqlitequeue.cli.command.CommandGroup` of them), declared in one module per group:

* :mod:`sqlitequeue.cli.queue`    stats, peek, put, get, dead, redrive, purge
* :mod:`sqlitequeue.cli.stream`   topics, groups, tail, reset-offsets
* :mod:`sqlitequeue.bench.cli`    bench ..., kafka ..., decide (the workbench; needs extras)

The core commands load no workbench module: the workbench's commands are imported only when
one of them is run (``--help`` lists them from :data:`WORKBENCH_COMMANDS`). Exit codes are
:class:`~sqlitequeue.cli.command.ExitCode`: 0 success, 1 error (a QueueError: the message
says what to do), 2 bad usage, 3 nothing to do, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sqlitequeue.cli import queue, stream
from sqlitequeue.cli.command import Command, CommandGroup, ExitCode
from sqlitequeue.errors import QueueError

#: The core's commands, in the order ``--help`` lists them.
CORE_COMMANDS: tuple[Command, ...] = (*queue.COMMANDS, *stream.COMMANDS)

#: The workbench's top-level commands and their help lines; the module that declares them.
WORKBENCH_COMMANDS = {
    "bench": "benchmark SQLite against Kafka (needs: pip install 'sqlitequeue[all]')",
    "kafka": "install, start, stop or check a local Apache Kafka broker (for the notebooks)",
    "decide": "answer the seed article's checklist for your team profile and measurements",
}
WORKBENCH_MODULE = "sqlitequeue.bench.cli"

#: Commands of an extra, imported only when run: name -> (module with COMMAND, help line).
EXTRA_COMMANDS = {
    "serve": (
        "sqlitequeue.gateway.cli",
        "serve a file over Kafka's wire protocol (needs: pip install 'sqlitequeue[gateway]')",
    ),
}


def workbench_commands() -> tuple[Command | CommandGroup, ...]:
    """Import the workbench's command declarations (``sqlitequeue.bench.cli.COMMANDS``)."""
    return tuple(importlib.import_module(WORKBENCH_MODULE).COMMANDS)


def build_parser(*, workbench: bool = True, extra: str | None = None) -> argparse.ArgumentParser:
    """Return the argument parser; with ``workbench=False`` its commands are placeholders,
    and so are the extras' commands except ``extra`` (with ``workbench=True``, every extra
    that is installed is loaded)."""
    parser = argparse.ArgumentParser(
        prog="sqlitequeue",
        description="Operate sqlitequeue files, and benchmark SQLite against Kafka.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `sqlitequeue COMMAND --help` for a command's options and an example.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in CORE_COMMANDS:
        command.register(subparsers)
    if workbench:
        for entry in workbench_commands():
            entry.register(subparsers)
    else:
        for name, help_text in WORKBENCH_COMMANDS.items():
            subparsers.add_parser(name, help=help_text)
    for name, (module, help_text) in EXTRA_COMMANDS.items():
        if name == extra or (workbench and _importable(module)):
            importlib.import_module(module).COMMAND.register(subparsers)
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except QueueError:  # its extra is not installed
        return False
    return True


def _command_name(argv: Sequence[str]) -> str | None:
    """The command named by ``argv``: its first argument that is not an option."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code (an :class:`ExitCode`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    name = _command_name(argv)
    try:
        parser = build_parser(workbench=name in WORKBENCH_COMMANDS, extra=name)
    except QueueError as exc:  # an extra that is not installed
        print(f"sqlitequeue: error: {exc}", file=sys.stderr)
        return ExitCode.ERROR
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return ExitCode.USAGE
    try:
        return int(func(args) or ExitCode.OK)
    except QueueError as exc:
        print(f"sqlitequeue: error: {exc}", file=sys.stderr)
        return ExitCode.ERROR
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
