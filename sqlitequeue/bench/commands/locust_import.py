"""Convert Locust CSVs (from loadtests/locustfile.py) into a workbench results folder.

PREFIX is Locust's --csv prefix: PREFIX_stats.csv, PREFIX_stats_history.csv,
PREFIX_failures.csv, plus PREFIX_response_times.csv and PREFIX_sqq.json written by the
locustfile (sub-ms percentiles, workload and timing). The folder (kind "locust") holds
metrics.csv (publish_latency_ms.*, e2e_latency_ms.*, publish_rate/consume_rate series),
latency_hist.csv and locust_stats.csv, so `bench report` and the notebooks chart it next
to workbench runs. Several prefixes go into one folder.

Example:
  sqlitequeue bench locust-import results/locust/csv/sqlite-queue
  sqlitequeue bench locust-import run_a run_b --out /tmp/results --workload steady-1kb
"""

from __future__ import annotations

import argparse

from sqlitequeue.cli.command import Command, ExitCode

HELP = "convert Locust CSVs into a results folder the report can read"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add PREFIX..., --backend, --workload, --out, --run-id."""
    parser.add_argument("prefix", nargs="+", metavar="PREFIX", help="Locust --csv prefix")
    parser.add_argument("--backend", metavar="NAME", help="default: the CSV's request type")
    parser.add_argument("--workload", metavar="NAME", help="default: PREFIX_sqq.json's")
    parser.add_argument("--out", metavar="DIR", default="results", help="results root")
    parser.add_argument("--run-id", metavar="ID", help="folder name (default: time-locust)")


def run(args: argparse.Namespace) -> int:
    """Convert; print the folder and its summary; return ExitCode.OK."""
    from sqlitequeue.bench.locust.convert import import_runs
    from sqlitequeue.bench.report import workloads as workload_report

    folder = import_runs(
        args.prefix, out=args.out, run_id=args.run_id, backend=args.backend, workload=args.workload
    )
    print(workload_report.format_table(workload_report.summary_table(workload_report.load(folder))))
    print(f"\nresults: {folder}")
    return ExitCode.OK


COMMAND = Command("locust-import", HELP, add_arguments, run, description=__doc__)
