"""Answer the seed's "when does SQLite replace Kafka" checklist with your profile and measurements.

The profile (YAML; examples in examples/profiles/) states peak and average rate, message
size, writers and regions, how long writes may be unavailable, how long a crashed
consumer's work may wait, data-loss tolerance, retention, consumer groups, Kafka ecosystem
needs and team capacity. Each criterion is checked against measured results (max
sustainable rate at the p99 target; write unavailability, redelivery delay and data loss
from the failure lab) and the cost model: pass / fail / unknown, with SQLite's figure,
Kafka's from the same runs, and the headroom. The verdict is "SQLite fits", "stay on
Kafka" or "inconclusive", with what would change it. The report section is written into
the results folder as decision-<profile>.md / .html / .json.

Evidence: by default the newest finished `bench compare` run and `bench faults` run under
the results root (--out, default results/); it prints which runs it used and how old they
are, and measures only what they lack (quick mode, with progress). --measure runs both
afresh; --results names the folders to use instead.

Example:
  sqlitequeue decide examples/profiles/seed.yaml
  sqlitequeue decide examples/profiles/seed.yaml --measure --full
  sqlitequeue decide examples/profiles/big.yaml --results results/RUN1 --results results/RUN2
  sqlitequeue decide my-team.yaml --results results/RUN1 --params my-prices.yaml
"""

from __future__ import annotations

import argparse

from sqlitequeue.cli import WORKBENCH_COMMANDS
from sqlitequeue.cli.command import Command, ExitCode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the profile, --results (repeatable) or --measure, --quick/--full, --out, --params."""
    parser.add_argument("profile", help="team profile YAML (see examples/profiles/)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--results",
        action="append",
        metavar="DIR",
        help="a results folder (bench and/or faults run) to use; repeat for several. "
        "Default: the newest compare and faults runs under --out, measuring what is missing",
    )
    source.add_argument(
        "--measure",
        action="store_true",
        help="run `bench compare` and `bench faults` afresh instead of reusing runs",
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
        "--out",
        metavar="DIR",
        default=None,
        help="results root: where runs are looked up and new ones written (default: results/)",
    )
    parser.add_argument(
        "--params", metavar="FILE", help="cost parameter overrides (YAML of name: value)"
    )


def _say(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    """Decide, print the runs used, the verdict and criteria; write the report; ExitCode.OK."""
    from sqlitequeue.bench import cost
    from sqlitequeue.bench.decide.report import kafka_cell, summary_text
    from sqlitequeue.bench.decide.run import decide

    params = cost.load_parameters(args.params) if args.params else None
    decision, paths = decide(
        args.profile,
        args.results,
        quick=args.quick,
        out=args.out,
        params=params,
        measure=args.measure,
        say=_say,
    )
    print(f"\nprofile {decision.profile.name}: {decision.verdict}")
    for c in decision.criteria:
        kind = "hard" if c.hard else "soft"
        headroom = f" [{c.headroom}]" if c.headroom else ""
        print(f"  {c.status:<7} ({kind}) {c.title}{headroom}")
        print(f"          SQLite: {c.evidence}")
        if c.kafka_evidence:
            print(f"          Kafka:  {kafka_cell(c)}")
    print("what would change it:")
    for line in decision.changes:
        print(f"  - {line}")
    print("\n" + summary_text(decision))
    print("report: " + ", ".join(str(p) for p in paths))
    return ExitCode.OK


COMMAND = Command("decide", WORKBENCH_COMMANDS["decide"], add_arguments, run, description=__doc__)
