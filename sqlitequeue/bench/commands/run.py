"""Run one workload (bundled name or YAML file, OMB files included) against backends.

Writes results/<run-id>/ (metrics.csv, latency_hist.csv, run.json) and its report, and
prints the summary. --duration overrides the file's duration, so a 15-minute OMB workload
can be tried in a minute. Kafka backends start Kafka as `compare` does. Exit status 1
when a backend failed or could not run (its log is under results/<run-id>/logs/).

Example:
  sqlitequeue bench run --workload seed-clickstream --backend sqlite-queue,kafka-confluent
  sqlitequeue bench run --workload ./1-topic-1-partition-1kb.yaml --backend sqlite-stream \\
      --duration 60
"""

from __future__ import annotations

import argparse

from sqlitequeue.bench.commands.arguments import add_network_arguments, name_list, network_from
from sqlitequeue.cli.command import Command, ExitCode

HELP = "run one workload against one or more backends; write results + report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --workload, --backend, --duration, --repeats, --out, --profile, --p99-target."""
    parser.add_argument("--workload", required=True, metavar="NAME|PATH", help="the workload")
    parser.add_argument(
        "--backend", required=True, type=name_list, metavar="NAME[,NAME…]", help="backends to run"
    )
    parser.add_argument(
        "--duration", type=float, metavar="SECONDS", help="override the workload's duration"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, metavar="N", help="run it N times (median, spread)"
    )
    parser.add_argument("--out", metavar="DIR", default="results", help="results root")
    parser.add_argument("--p99-target", type=float, metavar="MS", help="latency target")
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="[BACKEND=]PROFILE",
        help="backend settings profile (repeatable)",
    )

    add_network_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run the workload; return ExitCode.OK once results and report are written,
    ExitCode.ERROR when a backend failed (the problems are printed with their logs)."""
    from sqlitequeue.bench.compare import failed_runs, run_compare
    from sqlitequeue.bench.workload import load_workload

    name = load_workload(args.workload).name
    folder = run_compare(
        backends=args.backend,
        workloads=[args.workload],
        out=args.out,
        duration=args.duration,
        p99_target_ms=args.p99_target,
        profiles=args.profile,
        run_selfcheck=False,
        label=name,
        network=network_from(args),
        repeats=args.repeats,
    )
    return ExitCode.ERROR if failed_runs(folder) else ExitCode.OK


COMMAND = Command("run", HELP, add_arguments, run, description=__doc__)
