"""How a command of the ``sqlitequeue`` CLI declares itself, and the exit codes all of them use.

Every command, core or workbench, is one :class:`Command`: a name, a one-line help, a function
that adds its arguments, and a function that runs it over a library call and returns an
:class:`ExitCode`. :func:`sqlitequeue.cli.main` turns :class:`~sqlitequeue.errors.QueueError`
into exit codes, so a command only returns the code of a normal outcome.
"""

from __future__ import annotations

import argparse
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class ExitCode(enum.IntEnum):
    """Exit codes of every ``sqlitequeue`` command."""

    OK = 0  #: done
    ERROR = 1  #: a QueueError (the message says what to do), or a run with failures
    USAGE = 2  #: bad usage: an unknown option, or an argument with a value the call refuses
    EMPTY = 3  #: nothing to do (e.g. ``get`` found no message before its timeout)
    INTERRUPTED = 130  #: Ctrl-C


@dataclass(frozen=True)
class Command:
    """One CLI command: what it is called, its help, its arguments and what runs it.

    ``run`` takes the parsed arguments and returns an exit code (an :class:`ExitCode`, or an
    int for the codes of a wrapped tool). ``description`` defaults to ``help``; ``example``
    is shown under the options in ``--help``.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None
    example: str | None = None

    def register(self, subparsers: Any) -> argparse.ArgumentParser:
        """Add this command to an ``add_subparsers()`` object; return its parser."""
        parser: argparse.ArgumentParser = subparsers.add_parser(
            self.name,
            help=self.help,
            description=self.description or self.help,
            epilog=f"example:\n  {self.example}" if self.example else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        self.add_arguments(parser)
        parser.set_defaults(func=self.run)
        return parser


@dataclass(frozen=True)
class CommandGroup:
    """A command with sub-commands (``sqlitequeue bench run ...``), each a :class:`Command`."""

    name: str
    help: str
    commands: tuple[Command, ...]

    def register(self, subparsers: Any) -> argparse.ArgumentParser:
        """Add this group and its commands to an ``add_subparsers()`` object; return its parser."""
        parser: argparse.ArgumentParser = subparsers.add_parser(
            self.name, help=self.help, description=self.help
        )
        sub = parser.add_subparsers(dest=f"{self.name}_command", metavar="COMMAND")
        for command in self.commands:
            command.register(sub)

        def usage(_args: argparse.Namespace) -> int:
            parser.print_help()
            return ExitCode.USAGE

        parser.set_defaults(func=usage)
        return parser
