"""Failure-recovery lab: crash consumers, producers, Kafka brokers, the gateway, the SQLite host.

Each experiment runs a real workload, injects one fault, and counts from message ids what
was acknowledged, lost and duplicated, and how long recovery took (RTO). Host loss uses the
real Litestream binary (install it with `make litestream`); Kafka experiments start local
brokers; broker-kill:gateway SIGKILLs and restarts `sqlitequeue serve` (the gateway extra);
disk-full and read-only need root (otherwise they are reported as unavailable).

examples:
  sqlitequeue bench faults --quick
  sqlitequeue bench faults --experiment host-loss --repeats 5
  sqlitequeue bench faults --experiment consumer-kill:sqlite-queue --quick --out /tmp/results
  sqlitequeue bench faults --experiment broker-kill:gateway --quick
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlitequeue.bench.commands.arguments import add_network_arguments, network_from
from sqlitequeue.cli.command import Command, ExitCode

HELP = "failure-recovery experiments: SIGKILLs (clients, brokers, gateway), host loss, full disk"

EXPERIMENT_NAMES = (
    "consumer-kill",
    "producer-kill",
    "host-loss",
    "host-loss-litestream-down",
    "disk-full",
    "read-only",
    "broker-kill",
    "leader-failover",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the command's options."""
    parser.add_argument(
        "--experiment",
        action="append",
        metavar="NAME",
        help=(
            f"run only this experiment (repeatable): {', '.join(EXPERIMENT_NAMES)}; "
            "optionally NAME:BACKEND[:DURABILITY], e.g. host-loss:sqlite-queue:full, "
            "broker-kill:gateway"
        ),
    )
    parser.add_argument(
        "--repeats", type=int, metavar="N", help="repeats per experiment (default 3; 1 quick)"
    )
    parser.add_argument("--quick", action="store_true", help="small and short: a smoke run")
    parser.add_argument(
        "--out", metavar="DIR", default="results", help="results root (default: results/)"
    )
    add_network_arguments(parser)


def run(args: Any) -> int:
    """Run the experiments, print the summary table; exit 1 if any trial failed."""
    import pandas as pd

    from sqlitequeue.bench.faults.experiments import run_faults
    from sqlitequeue.bench.report.faults import summarize
    from sqlitequeue.bench.results import load

    if args.repeats is not None and args.repeats < 1:
        print("sqlitequeue: error: --repeats must be >= 1", file=sys.stderr)
        return ExitCode.USAGE
    folder = run_faults(
        quick=args.quick,
        experiments=args.experiment,
        repeats=args.repeats,
        out=args.out,
        progress=lambda line: print(line, flush=True),
        network=network_from(args),
    )
    faults = load(folder).tables["faults"]
    summary = summarize(faults)
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        print()
        print(summary.drop(columns=["notes"]).to_string(index=False))
    failed = faults[faults["notes"].fillna("").str.startswith("failed")]
    unavailable = faults[faults["notes"].fillna("").str.startswith("unavailable")]
    for _, row in unavailable.drop_duplicates(["experiment", "backend"]).iterrows():
        print(f"\n{row.experiment} ({row.backend}): {row.notes}")
    print(f"\nresults: {folder}")
    if not failed.empty:
        print(f"{len(failed)} trial(s) failed; see the notes in faults.csv", file=sys.stderr)
        return ExitCode.ERROR
    return ExitCode.OK


COMMAND = Command("faults", HELP, add_arguments, run, description=__doc__)
