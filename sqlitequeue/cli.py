"""The ``sqlitequeue`` command: operate queue files; dispatch bench, kafka and decide.

Command groups live in their own modules, each exposing ``register(subparsers)``, which adds
subparsers whose ``func`` default takes the parsed arguments and returns an exit code:

* :mod:`sqlitequeue._cli_queue`   stats, peek, put, get, dead, redrive, purge
* :mod:`sqlitequeue._cli_stream`  topics, groups, tail, reset-offsets
* :mod:`sqlitequeue.bench.cli`    bench ..., kafka ..., decide (the workbench; needs extras)

Exit codes: 0 success, 1 error (a QueueError: the message says what to do), 2 bad usage,
3 nothing to do (e.g. ``get`` found no message before its timeout), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sqlitequeue.errors import QueueError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_EMPTY = 3
EXIT_INTERRUPTED = 130

#: Modules that add command groups, in the order they appear in ``--help``.
COMMAND_MODULES = ("sqlitequeue._cli_queue", "sqlitequeue._cli_stream", "sqlitequeue.bench.cli")


def build_parser() -> argparse.ArgumentParser:
    """Return the full argument parser (every command group registered)."""
    parser = argparse.ArgumentParser(
        prog="sqlitequeue",
        description="Operate sqlitequeue files, and benchmark SQLite against Kafka.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `sqlitequeue COMMAND --help` for a command's options and an example.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # a command group that is not part of this installation
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(func(args) or EXIT_OK)
    except QueueError as exc:
        print(f"sqlitequeue: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
