"""Write the HTML report of a results folder, verdict first, and print the summary.

The report is one self-contained file (report/index.html: CSS inline, charts embedded)
that opens with the verdict for a team profile (--team, default the seed article's team),
judged on this run and the newest failure-lab run beside it; then problems (failed runs
and their logs, a self-check not met, quick mode), then charts and tables. Reads only the
results files; with no folder given, uses the newest run under results/.

Example:
  sqlitequeue bench report                          # newest run under results/
  sqlitequeue bench report results/20261128-101500-compare --out /tmp/report
  sqlitequeue bench report results/reference --team examples/profiles/big.yaml
"""

from __future__ import annotations

import argparse

from sqlitequeue.cli.command import Command, ExitCode

HELP = "charts + HTML report + summary table from a results folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the optional results folder, --root, --out and --team."""
    parser.add_argument("results", nargs="?", metavar="DIR", help="results folder")
    parser.add_argument("--root", default="results", help="where to look for the newest run")
    parser.add_argument("--out", metavar="DIR", help="report folder (default: DIR/report)")
    parser.add_argument(
        "--team",
        metavar="PROFILE",
        help="team profile YAML the verdict is for (default: examples/profiles/seed.yaml)",
    )


def run(args: argparse.Namespace) -> int:
    """Write the report; return ExitCode.OK."""
    from sqlitequeue.bench.report import workloads as workload_report
    from sqlitequeue.bench.report.page import write_report as write_page
    from sqlitequeue.bench.results import latest_run

    folder = args.results or latest_run(args.root, kind="bench")
    index = write_page(folder, args.out, team=args.team)
    print(workload_report.terminal_summary(folder, with_verdict=True, team=args.team))
    print(f"\nreport: {index}")
    return ExitCode.OK


COMMAND = Command("report", HELP, add_arguments, run, description=__doc__)
