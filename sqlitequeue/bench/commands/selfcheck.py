"""Check the harness is not the bottleneck: the `memory` backend at the suite's rates.

The memory backend stores nothing, so whatever rate the runner reaches with it is the most
it could measure on any backend. Passes when it sustains 5x the highest fixed rate in the
bundled workloads, and the top rate each max-rate search of the suite offers (the harness's
ceiling, with the search's producers and message size), with nothing lost and e2e p99
within target. Exit code 1 when it does not.

Example:
  sqlitequeue bench selfcheck
  sqlitequeue bench selfcheck --duration 10
  sqlitequeue bench selfcheck --suite quick
"""

from __future__ import annotations

import argparse

from sqlitequeue.cli.command import Command, ExitCode

HELP = "check the harness sustains the suite's rates and its searches' top (memory backend)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --duration and --suite."""
    parser.add_argument(
        "--duration", type=float, metavar="SECONDS", help="seconds per check (default 5 and 10)"
    )
    parser.add_argument(
        "--suite", default="default", metavar="NAME", help="the suite whose searches to check"
    )


def run(args: argparse.Namespace) -> int:
    """Run the check and print its verdict; return ExitCode.OK when met, 1 when not."""
    from sqlitequeue.bench.compare import selfcheck, suite_workloads

    check = selfcheck(duration=args.duration, progress=True, suite=suite_workloads(args.suite))
    print(check.describe())
    return ExitCode.OK if check.ok else ExitCode.ERROR


COMMAND = Command("selfcheck", HELP, add_arguments, run, description=__doc__)
