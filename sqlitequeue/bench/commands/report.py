"""Write charts (PNG) and an HTML report from a results folder, and print the summary.

Reads only the results files (run.json, metrics.csv, latency_hist.csv, rate_steps.csv);
with no folder given, uses the newest run under results/.

Example:
  sqlitequeue bench report                          # newest run under results/
  sqlitequeue bench report results/20261128-101500-compare --out /tmp/report
"""

from __future__ import annotations

import argparse

from sqlitequeue.cli.command import Command, ExitCode

HELP = "charts + HTML report + summary table from a results folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the optional results folder, --root and --out."""
    parser.add_argument("results", nargs="?", metavar="DIR", help="results folder")
    parser.add_argument("--root", default="results", help="where to look for the newest run")
    parser.add_argument("--out", metavar="DIR", help="report folder (default: DIR/report)")


def run(args: argparse.Namespace) -> int:
    """Write the report; return ExitCode.OK."""
    from sqlitequeue.bench.report import workloads as workload_report
    from sqlitequeue.bench.results import latest_run

    folder = args.results or latest_run(args.root, kind="bench")
    index = workload_report.write_report(folder, args.out)
    print(workload_report.terminal_summary(folder))
    print(f"\nreport: {index}")
    return ExitCode.OK


COMMAND = Command("report", HELP, add_arguments, run, description=__doc__)
