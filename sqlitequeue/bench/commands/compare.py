"""Run the workload suite against SQLite and Kafka, then write the report (the main job).

Runs a harness self-check (the `memory` backend at 5x the suite's peak rate and at the top
rate of each max-rate search), then every
workload of the suite against every backend: sqlite-queue, sqlite-stream, sqlite-seed (the
seed article's table), kafka-confluent and kafka (kafka-python) on one broker, and
kafka-managed (3 brokers, RF 3, across emulated zones). A max-rate search doubles the rate
until a step misses the p99 target, then bisects to 10 %; the report says when a search
ended at the harness's ceiling or ran out of time first. The full suite runs each
workload 3 times (--repeats) and shows median and spread; --quick runs once, and its
figures are indicative. Kafka is started automatically (KAFKA_BOOTSTRAP_SERVERS, else
local brokers from the cached jars); when it cannot be, a note says how to add it and the
SQLite backends still run. Ends with results/<run-id>/report/index.html written (the
verdict for --team first) and the summary printed. Each backend's and each broker's log is
kept under results/<run-id>/logs/.

Exit status: 0 when every backend x workload ran; 1 when any failed or was skipped
(Kafka unavailable), after the report and a list of the problems with their logs.

Example:
  sqlitequeue bench compare                 # 6 backends x 3 repeats: under an hour on 2 cores
  sqlitequeue bench compare --repeats 1     # one run each: about 20 minutes
  sqlitequeue bench compare --quick         # a few minutes; figures indicative
  sqlitequeue bench compare --backends sqlite-queue,kafka-confluent --workloads steady-1kb
  sqlitequeue bench compare --team examples/profiles/big.yaml --repeats 5
"""

from __future__ import annotations

import argparse

from sqlitequeue.bench.commands.arguments import add_network_arguments, name_list, network_from
from sqlitequeue.cli.command import Command, ExitCode

HELP = "run the suite against SQLite and Kafka, write charts + report (the main job)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --quick, --suite, --backends, --workloads, --duration, --repeats, --out,
    --p99-target, --profile, --team, --no-selfcheck, --run-id and the network options."""
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the short suite, run once (a few minutes; figures indicative)",
    )
    parser.add_argument(
        "--suite",
        metavar="NAME",
        help="default, quick, or seed-claim (the seed article's latency claim: SQLite against "
        "kafka-managed over cross-az and cross-region)",
    )
    parser.add_argument("--backends", type=name_list, metavar="A,B", help="backends to compare")
    parser.add_argument(
        "--workloads",
        type=name_list,
        metavar="A,B",
        help="workload names or files (default: suite)",
    )
    parser.add_argument(
        "--duration", type=float, metavar="SECONDS", help="override every workload's duration"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        metavar="N",
        help="run each workload N times; the summary shows median and spread "
        "(default: 3, or 1 with --quick)",
    )
    parser.add_argument("--out", metavar="DIR", default="results", help="results root")
    parser.add_argument(
        "--team",
        metavar="PROFILE.yaml",
        help="the team profile the report's verdict is for "
        "(default: examples/profiles/seed.yaml, the seed article's team)",
    )
    parser.add_argument("--p99-target", type=float, metavar="MS", help="latency target")
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="[BACKEND=]PROFILE",
        help="backend settings profile (repeatable): a bundled name (docs/backends.md) or a file",
    )
    parser.add_argument("--no-selfcheck", action="store_true", help="skip the harness check")
    parser.add_argument("--run-id", metavar="NAME", help="results folder name (default: time)")

    add_network_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run the comparison; return ExitCode.OK once the report is written, ExitCode.ERROR
    when any backend x workload failed (the problems are printed with their logs)."""
    from sqlitequeue.bench.compare import failed_runs, run_compare

    folder = run_compare(
        quick=args.quick,
        backends=args.backends,
        workloads=args.workloads,
        out=args.out,
        duration=args.duration,
        p99_target_ms=args.p99_target,
        profiles=args.profile,
        run_selfcheck=not args.no_selfcheck,
        run_id=args.run_id,
        network=network_from(args),
        suite_name=args.suite,
        repeats=args.repeats,
        team=args.team,
    )
    return ExitCode.ERROR if failed_runs(folder) else ExitCode.OK


COMMAND = Command("compare", HELP, add_arguments, run, description=__doc__)
