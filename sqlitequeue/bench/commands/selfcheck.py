"""Check the harness is not the bottleneck: the `memory` backend at 5x the suite's peak.

The memory backend stores nothing, so whatever rate the runner reaches with it is the most
it could measure on any backend. Passes when it sustains 5x the highest rate in the bundled
workloads with nothing lost and e2e p99 under 50 ms. Exit code 1 when it does not.

Example:
  sqlitequeue bench selfcheck
  sqlitequeue bench selfcheck --duration 10
"""

from __future__ import annotations

import argparse

from sqlitequeue.cli.command import Command, ExitCode

HELP = "check the harness sustains 5x the suite's peak rate (memory backend)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --duration."""
    parser.add_argument("--duration", type=float, default=5.0, metavar="SECONDS")


def run(args: argparse.Namespace) -> int:
    """Run the check and print its verdict; return ExitCode.OK when met, 1 when not."""
    from sqlitequeue.bench.compare import selfcheck

    check = selfcheck(duration=args.duration, progress=True)
    print(check.describe())
    return ExitCode.OK if check.ok else ExitCode.ERROR


COMMAND = Command("selfcheck", HELP, add_arguments, run, description=__doc__)
