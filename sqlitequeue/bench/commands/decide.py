"""Answer the seed's "when does SQLite replace Kafka" checklist with your profile and measurements.

The profile (YAML; examples in examples/profiles/) states peak and average rate, message
size, writers and regions, downtime and data-loss tolerance, retention, consumer groups,
Kafka ecosystem needs and team capacity. Each criterion is checked against measured results
(max sustainable rate at the p99 target, RTO/RPO from the failure lab) and the cost model:
pass / fail / unknown, with the evidence and the headroom. The verdict is "SQLite fits",
"stay on Kafka" or "inconclusive", with what would change it. The report section is written
into the results folder as decision-<profile>.md / .html / .json.

Without --results, the measurements run first (`bench compare` and `bench faults`, quick
mode: a few minutes on 2 cores).

Example:
  sqlitequeue decide examples/profiles/seed.yaml
  sqlitequeue decide examples/profiles/big.yaml --results results/RUN1 --results results/RUN2
  sqlitequeue decide my-team.yaml --results results/RUN1 --params my-prices.yaml
"""

from __future__ import annotations

import argparse

from sqlitequeue.cli import WORKBENCH_COMMANDS
from sqlitequeue.cli.command import Command, ExitCode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the profile, --results (repeatable), --quick/--full, --out and --params."""
    parser.add_argument("profile", help="team profile YAML (see examples/profiles/)")
    parser.add_argument(
        "--results",
        action="append",
        metavar="DIR",
        help="a results folder (bench and/or faults run); repeat for several. "
        "Default: run the measurements now",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        dest="quick",
        action="store_true",
        default=True,
        help="when measuring: quick mode (the default)",
    )
    mode.add_argument(
        "--full", dest="quick", action="store_false", help="when measuring: the full runs"
    )
    parser.add_argument(
        "--out", metavar="DIR", default=None, help="results root for new measurements"
    )
    parser.add_argument(
        "--params", metavar="FILE", help="cost parameter overrides (YAML of name: value)"
    )


def run(args: argparse.Namespace) -> int:
    """Decide, print the verdict and criteria, and write the report; return ExitCode.OK."""
    from sqlitequeue.bench import cost
    from sqlitequeue.bench.decide.report import summary_text
    from sqlitequeue.bench.decide.run import decide

    params = cost.load_parameters(args.params) if args.params else None
    decision, paths = decide(
        args.profile, args.results, quick=args.quick, out=args.out, params=params
    )
    print(f"profile {decision.profile.name}: {decision.verdict}")
    for c in decision.criteria:
        kind = "hard" if c.hard else "soft"
        headroom = f" [{c.headroom}]" if c.headroom else ""
        print(f"  {c.status:<7} ({kind}) {c.title}{headroom}\n          {c.evidence}")
    print("what would change it:")
    for line in decision.changes:
        print(f"  - {line}")
    print("\n" + summary_text(decision))
    print("report: " + ", ".join(str(p) for p in paths))
    return ExitCode.OK


COMMAND = Command("decide", WORKBENCH_COMMANDS["decide"], add_arguments, run, description=__doc__)
